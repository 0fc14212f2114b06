/**
 * Group metrics as a registry of small functions over counts, the way Fairlearn's MetricFrame takes
 * metric callables (fairlearn/metrics/_metric_frame.py). Rows are first reduced to weighted counts per
 * group (weight = bootstrap multiplicity, or 1), then every metric of the task is a function of one
 * group's counts. An undefined rate (0/0) is null, never 0 (see report.ts for why).
 *
 * Adding a metric: add its name to the task's list and its function to the registry; the report,
 * its disparities, bootstrap intervals and charts pick it up.
 */

export const CLASSIFICATION_METRICS = [
  'selectionRate',
  'accuracy',
  'truePositiveRate',
  'falsePositiveRate',
  'falseNegativeRate',
  'precision',
  'baseRate',
  'meanScore',
] as const;
export const REGRESSION_METRICS = ['meanPrediction', 'meanLabel', 'meanAbsoluteError', 'rootMeanSquaredError'] as const;
export type ClassificationMetric = (typeof CLASSIFICATION_METRICS)[number];
export type RegressionMetric = (typeof REGRESSION_METRICS)[number];
export type GroupMetric = ClassificationMetric | RegressionMetric;

/** One group's weighted counts of a binary decision (one-vs-rest for multiclass). */
export interface ClassificationCounts {
  count: number;
  /** Predicted positive. */
  selected: number;
  /** Sum of the score of the positive class. */
  scoreSum: number;
  /** Labelled positive. */
  positives: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  /** False without labels: label-based metrics are null. */
  labelled: boolean;
}

export interface RegressionCounts {
  count: number;
  predictionSum: number;
  labelSum: number;
  absoluteErrorSum: number;
  squaredErrorSum: number;
  labelled: boolean;
}

export type MetricFunction<C> = (counts: C) => number | null;

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);
const labelled =
  <C extends { labelled: boolean }>(f: MetricFunction<C>): MetricFunction<C> =>
  (c) =>
    c.labelled ? f(c) : null;

export const CLASSIFICATION_METRIC_FUNCTIONS: Readonly<Record<ClassificationMetric, MetricFunction<ClassificationCounts>>> = {
  selectionRate: (c) => ratio(c.selected, c.count),
  accuracy: labelled((c) => ratio(c.tp + c.tn, c.count)),
  truePositiveRate: labelled((c) => ratio(c.tp, c.tp + c.fn)),
  falsePositiveRate: labelled((c) => ratio(c.fp, c.fp + c.tn)),
  falseNegativeRate: labelled((c) => ratio(c.fn, c.tp + c.fn)),
  precision: labelled((c) => ratio(c.tp, c.tp + c.fp)),
  baseRate: labelled((c) => ratio(c.positives, c.count)),
  meanScore: (c) => ratio(c.scoreSum, c.count),
};

export const REGRESSION_METRIC_FUNCTIONS: Readonly<Record<RegressionMetric, MetricFunction<RegressionCounts>>> = {
  meanPrediction: (c) => ratio(c.predictionSum, c.count),
  meanLabel: labelled((c) => ratio(c.labelSum, c.count)),
  meanAbsoluteError: labelled((c) => ratio(c.absoluteErrorSum, c.count)),
  rootMeanSquaredError: labelled((c) => {
    const mse = ratio(c.squaredErrorSum, c.count);
    return mse === null ? null : Math.sqrt(mse);
  }),
};

/** A binary decision per row: what classification metrics are computed on. */
export interface BinaryOutcome {
  kind: 'binary';
  positiveClass: number;
  /** The model output the decision is read from. */
  output: number;
  score: Float64Array;
  yPred: Uint8Array;
  /** 0/1, or null without labels. */
  yTrue: Uint8Array | null;
}

export interface RegressionOutcome {
  kind: 'regression';
  output: number;
  pred: Float64Array;
  yTrue: Float64Array | null;
}

export type Outcome = BinaryOutcome | RegressionOutcome;

export function outcomeRows(outcome: Outcome): number {
  return outcome.kind === 'binary' ? outcome.score.length : outcome.pred.length;
}

/**
 * Counts per group: `index[i]` is row i's group among k (null: one group of every row), `weights[i]`
 * its multiplicity (null: 1).
 */
export function classificationCounts(
  o: BinaryOutcome,
  index: Int32Array | null,
  k: number,
  weights: Int32Array | null,
): ClassificationCounts[] {
  const counts = Array.from({ length: k }, () => ({
    count: 0,
    selected: 0,
    scoreSum: 0,
    positives: 0,
    tp: 0,
    fp: 0,
    tn: 0,
    fn: 0,
    labelled: o.yTrue !== null,
  }));
  const { yPred, yTrue, score } = o;
  for (let i = 0; i < score.length; i++) {
    const w = weights ? weights[i] : 1;
    if (w === 0) continue;
    const c = counts[index ? index[i] : 0];
    c.count += w;
    c.selected += w * yPred[i];
    c.scoreSum += w * score[i];
    if (yTrue) {
      if (yTrue[i]) {
        c.positives += w;
        if (yPred[i]) c.tp += w;
        else c.fn += w;
      } else if (yPred[i]) c.fp += w;
      else c.tn += w;
    }
  }
  return counts;
}

export function regressionCounts(
  o: RegressionOutcome,
  index: Int32Array | null,
  k: number,
  weights: Int32Array | null,
): RegressionCounts[] {
  const counts = Array.from({ length: k }, () => ({
    count: 0,
    predictionSum: 0,
    labelSum: 0,
    absoluteErrorSum: 0,
    squaredErrorSum: 0,
    labelled: o.yTrue !== null,
  }));
  const { pred, yTrue } = o;
  for (let i = 0; i < pred.length; i++) {
    const w = weights ? weights[i] : 1;
    if (w === 0) continue;
    const c = counts[index ? index[i] : 0];
    c.count += w;
    c.predictionSum += w * pred[i];
    if (yTrue) {
      const e = pred[i] - yTrue[i];
      c.labelSum += w * yTrue[i];
      c.absoluteErrorSum += w * Math.abs(e);
      c.squaredErrorSum += w * e * e;
    }
  }
  return counts;
}

/** The task's metrics, in a fixed order. */
export function metricsFor(outcome: Outcome): readonly GroupMetric[] {
  return outcome.kind === 'binary' ? CLASSIFICATION_METRICS : REGRESSION_METRICS;
}

/**
 * Every metric of the outcome's task for each of k groups: `values[group][metric position]`, in
 * the order of metricsFor(outcome).
 */
export function groupMetricValues(outcome: Outcome, index: Int32Array | null, k: number, weights: Int32Array | null): (number | null)[][] {
  if (outcome.kind === 'binary') {
    return classificationCounts(outcome, index, k, weights).map((c) =>
      CLASSIFICATION_METRICS.map((m) => CLASSIFICATION_METRIC_FUNCTIONS[m](c)),
    );
  }
  return regressionCounts(outcome, index, k, weights).map((c) => REGRESSION_METRICS.map((m) => REGRESSION_METRIC_FUNCTIONS[m](c)));
}
