/**
 * Recourse burden by group: for the rows the model gives the unfavourable outcome, the cost (distance,
 * counterfactuals.ts) of the cheapest valid counterfactual, summarised per sensitive group with
 * bootstrap intervals. A group that must change more to be approved is treated worse even when
 * selection rates are equal (the "burden" of Sharma et al., CERTIFAI 2020, and the recourse gap of
 * Ustun et al. 2019). The sensitive feature itself is frozen: changing one's group is not recourse.
 *
 * The bootstrap resamples the unfavourable rows with replacement (all groups together, as Fairlearn's
 * MetricFrame does) and recomputes every group's statistics; intervals are percentile intervals.
 */
import { bootstrap, type Interval } from '../../stats/bootstrap.js';
import { ExplainerInputError, type Model, type Rows } from '../../explainers/types.js';
import { counterfactuals } from '../../explainers/counterfactuals/counterfactuals.js';
import { commonGroupName } from '../../explainers/counterfactuals/space.js';
import type { CounterfactualOptions, DesiredOutcome } from '../../explainers/counterfactuals/types.js';

export interface RecourseGroups {
  /** The sensitive feature (or one-hot group) name. */
  feature: string;
  /** Readable label of each group ("sex=female"). */
  labels: string[];
  /** Group of each row of `rows`: an index into labels. */
  index: ArrayLike<number>;
}

export interface RecourseOptions extends Omit<CounterfactualOptions, 'k' | 'desired' | 'reference'> {
  /** The rows assessed (typically the model's reference set). */
  rows: Rows;
  /** Rows that give scales, ranges and plausibility; default `rows`. */
  reference?: Rows;
  groups: RecourseGroups;
  /** The favourable outcome; default class 1 of a binary classifier (one sigmoid output or two softmax outputs). */
  favourable?: DesiredOutcome;
  /** Default { n: 1000, seed: 0, confidence: 0.95 }; n: 0 turns it off. */
  bootstrap?: { n?: number; seed?: number; confidence?: number };
}

export interface Estimate {
  value: number | null;
  lo: number | null;
  hi: number | null;
}

export interface GroupBurden {
  label: string;
  /** Rows of the group, and those with the unfavourable outcome. */
  rows: number;
  unfavourable: number;
  /** Unfavourable rows for which a valid counterfactual was found / not found. */
  withRecourse: number;
  withoutRecourse: number;
  /** Cost of the cheapest counterfactual, over the rows with recourse. */
  meanCost: Estimate;
  medianCost: Estimate;
  /** Share of unfavourable rows with no counterfactual found (within budget and constraints). */
  noRecourseRate: Estimate;
  /** Mean number of features the cheapest counterfactual changes. */
  meanSparsity: number | null;
}

export interface RecourseBurden {
  feature: string;
  favourable: DesiredOutcome;
  groups: GroupBurden[];
  /** Highest minus lowest group mean cost, and their ratio, with intervals (recomputed per replicate, like Fairlearn's difference()). */
  meanCostDifference: Estimate;
  meanCostRatio: Estimate;
  /** Per unfavourable row: its index in `rows`, group, and cheapest cost (null: none found). */
  costs: { row: number; group: number; cost: number | null; sparsity: number | null }[];
  bootstrap: { n: number; seed: number; confidence: number };
  /** Rows whose search stopped at the deadline or the budget: their costs may be higher than the true minimum. */
  incomplete: { deadline: number; budget: number };
  modelEvaluations: number;
  computeMs: number;
}

