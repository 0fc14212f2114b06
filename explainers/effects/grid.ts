/**
 * Where along a feature the effects are evaluated: grids for partial dependence and ICE, bin edges
 * for ALE, the categories of categorical features, and quantiles of the data.
 */
import { ExplainerInputError } from '../types.js';
import type { EffectFeature } from './features.js';

/** The project's one quantile definition (numpy's default), over an already sorted column. */
import { quantileSorted as sortedQuantile } from '../../stats/quantile.js';
export { sortedQuantile };

export function sorted(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

export function distinctSorted(values: ArrayLike<number>): number[] {
  return distinctOfSorted(sorted(values));
}

function distinctOfSorted(s: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) if (out.length === 0 || s[i] !== out[out.length - 1]) out.push(s[i]);
  return out;
}

/** The 10%, 20% ... 90% quantiles: the rug sklearn draws under a partial dependence plot. */
export function deciles(values: ArrayLike<number>): number[] {
  const s = sorted(values);
  return Array.from({ length: 9 }, (_, k) => sortedQuantile(s, (k + 1) / 10));
}

export interface GridOptions {
  /** Points along a numeric feature. Default 50 (sklearn's is 100; 50 halves the cost, and looks the same). */
  resolution: number;
  /** The quantile range a numeric grid spans. Default [0.05, 0.95], as sklearn's `percentiles`. */
  percentiles: [number, number];
}

/**
 * Numeric grid. With at most `resolution` distinct values in the data, those values (sklearn and
 * alibi do the same for low-resolution features). Otherwise `resolution` quantiles of the data at
 * evenly spaced probabilities from percentiles[0] to percentiles[1], duplicates merged: the grid is
 * dense where the data are, and PD is not spent extrapolating into empty ranges.
 */
export function numericGrid(values: ArrayLike<number>, o: GridOptions): number[] {
  const s = sorted(values);
  const distinct = distinctOfSorted(s);
  if (distinct.length <= o.resolution) return distinct;
  const [lo, hi] = o.percentiles;
  const out: number[] = [];
  for (let k = 0; k < o.resolution; k++) {
    const q = o.resolution === 1 ? (lo + hi) / 2 : lo + ((hi - lo) * k) / (o.resolution - 1);
    const v = sortedQuantile(s, q);
    if (out.length === 0 || v > out[out.length - 1]) out.push(v);
  }
  return out;
}

/** The categories of a categorical or one-hot feature present in the data, in natural order. */
export function observedCategories(f: EffectFeature, values: ArrayLike<number>): number[] {
  return distinctSorted(values).filter((v) => f.kind !== 'one-hot' || Number.isInteger(v));
}

/**
 * A grid the caller gave. Numeric and categorical: finite numbers (sorted, duplicates merged). One-hot:
 * member column names (or category positions; "(none)" for the all-zero category).
 */
export function userGrid(f: EffectFeature, given: unknown, maxSize: number): number[] {
  if (!Array.isArray(given) || given.length === 0) {
    throw new ExplainerInputError('BAD_GRID', `the grid for "${f.name}" must be a non-empty list of values`, { feature: f.name });
  }
  if (given.length > maxSize) {
    throw new ExplainerInputError('GRID_TOO_LARGE', `the grid for "${f.name}" has ${given.length} points; at most ${maxSize} are allowed`, {
      feature: f.name,
      points: given.length,
      maximum: maxSize,
    });
  }
  const values = given.map((v) => {
    if (f.kind === 'one-hot') {
      const k = typeof v === 'string' ? (v === '(none)' ? f.columns.length : f.members!.indexOf(v)) : v;
      if (!(typeof k === 'number' && Number.isInteger(k) && k >= 0 && k <= f.columns.length)) {
        throw new ExplainerInputError(
          'BAD_GRID',
          `grid value ${JSON.stringify(v)} is not a category of "${f.name}": use one of ${[...f.members!, '(none)'].map((m) => JSON.stringify(m)).join(', ')}`,
          { feature: f.name, value: v },
        );
      }
      return k;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ExplainerInputError('BAD_GRID', `grid value ${JSON.stringify(v)} for "${f.name}" is not a finite number`, { feature: f.name, value: v });
    }
    return v;
  });
  return distinctSorted(values);
}

/**
 * ALE bin edges for a numeric feature: the distinct k/bins quantiles of the data, k = 0..bins (so the
 * bins hold about equal numbers of rows; edges at ties merge, as Apley & Zhu's and alibi's do). With
 * at most bins + 1 distinct values, the distinct values themselves (alibi's low-resolution rule).
 */
export function aleEdges(values: ArrayLike<number>, bins: number): number[] {
  const s = sorted(values);
  const distinct = distinctOfSorted(s);
  if (distinct.length <= bins + 1) return distinct;
  const out: number[] = [];
  for (let k = 0; k <= bins; k++) {
    const v = sortedQuantile(s, k / bins);
    if (out.length === 0 || v > out[out.length - 1]) out.push(v);
  }
  // Interpolated quantiles can both fall between two data values and leave a bin empty.
  return mergeEmptyBins(s, out);
}

/**
 * Caller-given ALE edges, made valid the way alibi's ale_num does: sorted and deduplicated; edges
 * outside the data's range dropped except the nearest one at or below its min and at or above its max
 * (min and max themselves are added when no edge reaches them); bins holding no row merged into the
 * next bin.
 */
export function userAleEdges(values: ArrayLike<number>, given: number[]): number[] {
  const s = sorted(values);
  const min = s[0];
  const max = s[s.length - 1];
  const edges0 = [...new Set(given)].sort((a, b) => a - b);
  // As alibi: the user's edge at or just below min (else min) starts the grid, at or just above max ends it.
  const below = edges0.filter((e) => e <= min);
  const above = edges0.filter((e) => e >= max);
  const edges = [below.length ? below[below.length - 1] : min, ...edges0.filter((e) => e > min && e < max), above.length ? above[0] : max];
  return mergeEmptyBins(s, edges);
}

/** Drops the upper edge of every bin that holds no row, merging it into the next bin (the last bin holds max). */
function mergeEmptyBins(sortedValues: ArrayLike<number>, edges: number[]): number[] {
  const counts = binCounts(sortedValues, edges);
  const keep = [edges[0]];
  for (let k = 1; k < edges.length; k++) if (counts[k - 1] > 0 || k === edges.length - 1) keep.push(edges[k]);
  return keep;
}

/**
 * Bin of each value for edges z_0 < ... < z_K: bin k (0-based) holds z_k < x <= z_{k+1}, and x = z_0
 * goes to bin 0 (numpy.searchsorted(side='left') with 0 moved to 1, as in alibi and ALEPlot).
 */
export function binOf(edges: number[], x: number): number {
  let lo = 0;
  let hi = edges.length - 1;
  // smallest index i with edges[i] >= x
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return Math.max(lo, 1) - 1;
}

function binCounts(sortedValues: ArrayLike<number>, edges: number[]): number[] {
  const counts = new Array(Math.max(edges.length - 1, 0)).fill(0);
  for (let i = 0; i < sortedValues.length; i++) counts[binOf(edges, sortedValues[i])]++;
  return counts;
}
