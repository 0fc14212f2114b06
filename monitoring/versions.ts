/**
 * Comparing two versions of a model on the same rows, so an update can be trusted and debugged:
 * how the predictions moved (the distribution of the differences, agreement of the decisions for
 * classifiers, the rows that moved most), how the attributions moved (mean |attribution| per
 * feature before and after, rank changes and NDCG as attribution drift measures them, features
 * whose sign flipped) and how group fairness moved. Pure functions over predictions and
 * explanations; service/compare.ts gets them from the executor.
 */
import { ExplainerInputError, type Explanation } from '../explainers/types.js';
import { quantileSorted } from '../stats/quantile.js';
import { attributionDrift } from './drift/attributions.js';
import { playerAttributions, type Player } from './features.js';
import type { FairnessReport } from './fairness/types.js';

export interface PredictionShift {
  output: string;
  outputIndex: number;
  meanFrom: number;
  meanTo: number;
  /** Of to - from, per row. */
  meanDifference: number;
  meanAbsDifference: number;
  maxAbsDifference: number;
  quantiles: { q: number; value: number }[];
  /** Of to - from: `counts[i]` rows in [edges[i], edges[i+1]) (the last bin closed). */
  histogram: { edges: number[]; counts: number[] };
}

export interface DecisionAgreement {
  /** How each row's decision is read: the larger probability of the classes, or p > threshold for one output. */
  rule: 'argmax' | 'threshold';
  threshold?: number;
  classes: string[];
  rows: number;
  agreeing: number;
  /** agreeing / rows. */
  rate: number;
  /** confusion[a][b]: rows decided a by the from version and b by the to version. */
  confusion: number[][];
}

export interface RowChange {
  /** Index of the row in the compared data. */
  row: number;
  values: number[];
  from: number[];
  to: number[];
  /** The largest |to - from| over the outputs. */
  maxAbsDifference: number;
  fromClass?: string;
  toClass?: string;
}

export interface AttributionShift {
  output: string;
  outputIndex: number;
  rows: number;
  /** NDCG of the to ranking against the from ranking (relevance: from's mean |attribution|), as attribution drift. */
  ndcg: number;
  features: {
    feature: string;
    meanAbsFrom: number;
    meanAbsTo: number;
    change: number;
    rankFrom: number;
    rankTo: number;
    /** Mean signed attribution. */
    meanFrom: number;
    meanTo: number;
    /**
     * The attribution changed sign on most rows (rowSignFlipRate > 0.5): the feature now pushes the
     * other way. (The mean signed attribution is near 0 whenever the rows resemble the background,
     * so its sign says little.)
     */
    signFlipped: boolean;
    /** Share of rows whose attribution changed sign, among rows where both are beyond 1% of the largest mean |attribution|. */
    rowSignFlipRate: number;
  }[];
  /** Features whose attribution changed sign on most rows. */
  signFlips: string[];
}

export interface FairnessShift {
  sensitiveFeatures: string[];
  metrics: {
    /** The breakdown's sensitive features (one, or two for an intersection). */
    features: string[];
    positiveClass: number | null;
    /** A group metric (selection_rate, true_positive_rate ...), compared between groups. */
    metric: string;
    differenceFrom: number | null;
    differenceTo: number | null;
    ratioFrom: number | null;
    ratioTo: number | null;
  }[];
  /** The fairness report's flags (four-fifths rule, gaps ...) on each side. */
  flagsFrom: string[];
  flagsTo: string[];
}

export const QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

