/**
 * Counterfactual explanations (explainers/counterfactuals/) on real tfjs models (wasm backend).
 * Oracles: the closed form of the minimal L1 counterfactual of a linear classifier, constraints
 * checked on every returned row (fast-check over random instances and declarations), validity
 * re-predicted by the model itself, and a freshly trained MLP on held-out rows.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import fc from 'fast-check';
import { counterfactuals } from '../explainers/counterfactuals/counterfactuals.js';
import type { CounterfactualOptions, CounterfactualResult, FeatureConstraint } from '../explainers/counterfactuals/types.js';
import { ExplainerInputError, type FeatureSpace, type Model, type Rows } from '../explainers/types.js';
import { counterfactualOptionsFromMetadata } from '../service/counterfactualConstraints.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { applyScaler, denseStack, fitScaler, foldStandardisation, train } from '../samples/lib/nn.js';
import { bernoulli, gaussian, intBetween, mulberry32 } from '../samples/lib/rng.js';

const SAMPLES = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'samples', 'models');

function rowsOf(matrix: number[][]): Rows {
  const d = matrix[0].length;
  const data = new Float32Array(matrix.length * d);
  matrix.forEach((r, i) => data.set(r, i * d));
  return { data, n: matrix.length, d };
}

function rowAt(rows: Rows, i: number): number[] {
  return Array.from(rows.data.subarray(i * rows.d, (i + 1) * rows.d));
}

/** Median absolute deviation, straight from its definition. */
function mad(values: number[]): number {
  const med = (a: number[]) => {
    const s = [...a].sort((x, y) => x - y);
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  };
  const m = med(values);
  return med(values.map((v) => Math.abs(v - m)));
}

/** A model that only predicts: no gradients, no breakpoints (a black box). */
function blackBox(m: Model): Model {
  return { nFeatures: m.nFeatures, nOutputs: m.nOutputs, predict: (r) => m.predict(r) };
}

/** Without what legitimately varies between runs: times, and reference predictions remembered from an earlier call. */
function withoutTimes(r: CounterfactualResult) {
  return { ...r, computeMs: 0, referenceEvaluations: 0, instances: r.instances.map((i) => ({ ...i, computeMs: 0 })) };
}

/** Dense(1, sigmoid) with the given weights: logit = w.x + b. */
async function logisticModel(w: number[], b: number): Promise<TfjsModel> {
  const net = tf.sequential({ layers: [tf.layers.dense({ inputShape: [w.length], units: 1, activation: 'sigmoid' })] });
  net.layers[0].setWeights([tf.tensor2d(w, [w.length, 1]), tf.tensor1d([b])]);
  return TfjsModel.create(net);
}

