import assert from 'node:assert/strict';
import { permutationImportance, type PermutationImportanceOptions } from '../explainers/permutationImportance.js';
import { r2Score } from '../explainers/metrics.js';
import { normal, seededRng } from '../explainers/random.js';
import { ExplainerInputError, type Importance, type Model, type Rows } from '../explainers/types.js';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** A plain-JS model from a per-row function; counts predict calls and rows. */
function model(nFeatures: number, nOutputs: number, f: (x: Float32Array) => number[]): Model & { calls: number; rows: number } {
  return {
    nFeatures,
    nOutputs,
    calls: 0,
    rows: 0,
    async predict(r) {
      this.calls++;
      this.rows += r.n;
      const out = new Float32Array(r.n * nOutputs);
      for (let i = 0; i < r.n; i++) out.set(f(r.data.subarray(i * r.d, (i + 1) * r.d)), i * nOutputs);
      return out;
    },
  };
}

/** n rows of d standard normal features, seeded. */
function gaussianRows(n: number, d: number, seed: number): Rows {
  const rng = seededRng(seed);
  return { data: Float32Array.from({ length: n * d }, () => normal(rng)), n, d };
}

const space = (names: string[], groups?: number[][]) => ({ featureNames: names, outputNames: ['y'], groups });
const byName = (imp: Importance) => Object.fromEntries(imp.importances.map((e) => [e.feature, e]));
const withoutTime = (imp: Importance) => ({ ...imp, computeMs: 0 });