/** Per output: the distribution of to - from over the rows. */
export function predictionShifts(from: ArrayLike<number>, to: ArrayLike<number>, n: number, outputNames: string[], bins = 20): PredictionShift[] {
  const k = outputNames.length;
  if (from.length !== n * k || to.length !== n * k) throw new ExplainerInputError('BAD_DATA', 'predictions of both versions need n x outputs values');
  if (n === 0) throw new ExplainerInputError('EMPTY_DATA', 'no rows to compare the versions on');
  return outputNames.map((output, j) => {
    const diff = new Float64Array(n);
    let sf = 0;
    let st = 0;
    for (let i = 0; i < n; i++) {
      sf += from[i * k + j];
      st += to[i * k + j];
      diff[i] = to[i * k + j] - from[i * k + j];
    }
    const sorted = Float64Array.from(diff).sort();
    let abs = 0;
    for (const d of diff) abs += Math.abs(d);
    return {
      output,
      outputIndex: j,
      meanFrom: sf / n,
      meanTo: st / n,
      meanDifference: (st - sf) / n,
      meanAbsDifference: abs / n,
      maxAbsDifference: Math.max(Math.abs(sorted[0]), Math.abs(sorted[n - 1])),
      quantiles: QUANTILES.map((q) => ({ q, value: quantileSorted(sorted, q) })),
      histogram: histogram(sorted, bins),
    };
  });
}

/** Equal-width bins over [min, max] of values sorted ascending (one bin when they are all equal). */
export function histogram(sorted: ArrayLike<number>, bins: number): { edges: number[]; counts: number[] } {
  const n = sorted.length;
  const lo = sorted[0];
  const hi = sorted[n - 1];
  if (!(hi > lo)) return { edges: [lo, hi], counts: [n] };
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * width));
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) counts[Math.min(bins - 1, Math.floor((sorted[i] - lo) / width))]++;
  return { edges, counts };
}

/** Each row's decision: argmax over the outputs, or for one output p > threshold (class 1). */
export function decisions(p: ArrayLike<number>, n: number, k: number, threshold = 0.5): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (k === 1) out[i] = p[i] > threshold ? 1 : 0;
    else {
      let best = 0;
      for (let j = 1; j < k; j++) if (p[i * k + j] > p[i * k + best]) best = j;
      out[i] = best;
    }
  }
  return out;
}

export function decisionAgreement(from: ArrayLike<number>, to: ArrayLike<number>, n: number, k: number, classes: string[], threshold = 0.5): DecisionAgreement {
  const a = decisions(from, n, k, threshold);
  const b = decisions(to, n, k, threshold);
  const c = k === 1 ? 2 : k;
  const confusion = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  let agreeing = 0;
  for (let i = 0; i < n; i++) {
    confusion[a[i]][b[i]]++;
    if (a[i] === b[i]) agreeing++;
  }
  return {
    rule: k === 1 ? 'threshold' : 'argmax',
    ...(k === 1 ? { threshold } : {}),
    classes,
    rows: n,
    agreeing,
    rate: n ? agreeing / n : 1,
    confusion,
  };
}

/** The `top` rows whose outputs moved most (largest |to - from| over the outputs), largest first. */
export function largestChanges(
  rows: { data: Float32Array; n: number; d: number },
  from: ArrayLike<number>,
  to: ArrayLike<number>,
  k: number,
  top = 10,
  classOf?: (p: number[]) => string,
): RowChange[] {
  const moved = Array.from({ length: rows.n }, (_, i) => {
    let m = 0;
    for (let j = 0; j < k; j++) m = Math.max(m, Math.abs(to[i * k + j] - from[i * k + j]));
    return { i, m };
  });
  moved.sort((x, y) => y.m - x.m || x.i - y.i);
  return moved.slice(0, top).map(({ i, m }) => {
    const f = Array.from({ length: k }, (_, j) => from[i * k + j]);
    const t = Array.from({ length: k }, (_, j) => to[i * k + j]);
    return {
      row: i,
      values: Array.from(rows.data.subarray(i * rows.d, (i + 1) * rows.d)),
      from: f,
      to: t,
      maxAbsDifference: m,
      ...(classOf ? { fromClass: classOf(f), toClass: classOf(t) } : {}),
    };
  });
}

