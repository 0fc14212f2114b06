/**
 * Drift between a reference data set (what the model was validated on) and a current one (what it
 * sees now): of each input feature, of each model output, of the labels when both sides have them,
 * and of the attributions (what the model relies on).
 *
 * Statistics and thresholds:
 * - PSI, population stability index: Σ_b (c_b - r_b) ln(c_b / r_b) over bins b, with r_b and c_b the
 *   reference and current shares. Numeric columns: `bins` (default 10) quantile bins of the reference
 *   (edges at its k/bins quantiles, numpy's linear interpolation, duplicates merged), right-closed:
 *   (-inf, e1], (e1, e2], ..., (e_last, inf). Categorical columns (binary, categorical, one-hot, or
 *   integer columns with at most `bins` distinct reference values): one bin per reference value and
 *   one "other" bin for current values the reference never took. Shares of 0 become eps = 1e-4
 *   (epsilon smoothing) so an empty bin costs a large but finite amount.
 *   Conventional reading (Siddiqi 2006, credit scoring): < 0.1 stable, 0.1-0.25 some shift (warn),
 *   >= 0.25 major shift (alert).
 * - Two-sample Kolmogorov-Smirnov: D = sup |F_ref - F_cur| over all values (ties handled exactly),
 *   two-sided p-value from the asymptotic Kolmogorov distribution Q(sqrt(n m / (n + m)) D)
 *   (scipy's kstwobign; scipy.stats.ks_2samp(method='asymp') before 1.5 did the same). On discrete
 *   columns the asymptotic p-value is conservative. p-values are Bonferroni-corrected over the
 *   columns tested together (min(1, p x columns)) and significant below alpha = 0.01.
 * - A column is `drifted` (status 'alert') when PSI >= 0.25 or its corrected KS p < 0.01; 'warn' when
 *   only 0.1 <= PSI < 0.25. KS alone detects ever smaller shifts as data grow; PSI says how large
 *   the shift is. Both are reported.
 * - Attribution drift (SageMaker Clarify's model explainability monitor): global mean |attribution|
 *   of each player on both sides, and NDCG = DCG / iDCG of the current ranking, with the reference
 *   attribution a(f) as relevance: DCG = Σ_i a(f'_i) / log2(i + 1) over the features f' in current
 *   order, iDCG the same in reference order. Flagged below 0.90, Clarify's threshold. Ties in either
 *   ranking keep the players' model order.
 */
import { accuracyScore, predictedClasses, rootMeanSquaredError } from './metrics.js';
import { ExplainerInputError, type Explanation, type Rows } from './types.js';
import { playerAttributions, type Player } from './groupAttributions.js';

export interface DriftThresholds {
  psiWarn: number;
  psiAlert: number;
  /** Significance level for the Bonferroni-corrected KS p-value. */
  ksAlpha: number;
  /** Attribution drift is flagged when NDCG falls below this. */
  ndcg: number;
}

export const DEFAULT_THRESHOLDS: DriftThresholds = { psiWarn: 0.1, psiAlert: 0.25, ksAlpha: 0.01, ndcg: 0.9 };
export const PSI_EPSILON = 1e-4;

export type BinSpec = { kind: 'categorical'; categories: number[] } | { kind: 'quantile'; edges: number[] };

export type DriftStatus = 'ok' | 'warn' | 'alert';

export interface ColumnDrift {
  feature: string;
  kind: BinSpec['kind'];
  psi: number;
  psiStatus: DriftStatus;
  ks: { statistic: number; pValue: number; pValueAdjusted: number; significant: boolean };
  status: DriftStatus;
  drifted: boolean;
  referenceMean: number;
  currentMean: number;
  bins: { label: string; reference: number; current: number }[];
}

export interface AttributionDrift {
  output: string;
  outputIndex: number;
  ndcg: number;
  flagged: boolean;
  referenceRows: number;
  currentRows: number;
  features: {
    feature: string;
    reference: number;
    current: number;
    change: number;
    /** change / reference; null when the reference attribution is 0. */
    relativeChange: number | null;
    referenceRank: number;
    currentRank: number;
  }[];
}

export interface DriftFlag {
  kind: 'feature-drift' | 'prediction-drift' | 'label-drift' | 'attribution-drift';
  feature?: string;
  message: string;
}

export interface DriftReport {
  reference: { rows: number };
  current: { rows: number };
  bins: number;
  thresholds: DriftThresholds;
  features: ColumnDrift[];
  predictions: ColumnDrift[];
  labels?: ColumnDrift;
  performance?: { metric: 'accuracy' | 'rmse'; reference: number; current: number; change: number };
  attributions?: AttributionDrift[];
  summary: { drifted: string[]; warned: string[]; predictionDrift: boolean; attributionDrift: boolean | null };
  flags: DriftFlag[];
}

