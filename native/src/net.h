// A Dense/activation stack packed for the fused kernel (kernel.inc): each layer's weights padded to
// whole SIMD vectors of output columns, so every tile reads and writes full vectors.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace fused {

// Activation codes, shared with models/fusedKernel.ts.
enum Act : int32_t {
  ACT_LINEAR = 0,
  ACT_RELU = 1,     // param: cap (relu6, ReLU maxValue); < 0 means none
  ACT_LEAKY = 2,    // param: alpha
  ACT_ELU = 3,
  ACT_SIGMOID = 4,
  ACT_TANH = 5,
  ACT_SOFTMAX = 6,  // over the layer's outputs; only as a layer's last activation
};

constexpr int MAX_ACTS = 4;

struct Layer {
  int32_t in, out, pad;  // pad: out rounded up to whole vectors (the row stride of W, b and the layer's outputs)
  int32_t nacts;
  int32_t act[MAX_ACTS];
  float param[MAX_ACTS];
  // Bias added after the sum rather than summed from: what tfjs does for a Dense whose activation
  // its fused matMul does not take (anything but linear, relu and elu), so the rounding is the same.
  int32_t biasLast;
  float* W;  // [in][pad], zeros past out
  float* b;  // [pad], zeros past out
};

struct Net {
  int32_t nlayers;
  int32_t d, k;     // inputs and outputs per row
  int32_t maxPad;   // widest padded layer: the size of one row of the block buffers
  int32_t lanes;    // vector width the padding was made for
  Layer* layers;
};

// Rows pushed through all layers together: their activations stay in L1/L2 (2 x 64 x maxPad
// floats). 16 to 256 measured within noise of each other on the 20-64-64-3 MLP.
constexpr int BLOCK = 64;

// What the caller describes per layer, before packing.
struct LayerSpec {
  int32_t in, out;
  const float* W;  // [in][out], row-major (a tfjs Dense kernel)
  const float* b;  // [out], or null for no bias
  int32_t nacts;
  const int32_t* act;
  const float* param;
};

// Checks a stack: shapes chain, activations known, softmax only last. Returns null or what is wrong.
inline const char* validate(int32_t nlayers, const LayerSpec* spec) {
  if (nlayers < 1) return "no layers";
  for (int32_t l = 0; l < nlayers; l++) {
    const LayerSpec& s = spec[l];
    if (s.in < 1 || s.out < 1) return "a layer has no inputs or no outputs";
    if (l > 0 && s.in != spec[l - 1].out) return "layer sizes do not chain";
    if (s.nacts < 0 || s.nacts > MAX_ACTS) return "too many activations on one layer";
    for (int32_t a = 0; a < s.nacts; a++) {
      if (s.act[a] < ACT_LINEAR || s.act[a] > ACT_SOFTMAX) return "unknown activation";
      if (s.act[a] == ACT_SOFTMAX && a != s.nacts - 1) return "softmax must be a layer's last activation";
    }
  }
  return nullptr;
}

// Packs a validated stack for vectors of `lanes` floats. `alloc(bytes)` returns 64-byte aligned,
// zeroed memory (or null); everything is carved from one allocation, returned as the Net itself.
template <typename Alloc>
Net* pack(int32_t nlayers, const LayerSpec* spec, int32_t lanes, Alloc alloc) {
  auto up = [](size_t v, size_t m) { return (v + m - 1) / m * m; };
  size_t bytes = up(sizeof(Net), 64) + up(sizeof(Layer) * nlayers, 64);
  int32_t maxPad = 0;
  for (int32_t l = 0; l < nlayers; l++) {
    const int32_t pad = static_cast<int32_t>(up(spec[l].out, lanes));
    if (pad > maxPad) maxPad = pad;
    bytes += up(sizeof(float) * static_cast<size_t>(spec[l].in + 1) * pad, 64);
  }
  unsigned char* mem = static_cast<unsigned char*>(alloc(bytes));
  if (!mem) return nullptr;
  Net* net = reinterpret_cast<Net*>(mem);
  mem += up(sizeof(Net), 64);
  net->nlayers = nlayers;
  net->d = spec[0].in;
  net->k = spec[nlayers - 1].out;
  net->maxPad = maxPad;
  net->lanes = lanes;
  net->layers = reinterpret_cast<Layer*>(mem);
  mem += up(sizeof(Layer) * nlayers, 64);
  for (int32_t l = 0; l < nlayers; l++) {
    const LayerSpec& s = spec[l];
    Layer& L = net->layers[l];
    L.in = s.in;
    L.out = s.out;
    L.pad = static_cast<int32_t>(up(s.out, lanes));
    L.nacts = s.nacts;
    const int32_t first = s.nacts > 0 ? s.act[0] : ACT_LINEAR;
    L.biasLast = !(first == ACT_LINEAR || first == ACT_ELU || (first == ACT_RELU && s.param[0] < 0));
    for (int32_t a = 0; a < MAX_ACTS; a++) {
      L.act[a] = a < s.nacts ? s.act[a] : ACT_LINEAR;
      L.param[a] = a < s.nacts ? s.param[a] : 0.0f;
    }
    L.W = reinterpret_cast<float*>(mem);
    L.b = L.W + static_cast<size_t>(s.in) * L.pad;
    mem += up(sizeof(float) * static_cast<size_t>(s.in + 1) * L.pad, 64);
    for (int32_t i = 0; i < s.in; i++)
      for (int32_t j = 0; j < s.out; j++) L.W[static_cast<size_t>(i) * L.pad + j] = s.W[static_cast<size_t>(i) * s.out + j];
    for (int32_t j = 0; j < s.out; j++) L.b[j] = s.b ? s.b[j] : 0.0f;
  }
  return net;
}

}  // namespace fused