/** Attributions of the same rows by both versions, per player (one-hot groups summed), for one output. */
export function attributionShift(from: Explanation, to: Explanation, players: Player[], outputIndex: number, outputName: string): AttributionShift {
  const drift = attributionDrift(from, to, players, outputIndex, outputName);
  const a = playerAttributions(from, outputIndex, players);
  const b = playerAttributions(to, outputIndex, players);
  const n = Math.min(a.length, b.length);
  const largest = Math.max(1e-300, ...drift.features.map((f) => Math.max(f.reference, f.current)));
  const margin = 0.01 * largest;
  const features = drift.features.map((f, p) => {
    let sa = 0;
    let sb = 0;
    let flips = 0;
    let counted = 0;
    for (let i = 0; i < n; i++) {
      sa += a[i][p];
      sb += b[i][p];
      if (Math.abs(a[i][p]) > margin && Math.abs(b[i][p]) > margin) {
        counted++;
        if (Math.sign(a[i][p]) !== Math.sign(b[i][p])) flips++;
      }
    }
    const rate = counted ? flips / counted : 0;
    return {
      feature: f.feature,
      meanAbsFrom: f.reference,
      meanAbsTo: f.current,
      change: f.change,
      rankFrom: f.referenceRank,
      rankTo: f.currentRank,
      meanFrom: n ? sa / n : 0,
      meanTo: n ? sb / n : 0,
      signFlipped: rate > 0.5,
      rowSignFlipRate: rate,
    };
  });
  return { output: outputName, outputIndex, rows: n, ndcg: drift.ndcg, features, signFlips: features.filter((f) => f.signFlipped).map((f) => f.feature) };
}

/** Between-group differences and ratios of every group metric, before and after, per breakdown. */
export function fairnessShift(from: FairnessReport, to: FairnessReport): FairnessShift {
  const metrics: FairnessShift['metrics'] = [];
  for (const o of to.outcomes) {
    const before = from.outcomes.find((x) => x.positiveClass === o.positiveClass && x.output === o.output);
    for (const b of o.breakdowns) {
      const bb = before?.breakdowns.find((x) => x.features.join('\u0000') === b.features.join('\u0000'));
      for (const [metric, d] of Object.entries(b.disparities)) {
        const db = bb?.disparities[metric as keyof typeof bb.disparities];
        metrics.push({
          features: b.features,
          positiveClass: o.positiveClass,
          metric,
          differenceFrom: db?.differenceBetweenGroups.value ?? null,
          differenceTo: d?.differenceBetweenGroups.value ?? null,
          ratioFrom: db?.ratioBetweenGroups.value ?? null,
          ratioTo: d?.ratioBetweenGroups.value ?? null,
        });
      }
    }
  }
  return { sensitiveFeatures: to.sensitiveFeatures, metrics, flagsFrom: from.flags.map((f) => f.message), flagsTo: to.flags.map((f) => f.message) };
}

/** One side of a comparison. */
export interface VersionRef {
  version: string;
  label?: string;
}

/** Everything GET /v1/models/{name}/versions/compare answers. */
export interface VersionComparison {
  model: string;
  from: VersionRef;
  to: VersionRef;
  /** The rows both versions were run on. */
  data: { source: 'reference' | 'background'; rows: number };
  features: string[];
  outputs: string[];
  predictions: {
    shifts: PredictionShift[];
    /** Classifiers: how often both versions decide the same. */
    agreement?: DecisionAgreement;
    largestChanges: RowChange[];
  };
  /** Tabular models with a background set. */
  attributions?: {
    method: 'kernel-shap';
    sampleSize: number;
    nSamples: number;
    seed: number;
    maxBackground: number;
    outputs: AttributionShift[];
  };
  /** Models with sensitive features and a labelled reference set. */
  fairness?: FairnessShift;
  notes: string[];
  computedAt: string;
  computeMs: number;
}