// ---------------------------------------------------------------------------------------------
// Binning and PSI.

function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** numpy.quantile (linear) of an already sorted array. */
function sortedQuantile(sorted: Float64Array, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/**
 * Bins from the reference values. `type` is metadata's feature type when known: binary, categorical
 * and one-hot are categories; numeric and pixel quantiles; integer or unknown: categories when the
 * reference holds at most `bins` distinct integers, else quantiles.
 */
export function binsFor(reference: ArrayLike<number>, bins = 10, type?: string): BinSpec {
  if (reference.length === 0) throw new ExplainerInputError('BAD_DATA', 'the reference data are empty');
  const sorted = sortedCopy(reference);
  const distinct: number[] = [];
  for (const v of sorted) if (distinct.length === 0 || v !== distinct[distinct.length - 1]) distinct.push(v);
  const categorical =
    type === 'binary' ||
    type === 'categorical' ||
    type === 'one-hot' ||
    (type !== 'numeric' && type !== 'pixel' && distinct.length <= bins && distinct.every(Number.isInteger));
  if (categorical) return { kind: 'categorical', categories: distinct };
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const e = sortedQuantile(sorted, k / bins);
    if (edges.length === 0 || e > edges[edges.length - 1]) edges.push(e);
  }
  return { kind: 'quantile', edges };
}

/** Counts per bin; categorical specs get a last "other" bin for unseen values. */
export function binCounts(values: ArrayLike<number>, spec: BinSpec): Float64Array {
  if (spec.kind === 'categorical') {
    const at = new Map(spec.categories.map((c, k) => [c, k]));
    const counts = new Float64Array(spec.categories.length + 1);
    for (let i = 0; i < values.length; i++) counts[at.get(values[i]) ?? spec.categories.length]++;
    return counts;
  }
  const { edges } = spec;
  const counts = new Float64Array(edges.length + 1);
  for (let i = 0; i < values.length; i++) {
    // First edge >= v (right-closed bins), by binary search.
    let lo = 0;
    let hi = edges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (edges[mid] >= values[i]) hi = mid;
      else lo = mid + 1;
    }
    counts[lo]++;
  }
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

export function populationStabilityIndex(
  reference: ArrayLike<number>,
  current: ArrayLike<number>,
  options: { bins?: number; type?: string; eps?: number } = {},
) {
  const spec = binsFor(reference, options.bins ?? 10, options.type);
  const r = binCounts(reference, spec);
  const c = binCounts(current, spec);
  return { psi: psiFromCounts(r, c, options.eps), spec, reference: r, current: c };
}

// ---------------------------------------------------------------------------------------------
// Kolmogorov-Smirnov.

/**
 * Survival function of the Kolmogorov distribution, Q(λ) = P(K > λ) = 2 Σ_{k>=1} (-1)^(k-1) e^(-2k²λ²).
 * For small λ that series converges slowly, so there the equivalent Jacobi theta form is used:
 * 1 - sqrt(2π)/λ Σ_{k>=1} e^(-(2k-1)² π² / (8λ²)).
 */
export function kolmogorovSurvival(lambda: number): number {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    let s = 0;
    for (let k = 1; k <= 20; k++) s += Math.exp((-((2 * k - 1) ** 2) * Math.PI ** 2) / (8 * lambda * lambda));
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * s));
  }
  let s = 0;
  for (let k = 1; k <= 100; k++) {
    const t = Math.exp(-2 * k * k * lambda * lambda);
    s += (k % 2 === 1 ? 1 : -1) * t;
    if (t < 1e-17) break;
  }
  return Math.min(1, Math.max(0, 2 * s));
}

/** Two-sample KS statistic and asymptotic two-sided p-value. */
export function ksTwoSample(a: ArrayLike<number>, b: ArrayLike<number>): { statistic: number; pValue: number } {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) throw new ExplainerInputError('BAD_DATA', 'the KS test needs values on both sides');
  const x = sortedCopy(a);
  const y = sortedCopy(b);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const v = Math.min(x[i], y[j]);
    while (i < n && x[i] === v) i++;
    while (j < m && y[j] === v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const en = (n * m) / (n + m);
  return { statistic: d, pValue: kolmogorovSurvival(Math.sqrt(en) * d) };
}

// ---------------------------------------------------------------------------------------------
// NDCG of attribution rankings.

