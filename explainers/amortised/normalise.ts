/**
 * FastSHAP's additive efficient normalisation (Jethani et al. 2022): the gap between the target
 * total v(N) - v(∅) and the sum of the estimates is shared equally among the players. Players that
 * cannot change any masked value (equal to x in every background row) get exactly 0, as in Kernel
 * SHAP, and the gap is shared among the others. Computed in float64, so attributions sum to the
 * target to float64 rounding whatever the network's float32 output.
 */
export function additiveNormalisation(
  raw: ArrayLike<number>,
  varying: Uint8Array,
  total: number,
  out = new Float64Array(varying.length),
): Float64Array {
  const M = varying.length;
  let sum = 0;
  let count = 0;
  for (let j = 0; j < M; j++) {
    out[j] = varying[j] ? raw[j] : 0;
    sum += out[j];
    count += varying[j];
  }
  if (count === 0) return out;
  const share = (total - sum) / count;
  for (let j = 0; j < M; j++) if (varying[j]) out[j] += share;
  return out;
}