export async function recourseBurden(model: Model, options: RecourseOptions): Promise<RecourseBurden> {
  const start = performance.now();
  const { rows, groups } = options;
  if (groups.index.length !== rows.n) {
    throw new ExplainerInputError('BAD_PARAMETER', `groups.index has ${groups.index.length} entries for ${rows.n} rows`);
  }
  for (let i = 0; i < rows.n; i++) {
    const g = groups.index[i];
    if (!Number.isInteger(g) || g < 0 || g >= groups.labels.length) {
      throw new ExplainerInputError('BAD_PARAMETER', `row ${i} is in group ${g}, which is not one of the ${groups.labels.length} labels`);
    }
  }
  const boot = { n: options.bootstrap?.n ?? 1000, seed: options.bootstrap?.seed ?? 0, confidence: options.bootstrap?.confidence ?? 0.95 };
  if (!Number.isInteger(boot.n) || boot.n < 0 || boot.n > 100_000)
    throw new ExplainerInputError('BAD_PARAMETER', 'bootstrap.n must be an integer from 0 to 100000');
  if (!(boot.confidence > 0 && boot.confidence < 1))
    throw new ExplainerInputError('BAD_PARAMETER', 'bootstrap.confidence must be within (0, 1)');
  if (options.favourable === undefined && model.nOutputs > 2) {
    throw new ExplainerInputError(
      'DESIRED_REQUIRED',
      'say which outcome is favourable: favourable: {"class": index} or {"range": [lo, hi]}',
    );
  }
  const favourable: DesiredOutcome = options.favourable ?? { class: 1 };

  // Freeze the sensitive feature (or group) when it is an input of the model.
  const names = new Set([
    ...options.space.featureNames,
    ...(options.space.groups ?? []).map((g, i) => options.groupNames?.[i] ?? commonGroupName(g.map((c) => options.space.featureNames[c]))),
  ]);
  const constraints = { ...(options.constraints ?? {}) };
  if (names.has(groups.feature)) constraints[groups.feature] = { ...(constraints[groups.feature] ?? {}), immutable: true };

  const result = await counterfactuals(model, rows, {
    ...options,
    reference: options.reference ?? rows,
    constraints,
    desired: favourable,
    k: 1,
  });

  const k = groups.labels.length;
  const costs: RecourseBurden['costs'] = [];
  const incomplete = { deadline: 0, budget: 0 };
  result.instances.forEach((r, i) => {
    if (r.status === 'already-desired') return;
    const best = r.counterfactuals.find((c) => c.valid);
    costs.push({ row: i, group: groups.index[i], cost: best ? best.distance : null, sparsity: best ? best.sparsity : null });
    if (r.stopReason === 'deadline') incomplete.deadline++;
    if (r.stopReason === 'budget') incomplete.budget++;
  });

  const m = costs.length;
  // Per group: its rows' positions in `costs`, with recourse sorted by cost (for weighted medians).
  const members = Array.from({ length: k }, (_, g) => costs.map((c, p) => p).filter((p) => costs[p].group === g));
  const sortedWith = members.map((ps) =>
    ps.filter((p) => costs[p].cost !== null).sort((a, b) => (costs[a].cost as number) - (costs[b].cost as number)),
  );

  // Statistic vector: per group [mean, median, noRecourseRate], then difference and ratio of means.
  const statistics = (counts: Int32Array | null): (number | null)[] => {
    const w = (p: number) => (counts ? counts[p] : 1);
    const out: (number | null)[] = [];
    const means: number[] = [];
    for (let g = 0; g < k; g++) {
      let total = 0;
      let withW = 0;
      let sum = 0;
      for (const p of members[g]) total += w(p);
      for (const p of sortedWith[g]) {
        withW += w(p);
        sum += w(p) * (costs[p].cost as number);
      }
      const mean = withW > 0 ? sum / withW : null;
      if (mean !== null) means.push(mean);
      out.push(
        mean,
        weightedMedian(sortedWith[g], (p) => costs[p].cost as number, w, withW),
        total > 0 ? (total - withW) / total : null,
      );
    }
    const ok = means.length === k && k >= 2;
    const hi = ok ? Math.max(...means) : null;
    const lo = ok ? Math.min(...means) : null;
    out.push(ok ? (hi as number) - (lo as number) : null, ok && (lo as number) > 0 ? (hi as number) / (lo as number) : null);
    return out;
  };
  const b = bootstrap(m, statistics, boot);
  const est = (j: number): Estimate => ({ value: b.point[j], ...(b.intervals[j] as Interval) });

  const groupRows = new Int32Array(k);
  for (let i = 0; i < rows.n; i++) groupRows[groups.index[i]]++;
  const out: GroupBurden[] = groups.labels.map((label, g) => {
    const withR = sortedWith[g].length;
    const sp = sortedWith[g].map((p) => costs[p].sparsity as number);
    return {
      label,
      rows: groupRows[g],
      unfavourable: members[g].length,
      withRecourse: withR,
      withoutRecourse: members[g].length - withR,
      meanCost: est(3 * g),
      medianCost: est(3 * g + 1),
      noRecourseRate: est(3 * g + 2),
      meanSparsity: sp.length ? sp.reduce((a, v) => a + v, 0) / sp.length : null,
    };
  });
  const modelEvaluations = result.referenceEvaluations + result.instances.reduce((t, r) => t + r.modelEvaluations, 0);
  return {
    feature: groups.feature,
    favourable,
    groups: out,
    meanCostDifference: est(3 * k),
    meanCostRatio: est(3 * k + 1),
    costs,
    bootstrap: boot,
    incomplete,
    modelEvaluations,
    computeMs: performance.now() - start,
  };
}

/** Median of the multiset in which item p (in ascending value order) appears w(p) times; null when empty. */
export function weightedMedian(sorted: number[], value: (p: number) => number, w: (p: number) => number, total: number): number | null {
  if (total <= 0) return null;
  // 0-based positions of the middle element(s) in the expanded multiset.
  const a = Math.floor((total - 1) / 2);
  const b = Math.floor(total / 2);
  let seen = 0;
  let va: number | null = null;
  for (const p of sorted) {
    const c = w(p);
    if (c === 0) continue;
    if (va === null && a < seen + c) va = value(p);
    if (b < seen + c) return ((va as number) + value(p)) / 2;
    seen += c;
  }
  return va;
}
