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
//   firstPad(net)                 the first layer's padded width (a row of preact's output)
//   preact(net, x, n, h)          h[n][firstPad] = the first layer's pre-activations of x[n][d]
//   maskedForward(net, x, bg, hx, hb, rows, cols, sj, sg, M, cStart, cIdx, small, k0, row0, n, y, at, pStart, pIdx)
//                                 y[at + i][k] = net(masked row i), i < n (net.h: fused::Masked; hx and
//                                 hb null: rows built and evaluated in bits as forward would)
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

const Packed* PackedOf(const Napi::CallbackInfo& info, Napi::Env env) {
  if (info.Length() < 1 || !info[0].IsExternal()) return nullptr;
  const Packed* p = info[0].As<Napi::External<Packed>>().Data();
  return p->net ? p : nullptr;
}

template <typename T, napi_typedarray_type type>
bool TypedArg(const Napi::CallbackInfo& info, size_t i, T** data, size_t* len, bool nullable = false) {
  if (nullable && (info[i].IsNull() || info[i].IsUndefined())) {
    *data = nullptr;
    *len = 0;
    return true;
  }
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type) return false;
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  *data = reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  *len = a.ElementLength();
  return true;
}

Napi::Value FirstPad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Packed* p = PackedOf(info, env);
  if (!p) return Fail(env, "firstPad(net): not a live network");
  return Napi::Number::New(env, p->net->layers[0].pad);
}

Napi::Value Preact(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Packed* p = PackedOf(info, env);
  if (!p || info.Length() < 4) return Fail(env, "preact(net, x, n, h)");
  const fused::Net& net = *p->net;
  float *x, *h;
  size_t nx, nh;
  if (!TypedArg<float, napi_float32_array>(info, 1, &x, &nx) || !TypedArg<float, napi_float32_array>(info, 3, &h, &nh)) return Fail(env, "x and h must be Float32Arrays");
  const int64_t n = info[2].ToNumber().Int64Value();
  if (n < 0 || nx < static_cast<size_t>(n) * net.d || nh < static_cast<size_t>(n) * net.layers[0].pad) return Fail(env, "x or h is too short for n rows");
  switch (p->isa) {
#ifdef FK_X86
    case AVX512_FMA: fk_avx512fma::preact(net, x, n, h); break;
    case AVX512: fk_avx512::preact(net, x, n, h); break;
    case AVX2_FMA: fk_avx2fma::preact(net, x, n, h); break;
    case AVX2: fk_avx2::preact(net, x, n, h); break;
#endif
    default: fk_generic::preact(net, x, n, h);
  }
  return env.Undefined();
}

