/**
 * Fairlearn's functions by name, on label arrays and one sensitive column, for callers (and tests)
 * that hold decisions rather than a model: MetricFrame's overall / by_group / difference / ratio,
 * demographic parity and equalized odds differences and ratios.
 */
import { ExplainerInputError } from '../../explainers/types.js';
import { difference, maxDefined, minDefined, ratioOf, type AggregationMethod } from './disparities.js';
import type { Grouping } from './groups.js';
import { CLASSIFICATION_METRICS, groupMetricValues, type BinaryOutcome, type ClassificationMetric } from './metrics.js';

function groupingOf(sensitive: ArrayLike<number | string>): Grouping {
  const values = Array.from(new Set(Array.from(sensitive))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const at = new Map<number | string, number>(values.map((v, k) => [v, k]));
  const index = Int32Array.from(Array.from(sensitive), (v) => at.get(v)!);
  const counts = new Int32Array(values.length);
  for (const j of index) counts[j]++;
  return { features: ['sensitive'], groups: values.map((v) => ({ label: String(v), key: { sensitive: v } })), index, counts };
}

function binaryOutcome(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): BinaryOutcome {
  if (yTrue.length !== yPred.length)
    throw new ExplainerInputError('BAD_LABELS', `y_true has ${yTrue.length} entries, y_pred ${yPred.length}`);
  return {
    kind: 'binary',
    positiveClass: 1,
    output: 0,
    score: Float64Array.from(yPred),
    yPred: Uint8Array.from(yPred, (v) => Number(v === 1)),
    yTrue: Uint8Array.from(yTrue, (v) => Number(v === 1)),
  };
}

const named = (values: (number | null)[]): Partial<Record<ClassificationMetric, number | null>> =>
  Object.fromEntries(CLASSIFICATION_METRICS.map((m, mi) => [m, values[mi]]));

/** MetricFrame over one sensitive column: `overall` and `byGroup` (keyed by the column's values). */
export function metricFrame(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, sensitive: ArrayLike<number | string>) {
  const grouping = groupingOf(sensitive);
  const outcome = binaryOutcome(yTrue, yPred);
  const overall = groupMetricValues(outcome, null, 1, null)[0];
  const byGroup = groupMetricValues(outcome, grouping.index, grouping.groups.length, null);
  const column = (m: ClassificationMetric) => byGroup.map((r) => r[CLASSIFICATION_METRICS.indexOf(m)]);
  const overallOf = (m: ClassificationMetric) => overall[CLASSIFICATION_METRICS.indexOf(m)];
  return {
    overall: named(overall),
    byGroup: Object.fromEntries(grouping.groups.map((g, j) => [String(g.key.sensitive), named(byGroup[j])])),
    difference: (m: ClassificationMetric, method: AggregationMethod = 'between_groups') => difference(column(m), overallOf(m), method),
    ratio: (m: ClassificationMetric, method: AggregationMethod = 'between_groups') => ratioOf(column(m), overallOf(m), method),
  };
}

type Labels = ArrayLike<number>;
type Sensitive = ArrayLike<number | string>;

export function demographicParityDifference(
  yTrue: Labels,
  yPred: Labels,
  sensitive: Sensitive,
  method: AggregationMethod = 'between_groups',
) {
  return metricFrame(yTrue, yPred, sensitive).difference('selectionRate', method);
}

export function demographicParityRatio(yTrue: Labels, yPred: Labels, sensitive: Sensitive, method: AggregationMethod = 'between_groups') {
  return metricFrame(yTrue, yPred, sensitive).ratio('selectionRate', method);
}

export function equalizedOddsDifference(yTrue: Labels, yPred: Labels, sensitive: Sensitive, method: AggregationMethod = 'between_groups') {
  const mf = metricFrame(yTrue, yPred, sensitive);
  return maxDefined(mf.difference('truePositiveRate', method), mf.difference('falsePositiveRate', method));
}

export function equalizedOddsRatio(yTrue: Labels, yPred: Labels, sensitive: Sensitive, method: AggregationMethod = 'between_groups') {
  const mf = metricFrame(yTrue, yPred, sensitive);
  return minDefined(mf.ratio('truePositiveRate', method), mf.ratio('falsePositiveRate', method));
}
