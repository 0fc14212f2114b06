/**
 * The desired outcome as two functions of a prediction: `valid` (does the model give the outcome) and
 * `score` (a margin: >= 0 when valid for thresholds and ranges, and how far there is to go when not),
 * plus which outputs the score's gradient combines, for the gradient-guided path.
 */
import { ExplainerInputError } from '../types.js';
import type { CounterfactualTask, DesiredOutcome, InstanceCounterfactuals } from './types.js';

export interface Outcome {
  desired: InstanceCounterfactuals['desired'];
  valid(pred: ArrayLike<number>, offset: number): boolean;
  score(pred: ArrayLike<number>, offset: number): number;
  /** The score's gradient is the sum of sign x d output / d input over these terms, at this prediction. */
  gradientTerms(pred: ArrayLike<number>, offset: number): { output: number; sign: number }[];
}

export interface OutcomeSpec {
  task?: CounterfactualTask;
  desired?: DesiredOutcome;
  threshold?: number;
}

/** Checks the request once, before any model call. */
export function checkOutcome(spec: OutcomeSpec, nOutputs: number): void {
  const task = taskOf(spec, nOutputs);
  const d = spec.desired;
  const t = spec.threshold ?? 0.5;
  if (!Number.isFinite(t)) throw new ExplainerInputError('BAD_PARAMETER', 'threshold must be a finite number');
  if (d === undefined) {
    if (task === 'regression') {
      throw new ExplainerInputError(
        'DESIRED_REQUIRED',
        'a regression model needs desired: {"range": [lo, hi]}, the values its output should reach',
      );
    }
    if (task === 'multiclass-classification' && nOutputs > 2) {
      throw new ExplainerInputError(
        'DESIRED_REQUIRED',
        `this classifier has ${nOutputs} classes: say which one with desired: {"class": index}`,
      );
    }
    return;
  }
  if ('range' in d) {
    const [lo, hi] = d.range;
    if (Number.isNaN(lo) || Number.isNaN(hi) || lo > hi) {
      throw new ExplainerInputError('BAD_DESIRED', `desired.range [${lo}, ${hi}] is not an interval: give [lo, hi] with lo <= hi`);
    }
    const o = d.output ?? 0;
    if (!Number.isInteger(o) || o < 0 || o >= nOutputs) {
      throw new ExplainerInputError('BAD_DESIRED', `desired.output ${o} is not an output index of this model (0..${nOutputs - 1})`);
    }
    return;
  }
  if ('class' in d) {
    if (task === 'regression') {
      throw new ExplainerInputError('BAD_DESIRED', 'a regression model has no classes: give desired: {"range": [lo, hi]}');
    }
    const classes = nOutputs === 1 ? 2 : nOutputs;
    if (d.class === 'opposite') {
      if (classes !== 2)
        throw new ExplainerInputError(
          'BAD_DESIRED',
          `"opposite" needs a binary classifier; this one has ${classes} classes: give a class index`,
        );
      return;
    }
    if (!Number.isInteger(d.class) || d.class < 0 || d.class >= classes) {
      throw new ExplainerInputError('BAD_DESIRED', `desired.class ${d.class} is not a class of this model (0..${classes - 1})`);
    }
    return;
  }
  throw new ExplainerInputError('BAD_DESIRED', 'desired must be {"class": index | "opposite"} or {"range": [lo, hi]}');
}

function taskOf(spec: OutcomeSpec, nOutputs: number): CounterfactualTask {
  if (spec.task) return spec.task;
  if (spec.desired && 'range' in spec.desired) return 'regression';
  return nOutputs === 1 ? 'binary-classification' : 'multiclass-classification';
}

/** The outcome for one instance, whose own prediction resolves "opposite". */
export function resolveOutcome(spec: OutcomeSpec, nOutputs: number, own: ArrayLike<number>, ownOffset: number): Outcome {
  const d = spec.desired ?? { class: 'opposite' as const };
  if ('range' in d) {
    const [lo, hi] = d.range;
    const o = d.output ?? 0;
    return {
      desired: { range: [lo, hi], output: o },
      valid: (p, k) => p[k + o] >= lo && p[k + o] <= hi,
      score: (p, k) => Math.min(p[k + o] - lo, hi - p[k + o]),
      gradientTerms: (p, k) => (p[k + o] < lo ? [{ output: o, sign: 1 }] : p[k + o] > hi ? [{ output: o, sign: -1 }] : []),
    };
  }
  if (nOutputs === 1) {
    const t = spec.threshold ?? 0.5;
    const now = own[ownOffset] >= t ? 1 : 0;
    const target = d.class === 'opposite' ? 1 - now : d.class;
    return target === 1
      ? { desired: { class: 1 }, valid: (p, k) => p[k] >= t, score: (p, k) => p[k] - t, gradientTerms: () => [{ output: 0, sign: 1 }] }
      : { desired: { class: 0 }, valid: (p, k) => p[k] < t, score: (p, k) => t - p[k], gradientTerms: () => [{ output: 0, sign: -1 }] };
  }
  const c = d.class === 'opposite' ? 1 - argmax(own, ownOffset, nOutputs) : d.class;
  const rival = (p: ArrayLike<number>, k: number) => {
    let best = -1;
    for (let j = 0; j < nOutputs; j++) if (j !== c && (best < 0 || p[k + j] > p[k + best])) best = j;
    return best;
  };
  return {
    desired: { class: c },
    valid: (p, k) => argmax(p, k, nOutputs) === c,
    score: (p, k) => p[k + c] - p[k + rival(p, k)],
    gradientTerms: (p, k) => [
      { output: c, sign: 1 },
      { output: rival(p, k), sign: -1 },
    ],
  };
}

/** First index of the largest output (numpy's argmax). */
export function argmax(p: ArrayLike<number>, k: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (p[k + j] > p[k + best]) best = j;
  return best;
}
