/**
 * Group fairness of a model's decisions, with the definitions of Fairlearn (fairlearn.metrics):
 *
 * - Per group (MetricFrame.by_group) and over all rows (MetricFrame.overall): for classifiers the
 *   selection rate (share predicted positive), accuracy, TPR, FPR, FNR, precision, plus the label's
 *   base rate and the mean score; for regressors mean prediction, mean label, MAE and RMSE.
 * - Disparities of every metric, as MetricFrame computes them:
 *   difference between_groups = max - min; difference to_overall = max |group - overall|;
 *   ratio between_groups = min / max; ratio to_overall = min over groups of group / overall,
 *   each ratio above 1 inverted (so every ratio is <= 1).
 * - demographic_parity_difference/ratio: those of the selection rate.
 *   equalized_odds_difference: the larger of the TPR and FPR differences; equalized_odds_ratio: the
 *   smaller of the two ratios (Fairlearn's default agg='worst_case').
 *   Equal opportunity: the TPR difference/ratio. Disparate impact: the selection-rate ratio
 *   min/max, which fails the four-fifths rule (EEOC Uniform Guidelines) below 0.8.
 * - Bootstrap intervals as MetricFrame(n_boot, ci_quantiles): all rows resampled with replacement,
 *   percentile intervals (explainers/bootstrap.ts).
 *
 * Where we differ, on purpose:
 * - An undefined rate is null, not 0: sklearn's confusion_matrix(normalize='true') turns the 0/0 TPR
 *   of a group without positives into 0, and Fairlearn reports that 0, which makes a spurious
 *   disparity. Disparities are taken over the groups where the metric is defined (pandas skips NaN
 *   the same way), and are null with fewer than two such groups (pandas would give 0 for one).
 * - Every max - min difference is >= 0 by construction, so its bootstrap interval never covers 0 and
 *   cannot say whether a gap is noise. Each metric therefore also gets a `gap`: the signed
 *   difference (and ratio) between the two groups that are highest and lowest on the full data, held
 *   fixed in every replicate. Flags test that gap's interval against 0 (difference) or 1 (ratio).
 *
 * Decisions: a binary classifier predicts positive when its score is > threshold (default 0.5, as
 * `predictedClasses` in metrics.ts). A multiclass classifier predicts the argmax; fairness is
 * assessed one-vs-rest for `positiveClass`, or for every class when none is given (one outcome each).
 */
import { bootstrap, type BootstrapOptions } from '../../stats/bootstrap.js';
import { quantile } from '../../stats/quantile.js';
import { ExplainerInputError } from '../../explainers/types.js';
import { difference, extremes, maxDefined, minDefined, ratioOf } from './disparities.js';
import type { Grouping } from './groups.js';
import { groupMetricValues, metricsFor, type GroupMetric, type Outcome } from './metrics.js';
import type {
  Breakdown,
  Disparity,
  DisparitySummary,
  Estimate,
  FairnessFlag,
  FairnessInput,
  FairnessOptions,
  FairnessOutcome,
  FairnessReport,
} from './types.js';

export const DEFAULT_BOOTSTRAP: BootstrapOptions = { n: 200, seed: 0, confidence: 0.95 };
export const DEFAULT_FOUR_FIFTHS = 0.8;

function fail(code: string, message: string, details?: unknown): never {
  throw new ExplainerInputError(code, message, details);
}