describe('permutationImportance', () => {
  // Planted effect: y = 3 x0 + 0.5 x1 + noise; the model knows the truth and ignores x2.
  const n = 400;
  const X = gaussianRows(n, 3, 1);
  const noise = seededRng(2);
  const yReg = Float32Array.from({ length: n }, (_, i) => 3 * X.data[i * 3] + 0.5 * X.data[i * 3 + 1] + 0.1 * normal(noise));
  const regressor = () => model(3, 1, (x) => [3 * x[0] + 0.5 * x[1]]);

  describe('regression with a planted effect', () => {
    it('ranks x0 > x1 > x2, and a feature the model ignores scores exactly 0', async () => {
      const imp = await permutationImportance(regressor(), X, yReg, { space: space(['x0', 'x1', 'x2']), metric: 'mse', metrics: ['r2', 'rmse', 'mae'] });
      const e = byName(imp);
      assert.ok(e.x0.mean > e.x1.mean && e.x1.mean > 0, JSON.stringify(imp.importances));
      // Shuffling x_j adds w_j^2 * E(x_j - x_j')^2 = 2 w_j^2 to the MSE: 18 for x0, 0.5 for x1.
      assert.ok(Math.abs(e.x0.mean - 18) < 4, `x0 ${e.x0.mean}`);
      assert.ok(Math.abs(e.x1.mean - 0.5) < 0.15, `x1 ${e.x1.mean}`);
      assert.deepEqual(e.x2.values, [0, 0, 0, 0, 0]);
      assert.equal(e.x2.std, 0);
      for (const other of ['r2', 'rmse', 'mae']) {
        const o = Object.fromEntries(imp.others![other].importances.map((x) => [x.feature, x]));
        assert.ok(o.x0.mean > o.x1.mean && o.x1.mean > 0, `${other} ranks x0 > x1 > 0`);
        assert.equal(o.x2.mean, 0, `${other}: x2`);
      }
      assert.equal(imp.metric, 'mse');
      assert.ok(imp.baselineScore > 0 && imp.baselineScore < 0.02, `baseline mse ${imp.baselineScore}`);
      assert.ok(imp.others!.r2.baselineScore > 0.99);
      assert.equal(imp.nSamples, n);
      assert.equal(imp.repeats, 5);
      assert.equal(imp.modelEvaluations, n + 3 * 5 * n);
    });

    it('mean and population std (ddof = 0) summarise the values', async () => {
      const imp = await permutationImportance(regressor(), X, yReg, { space: space(['x0', 'x1', 'x2']), metric: 'r2', repeats: 7 });
      for (const e of imp.importances) {
        assert.equal(e.values.length, 7);
        const mu = e.values.reduce((a, b) => a + b, 0) / 7;
        assert.ok(Math.abs(e.mean - mu) < 1e-12);
        assert.ok(Math.abs(e.std - Math.sqrt(e.values.reduce((s, v) => s + (v - mu) ** 2, 0) / 7)) < 1e-12);
      }
    });

    it('is baseline minus permuted score: each value is one the exhaustive list of permutations allows', async () => {
      // Three rows have 6 permutations; every reported importance must be r2(baseline) - r2(one of them).
      const x3: Rows = { data: Float32Array.from([1, 0, 0, 2, 0, 0, 4, 0, 0]), n: 3, d: 3 };
      const y3 = Float32Array.from([1.5, 2, 3.5]);
      const base = r2Score(y3, [1, 2, 4]);
      const perms = [[1, 2, 4], [1, 4, 2], [2, 1, 4], [2, 4, 1], [4, 1, 2], [4, 2, 1]];
      const allowed = perms.map((p) => base - r2Score(y3, p));
      const imp = await permutationImportance(model(3, 1, (x) => [x[0]]), x3, y3, { space: space(['a', 'b', 'c']), metric: 'r2', repeats: 60 });
      const seen = new Set<number>();
      for (const v of imp.importances[0].values) {
        const k = allowed.findIndex((a) => Math.abs(a - v) < 1e-6);
        assert.ok(k >= 0, `value ${v} is no permutation's`);
        seen.add(k);
      }
      assert.equal(seen.size, 6, 'all 6 permutations turn up in 60 draws');
      assert.ok(Math.abs(imp.baselineScore - base) < 1e-12);
    });

    it('explains the output named in outputs of a multi-output regressor', async () => {
      const two = model(3, 2, (x) => [x[2], 3 * x[0] + 0.5 * x[1]]);
      const imp = await permutationImportance(two, X, yReg, { space: space(['x0', 'x1', 'x2']), metric: 'r2', output: 1 });
      assert.ok(imp.baselineScore > 0.99);
      assert.equal(byName(imp).x2.mean, 0);
      const viaOutputs = await permutationImportance(two, X, yReg, { space: space(['x0', 'x1', 'x2']), metric: 'r2', outputs: [1] });
      assert.deepEqual(viaOutputs.importances, imp.importances);
    });
  });

  describe('classification', () => {
    const rng = seededRng(3);
    const p = (x: ArrayLike<number>) => sigmoid(3 * x[0] + 1 * x[1]);
    const yBin = Float32Array.from({ length: n }, (_, i) => (rng() < p(X.data.subarray(i * 3, i * 3 + 3)) ? 1 : 0));
    const binary = () => model(3, 1, (x) => [p(x)]);

    it('ranks features on every classification metric from one set of predictions', async () => {
      const m = binary();
      const imp = await permutationImportance(m, X, yBin, {
        space: space(['x0', 'x1', 'x2']),
        metric: 'roc_auc',
        metrics: ['accuracy', 'balanced_accuracy', 'log_loss'],
      });
      for (const [name, entries] of [['roc_auc', imp.importances], ...Object.entries(imp.others!).map(([k, v]) => [k, v.importances] as const)] as const) {
        const e = Object.fromEntries(entries.map((x) => [x.feature, x.mean]));
        assert.ok(e.x0 > e.x1 && e.x1 > 0, `${name}: ${JSON.stringify(e)}`);
        assert.equal(e.x2, 0, `${name}: x2`);
      }
      // One predict for the baseline and one for all permuted copies: metrics share predictions.
      assert.equal(m.calls, 1 + 1);
      assert.ok(imp.others!.log_loss.baselineScore > 0 && imp.others!.log_loss.baselineScore < 0.69);
    });

    it('the primary metric gives the same bytes alone or with others', async () => {
      const alone = await permutationImportance(binary(), X, yBin, { space: space(['x0', 'x1', 'x2']), metric: 'log_loss', seed: 9 });
      const together = await permutationImportance(binary(), X, yBin, { space: space(['x0', 'x1', 'x2']), metric: 'log_loss', metrics: ['accuracy'], seed: 9 });
      assert.deepEqual(alone.importances, together.importances);
    });

    it('permutes a one-hot group as one block and reports it once', async () => {
      // Columns: x0, color=red, color=green, color=blue, x4. The model checks rows stay one-hot.
      const rngG = seededRng(4);
      const rowsG = Array.from({ length: 300 }, () => {
        const c = Math.floor(rngG() * 3);
        return [normal(rngG), c === 0 ? 1 : 0, c === 1 ? 1 : 0, c === 2 ? 1 : 0, normal(rngG)];
      });
      const data: Rows = { data: Float32Array.from(rowsG.flat()), n: 300, d: 5 };
      const softmax = model(5, 3, (x) => {
        assert.equal(x[1] + x[2] + x[3], 1, 'a permuted row is no longer one-hot');
        const z = [2 * x[1] + 0.5 * x[0], 2 * x[2], 2 * x[3]];
        const e = z.map(Math.exp);
        const s = e[0] + e[1] + e[2];
        return e.map((v) => v / s);
      });
      const labels = Float32Array.from(rowsG, (r) => (r[1] ? 0 : r[2] ? 1 : 2));
      const names = ['x0', 'color=red', 'color=green', 'color=blue', 'x4'];
      const imp = await permutationImportance(softmax, data, labels, { space: space(names, [[3, 1, 2]]), metric: 'accuracy', metrics: ['roc_auc', 'log_loss'] });
      assert.deepEqual(imp.importances.map((e) => e.feature), ['x0', 'color', 'x4']);
      const e = byName(imp);
      assert.ok(e.color.mean > 0.3, `color ${e.color.mean}`);
      assert.equal(e.x4.mean, 0);
      const named = await permutationImportance(softmax, data, labels, { space: space(names, [[1, 2, 3]]), metric: 'accuracy', groupNames: ['colour'] });
      assert.deepEqual(named.importances.map((x) => x.feature), ['x0', 'colour', 'x4']);
      // Without a separator in the common prefix, a group is named by joining its members.
      const unnamed = await permutationImportance(model(3, 1, () => [0]), X, yReg, { space: space(['x10', 'x11', 'z'], [[0, 1]]), metric: 'mse' });
      assert.deepEqual(unnamed.importances.map((x) => x.feature), ['x10+x11', 'z']);
    });
  });

  describe('reproducibility, sampling, batching', () => {
    const opts: PermutationImportanceOptions = { space: space(['x0', 'x1', 'x2']), metric: 'r2', seed: 42 };
    it('same seed, same bytes; another seed, other values', async () => {
      const a = await permutationImportance(regressor(), X, yReg, opts);
      const b = await permutationImportance(regressor(), X, yReg, opts);
      assert.equal(JSON.stringify(withoutTime(a)), JSON.stringify(withoutTime(b)));
      const c = await permutationImportance(regressor(), X, yReg, { ...opts, seed: 43 });
      assert.notDeepEqual(c.importances[0].values, a.importances[0].values);
    });

    it('maxSamples: a fraction or a count of rows, drawn once', async () => {
      const half = await permutationImportance(regressor(), X, yReg, { ...opts, maxSamples: 0.5 });
      assert.equal(half.nSamples, 200);
      assert.equal(half.modelEvaluations, 200 + 3 * 5 * 200);
      assert.equal(byName(half).x2.mean, 0, 'the baseline is scored on the same rows');
      const count = await permutationImportance(regressor(), X, yReg, { ...opts, maxSamples: 50 });
      assert.equal(count.nSamples, 50);
      assert.equal((await permutationImportance(regressor(), X, yReg, { ...opts, maxSamples: 1 })).nSamples, n);
    });

    it('uses sample weights in every score', async () => {
      const w = Float32Array.from({ length: n }, (_, i) => (i % 2 ? 3 : 1));
      const preds = Array.from({ length: n }, (_, i) => 3 * X.data[i * 3] + 0.5 * X.data[i * 3 + 1]);
      const imp = await permutationImportance(regressor(), X, yReg, { ...opts, sampleWeights: w });
      assert.ok(Math.abs(imp.baselineScore - r2Score(yReg, Float32Array.from(preds), w)) < 1e-12);
      const unweighted = await permutationImportance(regressor(), X, yReg, opts);
      assert.notEqual(imp.baselineScore, unweighted.baselineScore);
    });

    it('batches the permuted copies of small data for all features into one predict call', async () => {
      const m = regressor();
      await permutationImportance(m, X, yReg, opts);
      assert.equal(m.calls, 1 + 1);
      assert.equal(m.rows, n + 3 * 5 * n);
    });

    it('batches all repeats of a feature into one predict call, or chunks with the same result', async () => {
      const m = regressor();
      const whole = await permutationImportance(m, X, yReg, { ...opts, maxRowsPerCall: 5 * n });
      assert.equal(m.calls, 1 + 3);
      assert.equal(m.rows, n + 3 * 5 * n);
      const small = regressor();
      const chunked = await permutationImportance(small, X, yReg, { ...opts, maxRowsPerCall: 333 });
      assert.equal(small.calls, 2 + 3 * Math.ceil((5 * n) / 333));
      assert.deepEqual(chunked.importances, whole.importances);
      assert.deepEqual((await permutationImportance(regressor(), X, yReg, opts)).importances, whole.importances);
    });
  });

  describe('deadline and cancellation', () => {
    it('a passed deadline throws DEADLINE_EXCEEDED', async () => {
      await assert.rejects(
        permutationImportance(regressor(), X, yReg, { space: space(['a', 'b', 'c']), metric: 'mse', deadline: Date.now() - 1 }),
        (e: unknown) => e instanceof ExplainerInputError && e.code === 'DEADLINE_EXCEEDED',
      );
    });
    it('an aborted signal rejects', async () => {
      const ctl = new AbortController();
      ctl.abort();
      await assert.rejects(permutationImportance(regressor(), X, yReg, { space: space(['a', 'b', 'c']), metric: 'mse', signal: ctl.signal }), {
        name: 'AbortError',
      });
    });
  });

  describe('bad input', () => {
    const s = space(['a', 'b', 'c']);
    const two: Rows = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), n: 2, d: 3 };
    const cls = () => model(3, 1, (x) => [sigmoid(x[0])]);
    const cases: [string, () => Promise<unknown>, string][] = [
      ['data width', () => permutationImportance(regressor(), { data: new Float32Array(4), n: 2, d: 2 }, f32(2), { space: s, metric: 'mse' }), 'BAD_DATA'],
      ['one row', () => permutationImportance(regressor(), { data: new Float32Array(3), n: 1, d: 3 }, f32(1), { space: s, metric: 'mse' }), 'BAD_DATA'],
      ['NaN in data', () => permutationImportance(regressor(), { data: Float32Array.from([1, NaN, 3, 4, 5, 6]), n: 2, d: 3 }, f32(2), { space: s, metric: 'mse' }), 'BAD_DATA'],
      ['label count', () => permutationImportance(regressor(), two, f32(3), { space: s, metric: 'mse' }), 'BAD_LABELS'],
      ['label not a class', () => permutationImportance(cls(), two, Float32Array.from([0, 2]), { space: s, metric: 'accuracy' }), 'BAD_LABELS'],
      ['fractional label', () => permutationImportance(cls(), two, Float32Array.from([0, 0.5]), { space: s, metric: 'accuracy' }), 'BAD_LABELS'],
      ['roc_auc with one class', () => permutationImportance(cls(), two, Float32Array.from([1, 1]), { space: s, metric: 'roc_auc' }), 'BAD_LABELS'],
      ['unknown metric', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'f1' as never }), 'BAD_PARAMETER'],
      ['mixed metrics', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'mse', metrics: ['accuracy'] }), 'BAD_PARAMETER'],
      ['repeats 0', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'mse', repeats: 0 }), 'BAD_PARAMETER'],
      ['maxSamples above n', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'mse', maxSamples: 3 }), 'BAD_PARAMETER'],
      ['maxSamples 0', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'mse', maxSamples: 0 }), 'BAD_PARAMETER'],
      ['weight count', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'mse', sampleWeights: [1] }), 'BAD_PARAMETER'],
      ['negative weight', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'mse', sampleWeights: [1, -1] }), 'BAD_PARAMETER'],
      ['zero weights', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'mse', sampleWeights: [0, 0] }), 'BAD_PARAMETER'],
      ['output index', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'mse', output: 1 }), 'BAD_OUTPUTS'],
      ['metric of the wrong task', () => permutationImportance(regressor(), two, f32(2), { space: s, metric: 'accuracy', task: 'regression' }), 'BAD_PARAMETER'],
      ['overlapping groups', () => permutationImportance(regressor(), two, f32(2), { space: space(['a', 'b', 'c'], [[0, 1], [1, 2]]), metric: 'mse' }), 'BAD_GROUPS'],
      ['group column out of range', () => permutationImportance(regressor(), two, f32(2), { space: space(['a', 'b', 'c'], [[0, 3]]), metric: 'mse' }), 'BAD_GROUPS'],
    ];
    for (const [name, call, code] of cases) {
      it(`${name} -> ${code}`, async () => {
        await assert.rejects(call(), (err: unknown) => {
          assert.ok(err instanceof ExplainerInputError, String(err));
          assert.equal(err.code, code);
          return true;
        });
      });
    }
  });
});

function f32(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i);
}
