/**
 * Choosing k counterfactuals among the valid, refined candidates: the cheapest plausible one first,
 * then greedily the one farthest from those chosen relative to its own cost (max-min diversity per
 * unit of distance). With L1 distances, two counterfactuals that change disjoint features are
 * dist(c, x) + dist(s, x) apart, so this ratio is at least 1 for them and prefers the cheaper; a
 * slightly larger version of a chosen change scores near 0 and is skipped. Maximising the minimum
 * distance alone would pick the most expensive candidates; DiCE's determinantal diversity is reported
 * for the chosen set (dpp), as DiCE defines it. A candidate dominated by a chosen one (it makes the
 * same changes, each at least as large, and more) is never chosen: the chosen one is cheaper advice.
 */
import type { Candidate } from './evaluate.js';
import type { PlausibilityCheck } from './plausibility.js';
import { changedUnits, distance, type CounterfactualSpace } from './space.js';
import { sameRow } from './search.js';

/** Below this ratio of distance-to-the-chosen over own cost a candidate is a near-duplicate. */
const MIN_NOVELTY = 0.1;

export interface Scored extends Candidate {
  plausibility: number;
  neighbourDistance: number;
  sparsity: number;
}

export function selectDiverse(
  space: CounterfactualSpace,
  x: Float32Array,
  candidates: Candidate[],
  k: number,
  check: PlausibilityCheck,
  minPlausibility: number,
  maxChanged: number,
): { chosen: Scored[]; implausible: number } {
  const pool: Candidate[] = [];
  for (const c of [...candidates].sort((a, b) => a.cost - b.cost)) {
    if (changedUnits(space, x, 0, c.row, 0).length > maxChanged) continue;
    if (!pool.some((o) => o.cost === c.cost && sameRow(o.row, c.row))) pool.push(c);
  }
  // Plausibility is checked only for the candidate about to be chosen (it costs a pass over the reference).
  let implausible = 0;
  const rejected = new Set<number>();
  const chosen: Scored[] = [];
  const used = new Set<number>();
  const nearest = pool.map(() => Infinity);
  const accept = (i: number): boolean => {
    const p = check.score(pool[i].row, 0);
    if (p.plausibility < minPlausibility) {
      rejected.add(i);
      implausible++;
      return false;
    }
    used.add(i);
    chosen.push({ ...pool[i], ...p, sparsity: changedUnits(space, x, 0, pool[i].row, 0).length });
    for (let q = 0; q < pool.length; q++) nearest[q] = Math.min(nearest[q], distance(space, pool[q].row, 0, pool[i].row, 0));
    return true;
  };
  for (let i = 0; i < pool.length && chosen.length === 0; i++) accept(i);
  while (chosen.length > 0 && chosen.length < k) {
    let best = -1;
    let bestScore = MIN_NOVELTY;
    for (let i = 0; i < pool.length; i++) {
      if (used.has(i) || rejected.has(i)) continue;
      if (chosen.some((c) => dominates(space, x, c.row, pool[i].row))) {
        rejected.add(i);
        continue;
      }
      const score = nearest[i] / Math.max(pool[i].cost, 1e-12);
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    if (best < 0) break;
    accept(best);
  }
  return { chosen, implausible };
}

/**
 * a dominates b (relative to x): every unit a changes, b changes too, to the same category, or in the
 * same direction at least as far.
 */
export function dominates(space: CounterfactualSpace, x: Float32Array, a: Float32Array, b: Float32Array): boolean {
  for (const u of space.units) {
    if (u.kind === 'numeric' || u.kind === 'integer') {
      const j = u.columns[0];
      const da = a[j] - x[j];
      if (da === 0) continue;
      const db = b[j] - x[j];
      if (Math.sign(db) !== Math.sign(da) || Math.abs(db) < Math.abs(da)) return false;
    } else {
      let changed = false;
      for (const j of u.columns) if (a[j] !== x[j]) changed = true;
      if (!changed) continue;
      for (const j of u.columns) if (a[j] !== b[j]) return false;
    }
  }
  return true;
}

/** DiCE's "dpp_style:inverse_dist" diversity: det(K), K_ij = 1 / (1 + dist(c_i, c_j)); and the mean pairwise distance. */
export function diversityOf(space: CounterfactualSpace, rows: Float32Array[]): { dpp: number; meanPairwiseDistance: number } {
  const n = rows.length;
  const K = rows.map((a) => rows.map((b) => 1 / (1 + distance(space, a, 0, b, 0))));
  let sum = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) sum += 1 / K[i][j] - 1;
  return { dpp: determinant(K), meanPairwiseDistance: n > 1 ? sum / ((n * (n - 1)) / 2) : 0 };
}

/** Gaussian elimination with partial pivoting (k is small: a handful of counterfactuals). */
export function determinant(m: number[][]): number {
  const a = m.map((r) => r.slice());
  const n = a.length;
  let det = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
    if (a[p][c] === 0) return 0;
    if (p !== c) {
      [a[p], a[c]] = [a[c], a[p]];
      det = -det;
    }
    det *= a[c][c];
    for (let r = c + 1; r < n; r++) {
      const f = a[r][c] / a[c][c];
      for (let q = c; q < n; q++) a[r][q] -= f * a[c][q];
    }
  }
  return det;
}
