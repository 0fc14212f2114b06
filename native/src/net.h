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

// Masked rows (Kernel SHAP): rows of coalitions, each a background row with a coalition's players set
// to the instance x, formed inside the kernel instead of being written row by row by the caller.
// Coalition k lists its smaller side: players cIdx[cStart[k] .. cStart[k + 1]); small[k] != 0 means
// they are the coalition (the row starts as its background row and takes x there), 0 that they are
// its complement (the row starts as x and takes the background row's values there). Coalition k has
// G rows; row g uses background row rows[g], and base player j is column cols[j * sj + g * sg] in it
// (sg = 0: the same columns in every row). With pStart / pIdx, cols holds players instead, player p
// being columns pIdx[pStart[p] .. pStart[p + 1]) (feature groups). Rows run coalition after
// coalition, from row `row0` of coalition k0.
//
// With hx and hb (the first layer's pre-activations at x and at every background row, from preact),
// the first layer is not evaluated on the row: its pre-activation is hb[b] + sum over the listed
// columns c of W1[c] (x_c - b_c) (small) or hx + sum W1[c] (b_c - x_c) (complement), which reads
// only the listed columns' weights. Equal to evaluating the row up to float rounding, not in bits.
// Without them the rows are built in a block buffer and evaluated as forward() would: the same bits.
struct Masked {
  const float* x;      // [d]
  const float* bg;     // [B][d]
  const float* hx;     // [first layer's pad], or null
  const float* hb;     // [B][first layer's pad], or null (both or neither)
  const int32_t* rows;  // [G]
  const int32_t* cols;
  const int32_t* cStart;  // [K + 1]
  const int32_t* cIdx;    // [nIdx]
  const int32_t* small;   // [K]
  const int32_t* pStart;  // [P + 1], or null: cols holds columns
  const int32_t* pIdx;    // [nP]
  // With hx and hb: G x (first layer's pad) floats of scratch, or null. A coalition that lists the same
  // players as the one before it (the complement of a pair) then reuses that one's sums: h = hb[b] + D or
  // hx - D with D = sum W1[c] (x_c - b_c) summed once per row of the pair.
  float* dsave;
  int32_t B, G, M, sj, sg, K, nIdx, P, nP;
};

// Checks that rows [k0:row0, + n) of `m` read only what it holds. Returns null or what is wrong.
inline const char* checkMasked(const Net& net, const Masked& m, int32_t k0, int32_t row0, int64_t n) {
  if (!m.x || !m.bg || !m.rows || !m.cols || !m.cStart || !m.cIdx || !m.small) return "a masked-rows array is missing";
  if ((m.hx == nullptr) != (m.hb == nullptr)) return "give both hx and hb, or neither";
  if (m.B < 1 || m.G < 1 || m.M < 1 || m.K < 0 || m.nIdx < 0 || m.sj < 0 || m.sg < 0) return "bad masked-rows sizes";
  if (n < 0 || k0 < 0 || row0 < 0 || row0 >= m.G) return "bad start row";
  if (n == 0) return nullptr;
  for (int32_t g = 0; g < m.G; g++)
    if (m.rows[g] < 0 || m.rows[g] >= m.B) return "a background row index is out of range";
  const int64_t last = (static_cast<int64_t>(row0) + n - 1) / m.G + k0;  // last coalition read
  if (last >= m.K) return "the rows run past the last coalition";
  for (int64_t k = k0; k <= last; k++) {
    if (m.cStart[k] < 0 || m.cStart[k] > m.cStart[k + 1] || m.cStart[k + 1] > m.nIdx) return "bad coalition offsets";
    for (int32_t t = m.cStart[k]; t < m.cStart[k + 1]; t++)
      if (m.cIdx[t] < 0 || m.cIdx[t] >= m.M) return "a coalition names a player out of range";
  }
  const int64_t gMax = m.sg == 0 ? 1 : m.G;
  const int32_t top = m.pStart ? m.P : net.d;
  for (int64_t j = 0; j < m.M; j++)
    for (int64_t g = 0; g < gMax; g++) {
      const int32_t c = m.cols[j * m.sj + g * m.sg];
      if (c < 0 || c >= top) return m.pStart ? "a player is out of range" : "a player's column is out of range";
    }
  if (m.pStart) {
    if (m.P < 1 || m.pIdx == nullptr || m.pStart[0] != 0 || m.pStart[m.P] > m.nP) return "bad player offsets";
    for (int32_t p = 0; p < m.P; p++) {
      if (m.pStart[p] > m.pStart[p + 1]) return "bad player offsets";
      for (int32_t q = m.pStart[p]; q < m.pStart[p + 1]; q++)
        if (m.pIdx[q] < 0 || m.pIdx[q] >= net.d) return "a player's column is out of range";
    }
  }
  return nullptr;
}

// Floats of scratch maskedForward needs: the two block buffers, a block of built rows, per-row
// scalars and weight offsets of the listed columns, and a vector of zeros.
inline int64_t maskedBufFloats(const Net& net) {
  return static_cast<int64_t>(2) * BLOCK * net.maxPad + static_cast<int64_t>(BLOCK) * net.d + 2 * static_cast<int64_t>(net.d) + net.maxPad + 16;
}

}  // namespace fused
