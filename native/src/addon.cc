// Node addon: the fused Dense-stack forward pass (kernel.inc) built for AVX-512, AVX2 and SSE2
// (x86-64's baseline; elsewhere the same 4-lane code as plain vectors), the best the CPU and OS
// support chosen at run time; and AVX-512 / AVX2 builds with fused multiply-adds on request.
//
// The default builds multiply and add separately, starting from the bias and taking the inputs in
// order: the sums XNNPACK (tfjs-wasm's matrix products) forms, so Dense layers give tfjs-wasm's bits.
// The "-fma" builds fuse them: 1.4-1.6x faster, results differ from tfjs's in the last bits.
//
//   isa()                         'avx512' | 'avx2' | 'sse2' | 'generic': the best this CPU runs
//   fma()                         the FMA build this CPU runs ('avx512-fma' | 'avx2-fma'), or ''
//   create(layers, isa?)          packs a stack for isa (default: isa()); layers:
//                                 [{in, out, W: Float32Array [in][out], b: Float32Array | null,
//                                   acts: Int32Array (net.h codes), params: Float32Array}]
//   forward(net, x, n, y)         y[n][k] = net(x[n][d]), synchronous, Float32Arrays
//   dispose(net)                  frees the packed weights (else freed when the handle is collected)
//
// Built with -ffp-contract=off: the compiler fuses nothing by itself.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "net.h"

#if defined(__x86_64__) || defined(__i386__)
#define FK_X86 1
#include <immintrin.h>
#endif

#define FK_MADD_PLAIN \
  static inline __attribute__((always_inline)) vf madd(vf a, vf b, vf c) { return a * b + c; }

namespace fk_generic {
// 4 lanes: SSE2 on x86-64 (its baseline), NEON on arm64, scalar code elsewhere.
typedef float vf __attribute__((vector_size(16), aligned(4)));
typedef int32_t vi __attribute__((vector_size(16)));
constexpr int VL = 4, RT = 4, CV = 2;
FK_MADD_PLAIN
#include "kernel.inc"
}  // namespace fk_generic

#ifdef FK_X86
#pragma GCC push_options
#pragma GCC target("avx2")
namespace fk_avx2 {
typedef float vf __attribute__((vector_size(32), aligned(4)));
typedef int32_t vi __attribute__((vector_size(32)));
// 6 x 2 vectors: 12 accumulators + 2 weight vectors + 1 broadcast of the 16 ymm registers
// (measured against 1x4, 2x4, 3x2, 4x2, 8x1 on the 20-64-64-3 MLP: 5-30% faster).
constexpr int VL = 8, RT = 6, CV = 2;
FK_MADD_PLAIN
#include "kernel.inc"
}  // namespace fk_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace fk_avx2fma {
typedef float vf __attribute__((vector_size(32), aligned(4)));
typedef int32_t vi __attribute__((vector_size(32)));
constexpr int VL = 8, RT = 6, CV = 2;
static inline __attribute__((always_inline)) vf madd(vf a, vf b, vf c) {
  return reinterpret_cast<vf>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b), reinterpret_cast<__m256>(c)));
}
#include "kernel.inc"
}  // namespace fk_avx2fma
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
namespace fk_avx512 {
typedef float vf __attribute__((vector_size(64), aligned(4)));
typedef int32_t vi __attribute__((vector_size(64)));
// 4 x 4 vectors (64 columns) of the 32 zmm registers: measured 10% faster than 4x2, 6x2, 8x2, 12x2.
constexpr int VL = 16, RT = 4, CV = 4;
FK_MADD_PLAIN
#include "kernel.inc"
}  // namespace fk_avx512

