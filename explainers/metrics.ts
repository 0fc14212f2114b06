/**
 * Scores for permutation importance, defined as scikit-learn defines them (sklearn.metrics), with
 * optional sample weights. Classifier predictions are probability columns, n x nCols row-major:
 * nCols = 1 is a binary model's sigmoid output P(class 1); nCols >= 2 is one column per class.
 * Labels are class indices (0 .. classes-1) for classifiers and target values for regressors.
 *
 * The scoring functions assume valid input (labels in range, weights >= 0 with a positive sum,
 * finite predictions); `permutationImportance` checks that once at its edge.
 */

export type MetricName = 'accuracy' | 'balanced_accuracy' | 'log_loss' | 'roc_auc' | 'mse' | 'rmse' | 'mae' | 'r2';
export type Weights = ArrayLike<number> | undefined;

export interface Metric {
  name: MetricName;
  task: 'classification' | 'regression';
  /** Scores are oriented so that importance = +(baseline - permuted) or -(...) is positive when a feature matters. */
  greaterIsBetter: boolean;
  /** Classification: `predictions` is n x nCols probabilities. Regression: n predicted values (nCols = 1). */
  score(labels: ArrayLike<number>, predictions: ArrayLike<number>, nCols: number, weights?: Weights): number;
}

/** Weight of sample i (1 when unweighted). */
const wt = (weights: Weights, i: number) => (weights ? weights[i] : 1);

/** Classes a classifier with nCols probability columns distinguishes. */
export function classCount(nCols: number): number {
  return nCols === 1 ? 2 : nCols;
}

/**
 * Predicted classes: argmax of the columns (first maximum on ties, as numpy), and for one sigmoid
 * column P > 0.5 (sklearn's binary classifiers predict class 1 when the decision function is > 0).
 */
export function predictedClasses(proba: ArrayLike<number>, nCols: number): Int32Array {
  const n = Math.floor(proba.length / nCols);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (nCols === 1) {
      out[i] = proba[i] > 0.5 ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let c = 1; c < nCols; c++) if (proba[i * nCols + c] > proba[i * nCols + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** Weighted fraction of correct predictions (sklearn.metrics.accuracy_score). */
export function accuracyScore(labels: ArrayLike<number>, predicted: ArrayLike<number>, weights?: Weights): number {
  let hit = 0;
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    total += wt(weights, i);
    if (labels[i] === predicted[i]) hit += wt(weights, i);
  }
  return hit / total;
}

/**
 * Mean recall over classes (sklearn.metrics.balanced_accuracy_score, adjusted=False). A class with
 * no (weighted) true samples has undefined recall and is left out, as sklearn does with a warning.
 */
export function balancedAccuracyScore(labels: ArrayLike<number>, predicted: ArrayLike<number>, weights?: Weights): number {
  const support = new Map<number, number>();
  const correct = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    support.set(c, (support.get(c) ?? 0) + wt(weights, i));
    if (predicted[i] === c) correct.set(c, (correct.get(c) ?? 0) + wt(weights, i));
  }
  let sum = 0;
  let classes = 0;
  for (const [c, s] of support) {
    if (!(s > 0)) continue;
    sum += (correct.get(c) ?? 0) / s;
    classes++;
  }
  return sum / classes;
}

/** float32 machine epsilon: sklearn clips to np.finfo(y_pred.dtype).eps and our models output float32. */
export const LOG_LOSS_EPS = 2 ** -23;

/**
 * Weighted mean of -log P(true class), probabilities clipped to [eps, 1 - eps]
 * (sklearn.metrics.log_loss with labels = all classes of the model).
 */
export function logLoss(labels: ArrayLike<number>, proba: ArrayLike<number>, nCols: number, weights?: Weights): number {
  let loss = 0;
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    const p = nCols === 1 ? (y === 1 ? proba[i] : 1 - proba[i]) : proba[i * nCols + y];
    const clipped = Math.min(Math.max(p, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS);
    loss -= wt(weights, i) * Math.log(clipped);
    total += wt(weights, i);
  }
  return loss / total;
}

/**
 * Area under the ROC curve (sklearn.metrics.roc_auc_score). Binary (one sigmoid column, or two
 * columns scored by column 1, as sklearn's scorer does with predict_proba[:, 1]); more columns:
 * one-vs-rest, unweighted mean over classes (multi_class='ovr', average='macro').
 * Throws RangeError when a class has no positive or no negative samples (AUC undefined).
 */
export function rocAucScore(labels: ArrayLike<number>, proba: ArrayLike<number>, nCols: number, weights?: Weights): number {
  const n = labels.length;
  if (nCols <= 2) {
    const col = nCols === 1 ? 0 : 1;
    return binaryRocAuc((i) => labels[i] === 1, (i) => proba[i * nCols + col], n, weights);
  }
  let sum = 0;
  for (let c = 0; c < nCols; c++) sum += binaryRocAuc((i) => labels[i] === c, (i) => proba[i * nCols + c], n, weights);
  return sum / nCols;
}

/**
 * Trapezoidal area under the weighted ROC curve. Samples tied in score form one step of the curve,
 * a diagonal segment, which is the same as counting tied (positive, negative) pairs as one half.
 */
function binaryRocAuc(positive: (i: number) => boolean, score: (i: number) => number, n: number, weights: Weights): number {
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => score(b) - score(a));
  let tp = 0;
  let fp = 0;
  let area = 0;
  for (let k = 0; k < n; ) {
    const s = score(order[k]);
    let dtp = 0;
    let dfp = 0;
    for (; k < n && score(order[k]) === s; k++) {
      if (positive(order[k])) dtp += wt(weights, order[k]);
      else dfp += wt(weights, order[k]);
    }
    area += dfp * (tp + dtp / 2);
    tp += dtp;
    fp += dfp;
  }
  if (!(tp > 0 && fp > 0)) throw new RangeError('ROC AUC is undefined when the labels hold only one class');
  return area / (tp * fp);
}