function checkInput(input: FairnessInput, options: FairnessOptions): void {
  const { n, nOutputs, predictions, labels } = input;
  if (!Number.isInteger(n) || n < 1) fail('BAD_DATA', 'fairness needs at least one row');
  if (predictions.length !== n * nOutputs) fail('BAD_DATA', `got ${predictions.length} predictions for ${n} rows x ${nOutputs} outputs`);
  for (let i = 0; i < predictions.length; i++) {
    if (!Number.isFinite(predictions[i]))
      throw new Error(`the model returned a non-finite output (${predictions[i]}) for row ${Math.floor(i / nOutputs)}`);
  }
  if (labels) {
    if (labels.length !== n) fail('BAD_LABELS', `labels has ${labels.length} entries but there are ${n} rows: send one label per row`);
    const classes = options.task === 'regression' ? 0 : nOutputs === 1 ? 2 : nOutputs;
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      if (!Number.isFinite(y)) fail('BAD_LABELS', `labels[${i}] is not a finite number`);
      if (classes && (!Number.isInteger(y) || y < 0 || y >= classes)) {
        fail('BAD_LABELS', `labels[${i}] = ${y} is not a class index 0..${classes - 1}`, { index: i });
      }
    }
  }
  if (options.task === 'multiclass-classification' && nOutputs < 2) fail('BAD_PARAMETER', 'a multiclass model needs one output per class');
  if (options.task === 'binary-classification' && nOutputs > 2) {
    fail('BAD_PARAMETER', `a binary classifier has one or two outputs, this model has ${nOutputs}: use task multiclass-classification`);
  }
  const t = options.threshold;
  if (t !== undefined && !(Number.isFinite(t) && t >= 0 && t <= 1)) fail('BAD_PARAMETER', `threshold must be in [0, 1], got ${t}`);
  const b = options.bootstrap;
  if (b?.n !== undefined && !(Number.isInteger(b.n) && b.n >= 0 && b.n <= 10_000))
    fail('BAD_PARAMETER', 'bootstrap.n must be an integer from 0 to 10000');
  if (b?.confidence !== undefined && !(b.confidence > 0 && b.confidence < 1))
    fail('BAD_PARAMETER', 'bootstrap.confidence must be in (0, 1)');
  if (b?.seed !== undefined && !Number.isSafeInteger(b.seed)) fail('BAD_PARAMETER', 'bootstrap.seed must be an integer');
  if (input.groupings.length === 0) fail('NO_SENSITIVE_FEATURES', 'fairness needs at least one sensitive feature');
  for (const g of input.groupings)
    if (g.index.length !== n) fail('BAD_DATA', `grouping ${g.features.join(' & ')} covers ${g.index.length} rows, not ${n}`);
}

function outcomesOf(input: FairnessInput, options: FairnessOptions): Outcome[] {
  const { n, nOutputs, predictions: p, labels } = input;
  if (options.task === 'regression') {
    const output = options.output ?? 0;
    if (!Number.isInteger(output) || output < 0 || output >= nOutputs)
      fail('UNKNOWN_OUTPUT', `output ${output} does not exist: the model has outputs 0..${nOutputs - 1}`);
    return [
      {
        kind: 'regression',
        output,
        pred: Float64Array.from({ length: n }, (_, i) => p[i * nOutputs + output]),
        yTrue: labels ? Float64Array.from(labels) : null,
      },
    ];
  }
  const classes = nOutputs === 1 ? 2 : nOutputs;
  const pc = options.positiveClass;
  if (pc !== undefined && !(Number.isInteger(pc) && pc >= 0 && pc < classes)) {
    fail('BAD_PARAMETER', `positiveClass ${pc} is not a class of this model (0..${classes - 1})`);
  }
  if (options.task === 'binary-classification') {
    const threshold = options.threshold ?? 0.5;
    const positive = pc ?? 1;
    // One sigmoid column is P(class 1); two columns are P(class 0), P(class 1).
    const p1 = (i: number) => (nOutputs === 1 ? p[i] : p[i * 2 + 1]);
    const score = Float64Array.from({ length: n }, (_, i) => (positive === 1 ? p1(i) : 1 - p1(i)));
    const yPred = Uint8Array.from({ length: n }, (_, i) => Number(p1(i) > threshold === (positive === 1)));
    const yTrue = labels ? Uint8Array.from({ length: n }, (_, i) => Number(labels[i] === positive)) : null;
    return [{ kind: 'binary', positiveClass: positive, output: nOutputs === 1 ? 0 : positive, score, yPred, yTrue }];
  }
  const argmax = Int32Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let c = 1; c < nOutputs; c++) if (p[i * nOutputs + c] > p[i * nOutputs + best]) best = c;
    return best;
  });
  const classesAnalysed = pc !== undefined ? [pc] : Array.from({ length: nOutputs }, (_, c) => c);
  return classesAnalysed.map((c) => ({
    kind: 'binary' as const,
    positiveClass: c,
    output: c,
    score: Float64Array.from({ length: n }, (_, i) => p[i * nOutputs + c]),
    yPred: Uint8Array.from(argmax, (a) => Number(a === c)),
    yTrue: labels ? Uint8Array.from({ length: n }, (_, i) => Number(labels[i] === c)) : null,
  }));
}

// ---------------------------------------------------------------------------------------------
// One evaluation (the full data, or one bootstrap replicate) is a vector of statistics; a Layout
// says which position holds what, so the bootstrap resamples one flat vector and the report reads
// each estimate back by name.

