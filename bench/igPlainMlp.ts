/**
 * A dense ReLU network in plain JS implementing `Model` with predict, analytic input gradients and
 * exact path breakpoints: the stand-in the IG and importance benches use until they are pointed at
 * real tfjs models. Float64 inside, float32 out, like a model adapter.
 */
import { normal, seededRng } from '../explainers/random.js';
import type { Model, Rows } from '../explainers/types.js';

export interface PlainMlpOptions {
  seed?: number;
  /** Sigmoid on the single output (breakpoints then have affineBetween false). */
  sigmoidHead?: boolean;
}

/** sizes = [inputs, hidden..., outputs], e.g. [20, 64, 64, 1]. He-initialised weights. */
export function plainMlp(sizes: number[], options: PlainMlpOptions = {}): Model {
  const rng = seededRng(options.seed ?? 1);
  const layers = sizes.slice(1).map((out, l) => {
    const inp = sizes[l];
    const scale = Math.sqrt(2 / inp);
    return {
      inp,
      out,
      W: Float64Array.from({ length: out * inp }, () => scale * normal(rng)),
      b: Float64Array.from({ length: out }, () => 0.1 * normal(rng)),
    };
  });
  const last = layers.length - 1;
  const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

  /** Affine map of value u and slope v through layer l: [W u + b, W v]. */
  const affine = (l: number, u: Float64Array, v?: Float64Array) => {
    const { W, b, inp, out } = layers[l];
    const z = new Float64Array(out);
    const s = v ? new Float64Array(out) : undefined;
    for (let k = 0; k < out; k++) {
      let acc = b[k];
      let slope = 0;
      for (let j = 0; j < inp; j++) {
        acc += W[k * inp + j] * u[j];
        if (v) slope += W[k * inp + j] * v[j];
      }
      z[k] = acc;
      if (s) s[k] = slope;
    }
    return { z, s };
  };

  // Scratch buffers: per-row allocation would make this stand-in ten times slower than it need be.
  const acts = sizes.map((k) => new Float64Array(k));
  const masks = sizes.slice(1, -1).map((k) => new Uint8Array(k));

  /** Forward pass of one row; leaves the logits in acts[last + 1] and the ReLU masks in `masks`. */
  const forward = (x: ArrayLike<number>): Float64Array => {
    const input = acts[0];
    for (let j = 0; j < input.length; j++) input[j] = x[j];
    for (let l = 0; l <= last; l++) {
      const { W, b, inp, out } = layers[l];
      const u = acts[l];
      const z = acts[l + 1];
      for (let k = 0; k < out; k++) {
        let acc = b[k];
        const row = k * inp;
        for (let j = 0; j < inp; j++) acc += W[row + j] * u[j];
        if (l < last) {
          masks[l][k] = acc > 0 ? 1 : 0;
          acc = acc > 0 ? acc : 0;
        }
        z[k] = acc;
      }
    }
    return acts[last + 1];
  };

  const model: Model = {
    nFeatures: sizes[0],
    nOutputs: sizes[sizes.length - 1],
    async predict(rows: Rows) {
      const k = this.nOutputs;
      const out = new Float32Array(rows.n * k);
      for (let i = 0; i < rows.n; i++) {
        const logits = forward(rows.data.subarray(i * rows.d, (i + 1) * rows.d));
        for (let o = 0; o < k; o++) out[i * k + o] = options.sigmoidHead ? sigmoid(logits[o]) : logits[o];
      }
      return out;
    },
    async inputGradients(rows: Rows, output: number) {
      const g = new Float32Array(rows.n * rows.d);
      for (let i = 0; i < rows.n; i++) {
        const logits = forward(rows.data.subarray(i * rows.d, (i + 1) * rows.d));
        const p = sigmoid(logits[output]);
        // Backward from one output unit through the masks: delta = W^T (mask * delta).
        let delta = Float64Array.from({ length: layers[last].inp }, (_, j) => layers[last].W[output * layers[last].inp + j]);
        if (options.sigmoidHead) delta = delta.map((v) => v * p * (1 - p));
        for (let l = last - 1; l >= 0; l--) {
          const { W, inp, out } = layers[l];
          const next = new Float64Array(inp);
          for (let k = 0; k < out; k++) {
            if (!masks[l][k] || delta[k] === 0) continue;
            for (let j = 0; j < inp; j++) next[j] += W[k * inp + j] * delta[k];
          }
          delta = next;
        }
        for (let j = 0; j < rows.d; j++) g[i * rows.d + j] = delta[j];
      }
      return g;
    },
    async pathBreakpoints(from: Float32Array, to: Float32Array) {
      // Walk the path: on each segment every pre-activation is affine in alpha (value z at the
      // segment start, slope s), so the next breakpoint is the nearest zero crossing of any unit.
      const dir = Float64Array.from(to, (t, j) => t - from[j]);
      const alphas: number[] = [];
      let a = 0;
      for (;;) {
        let u = Float64Array.from(from, (f, j) => f + a * dir[j]);
        let v = dir;
        let next = 1;
        for (let l = 0; l < last; l++) {
          const { z, s } = affine(l, u, v);
          for (let k = 0; k < z.length; k++) {
            // A unit that just crossed sits at z ~ 0 up to rounding: its slope says which side
            // the segment ahead is on.
            const crossing = Math.abs(z[k]) <= 1e-12 * Math.abs(s![k]);
            const active = crossing ? s![k] > 0 : z[k] > 0;
            const t = -z[k] / s![k];
            if (t > 1e-12 && a + t < next) next = a + t;
            if (!active) {
              z[k] = 0;
              s![k] = 0;
            }
          }
          u = z;
          v = s!;
        }
        if (next >= 1) break;
        alphas.push(next);
        a = next;
      }
      return { alphas, affineBetween: !options.sigmoidHead };
    },
  };
  return model;
}
