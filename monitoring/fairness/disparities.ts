/**
 * Aggregations over groups, as Fairlearn's MetricFrame.difference / .ratio compute them, on the
 * groups where the metric is defined (pandas skips NaN the same way); null with fewer than two.
 */

export type AggregationMethod = 'between_groups' | 'to_overall';

const defined = (values: (number | null)[]): number[] => values.filter((v): v is number => v !== null && !Number.isNaN(v));

/** MetricFrame.difference: max - min of the groups, or max |group - overall|. Null with < 2 defined groups. */
export function difference(
  byGroup: (number | null)[],
  overall: number | null,
  method: AggregationMethod = 'between_groups',
): number | null {
  const v = defined(byGroup);
  if (v.length < 2) return null;
  if (method === 'between_groups') return Math.max(...v) - Math.min(...v);
  if (overall === null) return null;
  return Math.max(...v.map((x) => Math.abs(x - overall)));
}

/**
 * MetricFrame.ratio: min / max of the groups, or the smallest of group / overall with each ratio
 * above 1 inverted. 0/0 is undefined (left out, as pandas' NaN); x/0 for x > 0 is infinite and
 * inverts to 0, as in pandas.
 */
export function ratioOf(byGroup: (number | null)[], overall: number | null, method: AggregationMethod = 'between_groups'): number | null {
  const v = defined(byGroup);
  if (v.length < 2) return null;
  if (method === 'between_groups') {
    const r = Math.min(...v) / Math.max(...v);
    return Number.isNaN(r) ? null : r;
  }
  if (overall === null) return null;
  const rs = defined(v.map((x) => x / overall)).map((r) => (r > 1 ? 1 / r : r));
  return rs.length ? Math.min(...rs) : null;
}

/** Indices of the highest and lowest group (first on ties), or null with < 2 defined groups. */
export function extremes(byGroup: (number | null)[]): { higher: number; lower: number } | null {
  let higher = -1;
  let lower = -1;
  let count = 0;
  byGroup.forEach((v, j) => {
    if (v === null || Number.isNaN(v)) return;
    count++;
    if (higher < 0 || v > byGroup[higher]!) higher = j;
    if (lower < 0 || v < byGroup[lower]!) lower = j;
  });
  return count >= 2 ? { higher, lower } : null;
}

export const maxDefined = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));
export const minDefined = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