interface DisparitySlots {
  differenceBetweenGroups: number;
  differenceToOverall: number;
  ratioBetweenGroups: number;
  ratioToOverall: number;
  /** Highest minus lowest group of the full data, and lowest / highest (the pair held fixed). */
  gapDifference: number;
  gapRatio: number;
}

type AggregateSlots = Omit<DisparitySlots, 'gapDifference' | 'gapRatio'>;

interface BreakdownSlots {
  /** [group][metric position]. */
  byGroup: number[][];
  /** [metric position]. */
  disparities: DisparitySlots[];
  /** Classification: the larger TPR/FPR difference and the smaller ratio (Fairlearn's worst case). */
  equalizedOdds: AggregateSlots | null;
}

interface Layout {
  /** [metric position]. */
  overall: number[];
  breakdowns: BreakdownSlots[];
  size: number;
}

type Pair = { higher: number; lower: number } | null;

function layoutOf(groupings: Grouping[], metrics: readonly GroupMetric[], equalizedOdds: boolean): Layout {
  let size = 0;
  const slot = () => size++;
  const aggregate = (): AggregateSlots => ({
    differenceBetweenGroups: slot(),
    differenceToOverall: slot(),
    ratioBetweenGroups: slot(),
    ratioToOverall: slot(),
  });
  const overall = metrics.map(slot);
  const breakdowns = groupings.map((g) => ({
    byGroup: g.groups.map(() => metrics.map(slot)),
    disparities: metrics.map(() => ({ ...aggregate(), gapDifference: slot(), gapRatio: slot() })),
    equalizedOdds: equalizedOdds ? aggregate() : null,
  }));
  return { overall, breakdowns, size };
}

function evaluate(
  outcome: Outcome,
  groupings: Grouping[],
  metrics: readonly GroupMetric[],
  layout: Layout,
  pairs: Pair[][],
  weights: Int32Array | null,
): (number | null)[] {
  const out = new Array<number | null>(layout.size).fill(null);
  const overall = groupMetricValues(outcome, null, 1, weights)[0];
  overall.forEach((v, mi) => (out[layout.overall[mi]] = v));
  const tpr = metrics.indexOf('truePositiveRate');
  const fpr = metrics.indexOf('falsePositiveRate');
  groupings.forEach((grouping, gi) => {
    const slots = layout.breakdowns[gi];
    const byGroup = groupMetricValues(outcome, grouping.index, grouping.groups.length, weights);
    byGroup.forEach((values, j) => values.forEach((v, mi) => (out[slots.byGroup[j][mi]] = v)));
    metrics.forEach((_, mi) => {
      const values = byGroup.map((r) => r[mi]);
      const o = overall[mi];
      const s = slots.disparities[mi];
      out[s.differenceBetweenGroups] = difference(values, o, 'between_groups');
      out[s.differenceToOverall] = difference(values, o, 'to_overall');
      out[s.ratioBetweenGroups] = ratioOf(values, o, 'between_groups');
      out[s.ratioToOverall] = ratioOf(values, o, 'to_overall');
      const pair = pairs[gi][mi];
      const hi = pair ? values[pair.higher] : null;
      const lo = pair ? values[pair.lower] : null;
      out[s.gapDifference] = hi !== null && lo !== null ? hi - lo : null;
      out[s.gapRatio] = hi !== null && lo !== null && hi !== 0 ? lo / hi : null;
    });
    const eo = slots.equalizedOdds;
    if (eo) {
      const [t, f] = [slots.disparities[tpr], slots.disparities[fpr]];
      out[eo.differenceBetweenGroups] = maxDefined(out[t.differenceBetweenGroups], out[f.differenceBetweenGroups]);
      out[eo.differenceToOverall] = maxDefined(out[t.differenceToOverall], out[f.differenceToOverall]);
      out[eo.ratioBetweenGroups] = minDefined(out[t.ratioBetweenGroups], out[f.ratioBetweenGroups]);
      out[eo.ratioToOverall] = minDefined(out[t.ratioToOverall], out[f.ratioToOverall]);
    }
  });
  return out;
}

/** Point estimates, intervals and replicates of one outcome's statistics, read by slot. */
interface Estimates {
  estimate(slot: number): Estimate;
  replicates(slot: number): (number | null)[];
}