namespace fk_avx512fma {
typedef float vf __attribute__((vector_size(64), aligned(4)));
typedef int32_t vi __attribute__((vector_size(64)));
constexpr int VL = 16, RT = 4, CV = 4;
static inline __attribute__((always_inline)) vf madd(vf a, vf b, vf c) {
  return reinterpret_cast<vf>(_mm512_fmadd_ps(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b), reinterpret_cast<__m512>(c)));
}
#include "kernel.inc"
}  // namespace fk_avx512fma
#pragma GCC pop_options
#endif

namespace {

enum Isa { GENERIC, SSE2, AVX2, AVX2_FMA, AVX512, AVX512_FMA };

struct Cpu {
  bool x86 = false, avx2 = false, fma = false, avx512 = false;
};

Cpu cpu() {
  Cpu c;
#ifdef FK_X86
  __builtin_cpu_init();  // libgcc also checks that the OS saves the ymm / zmm registers
  c.x86 = true;
  c.avx2 = __builtin_cpu_supports("avx2");
  c.fma = __builtin_cpu_supports("fma");
  c.avx512 = __builtin_cpu_supports("avx512f");
#endif
  return c;
}

Isa best() {
  const Cpu c = cpu();
  return c.avx512 ? AVX512 : c.avx2 ? AVX2 : c.x86 ? SSE2 : GENERIC;
}

const char* isaName(Isa i) {
  switch (i) {
    case AVX512_FMA: return "avx512-fma";
    case AVX512: return "avx512";
    case AVX2_FMA: return "avx2-fma";
    case AVX2: return "avx2";
    case SSE2: return "sse2";
    default: return "generic";
  }
}

// The build named `want`, when this CPU runs it.
bool parseIsa(const std::string& want, Isa* out) {
  const Cpu c = cpu();
  const struct { const char* name; Isa isa; bool ok; } all[] = {
      {"avx512-fma", AVX512_FMA, c.avx512}, {"avx512", AVX512, c.avx512}, {"avx2-fma", AVX2_FMA, c.avx2 && c.fma},
      {"avx2", AVX2, c.avx2},               {"sse2", SSE2, c.x86},        {"generic", GENERIC, true},
  };
  for (const auto& e : all)
    if (want == e.name) {
      *out = e.isa;
      return e.ok;
    }
  return false;
}

struct Packed {
  fused::Net* net;
  Isa isa;
};

void* alignedZeroed(size_t bytes) {
  const size_t n = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, n);
  if (p) std::memset(p, 0, n);
  return p;
}

Napi::Value Fail(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value IsaOf(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), isaName(best())); }

