import assert from 'node:assert/strict';
import {
  accuracyScore,
  balancedAccuracyScore,
  logLoss,
  meanAbsoluteError,
  meanSquaredError,
  METRICS,
  predictedClasses,
  r2Score,
  rocAucScore,
  rootMeanSquaredError,
} from '../explainers/metrics.js';

// Expected numbers are worked out by hand from sklearn's definitions (or quoted from its docs).
const f32 = (xs: number[]) => Float32Array.from(xs);
const near = (actual: number, expected: number, tol = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} vs ${expected}`);

describe('metrics', () => {
  describe('predicted classes', () => {
    it('argmax with the first maximum on ties; a sigmoid column predicts 1 only above 0.5', () => {
      assert.deepEqual([...predictedClasses(f32([0.2, 0.5, 0.3, 0.4, 0.4, 0.2]), 3)], [1, 0]);
      assert.deepEqual([...predictedClasses(f32([0.5, 0.51, 0.49]), 1)], [0, 1, 0]);
    });
  });

  describe('accuracy', () => {
    it('fraction correct, and weighted', () => {
      // argmax -> [0, 2, 2, 1] against [0, 1, 2, 1]: 3 of 4.
      const proba = f32([0.8, 0.1, 0.1, 0.2, 0.3, 0.5, 0.1, 0.1, 0.8, 0.3, 0.6, 0.1]);
      near(METRICS.accuracy.score(f32([0, 1, 2, 1]), proba, 3), 0.75);
      // Weights 1, 2, 1, 1: the miss weighs 2 of 5.
      near(METRICS.accuracy.score(f32([0, 1, 2, 1]), proba, 3, [1, 2, 1, 1]), 0.6);
      near(accuracyScore([1, 0, 1], [1, 1, 1]), 2 / 3);
    });
  });

  describe('balanced accuracy', () => {
    it('mean recall over the classes present in the labels', () => {
      // recall(0) = 2/3, recall(1) = 1.
      near(balancedAccuracyScore([0, 0, 0, 1], [0, 0, 1, 1]), 5 / 6);
      // Class 2 is only predicted, never true: it has no recall and is left out.
      near(balancedAccuracyScore([0, 0, 0, 1], [0, 2, 1, 1]), (1 / 3 + 1) / 2);
      // Weights 1, 1, 2, 1: recall(0) = 2/4.
      near(balancedAccuracyScore([0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 2, 1]), 0.75);
    });
  });

  describe('log loss', () => {
    it("sklearn's docstring example: 0.21616...", () => {
      // log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]]), ham = 0, spam = 1.
      near(logLoss(f32([1, 0, 0, 1]), f32([0.1, 0.9, 0.9, 0.1, 0.8, 0.2, 0.35, 0.65]), 2), 0.21616187468057912);
    });
    it('one sigmoid column, weighted', () => {
      const p = f32([0.9, 0.2, 0.6]);
      near(logLoss(f32([1, 0, 0]), p, 1), -(Math.log(0.9) + Math.log(0.8) + Math.log(0.4)) / 3);
      near(logLoss(f32([1, 0, 0]), p, 1, [1, 2, 1]), -(Math.log(0.9) + 2 * Math.log(0.8) + Math.log(0.4)) / 4);
    });
    it('three classes', () => {
      const p = f32([0.7, 0.2, 0.1, 0.2, 0.5, 0.3, 0.1, 0.3, 0.6]);
      near(METRICS.log_loss.score(f32([0, 2, 1]), p, 3), -(Math.log(0.7) + Math.log(0.3) + Math.log(0.3)) / 3);
    });
    it('clips probabilities to [eps, 1 - eps] with float32 eps', () => {
      // Row 1: P(true) = 0 -> eps. Row 2: P(true) = 1 -> 1 - eps.
      const eps = 2 ** -23;
      near(logLoss(f32([1, 0]), f32([0, 0]), 1), -(Math.log(eps) + Math.log(1 - eps)) / 2, 1e-12);
    });
  });

  describe('ROC AUC', () => {
    it("sklearn's docstring example: 0.75", () => {
      near(rocAucScore(f32([0, 0, 1, 1]), f32([0.1, 0.4, 0.35, 0.8]), 1), 0.75);
    });
    it('tied scores count a (positive, negative) pair as one half', () => {
      // Pairs (pos, neg): (.5, .5) -> 1/2, (.5, .2) -> 1, (.9, .5) -> 1, (.9, .2) -> 1: 3.5 / 4.
      near(rocAucScore(f32([0, 1, 0, 1]), f32([0.5, 0.5, 0.2, 0.9]), 1), 0.875);
      // All scores tied: the ROC curve is the diagonal.
      near(rocAucScore(f32([0, 1, 0, 1]), f32([0.3, 0.3, 0.3, 0.3]), 1), 0.5);
    });
    it('with sample weights, each pair weighs w_pos * w_neg', () => {
      // weights 1, 2, 3, 1: (pos .5 w2, neg .5 w1) 2 * 1/2 = 1; (pos .5 w2, neg .2 w3) 6; (pos .9, neg .5) 1;
      // (pos .9, neg .2 w3) 3. Total 11 of W+ W- = 3 * 4.
      near(rocAucScore(f32([0, 1, 0, 1]), f32([0.5, 0.5, 0.2, 0.9]), 1, [1, 2, 3, 1]), 11 / 12);
    });
    it('two probability columns are scored by column 1', () => {
      near(rocAucScore(f32([0, 0, 1, 1]), f32([0.9, 0.1, 0.6, 0.4, 0.65, 0.35, 0.2, 0.8]), 2), 0.75);
    });
    it('multiclass: one-vs-rest, unweighted mean over classes', () => {
      const y = f32([0, 1, 2, 0, 1, 2]);
      const p = f32([0.7, 0.2, 0.1, 0.2, 0.5, 0.3, 0.1, 0.3, 0.6, 0.3, 0.4, 0.3, 0.4, 0.4, 0.2, 0.2, 0.5, 0.3]);
      // class 0: pos .7, .3 vs neg .2 .1 .4 .2 -> 4 + 3 = 7/8
      // class 1: pos .5, .4 vs neg .2 .3 .4 .5 -> 3.5 + 2.5 = 6/8
      // class 2: pos .6, .3 vs neg .1 .3 .3 .2 -> 4 + 3 = 7/8
      near(rocAucScore(y, p, 3), (7 / 8 + 6 / 8 + 7 / 8) / 3);
    });
    it('is undefined with one class', () => {
      assert.throws(() => rocAucScore(f32([1, 1]), f32([0.2, 0.4]), 1), RangeError);
    });
  });

  describe('regression', () => {
    // sklearn docstrings: y_true = [3, -0.5, 2, 7], y_pred = [2.5, 0.0, 2, 8].
    const y = [3, -0.5, 2, 7];
    const p = [2.5, 0, 2, 8];
    it('mse, rmse, mae, r2 as in sklearn docs', () => {
      near(meanSquaredError(y, p), 0.375, 1e-12);
      near(rootMeanSquaredError(y, p), Math.sqrt(0.375), 1e-12);
      near(meanAbsoluteError(y, p), 0.5, 1e-12);
      near(r2Score(y, p), 0.9486081370449679, 1e-12);
    });
    it('weighted', () => {
      const w = [1, 2, 1, 1];
      // Squared errors .25 .25 0 1 -> (0.25 + 0.5 + 1) / 5; absolute .5 .5 0 1 -> 2.5 / 5.
      near(meanSquaredError(y, p, w), 0.35, 1e-12);
      near(rootMeanSquaredError(y, p, w), Math.sqrt(0.35), 1e-12);
      near(meanAbsoluteError(y, p, w), 0.5, 1e-12);
      // Weighted mean of y = 11/5 = 2.2; SS_tot = .64 + 2 * 7.29 + .04 + 23.04 = 38.3; SS_res = 1.75.
      near(r2Score(y, p, w), 1 - 1.75 / 38.3, 1e-12);
    });
    it('r2 of a constant target: 1 if predicted exactly, else 0', () => {
      assert.equal(r2Score([2, 2], [2, 2]), 1);
      assert.equal(r2Score([2, 2], [2, 3]), 0);
    });
  });

  it('the registry says which way is better', () => {
    const better = Object.values(METRICS).filter((m) => m.greaterIsBetter).map((m) => m.name).sort();
    assert.deepEqual(better, ['accuracy', 'balanced_accuracy', 'r2', 'roc_auc']);
    assert.equal(METRICS.r2.score(f32([3, -0.5, 2, 7]), f32([2.5, 0, 2, 8]), 1), r2Score([3, -0.5, 2, 7], [2.5, 0, 2, 8]));
  });
});
