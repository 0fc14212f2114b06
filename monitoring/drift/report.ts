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
 *   one "other" bin for current values the reference never took. Small samples: the shares are
 *   smoothed additively on both sides, (count + 0.5) / (n + 0.5 x bins) (Jeffreys), so a bin that a
 *   handful of rows happen to miss costs little, and the smoothing vanishes as rows grow.
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
 * - Minimum size: with fewer than MIN_DRIFT_ROWS (50) rows on either side the report is
 *   `lowConfidence`: every statistic is there, but no column is drifted or warned and nothing is
 *   flagged (two rows against a thousand can put PSI past 0.25 on most features by chance alone).
 * - Attribution drift (SageMaker Clarify's model explainability monitor): global mean |attribution|
 *   of each player on both sides, and NDCG = DCG / iDCG of the current ranking, with the reference
 *   attribution a(f) as relevance: DCG = Σ_i a(f'_i) / log2(i + 1) over the features f' in current
 *   order, iDCG the same in reference order. Flagged below 0.90, Clarify's threshold. Ties in either
 *   ranking keep the players' model order.
 */
import { accuracyScore, predictedClasses, rootMeanSquaredError } from '../../explainers/metrics.js';
import { ExplainerInputError, type Rows } from '../../explainers/types.js';
import { ksTwoSample } from '../../stats/ks.js';
import { binLabels, populationStabilityIndex, type BinSpec } from '../../stats/psi.js';
import type { AttributionDrift } from './attributions.js';
import { DEFAULT_THRESHOLDS, MIN_DRIFT_ROWS, PSI_SMOOTHING, type DriftThresholds } from './thresholds.js';

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
  summary: {
    drifted: string[];
    warned: string[];
    predictionDrift: boolean;
    attributionDrift: boolean | null;
    /** Fewer than `minimumRows` rows on a side: statistics given, nothing flagged. */
    lowConfidence: boolean;
    minimumRows: number;
  };
  flags: DriftFlag[];
}

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
  options: { bins?: number; types?: (string | undefined)[]; thresholds?: Partial<DriftThresholds>; flag?: boolean } = {},
): ColumnDrift[] {
  // flag false: too few rows to call anything drifted (the statistics are still reported).
  const flag = options.flag ?? true;
  const t = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const bins = options.bins ?? 10;
  if (reference.d !== current.d) {
    throw new ExplainerInputError('BAD_DATA', `reference rows have ${reference.d} values but current rows ${current.d}`);
  }
  if (reference.n < 1 || current.n < 1) throw new ExplainerInputError('BAD_DATA', 'drift needs rows on both sides');
  return names.map((feature, c) => {
    const r = column(reference, c);
    const cur = column(current, c);
    const { psi, spec, reference: rc, current: cc } = populationStabilityIndex(r, cur, {
      bins,
      type: options.types?.[c],
      smoothing: PSI_SMOOTHING,
    });
    const ks = ksTwoSample(r, cur);
    const pValueAdjusted = Math.min(1, ks.pValue * names.length);
    const significant = flag && pValueAdjusted < t.ksAlpha;
    const psiStatus: DriftStatus = !flag ? 'ok' : psi >= t.psiAlert ? 'alert' : psi >= t.psiWarn ? 'warn' : 'ok';
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

export function driftReport(
  input: DriftInput,
  options: { bins?: number; thresholds?: Partial<DriftThresholds>; minimumRows?: number } = {},
): DriftReport {
  const thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  const bins = options.bins ?? 10;
  if (!Number.isInteger(bins) || bins < 2 || bins > 100)
    throw new ExplainerInputError('BAD_PARAMETER', 'bins must be an integer from 2 to 100');
  for (const [k, v] of Object.entries(thresholds)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new ExplainerInputError('BAD_PARAMETER', `thresholds.${k} must be a number >= 0`);
  }
  const { reference, current } = input;
  if (input.featureNames.length !== reference.d) throw new ExplainerInputError('BAD_DATA', 'featureNames must name every column');
  const minimumRows = options.minimumRows ?? MIN_DRIFT_ROWS;
  const lowConfidence = reference.n < minimumRows || current.n < minimumRows;
  const flag = !lowConfidence;
  const features = columnDrift(reference, current, input.featureNames, { bins, types: input.featureTypes, thresholds, flag });

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
        flag,
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
      { bins, types: [classification ? 'categorical' : 'numeric'], thresholds, flag },
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
  // Too few rows to rank attributions with confidence either: reported, never flagged.
  const attributions = input.attributions?.map((a) => (flag ? a : { ...a, flagged: false }));
  for (const a of attributions ?? []) {
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
    ...(attributions ? { attributions } : {}),
    summary: {
      drifted: features.filter((d) => d.drifted).map((d) => d.feature),
      warned: features.filter((d) => d.status === 'warn').map((d) => d.feature),
      predictionDrift: predictions.some((d) => d.drifted),
      attributionDrift: attributions ? attributions.some((a) => a.flagged) : null,
      lowConfidence,
      minimumRows,
    },
    flags,
  };
}
