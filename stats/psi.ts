/**
 * Population stability index: Σ_b (c_b - r_b) ln(c_b / r_b) over bins b, with r_b and c_b the
 * reference and current shares. Numeric columns: `bins` (default 10) quantile bins of the reference
 * (edges at its k/bins quantiles, stats/quantile.ts, duplicates merged), right-closed:
 * (-inf, e1], (e1, e2], ..., (e_last, inf). Categorical columns (binary, categorical, one-hot, or
 * integer columns with at most `bins` distinct reference values): one bin per reference value and
 * one "other" bin for current values the reference never took. Shares of 0 become eps = 1e-4
 * (epsilon smoothing) so an empty bin costs a large but finite amount; or, with `smoothing`, shares
 * are smoothed additively (smoothedPsiFromCounts), which drift reports use.
 * Conventional reading (Siddiqi 2006, credit scoring): < 0.1 stable, 0.1-0.25 some shift, >= 0.25 major.
 */
import { binIndex, quantileEdges } from './quantile.js';

export const PSI_EPSILON = 1e-4;

export type BinSpec = { kind: 'categorical'; categories: number[] } | { kind: 'quantile'; edges: number[] };

/**
 * Bins from the (non-empty) reference values. `type` is metadata's feature type when known: binary,
 * categorical and one-hot are categories; numeric and pixel quantiles; integer or unknown:
 * categories when the reference holds at most `bins` distinct integers, else quantiles.
 */
export function binsFor(reference: ArrayLike<number>, bins = 10, type?: string): BinSpec {
  if (reference.length === 0) throw new RangeError('bins of no reference values');
  const sorted = Float64Array.from(reference).sort();
  const distinct: number[] = [];
  for (const v of sorted) if (distinct.length === 0 || v !== distinct[distinct.length - 1]) distinct.push(v);
  const categorical =
    type === 'binary' ||
    type === 'categorical' ||
    type === 'one-hot' ||
    (type !== 'numeric' && type !== 'pixel' && distinct.length <= bins && distinct.every(Number.isInteger));
  if (categorical) return { kind: 'categorical', categories: distinct };
  return { kind: 'quantile', edges: quantileEdges(sorted, bins) };
}

/** Counts per bin; categorical specs get a last "other" bin for unseen values. */
export function binCounts(values: ArrayLike<number>, spec: BinSpec): Float64Array {
  if (spec.kind === 'categorical') {
    const at = new Map(spec.categories.map((c, k) => [c, k]));
    const counts = new Float64Array(spec.categories.length + 1);
    for (let i = 0; i < values.length; i++) counts[at.get(values[i]) ?? spec.categories.length]++;
    return counts;
  }
  const counts = new Float64Array(spec.edges.length + 1);
  for (let i = 0; i < values.length; i++) counts[binIndex(spec.edges, values[i])]++;
  return counts;
}

export function binLabels(spec: BinSpec): string[] {
  const f = (v: number) => Number(v.toPrecision(4)).toString();
  if (spec.kind === 'categorical') return [...spec.categories.map(f), 'other'];
  const e = spec.edges;
  return Array.from({ length: e.length + 1 }, (_, k) =>
    k === 0 ? `≤ ${f(e[0] ?? Infinity)}` : k === e.length ? `> ${f(e[k - 1])}` : `(${f(e[k - 1])}, ${f(e[k])}]`,
  );
}

/** PSI from bin counts; shares below eps are raised to eps. */
export function psiFromCounts(reference: ArrayLike<number>, current: ArrayLike<number>, eps = PSI_EPSILON): number {
  const nr = Array.from(reference).reduce((a, b) => a + b, 0);
  const nc = Array.from(current).reduce((a, b) => a + b, 0);
  let psi = 0;
  for (let b = 0; b < reference.length; b++) {
    const r = Math.max(reference[b] / nr, eps);
    const c = Math.max(current[b] / nc, eps);
    psi += (c - r) * Math.log(c / r);
  }
  return psi;
}

/**
 * PSI with additive (Laplace / Jeffreys) smoothing: each side's share of bin b is
 * (count_b + alpha) / (n + alpha * B) over its B bins, so an empty bin costs a finite amount that
 * shrinks as the rows grow, instead of the fixed floor eps (which makes a handful of rows look like a
 * large shift: every bin they miss costs ~0.1 ln(0.1 / eps)). alpha = 0.5 is the Jeffreys prior.
 */
export function smoothedPsiFromCounts(reference: ArrayLike<number>, current: ArrayLike<number>, alpha: number): number {
  const B = reference.length;
  const nr = Array.from(reference).reduce((a, b) => a + b, 0);
  const nc = Array.from(current).reduce((a, b) => a + b, 0);
  let psi = 0;
  for (let b = 0; b < B; b++) {
    const r = (reference[b] + alpha) / (nr + alpha * B);
    const c = (current[b] + alpha) / (nc + alpha * B);
    psi += (c - r) * Math.log(c / r);
  }
  return psi;
}

export function populationStabilityIndex(
  reference: ArrayLike<number>,
  current: ArrayLike<number>,
  options: { bins?: number; type?: string; eps?: number; smoothing?: number } = {},
) {
  const spec = binsFor(reference, options.bins ?? 10, options.type);
  const r = binCounts(reference, spec);
  const c = binCounts(current, spec);
  const psi = options.smoothing ? smoothedPsiFromCounts(r, c, options.smoothing) : psiFromCounts(r, c, options.eps);
  return { psi, spec, reference: r, current: c };
}
