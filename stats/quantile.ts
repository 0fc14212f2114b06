/**
 * The project's one definition of a quantile: numpy.quantile's default ("linear", Hyndman & Fan type
 * 7), interpolating between order statistics. Bootstrap intervals, PSI bins and the deciles that
 * mutual information bins numeric features into all read their quantiles from here, so one report
 * never mixes two definitions.
 */

/** The q-quantile of values already sorted ascending (none null or NaN). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** The q-quantile of values in any order, nulls and NaN left out; null when no value is defined. */
export function quantile(values: ArrayLike<number | null>, q: number): number | null {
  const xs: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== null && !Number.isNaN(v)) xs.push(v);
  }
  if (xs.length === 0) return null;
  xs.sort((a, b) => a - b);
  return quantileSorted(xs, q);
}

/**
 * Bin edges at the k / bins quantiles (k = 1 .. bins - 1) of values (not NaN), duplicates merged, so
 * a column with ties gets fewer, never empty-by-construction, bins.
 */
export function quantileEdges(values: ArrayLike<number>, bins: number): number[] {
  const sorted = Float64Array.from(values).sort();
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const e = quantileSorted(sorted, k / bins);
    if (edges.length === 0 || e > edges[edges.length - 1]) edges.push(e);
  }
  return edges;
}

/** The right-closed bin of v among (-inf, e1], (e1, e2], ..., (e_last, inf): the first edge >= v. */
export function binIndex(edges: readonly number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] >= v) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