describe('counterfactuals', function () {
  this.timeout(300_000);
  before(async () => {
    if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
    await tf.ready();
  });

  describe('on a linear classifier: the closed-form minimal counterfactual under MAD-scaled L1', () => {
    // logit = w.x + b. Under L1 with per-feature scale MAD_j, the cheapest way to reach logit 0 moves
    // only the feature with the largest |w_j| x MAD_j, by -logit / w_j, at cost |logit| / (|w_j| MAD_j).
    const scales = [1, 10, 0.1, 5, 2];
    const w = [0.8, 0.05, 3, 0.1, 0.3];
    const b = 0.2;
    const names = ['a', 'b', 'c', 'd', 'e'];
    const space: FeatureSpace = { featureNames: names, outputNames: ['p'] };
    const rng = mulberry32(5);
    const ref = Array.from({ length: 2000 }, () => scales.map((s) => s * gaussian(rng)));
    const reference = rowsOf(ref);
    const logit = (x: number[]) => x.reduce((t, v, j) => t + w[j] * v, b);
    // Rejected rows whose crossing point along every feature stays inside the data's range.
    const lo = scales.map((_, j) => Math.min(...ref.map((r) => r[j])));
    const hi = scales.map((_, j) => Math.max(...ref.map((r) => r[j])));
    const inRangeEverywhere = (x: number[]) => w.every((wj, j) => x[j] - logit(x) / wj > lo[j] && x[j] - logit(x) / wj < hi[j]);
    const instances = ref.filter((x) => logit(x) < -0.2 && logit(x) > -2 && inRangeEverywhere(x)).slice(0, 12);
    const madOf = scales.map((_, j) => mad(Array.from({ length: reference.n }, (_, i) => reference.data[i * reference.d + j])));
    const ratio = w.map((wj, j) => Math.abs(wj) * madOf[j]);

    const expectClosedForm = (res: CounterfactualResult, xs: number[][], best: number) => {
      res.instances.forEach((r, i) => {
        const x = Array.from(Float32Array.from(xs[i]));
        const z = logit(x);
        assert.equal(r.status, 'found');
        const c = r.counterfactuals[0];
        assert.deepEqual(
          c.changes.map((ch) => ch.feature),
          [names[best]],
          `instance ${i}: changed ${c.changes.map((ch) => ch.feature)}; expected only ${names[best]} (ratio ${ratio[best].toFixed(3)})`,
        );
        const expected = x[best] - z / w[best];
        const change = Math.abs(expected - x[best]);
        assert.ok(
          Math.abs(c.values[best] - expected) <= 1e-4 * change + 1e-6,
          `instance ${i}: ${c.values[best]} vs closed form ${expected}`,
        );
        const cost = Math.abs(z) / (Math.abs(w[best]) * madOf[best]);
        assert.ok(Math.abs(c.distance - cost) <= 1e-4 * cost, `instance ${i}: distance ${c.distance} vs ${cost}`);
        // On the boundary from the favourable side: logit in [0, 1e-4].
        const zc = logit(c.values);
        assert.ok(zc >= -1e-6 && zc < 1e-4, `instance ${i}: logit at the counterfactual ${zc}`);
        assert.ok(c.prediction[0] >= 0.5 && c.valid);
      });
    };

    it('sets up a case with one clear best feature', () => {
      assert.ok(instances.length >= 10, `${instances.length} instances`);
      const sorted = [...ratio].sort((x, y) => y - x);
      assert.equal(ratio.indexOf(sorted[0]), 0);
      assert.ok(sorted[0] > 1.2 * sorted[1], `ratios ${ratio}`);
    });

    it('finds it with gradients, and as a black box', async () => {
      const model = await logisticModel(w, b);
      for (const m of [model, blackBox(model)]) {
        const res = await counterfactuals(m, rowsOf(instances), { space, reference, desired: { class: 1 }, minPlausibility: 0, seed: 3 });
        expectClosedForm(res, instances, 0);
      }
      model.dispose();
    });

    it('moves to the next best feature when the best is immutable, or may only move the wrong way', async () => {
      const model = await logisticModel(w, b);
      const order = ratio.map((r, j) => j).sort((p, q) => ratio[q] - ratio[p]);
      const second = order[1];
      assert.ok(ratio[second] > 1.1 * ratio[order[2]], `ratios ${ratio}`);
      for (const constraint of [{ immutable: true }, { monotone: 'decreasing' }] as FeatureConstraint[]) {
        // w_a > 0 and the logit must rise: "decreasing" forbids the only useful direction.
        const res = await counterfactuals(model, rowsOf(instances), {
          space,
          reference,
          constraints: { a: constraint },
          minPlausibility: 0,
          seed: 3,
        });
        expectClosedForm(res, instances, second);
      }
      model.dispose();
    });
  });

  describe('constraints hold on every returned row (property test)', () => {
    // Columns: 0 numeric, 1 numeric, 2 integer, 3 binary, 4-6 one-hot group "region", 7 integer.
    const names = ['x0', 'x1', 'count', 'flag', 'region_n', 'region_s', 'region_w', 'level'];
    const space: FeatureSpace = { featureNames: names, outputNames: ['p'], groups: [[4, 5, 6]] };
    const rng = mulberry32(9);
    const reference = rowsOf(
      Array.from({ length: 600 }, () => {
        const region = intBetween(rng, 0, 2);
        return [
          gaussian(rng),
          3 * gaussian(rng) + 1,
          intBetween(rng, 0, 9),
          bernoulli(rng, 0.4),
          region === 0 ? 1 : 0,
          region === 1 ? 1 : 0,
          region === 2 ? 1 : 0,
          intBetween(rng, 1, 5),
        ];
      }),
    );
    let model: TfjsModel;
    before(async () => {
      // Random weights, then the output bias shifted so that the model approves about half the rows.
      const net = denseStack(
        'prop',
        names.length,
        [
          { units: 12, activation: 'relu' },
          { units: 1, activation: 'sigmoid' },
        ],
        21,
      );
      const p = (await (await TfjsModel.create(net)).predict(reference)).map((v) => Math.log(v / (1 - v))).sort();
      const last = net.layers[net.layers.length - 1];
      const [kernel, bias] = last.getWeights();
      last.setWeights([kernel, bias.sub(p[p.length >> 1])]);
      model = await TfjsModel.create(net);
    });
    after(() => model.dispose());

    it('immutables never change; monotone, bounds, integers, one-hot rows and data ranges hold; every row is valid', async () => {
      const column = (j: number) => Array.from({ length: reference.n }, (_, i) => reference.data[i * reference.d + j]);
      const colMin = names.map((_, j) => Math.min(...column(j)));
      const colMax = names.map((_, j) => Math.max(...column(j)));
      const single = ['x0', 'x1', 'count', 'flag', 'level'];
      let returned = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: reference.n - 1 }),
          fc.record({
            immutable: fc.subarray([...single, 'region']),
            increasing: fc.subarray(['x0', 'x1', 'count', 'level']),
            maxX1: fc.option(fc.double({ min: -2, max: 6, noNaN: true }), { nil: undefined }),
            seed: fc.integer({ min: 0, max: 1000 }),
            k: fc.integer({ min: 1, max: 4 }),
          }),
          async (row, decl) => {
            const constraints: Record<string, FeatureConstraint> = { count: { type: 'integer' }, level: { type: 'integer' } };
            for (const f of decl.increasing) constraints[f] = { ...constraints[f], monotone: 'increasing' };
            for (const f of decl.immutable) constraints[f] = { ...constraints[f], immutable: true };
            if (decl.maxX1 !== undefined) constraints.x1 = { ...constraints.x1, max: decl.maxX1 };
            const x = rowAt(reference, row);
            const res = await counterfactuals(model, rowsOf([x]), {
              space,
              reference,
              constraints,
              k: decl.k,
              seed: decl.seed,
              maxEvaluations: 1500,
            });
            const r = res.instances[0];
            assert.ok(r.counterfactuals.length <= decl.k);
            returned += r.counterfactuals.length;
            if (r.status === 'already-desired') return;
            const again = await model.predict(rowsOf(r.counterfactuals.length ? r.counterfactuals.map((c) => c.values) : [x]));
            const want = r.desired as { class: number };
            r.counterfactuals.forEach((c, q) => {
              // values are the shortest decimals of float32 numbers: compare as float32.
              const v = c.values.map(Math.fround);
              for (const f of decl.immutable) {
                const cols = f === 'region' ? [4, 5, 6] : [names.indexOf(f)];
                for (const j of cols) assert.equal(v[j], Math.fround(x[j]), `immutable ${f} changed`);
              }
              for (const f of decl.increasing) {
                const j = names.indexOf(f);
                assert.ok(v[j] >= Math.fround(x[j]), `${f} decreased from ${x[j]} to ${v[j]}`);
              }
              if (decl.maxX1 !== undefined && v[1] !== Math.fround(x[1]))
                assert.ok(v[1] <= decl.maxX1 + 1e-6, `x1 ${v[1]} above max ${decl.maxX1}`);
              for (const j of [2, 7]) assert.ok(Number.isInteger(v[j]), `${names[j]} = ${v[j]} is not an integer`);
              assert.ok(v[3] === 0 || v[3] === 1);
              assert.equal(v[4] + v[5] + v[6], 1, 'region is not one-hot');
              for (let j = 0; j < names.length; j++) {
                if (v[j] === Math.fround(x[j])) continue;
                assert.ok(v[j] >= colMin[j] - 1e-6 && v[j] <= colMax[j] + 1e-6, `${names[j]} = ${v[j]} outside the data range`);
              }
              // Valid when re-predicted by the model here, not only by the explainer.
              const p = again[q];
              assert.equal(p >= 0.5 ? 1 : 0, want.class, `counterfactual ${q} predicted ${p}`);
              assert.ok(c.valid);
              assert.equal(c.sparsity, new Set(c.changes.map((ch) => ch.group ?? ch.feature)).size);
            });
          },
        ),
        { numRuns: 30, seed: 4242 },
      );
      assert.ok(returned >= 30, `only ${returned} counterfactuals returned over 30 runs: the property was barely exercised`);
    });
  });

  describe('on the credit sample', () => {
    let credit: LoadedModel;
    let rejected: Rows;
    before(async () => {
      credit = await loadModelFolder('credit', join(SAMPLES, 'credit'));
      const ref = credit.reference!.rows;
      const p = await credit.model.predict(ref);
      const rows: number[][] = [];
      for (let i = 0; i < ref.n && rows.length < 40; i++) if (p[i] < 0.5) rows.push(rowAt(ref, i));
      rejected = rowsOf(rows);
    });
    after(() => credit.model.dispose());

    const options = (): CounterfactualOptions => ({
      space: credit.space,
      reference: credit.reference!.rows,
      ...counterfactualOptionsFromMetadata(credit.metadata),
      seed: 7,
    });

    it('returns valid (re-predicted), diverse counterfactuals that keep sex and never lower age', async () => {
      const before = tf.memory().numTensors;
      const res = await counterfactuals(credit.model, rejected, options());
      assert.equal(tf.memory().numTensors, before);
      const sex = credit.space.featureNames.indexOf('sex');
      const age = credit.space.featureNames.indexOf('age');
      let found = 0;
      for (const [i, r] of res.instances.entries()) {
        assert.deepEqual(r.desired, { class: 1 });
        if (r.found) found++;
        const x = rowAt(rejected, i);
        const again = r.counterfactuals.length
          ? await credit.model.predict(rowsOf(r.counterfactuals.map((c) => c.values)))
          : new Float32Array();
        r.counterfactuals.forEach((c, q) => {
          assert.ok(again[q] >= 0.5, `instance ${i}: re-predicted ${again[q]}`);
          assert.equal(c.prediction[0], again[q]);
          assert.equal(c.values[sex], x[sex]);
          assert.ok(c.values[age] >= x[age]);
          assert.ok(c.distance > 0 && c.sparsity >= 1 && c.plausibility >= 0.01);
          for (const ch of c.changes) assert.notEqual(ch.from, ch.to);
        });
        const d = r.counterfactuals.map((c) => c.distance);
        assert.deepEqual(
          d,
          [...d]
            .sort((a, b) => a - b)
            .slice(0, 1)
            .concat(d.slice(1)),
          'the first is the cheapest',
        );
        assert.ok(d.every((v) => v >= d[0]));
        if (r.counterfactuals.length > 1) assert.ok(r.diversity!.meanPairwiseDistance > 0 && r.diversity!.dpp > 0);
      }
      assert.ok(found >= 0.95 * res.instances.length, `${found} of ${res.instances.length} found`);
      const labelled = res.instances.flatMap((r) => r.counterfactuals.flatMap((c) => c.changes)).find((ch) => ch.feature === 'part_time');
      if (labelled) assert.ok(['part time', 'full time'].includes(labelled.fromLabel!));
    });

    it('is deterministic under a seed, and each instance does not depend on the others in the call', async () => {
      const a = await counterfactuals(credit.model, rejected, options());
      const b = await counterfactuals(credit.model, rejected, options());
      assert.deepEqual(withoutTimes(a), withoutTimes(b));
      const alone = await counterfactuals(
        credit.model,
        { data: rejected.data.slice(3 * rejected.d, 4 * rejected.d), n: 1, d: rejected.d },
        options(),
      );
      assert.deepEqual({ ...alone.instances[0], computeMs: 0 }, { ...a.instances[3], computeMs: 0 });
    });

    it('says when the instance already has the desired outcome, and when nothing was found within the budget', async () => {
      const ref = credit.reference!.rows;
      const p = await credit.model.predict(ref);
      const approved = rowAt(
        ref,
        p.findIndex((v) => v >= 0.6),
      );
      const same = await counterfactuals(credit.model, rowsOf([approved]), { ...options(), desired: { class: 1 } });
      assert.equal(same.instances[0].status, 'already-desired');
      assert.equal(same.instances[0].counterfactuals[0].distance, 0);
      assert.deepEqual(same.instances[0].counterfactuals[0].changes, []);
      // Every feature frozen: nothing can change, so nothing is found.
      const frozen = Object.fromEntries(
        [...credit.space.featureNames.slice(0, 8), 'housing', 'sex', 'part_time', 'application_weekday'].map((f) => [
          f,
          { immutable: true },
        ]),
      );
      const none = await counterfactuals(
        credit.model,
        { data: rejected.data.slice(0, rejected.d), n: 1, d: rejected.d },
        { ...options(), constraints: frozen },
      );
      assert.equal(none.instances[0].found, false);
      assert.equal(none.instances[0].status, 'not-found');
      assert.deepEqual(none.instances[0].counterfactuals, []);
      // A budget too small to search: stops at it, says so.
      const poor = await counterfactuals(
        credit.model,
        { data: rejected.data.slice(0, rejected.d), n: 1, d: rejected.d },
        { ...options(), maxEvaluations: 20 },
      );
      assert.equal(poor.instances[0].stopReason, 'budget');
      assert.ok(poor.instances[0].modelEvaluations <= 20 + 3, `${poor.instances[0].modelEvaluations} evaluations`);
    });

    it('stops at the deadline and on abort, between model calls', async () => {
      const past = await counterfactuals(credit.model, rejected, { ...options(), deadline: Date.now() - 1 });
      for (const r of past.instances) {
        assert.equal(r.stopReason, 'deadline');
        assert.ok(r.modelEvaluations <= 1 + 3);
      }
      // A slow model and a deadline in the middle of the search: once a model call has returned after
      // the deadline (so the search's next check must see it), no further call starts except the one
      // that re-predicts the rows being returned. (Timing the calls' starts instead raced the search's
      // own check: a check just before the deadline and a call starting just after it.)
      const deadline = Date.now() + 120;
      let lastReturn = 0;
      let late = 0;
      const slow: Model = {
        nFeatures: credit.model.nFeatures,
        nOutputs: 1,
        predict: async (r) => {
          if (lastReturn >= deadline) late++;
          await new Promise((resolve) => setTimeout(resolve, 25));
          const out = await credit.model.predict(r);
          lastReturn = Date.now();
          return out;
        },
      };
      const cut = await counterfactuals(slow, rejected, { ...options(), deadline });
      assert.ok(cut.instances.every((r) => r.stopReason === 'deadline'));
      assert.ok(lastReturn >= deadline, 'the search ran into the deadline');
      assert.ok(late <= 1, `${late} calls started after a call had returned past the deadline`);
      for (const r of cut.instances) for (const c of r.counterfactuals) assert.ok(c.valid && c.prediction[0] >= 0.5);
      const controller = new AbortController();
      let calls = 0;
      let afterAbort = 0;
      const counting: Model = {
        nFeatures: credit.model.nFeatures,
        nOutputs: 1,
        predict: async (r) => {
          if (controller.signal.aborted) afterAbort++;
          if (++calls === 3) controller.abort(new Error('client went away'));
          return credit.model.predict(r);
        },
      };
      await assert.rejects(counterfactuals(counting, rejected, { ...options(), signal: controller.signal }), /client went away/);
      assert.equal(afterAbort, 0);
    });

    it('refuses bad input with a code and a message that says what to fix', async () => {
      const cases: [Partial<CounterfactualOptions>, string, RegExp][] = [
        [{ constraints: { salary: { immutable: true } } }, 'UNKNOWN_FEATURE', /"salary"/],
        [{ desired: { class: 2 } }, 'BAD_DESIRED', /0\.\.1/],
        [{ desired: { range: [0.9, 0.1] } }, 'BAD_DESIRED', /lo <= hi/],
        [{ k: 0 }, 'BAD_PARAMETER', /k must be/],
        [{ constraints: { housing: { monotone: 'increasing' } } }, 'BAD_CONSTRAINT', /no order/],
        [{ constraints: { income: { min: 5, max: 1 } } }, 'BAD_CONSTRAINT', /above max/],
        [{ reference: { data: new Float32Array(14), n: 1, d: 14 } }, 'BAD_REFERENCE', /at least 2/],
        [{ task: 'regression', desired: undefined }, 'DESIRED_REQUIRED', /range/],
      ];
      for (const [extra, code, message] of cases) {
        await assert.rejects(
          counterfactuals(credit.model, rejected, { ...options(), ...extra }),
          (e: unknown) => e instanceof ExplainerInputError && e.code === code && message.test(e.message),
          `${JSON.stringify(extra)} should fail with ${code}`,
        );
      }
      const nan = rejected.data.slice(0, rejected.d);
      nan[2] = NaN;
      await assert.rejects(
        counterfactuals(credit.model, { data: nan, n: 1, d: rejected.d }, options()),
        (e: unknown) => e instanceof ExplainerInputError && e.code === 'BAD_INSTANCES' && /debt_ratio/.test(e.message),
      );
    });
  });

  describe('multiclass and regression samples', () => {
    it('reaches a named class of penguins and a range of mpg for cars', async () => {
      const penguins = await loadModelFolder('penguins', join(SAMPLES, 'penguins'));
      const cars = await loadModelFolder('cars', join(SAMPLES, 'cars'));
      try {
        const pref = penguins.reference!.rows;
        const pp = await penguins.model.predict(pref);
        const adelie = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
          .map((i) => rowAt(pref, i))
          .filter((_, i) => pp[i * 3] > 0.5)
          .slice(0, 3);
        const res = await counterfactuals(penguins.model, rowsOf(adelie), {
          space: penguins.space,
          reference: pref,
          ...counterfactualOptionsFromMetadata(penguins.metadata),
          desired: { class: 2 },
          seed: 1,
        });
        for (const r of res.instances) {
          assert.equal(r.found, true);
          for (const c of r.counterfactuals) assert.equal(c.prediction.indexOf(Math.max(...c.prediction)), 2);
        }
        const cref = cars.reference!.rows;
        const cp = await cars.model.predict(cref);
        const thirsty = [...Array(cref.n).keys()].filter((i) => cp[i] < 20).slice(0, 3);
        const res2 = await counterfactuals(cars.model, rowsOf(thirsty.map((i) => rowAt(cref, i))), {
          space: cars.space,
          reference: cref,
          ...counterfactualOptionsFromMetadata(cars.metadata),
          desired: { range: [25, Infinity] },
          seed: 1,
        });
        for (const r of res2.instances) {
          assert.equal(r.found, true);
          for (const c of r.counterfactuals) assert.ok(c.prediction[0] >= 25, `mpg ${c.prediction[0]}`);
        }
      } finally {
        penguins.model.dispose();
        cars.model.dispose();
      }
    });
  });

  describe('on a freshly trained binary MLP with declared immutables, held-out rows', () => {
    // Synthetic applicants with a nonlinear label (interaction and threshold terms); the MLP is trained
    // here, and the counterfactuals are asked for held-out rows it rejects.
    const names = ['age', 'income', 'debt', 'tenure', 'group', 'channel_web', 'channel_branch', 'channel_phone', 'score'];
    const space: FeatureSpace = { featureNames: names, outputNames: ['approved'], groups: [[5, 6, 7]] };
    const constraints: Record<string, FeatureConstraint> = {
      age: { type: 'integer', monotone: 'increasing' },
      tenure: { type: 'integer', monotone: 'increasing' },
      group: { immutable: true },
      channel: { immutable: true },
      score: { type: 'integer', min: 300, max: 850 },
    };
    function generate(n: number, seed: number) {
      const rng = mulberry32(seed);
      const x: number[][] = [];
      const y: number[] = [];
      for (let i = 0; i < n; i++) {
        const group = bernoulli(rng, 0.5);
        const age = intBetween(rng, 20, 70);
        const income = Math.round(Math.exp(10.6 + 0.4 * gaussian(rng) - 0.1 * group));
        const debt = Math.max(0, 0.3 + 0.12 * gaussian(rng));
        const tenure = intBetween(rng, 0, Math.max(0, age - 20));
        const channel = intBetween(rng, 0, 2);
        const score = Math.min(850, Math.max(300, Math.round(650 + 60 * gaussian(rng))));
        const z =
          1.5 * Math.log(income / 40000) -
          5 * (debt - 0.3) +
          0.02 * (tenure - 8) +
          0.012 * (score - 650) -
          3 * Math.max(0, debt - 0.45) * (score < 600 ? 2 : 1) -
          0.4 * group +
          (channel === 1 ? 0.3 : 0) +
          0.3;
        x.push([age, income, debt, tenure, group, channel === 0 ? 1 : 0, channel === 1 ? 1 : 0, channel === 2 ? 1 : 0, score]);
        y.push(bernoulli(rng, 1 / (1 + Math.exp(-z))));
      }
      return { x, y };
    }

    it('finds a valid counterfactual for >= 95% of the rejected held-out rows, immutables untouched', async () => {
      const trainSet = generate(4000, 31);
      const held = generate(600, 32);
      const scaler = fitScaler(trainSet.x);
      const arch = [
        { units: 16, activation: 'relu' as const },
        { units: 8, activation: 'relu' as const },
        { units: 1, activation: 'sigmoid' as const },
      ];
      const trained = denseStack('heldout', names.length, arch, 5);
      await train(
        trained,
        applyScaler(trainSet.x, scaler),
        trainSet.y.map((v) => [v]),
        { epochs: 8, batchSize: 64, learningRate: 0.003, loss: 'binaryCrossentropy', rng: mulberry32(3) },
      );
      const raw = denseStack('heldout', names.length, arch, 5);
      foldStandardisation(trained, raw, scaler);
      trained.dispose();
      const model = await TfjsModel.create(raw);
      try {
        const reference = rowsOf(trainSet.x.slice(0, 1000));
        const heldRows = rowsOf(held.x);
        const p = await model.predict(heldRows);
        const rejectedIdx = [...Array(held.x.length).keys()].filter((i) => p[i] < 0.5);
        assert.ok(rejectedIdx.length > 100, `${rejectedIdx.length} rejected rows`);
        const rejected = rowsOf(rejectedIdx.map((i) => held.x[i]));
        const res = await counterfactuals(model, rejected, { space, reference, constraints, seed: 11 });
        const found = res.instances.filter((r) => r.found).length;
        assert.ok(found >= 0.95 * rejectedIdx.length, `valid counterfactuals for ${found} of ${rejectedIdx.length} rejected rows`);
        const all = res.instances.flatMap((r, i) => r.counterfactuals.map((c) => ({ c, x: rowAt(rejected, i) })));
        const again = await model.predict(rowsOf(all.map((a) => a.c.values)));
        all.forEach(({ c, x }, q) => {
          assert.ok(again[q] >= 0.5 && c.valid, `re-predicted ${again[q]}`);
          for (const j of [4, 5, 6, 7]) assert.equal(c.values[j], x[j], `${names[j]} changed`);
          assert.ok(c.values[0] >= x[0] && c.values[3] >= x[3], 'a monotone feature decreased');
          assert.ok(c.values[8] >= 300 && c.values[8] <= 850 && Number.isInteger(c.values[8]));
          assert.ok(Number.isFinite(c.distance) && c.distance > 0);
        });
      } finally {
        model.dispose();
      }
    });
  });
});