// ---------------------------------------------------------------------------------------------

export function fairnessReport(input: FairnessInput, options: FairnessOptions): FairnessReport {
  checkInput(input, options);
  const boot: BootstrapOptions = { ...DEFAULT_BOOTSTRAP, ...options.bootstrap };
  const fourFifths = options.fourFifths ?? DEFAULT_FOUR_FIFTHS;
  const outcomes = outcomesOf(input, options).map((outcome) => {
    const metrics = metricsFor(outcome);
    const layout = layoutOf(input.groupings, metrics, outcome.kind === 'binary');
    // The gap's two groups are chosen once, on the full data, and kept in every replicate.
    const pairs: Pair[][] = input.groupings.map((g) => {
      const byGroup = groupMetricValues(outcome, g.index, g.groups.length, null);
      return metrics.map((_, mi) => extremes(byGroup.map((r) => r[mi])));
    });
    const { point, intervals, replicates } = bootstrap(input.n, (w) => evaluate(outcome, input.groupings, metrics, layout, pairs, w), {
      ...boot,
      checkpoint: options.checkpoint,
    });
    const estimates: Estimates = {
      estimate: (slot) => (boot.n > 0 ? { value: point[slot], lo: intervals[slot].lo, hi: intervals[slot].hi } : { value: point[slot] }),
      replicates: (slot) => replicates[slot] ?? [],
    };
    return buildOutcome(outcome, input, options, metrics, layout, estimates, pairs, fourFifths, boot);
  });
  return {
    task: options.task,
    rows: input.n,
    labelled: input.labels !== undefined,
    sensitiveFeatures: Array.from(new Set(input.groupings.flatMap((g) => g.features))),
    threshold: options.task === 'binary-classification' ? (options.threshold ?? 0.5) : null,
    fourFifthsThreshold: fourFifths,
    bootstrap: boot.n > 0 ? boot : null,
    outcomes,
    flags: outcomes.flatMap((o) => o.flags),
  };
}

function byMetric(metrics: readonly GroupMetric[], slots: number[], e: Estimates): Partial<Record<GroupMetric, Estimate>> {
  return Object.fromEntries(metrics.map((m, mi) => [m, e.estimate(slots[mi])]));
}

function buildOutcome(
  outcome: Outcome,
  input: FairnessInput,
  options: FairnessOptions,
  metrics: readonly GroupMetric[],
  layout: Layout,
  e: Estimates,
  pairs: Pair[][],
  fourFifths: number,
  boot: BootstrapOptions,
): FairnessOutcome {
  const positiveClass = outcome.kind === 'binary' ? outcome.positiveClass : null;
  const breakdowns: Breakdown[] = input.groupings.map((grouping, gi) => {
    const slots = layout.breakdowns[gi];
    const label = (j: number) => grouping.groups[j].label;
    const summaryOf = (s: AggregateSlots): DisparitySummary => ({
      difference: e.estimate(s.differenceBetweenGroups),
      ratio: e.estimate(s.ratioBetweenGroups),
      differenceToOverall: e.estimate(s.differenceToOverall),
      ratioToOverall: e.estimate(s.ratioToOverall),
    });
    const disparities: Partial<Record<GroupMetric, Disparity>> = {};
    metrics.forEach((m, mi) => {
      const s = slots.disparities[mi];
      const pair = pairs[gi][mi];
      disparities[m] = {
        differenceBetweenGroups: e.estimate(s.differenceBetweenGroups),
        differenceToOverall: e.estimate(s.differenceToOverall),
        ratioBetweenGroups: e.estimate(s.ratioBetweenGroups),
        ratioToOverall: e.estimate(s.ratioToOverall),
        gap: pair
          ? { higher: label(pair.higher), lower: label(pair.lower), difference: e.estimate(s.gapDifference), ratio: e.estimate(s.gapRatio) }
          : null,
      };
    });
    const breakdown: Breakdown = {
      features: grouping.features,
      groups: grouping.groups.map((g, j) => ({
        label: g.label,
        key: g.key,
        count: grouping.counts[j],
        metrics: byMetric(metrics, slots.byGroup[j], e),
      })),
      disparities,
      flags: [],
    };
    if (slots.equalizedOdds) {
      const sr = metrics.indexOf('selectionRate');
      const di = e.estimate(slots.disparities[sr].ratioBetweenGroups);
      const pair = pairs[gi][sr];
      breakdown.criteria = {
        demographicParity: summaryOf(slots.disparities[sr]),
        equalOpportunity: summaryOf(slots.disparities[metrics.indexOf('truePositiveRate')]),
        equalizedOdds: summaryOf(slots.equalizedOdds),
        disparateImpact: {
          ratio: di,
          lowest: pair ? label(pair.lower) : null,
          highest: pair ? label(pair.higher) : null,
          threshold: fourFifths,
          passes: di.value === null ? null : di.value >= fourFifths,
        },
      };
    }
    // Gap criteria tested together in this breakdown share a Bonferroni-corrected level.
    const tested = GAP_FLAGS.filter(({ metric }) => {
      const gap = disparities[metric]?.gap;
      return gap && gap.difference.value !== null;
    });
    if (boot.n > 0 && tested.length) {
      const confidence = 1 - (1 - boot.confidence) / tested.length;
      for (const { metric } of tested) {
        const reps = e.replicates(slots.disparities[metrics.indexOf(metric)].gapDifference);
        const gap = disparities[metric]?.gap;
        if (gap) gap.flagInterval = { confidence, lo: quantile(reps, (1 - confidence) / 2), hi: quantile(reps, 1 - (1 - confidence) / 2) };
      }
    }
    breakdown.flags = flagsOf(breakdown, positiveClass, fourFifths);
    return breakdown;
  });
  return {
    positiveClass,
    ...(positiveClass !== null && options.classNames?.[positiveClass] !== undefined
      ? { positiveClassName: options.classNames[positiveClass] }
      : {}),
    output: outcome.output,
    overall: { count: input.n, metrics: byMetric(metrics, layout.overall, e) },
    breakdowns,
    flags: breakdowns.flatMap((b) => b.flags),
  };
}