/** Clarify's NDCG of the current ranking against the reference ranking, relevance = reference scores. */
export function attributionNdcg(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  const k = reference.length;
  if (current.length !== k) throw new Error('reference and current attributions differ in length');
  const order = (s: ArrayLike<number>) => Array.from({ length: k }, (_, i) => i).sort((p, q) => s[q] - s[p] || p - q);
  const dcg = (ranking: number[]) => ranking.reduce((sum, f, i) => sum + reference[f] / Math.log2(i + 2), 0);
  const ideal = dcg(order(reference));
  return ideal > 0 ? dcg(order(current)) / ideal : 1;
}

// ---------------------------------------------------------------------------------------------
// Reports.

function column(rows: Rows, c: number): Float64Array {
  return Float64Array.from({ length: rows.n }, (_, i) => rows.data[i * rows.d + c]);
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return v.length ? s / v.length : 0;
}

/** Drift of each column of two matrices, Bonferroni over the columns given together. */
export function columnDrift(
  reference: Rows,
  current: Rows,
  names: string[],
  options: { bins?: number; types?: (string | undefined)[]; thresholds?: Partial<DriftThresholds> } = {},
): ColumnDrift[] {
  const t = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const bins = options.bins ?? 10;
  if (reference.d !== current.d) {
    throw new ExplainerInputError('BAD_DATA', `reference rows have ${reference.d} values but current rows ${current.d}`);
  }
  if (reference.n < 1 || current.n < 1) throw new ExplainerInputError('BAD_DATA', 'drift needs rows on both sides');
  return names.map((feature, c) => {
    const r = column(reference, c);
    const cur = column(current, c);
    const { psi, spec, reference: rc, current: cc } = populationStabilityIndex(r, cur, { bins, type: options.types?.[c] });
    const ks = ksTwoSample(r, cur);
    const pValueAdjusted = Math.min(1, ks.pValue * names.length);
    const significant = pValueAdjusted < t.ksAlpha;
    const psiStatus: DriftStatus = psi >= t.psiAlert ? 'alert' : psi >= t.psiWarn ? 'warn' : 'ok';
    const status: DriftStatus = psiStatus === 'alert' || significant ? 'alert' : psiStatus;
    const labels = binLabels(spec);
    const bins_ = labels
      .map((label, b) => ({ label, reference: rc[b] / reference.n, current: cc[b] / current.n }))
      .filter((b, k) => !(spec.kind === 'categorical' && k === labels.length - 1 && b.current === 0));
    return {
      feature,
      kind: spec.kind,
      psi,
      psiStatus,
      ks: { statistic: ks.statistic, pValue: ks.pValue, pValueAdjusted, significant },
      status,
      drifted: status === 'alert',
      referenceMean: mean(r),
      currentMean: mean(cur),
      bins: bins_,
    };
  });
}

/** Global mean |attribution| per player on both sides, the change, and Clarify's NDCG. */
export function attributionDrift(
  reference: Explanation,
  current: Explanation,
  players: Player[],
  outputIndex: number,
  outputName: string,
  threshold = DEFAULT_THRESHOLDS.ndcg,
): AttributionDrift {
  const meanAbs = (e: Explanation) => {
    const phi = playerAttributions(e, outputIndex, players);
    return Float64Array.from(players, (_, p) => mean(phi.map((row) => Math.abs(row[p]))));
  };
  const r = meanAbs(reference);
  const c = meanAbs(current);
  const rank = (s: Float64Array) => {
    const order = Array.from(s.keys()).sort((p, q) => s[q] - s[p] || p - q);
    const out = new Int32Array(s.length);
    order.forEach((p, i) => (out[p] = i + 1));
    return out;
  };
  const rr = rank(r);
  const cr = rank(c);
  const ndcg = attributionNdcg(r, c);
  return {
    output: outputName,
    outputIndex,
    ndcg,
    flagged: ndcg < threshold,
    referenceRows: reference.explanations.length,
    currentRows: current.explanations.length,
    features: players.map((p, k) => ({
      feature: p.name,
      reference: r[k],
      current: c[k],
      change: c[k] - r[k],
      relativeChange: r[k] > 0 ? (c[k] - r[k]) / r[k] : null,
      referenceRank: rr[k],
      currentRank: cr[k],
    })),
  };
}

export interface DriftInput {
  reference: Rows;
  current: Rows;
  featureNames: string[];
  featureTypes?: (string | undefined)[];
  outputNames: string[];
  /** Model outputs for both sides, n x outputs. */
  referencePredictions?: Float32Array;
  currentPredictions?: Float32Array;
  referenceLabels?: ArrayLike<number>;
  currentLabels?: ArrayLike<number>;
  task?: 'binary-classification' | 'multiclass-classification' | 'regression';
  attributions?: AttributionDrift[];
}

