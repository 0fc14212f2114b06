/** A seeded sample of rows: what attributions by group and attribution drift explain. */
import type { Rows } from '../explainers/types.js';
import { permutation, seededRng } from '../stats/random.js';

/** A seeded sample of `size` row indices out of n, without replacement, in increasing order. */
export function sampleRows(n: number, size: number, seed: number): Int32Array {
  if (size >= n) return Int32Array.from({ length: n }, (_, i) => i);
  return Int32Array.from(permutation(seededRng(seed), n).subarray(0, size)).sort();
}

export function pickRows(rows: Rows, indices: ArrayLike<number>): Rows {
  const data = new Float32Array(indices.length * rows.d);
  for (let k = 0; k < indices.length; k++) data.set(rows.data.subarray(indices[k] * rows.d, (indices[k] + 1) * rows.d), k * rows.d);
  return { data, n: indices.length, d: rows.d };
}