Napi::Value FmaOf(const Napi::CallbackInfo& info) {
  const Cpu c = cpu();
  return Napi::String::New(info.Env(), c.avx512 ? "avx512-fma" : c.avx2 && c.fma ? "avx2-fma" : "");
}

Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) return Fail(env, "create(layers): layers must be an array");
  Isa isa = best();
  if (info.Length() > 1 && info[1].IsString()) {
    const std::string want = info[1].As<Napi::String>().Utf8Value();
    if (!parseIsa(want, &isa)) return Fail(env, "this CPU cannot run the '" + want + "' kernel");
  }
  Napi::Array arr = info[0].As<Napi::Array>();
  const uint32_t nl = arr.Length();
  std::vector<fused::LayerSpec> spec(nl);
  for (uint32_t l = 0; l < nl; l++) {
    if (!arr.Get(l).IsObject()) return Fail(env, "each layer must be an object");
    Napi::Object o = arr.Get(l).As<Napi::Object>();
    fused::LayerSpec& s = spec[l];
    s.in = o.Get("in").ToNumber().Int32Value();
    s.out = o.Get("out").ToNumber().Int32Value();
    Napi::Value W = o.Get("W"), b = o.Get("b"), acts = o.Get("acts"), params = o.Get("params");
    if (!W.IsTypedArray() || W.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) return Fail(env, "W must be a Float32Array");
    if (!acts.IsTypedArray() || acts.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) return Fail(env, "acts must be an Int32Array");
    if (!params.IsTypedArray() || params.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) return Fail(env, "params must be a Float32Array");
    Napi::Float32Array w = W.As<Napi::Float32Array>();
    Napi::Int32Array a = acts.As<Napi::Int32Array>();
    Napi::Float32Array p = params.As<Napi::Float32Array>();
    if (s.in < 1 || s.out < 1 || w.ElementLength() != static_cast<size_t>(s.in) * s.out) return Fail(env, "W must hold in x out values");
    if (a.ElementLength() != p.ElementLength()) return Fail(env, "acts and params must have the same length");
    s.W = w.Data();
    s.b = nullptr;
    if (!b.IsNull() && !b.IsUndefined()) {
      if (!b.IsTypedArray() || b.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) return Fail(env, "b must be a Float32Array or null");
      Napi::Float32Array bb = b.As<Napi::Float32Array>();
      if (bb.ElementLength() != static_cast<size_t>(s.out)) return Fail(env, "b must hold out values");
      s.b = bb.Data();
    }
    s.nacts = static_cast<int32_t>(a.ElementLength());
    s.act = a.Data();
    s.param = p.Data();
  }
  if (const char* bad = fused::validate(static_cast<int32_t>(nl), spec.data())) return Fail(env, bad);
  const int32_t lanes = isa >= AVX512 ? 16 : isa >= AVX2 ? 8 : 4;
  fused::Net* net = fused::pack(static_cast<int32_t>(nl), spec.data(), lanes, alignedZeroed);
  if (!net) {
    Napi::Error::New(env, "out of memory packing the network").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Packed* packed = new Packed{net, isa};
  return Napi::External<Packed>::New(env, packed, [](Napi::Env, Packed* p) {
    std::free(p->net);
    delete p;
  });
}

// Frees the packed weights now rather than when the handle is collected.
Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) return Fail(env, "dispose(net)");
  Packed* p = info[0].As<Napi::External<Packed>>().Data();
  std::free(p->net);
  p->net = nullptr;
  return env.Undefined();
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsExternal()) return Fail(env, "forward(net, x, n, y)");
  const Packed* p = info[0].As<Napi::External<Packed>>().Data();
  if (!p->net) return Fail(env, "the network was disposed");
  const fused::Net& net = *p->net;
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) return Fail(env, "x must be a Float32Array");
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) return Fail(env, "y must be a Float32Array");
  Napi::Float32Array x = info[1].As<Napi::Float32Array>();
  Napi::Float32Array y = info[3].As<Napi::Float32Array>();
  const int64_t n = info[2].ToNumber().Int64Value();
  if (n < 0) return Fail(env, "n must be >= 0");
  if (x.ElementLength() < static_cast<size_t>(n) * net.d) return Fail(env, "x holds fewer than n x d values");
  if (y.ElementLength() < static_cast<size_t>(n) * net.k) return Fail(env, "y holds fewer than n x k values");
  std::vector<float> buf(static_cast<size_t>(2) * fused::BLOCK * net.maxPad);
  switch (p->isa) {
#ifdef FK_X86
    case AVX512_FMA:
      fk_avx512fma::forward(net, x.Data(), n, y.Data(), buf.data());
      break;
    case AVX512:
      fk_avx512::forward(net, x.Data(), n, y.Data(), buf.data());
      break;
    case AVX2_FMA:
      fk_avx2fma::forward(net, x.Data(), n, y.Data(), buf.data());
      break;
    case AVX2:
      fk_avx2::forward(net, x.Data(), n, y.Data(), buf.data());
      break;
#endif
    default:
      fk_generic::forward(net, x.Data(), n, y.Data(), buf.data());
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("isa", Napi::Function::New(env, IsaOf));
  exports.Set("fma", Napi::Function::New(env, FmaOf));
  exports.Set("create", Napi::Function::New(env, Create));
  exports.Set("forward", Napi::Function::New(env, Forward));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  return exports;
}

}  // namespace

NODE_API_MODULE(fused_mlp, Init)
