/**
 * How strongly a feature is associated with a sensitive attribute's groups, on a 0..1 scale:
 *
 * - Categorical feature (binary, one-hot group, or a code with few values): Cramér's V,
 *   sqrt(χ² / (n (min(r, c) - 1))) from the r x c contingency table, without bias correction
 *   (scipy.stats.contingency.association(method='cramer')). For two binary variables it is |phi|,
 *   the absolute Pearson correlation.
 * - Numeric feature: the correlation ratio η = sqrt(SS_between / SS_total) of the feature across the
 *   groups (Pearson 1903); η² is the share of the feature's variance the groups explain. For a
 *   binary attribute η equals |point-biserial correlation|.
 * - Both kinds: normalised mutual information MI / ((H(S) + H(X)) / 2), numeric features binned at
 *   reference deciles (sklearn.metrics.normalized_mutual_info_score's default arithmetic mean).
 *
 * Conventional reading of V and η (Cohen 1988): 0.1 small, 0.3 medium, 0.5 large.
 */
import { binIndex, quantileEdges } from './quantile.js';

/** Level index of each row for a categorical variable, and the number of levels. */
export interface Levels {
  index: Int32Array;
  k: number;
}

export function levelsOfValues(values: ArrayLike<number>): Levels {
  const distinct = Array.from(new Set(Array.from(values))).sort((a, b) => a - b);
  const at = new Map(distinct.map((v, j) => [v, j]));
  return { index: Int32Array.from(Array.from(values), (v) => at.get(v)!), k: distinct.length };
}

/**
 * Deciles (or `bins` quantiles) of the values as levels, for mutual information on a numeric variable:
 * the same edges and right-closed bins as PSI (stats/psi.ts).
 */
export function quantileLevels(values: ArrayLike<number>, bins = 10): Levels {
  const edges = quantileEdges(values, bins);
  return levelsOfValues(Int32Array.from(Array.from(values), (v) => binIndex(edges, v)));
}

function table(a: Levels, b: Levels): { counts: Float64Array; rows: Float64Array; cols: Float64Array; n: number } {
  const counts = new Float64Array(a.k * b.k);
  const rows = new Float64Array(a.k);
  const cols = new Float64Array(b.k);
  const n = a.index.length;
  for (let i = 0; i < n; i++) {
    counts[a.index[i] * b.k + b.index[i]]++;
    rows[a.index[i]]++;
    cols[b.index[i]]++;
  }
  return { counts, rows, cols, n };
}

/** Cramér's V of two categorical variables; 0 when either takes a single value. */
export function cramersV(a: Levels, b: Levels): number {
  const { counts, rows, cols, n } = table(a, b);
  const r = rows.filter((x) => x > 0).length;
  const c = cols.filter((x) => x > 0).length;
  if (n === 0 || Math.min(r, c) < 2) return 0;
  let chi2 = 0;
  for (let i = 0; i < a.k; i++) {
    for (let j = 0; j < b.k; j++) {
      const expected = (rows[i] * cols[j]) / n;
      if (expected > 0) chi2 += (counts[i * b.k + j] - expected) ** 2 / expected;
    }
  }
  return Math.sqrt(chi2 / (n * (Math.min(r, c) - 1)));
}

/** Correlation ratio η of a numeric variable across groups; 0 when the variable is constant. */
export function correlationRatio(groups: Levels, values: ArrayLike<number>): number {
  const n = values.length;
  const sum = new Float64Array(groups.k);
  const cnt = new Float64Array(groups.k);
  let total = 0;
  for (let i = 0; i < n; i++) {
    sum[groups.index[i]] += values[i];
    cnt[groups.index[i]]++;
    total += values[i];
  }
  const mean = total / n;
  let ssb = 0;
  for (let g = 0; g < groups.k; g++) if (cnt[g] > 0) ssb += cnt[g] * (sum[g] / cnt[g] - mean) ** 2;
  let sst = 0;
  for (let i = 0; i < n; i++) sst += (values[i] - mean) ** 2;
  return sst > 0 ? Math.sqrt(Math.min(1, ssb / sst)) : 0;
}

function entropy(counts: Float64Array, n: number): number {
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / n) * Math.log(c / n);
  return h;
}

/** MI(a; b) / mean(H(a), H(b)) in nats/nats; 0 when both are constant. */
export function normalizedMutualInformation(a: Levels, b: Levels): number {
  const { counts, rows, cols, n } = table(a, b);
  const ha = entropy(rows, n);
  const hb = entropy(cols, n);
  if (ha + hb === 0) return 0;
  let mi = 0;
  for (let i = 0; i < a.k; i++) {
    for (let j = 0; j < b.k; j++) {
      const c = counts[i * b.k + j];
      if (c > 0) mi += (c / n) * Math.log((c * n) / (rows[i] * cols[j]));
    }
  }
  return Math.max(0, mi) / ((ha + hb) / 2);
}
