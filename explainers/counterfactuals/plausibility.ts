/**
 * Plausibility as a k-nearest-neighbour check against the reference set (the "close to observed data"
 * criterion of Laugel et al. 2019 and of Alibi's prototype loss, without a trained autoencoder): a
 * counterfactual's mean distance to its k nearest reference rows, ranked against the same figure for
 * every reference row (leave-one-out). The score is the share of reference rows that are at least as
 * isolated as the counterfactual, so it reads the same for every model and feature scale.
 */
import type { Rows } from '../types.js';
import { distance, type CounterfactualSpace } from './space.js';

/** Reference rows used for the check, at most (an even, deterministic subsample beyond that). */
const MAX_ROWS = 2000;

export interface PlausibilityCheck {
  score(row: ArrayLike<number>, offset: number): { plausibility: number; neighbourDistance: number };
}

/**
 * Checks already built, per reference set (held weakly) and distance definition: the leave-one-out
 * pass costs m² distances (~1M for 1000 rows), far more than a single-instance search itself.
 */
const cache = new WeakMap<Rows, Map<string, PlausibilityCheck>>();

export function plausibilityCheck(space: CounterfactualSpace, reference: Rows, k: number): PlausibilityCheck {
  const key = JSON.stringify([k, space.units.map((u) => [u.kind, u.columns, u.scale])]);
  let byKey = cache.get(reference);
  if (!byKey) cache.set(reference, (byKey = new Map()));
  let check = byKey.get(key);
  if (!check) {
    check = buildCheck(space, reference, k);
    if (byKey.size > 16) byKey.clear();
    byKey.set(key, check);
  }
  return check;
}

function buildCheck(space: CounterfactualSpace, reference: Rows, k: number): PlausibilityCheck {
  const step = Math.max(1, Math.ceil(reference.n / MAX_ROWS));
  const idx: number[] = [];
  for (let i = 0; i < reference.n; i += step) idx.push(i);
  const m = idx.length;
  const kk = Math.max(1, Math.min(k, m - 1));
  // A copy: the check outlives this call, and the caller's array may be reused for other data.
  const data = Float32Array.from(reference.data.subarray(0, reference.n * reference.d));
  const d = reference.d;

  const meanNearest = (row: ArrayLike<number>, offset: number, skip: number): number => {
    const best: number[] = [];
    for (let a = 0; a < m; a++) {
      if (a === skip) continue;
      const dist = distance(space, row, offset, data, idx[a] * d);
      if (best.length < kk) {
        best.push(dist);
        best.sort((x, y) => x - y);
      } else if (dist < best[kk - 1]) {
        best[kk - 1] = dist;
        best.sort((x, y) => x - y);
      }
    }
    return best.reduce((s, v) => s + v, 0) / best.length;
  };

  let own: Float64Array | undefined; // computed on first use: m² distances
  return {
    score(row, offset) {
      if (!own) {
        own = new Float64Array(m);
        for (let a = 0; a < m; a++) own[a] = meanNearest(data, idx[a] * d, a);
        own.sort();
      }
      const nd = meanNearest(row, offset, -1);
      // Reference rows at least as isolated: those with own distance >= nd.
      let lo = 0;
      let hi = m;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (own[mid] < nd) lo = mid + 1;
        else hi = mid;
      }
      return { plausibility: (m - lo) / m, neighbourDistance: nd };
    },
  };
}
