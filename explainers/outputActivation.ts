/**
 * The output activations a model can name through Model.logitJacobian (y = act(z)), as the math an
 * explainer needs: rows of the activation's Jacobian d y_o / d z_c, and output gradients
 * d y_o / d x = sum_c J_oc(z) d z_c / d x.
 */
import type { OutputActivation } from './types.js';

/**
 * Writes J_oc(z) for the outputs in `outputs` (row r of `out` is outputs[r], k columns each).
 * `scratch` holds at least k values. Elementwise activations have only the diagonal.
 */
export function activationJacobianRows(
  act: OutputActivation,
  z: ArrayLike<number>,
  zOffset: number,
  k: number,
  outputs: readonly number[],
  out: Float64Array,
  scratch: Float64Array,
): void {
  const K = outputs.length;
  out.fill(0, 0, K * k);
  switch (act) {
    case 'linear':
      for (let r = 0; r < K; r++) out[r * k + outputs[r]] = 1;
      return;
    case 'sigmoid':
      for (let r = 0; r < K; r++) {
        const s = sigmoid(z[zOffset + outputs[r]]);
        out[r * k + outputs[r]] = s * (1 - s);
      }
      return;
    case 'tanh':
      for (let r = 0; r < K; r++) {
        const t = Math.tanh(z[zOffset + outputs[r]]);
        out[r * k + outputs[r]] = 1 - t * t;
      }
      return;
    case 'softmax': {
      softmaxInto(z, zOffset, k, scratch);
      for (let r = 0; r < K; r++) {
        const o = outputs[r];
        const po = scratch[o];
        for (let c = 0; c < k; c++) out[r * k + c] = -po * scratch[c];
        out[r * k + o] += po;
      }
      return;
    }
  }
}

/** True when J is diagonal (each output depends on its own logit only). */
export function elementwise(act: OutputActivation): boolean {
  return act !== 'softmax';
}

export function sigmoid(z: number): number {
  // Two forms so that exp never overflows.
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** softmax(z[offset .. offset + k)) into out[0 .. k), shifted by the maximum for stability. */
export function softmaxInto(z: ArrayLike<number>, offset: number, k: number, out: Float64Array): void {
  let max = -Infinity;
  for (let c = 0; c < k; c++) max = Math.max(max, z[offset + c]);
  let sum = 0;
  for (let c = 0; c < k; c++) {
    out[c] = Math.exp(z[offset + c] - max);
    sum += out[c];
  }
  for (let c = 0; c < k; c++) out[c] /= sum;
}