/** Weighted mean of (y - p)^2 (sklearn.metrics.mean_squared_error). */
export function meanSquaredError(labels: ArrayLike<number>, predicted: ArrayLike<number>, weights?: Weights): number {
  return weightedMean(labels.length, (i) => (labels[i] - predicted[i]) ** 2, weights);
}

/** Square root of the weighted MSE (sklearn.metrics.root_mean_squared_error). */
export function rootMeanSquaredError(labels: ArrayLike<number>, predicted: ArrayLike<number>, weights?: Weights): number {
  return Math.sqrt(meanSquaredError(labels, predicted, weights));
}

/** Weighted mean of |y - p| (sklearn.metrics.mean_absolute_error). */
export function meanAbsoluteError(labels: ArrayLike<number>, predicted: ArrayLike<number>, weights?: Weights): number {
  return weightedMean(labels.length, (i) => Math.abs(labels[i] - predicted[i]), weights);
}

/**
 * 1 - SS_res / SS_tot around the weighted mean of y (sklearn.metrics.r2_score). A constant target
 * gives 1 for a perfect prediction and 0 otherwise (sklearn's force_finite=True).
 */
export function r2Score(labels: ArrayLike<number>, predicted: ArrayLike<number>, weights?: Weights): number {
  const n = labels.length;
  const yMean = weightedMean(n, (i) => labels[i], weights);
  let res = 0;
  let tot = 0;
  for (let i = 0; i < n; i++) {
    res += wt(weights, i) * (labels[i] - predicted[i]) ** 2;
    tot += wt(weights, i) * (labels[i] - yMean) ** 2;
  }
  if (tot === 0) return res === 0 ? 1 : 0;
  return 1 - res / tot;
}

function weightedMean(n: number, value: (i: number) => number, weights: Weights): number {
  let sum = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    sum += wt(weights, i) * value(i);
    total += wt(weights, i);
  }
  return sum / total;
}

const classification = (name: MetricName, greaterIsBetter: boolean, score: Metric['score']): Metric => ({
  name,
  task: 'classification',
  greaterIsBetter,
  score,
});
const regression = (name: MetricName, greaterIsBetter: boolean, f: (y: ArrayLike<number>, p: ArrayLike<number>, w?: Weights) => number): Metric => ({
  name,
  task: 'regression',
  greaterIsBetter,
  score: (y, p, _nCols, w) => f(y, p, w),
});

export const METRICS: Readonly<Record<MetricName, Metric>> = {
  accuracy: classification('accuracy', true, (y, p, k, w) => accuracyScore(y, predictedClasses(p, k), w)),
  balanced_accuracy: classification('balanced_accuracy', true, (y, p, k, w) => balancedAccuracyScore(y, predictedClasses(p, k), w)),
  log_loss: classification('log_loss', false, logLoss),
  roc_auc: classification('roc_auc', true, rocAucScore),
  mse: regression('mse', false, meanSquaredError),
  rmse: regression('rmse', false, rootMeanSquaredError),
  mae: regression('mae', false, meanAbsoluteError),
  r2: regression('r2', true, r2Score),
};

export function isMetricName(name: unknown): name is MetricName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(METRICS, name);
}