const GAP_FLAGS: { metric: GroupMetric; kind: FairnessFlag['kind']; what: string }[] = [
  { metric: 'selectionRate', kind: 'selection-rate-gap', what: 'selection rate' },
  { metric: 'truePositiveRate', kind: 'true-positive-rate-gap', what: 'true positive rate' },
  { metric: 'falsePositiveRate', kind: 'false-positive-rate-gap', what: 'false positive rate' },
  { metric: 'meanPrediction', kind: 'mean-prediction-gap', what: 'mean prediction' },
];

function fmt(v: number): string {
  return Number(v.toPrecision(3)).toString();
}

/**
 * Flags: the four-fifths rule on the point estimate of disparate impact, and a gap whose
 * Bonferroni-corrected bootstrap interval (`gap.flagInterval`) excludes 0. The correction spreads
 * 1 - confidence over the k gap criteria of a breakdown (selection rate, TPR, FPR; or mean
 * prediction), so an unbiased breakdown gets any gap flag with probability about 1 - confidence:
 * on 100 simulated unbiased data sets 14 got one with uncorrected 95% intervals.
 */
function flagsOf(b: Breakdown, positiveClass: number | null, fourFifths: number): FairnessFlag[] {
  const flags: FairnessFlag[] = [];
  const where = b.features.join(' & ');
  const di = b.criteria?.disparateImpact;
  if (di && di.passes === false) {
    flags.push({
      kind: 'four-fifths-rule',
      features: b.features,
      positiveClass,
      value: di.ratio.value!,
      lo: di.ratio.lo,
      hi: di.ratio.hi,
      message: `${where}: selection rate of ${di.lowest} is ${fmt(di.ratio.value!)} of ${di.highest}'s, below the four-fifths rule (${fourFifths})`,
    });
  }
  for (const { metric, kind, what } of GAP_FLAGS) {
    const gap = b.disparities[metric]?.gap;
    const ci = gap?.flagInterval;
    if (!gap || gap.difference.value === null || !ci || ci.lo === null || ci.hi === null) continue;
    if (ci.lo > 0) {
      flags.push({
        kind,
        features: b.features,
        positiveClass,
        value: gap.difference.value,
        lo: ci.lo,
        hi: ci.hi,
        message:
          `${where}: ${what} of ${gap.higher} exceeds ${gap.lower}'s by ${fmt(gap.difference.value)} ` +
          `(${Number((100 * ci.confidence).toPrecision(4))}% Bonferroni-corrected interval ${fmt(ci.lo)} to ${fmt(ci.hi)}, excludes 0)`,
      });
    }
  }
  return flags;
}