export function driftReport(input: DriftInput, options: { bins?: number; thresholds?: Partial<DriftThresholds> } = {}): DriftReport {
  const thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const bins = options.bins ?? 10;
  if (!Number.isInteger(bins) || bins < 2 || bins > 100)
    throw new ExplainerInputError('BAD_PARAMETER', 'bins must be an integer from 2 to 100');
  for (const [k, v] of Object.entries(thresholds)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new ExplainerInputError('BAD_PARAMETER', `thresholds.${k} must be a number >= 0`);
  }
  const { reference, current } = input;
  if (input.featureNames.length !== reference.d) throw new Error('featureNames must name every column');
  const features = columnDrift(reference, current, input.featureNames, { bins, types: input.featureTypes, thresholds });

  let predictions: ColumnDrift[] = [];
  const k = input.outputNames.length;
  if (input.referencePredictions && input.currentPredictions) {
    const asRows = (p: Float32Array, n: number): Rows => ({ data: p, n, d: k });
    predictions = columnDrift(
      asRows(input.referencePredictions, reference.n),
      asRows(input.currentPredictions, current.n),
      input.outputNames,
      {
        bins,
        types: input.outputNames.map(() => 'numeric'),
        thresholds,
      },
    );
  }

  let labels: ColumnDrift | undefined;
  let performance: DriftReport['performance'];
  if (input.referenceLabels && input.currentLabels) {
    if (input.referenceLabels.length !== reference.n || input.currentLabels.length !== current.n) {
      throw new ExplainerInputError('BAD_LABELS', 'send one label per row on each side');
    }
    const classification = input.task !== 'regression';
    labels = columnDrift(
      { data: Float32Array.from(input.referenceLabels), n: reference.n, d: 1 },
      { data: Float32Array.from(input.currentLabels), n: current.n, d: 1 },
      ['label'],
      { bins, types: [classification ? 'categorical' : 'numeric'], thresholds },
    )[0];
    if (input.referencePredictions && input.currentPredictions && input.task) {
      const score = (y: ArrayLike<number>, p: Float32Array) =>
        classification
          ? accuracyScore(y, predictedClasses(p, k))
          : rootMeanSquaredError(
              y,
              Array.from({ length: y.length }, (_, i) => p[i * k]),
            );
      const r = score(input.referenceLabels, input.referencePredictions);
      const c = score(input.currentLabels, input.currentPredictions);
      performance = { metric: classification ? 'accuracy' : 'rmse', reference: r, current: c, change: c - r };
    }
  }

  const flags: DriftFlag[] = [];
  const describe = (d: ColumnDrift) =>
    `PSI ${d.psi.toFixed(3)}${d.psiStatus !== 'ok' ? ` (${d.psiStatus})` : ''}, KS D ${d.ks.statistic.toFixed(3)}, corrected p ${d.ks.pValueAdjusted.toPrecision(2)}`;
  for (const d of features)
    if (d.drifted) flags.push({ kind: 'feature-drift', feature: d.feature, message: `${d.feature} drifted: ${describe(d)}` });
  for (const d of predictions)
    if (d.drifted) flags.push({ kind: 'prediction-drift', feature: d.feature, message: `output ${d.feature} drifted: ${describe(d)}` });
  if (labels?.drifted) flags.push({ kind: 'label-drift', feature: 'label', message: `the labels drifted: ${describe(labels)}` });
  for (const a of input.attributions ?? []) {
    if (a.flagged) {
      flags.push({
        kind: 'attribution-drift',
        feature: a.output,
        message: `attribution ranking of ${a.output} changed: NDCG ${a.ndcg.toFixed(3)} < ${thresholds.ndcg}`,
      });
    }
  }
  return {
    reference: { rows: reference.n },
    current: { rows: current.n },
    bins,
    thresholds,
    features,
    predictions,
    ...(labels ? { labels } : {}),
    ...(performance ? { performance } : {}),
    ...(input.attributions ? { attributions: input.attributions } : {}),
    summary: {
      drifted: features.filter((d) => d.drifted).map((d) => d.feature),
      warned: features.filter((d) => d.status === 'warn').map((d) => d.feature),
      predictionDrift: predictions.some((d) => d.drifted),
      attributionDrift: input.attributions ? input.attributions.some((a) => a.flagged) : null,
    },
    flags,
  };
}
