// WebAssembly build of the fused Dense-stack forward pass (kernel.inc) for SIMD128: 4 float lanes,
// no fused multiply-add. No libc: memory comes from a bump allocator over the module's own memory,
// which the JS side (models/fusedKernel.ts) fills with layer specs, weights and rows.
//
//   alloc(bytes) -> ptr       64-byte aligned, zeroed; grows memory; nothing is ever freed except
//   mark() / release(mark)    everything allocated after a mark (the per-call staging buffers)
//   create(nlayers, spec)     spec: nlayers x {in, out, W, b, nacts, act, param} (7 x int32)
//                             -> Net*, or 0 with the reason in lastError()
//   forward(net, x, n, y, buf)
//   maxPad(net), blockRows()  buffer size: 2 x blockRows x maxPad floats
//   firstPad(net)             the first layer's padded width (a row of preact's output)
//   preact(net, x, n, h)      h [n][firstPad] = the first layer's pre-activations of x [n][d]
//   maskedBufFloats(net)      scratch floats maskedForward needs
//   maskedForward(net, m, k0, row0, n, y, buf)
//                             y [n][k] = net(masked rows; m: a fused::Masked, 4-byte fields in order)
//                             -> 0, or the reason it refused (a C string)
#include "net.h"

namespace fk_wasm {
typedef float vf __attribute__((vector_size(16), aligned(4)));
typedef int32_t vi __attribute__((vector_size(16)));
// 2 x 4 vectors measured fastest under V8 (of 2x2, 4x2, 6x2, 4x3, 3x4, 2x4).
constexpr int VL = 4, RT = 2, CV = 4;
static inline __attribute__((always_inline)) vf madd(vf a, vf b, vf c) { return a * b + c; }
#include "kernel.inc"
}  // namespace fk_wasm

extern "C" unsigned char __heap_base;

namespace {
uintptr_t top = reinterpret_cast<uintptr_t>(&__heap_base);
const char* lastErr = "";

void* bump(size_t bytes) {
  const uintptr_t start = (top + 63) & ~uintptr_t(63);
  const uintptr_t end = start + ((bytes + 63) & ~size_t(63));
  const uintptr_t have = __builtin_wasm_memory_size(0) * 65536;
  if (end > have) {
    const size_t pages = (end - have + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, pages) == static_cast<size_t>(-1)) return nullptr;
  }
  // Memory below `top` may have been used before a release(): clear it.
  __builtin_memset(reinterpret_cast<void*>(start), 0, end - start);
  top = end;
  return reinterpret_cast<void*>(start);
}
}  // namespace

#define EXPORT(name) extern "C" __attribute__((export_name(name)))

EXPORT("alloc") void* fk_alloc(uint32_t bytes) { return bump(bytes); }
EXPORT("mark") uint32_t fk_mark() { return static_cast<uint32_t>(top); }
EXPORT("release") void fk_release(uint32_t mark) {
  if (mark >= reinterpret_cast<uintptr_t>(&__heap_base) && mark <= top) top = mark;
}
EXPORT("lastError") const char* fk_last_error() { return lastErr; }
EXPORT("blockRows") int32_t fk_block_rows() { return fused::BLOCK; }
EXPORT("maxPad") int32_t fk_max_pad(const fused::Net* net) { return net->maxPad; }

EXPORT("create") fused::Net* fk_create(int32_t nlayers, const fused::LayerSpec* spec) {
  if (const char* bad = fused::validate(nlayers, spec)) {
    lastErr = bad;
    return nullptr;
  }
  fused::Net* net = fused::pack(nlayers, spec, fk_wasm::VL, bump);
  if (!net) lastErr = "out of memory packing the network";
  return net;
}

EXPORT("forward") void fk_forward(const fused::Net* net, const float* x, int32_t n, float* y, float* buf) {
  fk_wasm::forward(*net, x, n, y, buf);
}

EXPORT("firstPad") int32_t fk_first_pad(const fused::Net* net) { return net->layers[0].pad; }
EXPORT("maskedBufFloats") int32_t fk_masked_buf_floats(const fused::Net* net) { return static_cast<int32_t>(fused::maskedBufFloats(*net)); }

EXPORT("preact") void fk_preact(const fused::Net* net, const float* x, int32_t n, float* h) { fk_wasm::preact(*net, x, n, h); }

EXPORT("maskedForward") const char* fk_masked_forward(const fused::Net* net, const fused::Masked* m, int32_t k0, int32_t row0, int32_t n, float* y, float* buf) {
  if (const char* bad = fused::checkMasked(*net, *m, k0, row0, n)) return bad;
  fk_wasm::maskedForward(*net, *m, k0, row0, n, y, buf);
  return nullptr;
}