Napi::Value MaskedForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Packed* p = PackedOf(info, env);
  if (!p || info.Length() < 20) return Fail(env, "maskedForward(net, x, bg, hx, hb, rows, cols, sj, sg, M, cStart, cIdx, small, k0, row0, n, y, at, pStart, pIdx)");
  const fused::Net& net = *p->net;
  fused::Masked m{};
  float *x, *bg, *hx, *hb, *y;
  int32_t *rows, *cols, *cStart, *cIdx, *small, *pStart, *pIdx;
  size_t nx, nbg, nhx, nhb, ny, nrows, ncols, nStart, nIdx, nSmall, npStart, npIdx;
  if (!TypedArg<float, napi_float32_array>(info, 1, &x, &nx) || !TypedArg<float, napi_float32_array>(info, 2, &bg, &nbg) ||
      !TypedArg<float, napi_float32_array>(info, 3, &hx, &nhx, true) || !TypedArg<float, napi_float32_array>(info, 4, &hb, &nhb, true) ||
      !TypedArg<float, napi_float32_array>(info, 16, &y, &ny))
    return Fail(env, "x, bg, y must be Float32Arrays; hx and hb Float32Arrays or null");
  if (!TypedArg<int32_t, napi_int32_array>(info, 5, &rows, &nrows) || !TypedArg<int32_t, napi_int32_array>(info, 6, &cols, &ncols) ||
      !TypedArg<int32_t, napi_int32_array>(info, 10, &cStart, &nStart) || !TypedArg<int32_t, napi_int32_array>(info, 11, &cIdx, &nIdx) ||
      !TypedArg<int32_t, napi_int32_array>(info, 12, &small, &nSmall))
    return Fail(env, "rows, cols, cStart, cIdx, small must be Int32Arrays");
  if (!TypedArg<int32_t, napi_int32_array>(info, 18, &pStart, &npStart, true) || !TypedArg<int32_t, napi_int32_array>(info, 19, &pIdx, &npIdx, true))
    return Fail(env, "pStart and pIdx must be Int32Arrays or null");
  if ((pStart == nullptr) != (pIdx == nullptr) || (pStart && npStart < 2)) return Fail(env, "give both pStart and pIdx, or neither");
  const int32_t d = net.d, pad = net.layers[0].pad;
  m.x = x;
  m.bg = bg;
  m.hx = hx;
  m.hb = hb;
  m.rows = rows;
  m.cols = cols;
  m.cStart = cStart;
  m.cIdx = cIdx;
  m.small = small;
  m.pStart = pStart;
  m.pIdx = pIdx;
  m.P = pStart ? static_cast<int32_t>(npStart - 1) : 0;
  m.nP = static_cast<int32_t>(npIdx);
  m.B = static_cast<int32_t>(nbg / (d > 0 ? d : 1));
  m.G = static_cast<int32_t>(nrows);
  m.sj = info[7].ToNumber().Int32Value();
  m.sg = info[8].ToNumber().Int32Value();
  m.M = info[9].ToNumber().Int32Value();
  m.K = static_cast<int32_t>(nStart > 0 ? (nStart - 1 < nSmall ? nStart - 1 : nSmall) : 0);
  m.nIdx = static_cast<int32_t>(nIdx);
  const int32_t k0 = info[13].ToNumber().Int32Value(), row0 = info[14].ToNumber().Int32Value();
  const int64_t n = info[15].ToNumber().Int64Value(), at = info[17].ToNumber().Int64Value();
  if (nx < static_cast<size_t>(d)) return Fail(env, "x holds fewer than d values");
  if (hx && (nhx < static_cast<size_t>(pad) || nhb < static_cast<size_t>(m.B) * pad)) return Fail(env, "hx or hb is shorter than preact's output");
  // Every player's column must be readable: the last is cols[(M - 1) sj + (G - 1) sg].
  if (m.M > 0 && m.G > 0 && static_cast<int64_t>(m.M - 1) * m.sj + static_cast<int64_t>(m.sg == 0 ? 0 : m.G - 1) * m.sg >= static_cast<int64_t>(ncols)) return Fail(env, "cols is too short for M players and G rows");
  if (at < 0 || n < 0 || ny < static_cast<size_t>(at + n) * net.k) return Fail(env, "y holds fewer than (at + n) x k values");
  if (const char* bad = fused::checkMasked(net, m, k0, row0, n)) return Fail(env, bad);
  // The pair sums' scratch after the kernel's own (see fused::Masked::dsave).
  std::vector<float> buf(static_cast<size_t>(fused::maskedBufFloats(net)) + (hx ? static_cast<size_t>(m.G) * pad : 0));
  if (hx) m.dsave = buf.data() + fused::maskedBufFloats(net);
  float* out = y + at * net.k;
  switch (p->isa) {
#ifdef FK_X86
    case AVX512_FMA: fk_avx512fma::maskedForward(net, m, k0, row0, n, out, buf.data()); break;
    case AVX512: fk_avx512::maskedForward(net, m, k0, row0, n, out, buf.data()); break;
    case AVX2_FMA: fk_avx2fma::maskedForward(net, m, k0, row0, n, out, buf.data()); break;
    case AVX2: fk_avx2::maskedForward(net, m, k0, row0, n, out, buf.data()); break;
#endif
    default: fk_generic::maskedForward(net, m, k0, row0, n, out, buf.data());
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("isa", Napi::Function::New(env, IsaOf));
  exports.Set("fma", Napi::Function::New(env, FmaOf));
  exports.Set("create", Napi::Function::New(env, Create));
  exports.Set("forward", Napi::Function::New(env, Forward));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("firstPad", Napi::Function::New(env, FirstPad));
  exports.Set("preact", Napi::Function::New(env, Preact));
  exports.Set("maskedForward", Napi::Function::New(env, MaskedForward));
  return exports;
}

}  // namespace

NODE_API_MODULE(fused_mlp, Init)
