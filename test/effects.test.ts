/**
 * Global effects held to oracles that do not come from our code: closed forms (a linear model's PD
 * and ALE are w_i (x - c); the Shapley interaction values of a product), properties that must hold
 * (ICE curves of an additive model are parallel; PD is the mean of ICE; the 2-D ALE of x1 * x2 has
 * mixed differences (Δz1)(Δz2) and that of an additive model is 0), brute-force enumeration written
 * here (Shapley values), a planted interaction, and a case built so PD is biased and ALE is not.
 * Real tfjs models (wasm) where the oracle allows, plain JS models where it needs an exact function.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { loadModelRepository } from '../models/repository.js';
import { renderEffect } from '../render/index.js';
import { JSDOM } from 'jsdom';
import { kernelShap } from '../explainers/kernelShap.js';
import { normal, seededRng } from '../explainers/random.js';
import { ExplainerInputError, type FeatureSpace, type Model, type Rows } from '../explainers/types.js';
import {
  accumulatedLocalEffects,
  accumulatedLocalEffects2d,
  approximateInteractions,
  computeEffects,
  individualConditionalExpectation,
  partialDependence,
  partialDependence2d,
  shapDependence,
  shapleyInteractionValues,
  type AleEffect,
  type DependenceEffect,
  type IceEffect,
  type PartialDependenceEffect,
} from '../explainers/effects/index.js';

type Fn = (row: Float32Array) => number[];

/** A plain JS model that counts its calls and rows. */
function jsModel(d: number, nOutputs: number, fn: Fn): Model & { rows: number; calls: number } {
  const model = {
    nFeatures: d,
    nOutputs,
    rows: 0,
    calls: 0,
    async predict(rows: Rows) {
      model.rows += rows.n;
      model.calls++;
      const out = new Float32Array(rows.n * nOutputs);
      for (let i = 0; i < rows.n; i++) out.set(fn(rows.data.subarray(i * d, (i + 1) * d)), i * nOutputs);
      return out;
    },
  };
  return model;
}

function randomRows(n: number, d: number, seed: number, gen?: (rng: () => number, j: number) => number): Rows {
  const rng = seededRng(seed);
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j] = gen ? gen(rng, j) : normal(rng);
  return { data, n, d };
}

function space(d: number, nOutputs = 1, groups?: number[][]): FeatureSpace {
  return {
    featureNames: Array.from({ length: d }, (_, i) => `x${i}`),
    outputNames: Array.from({ length: nOutputs }, (_, i) => `y${i}`),
    ...(groups && { groups }),
  };
}

const column = (r: Rows, j: number) => Array.from({ length: r.n }, (_, i) => r.data[i * r.d + j]);
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

function assertClose(actual: number, expected: number, tol: number, what = '') {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tol ${tol})`);
}

async function expectCode(p: Promise<unknown> | (() => Promise<unknown>), code: string): Promise<ExplainerInputError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof ExplainerInputError, `expected ExplainerInputError ${code}, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.length > 20);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** A tfjs Sequential of Dense layers with weights drawn from a seeded normal (or given). */
async function tfjsDense(
  d: number,
  layers: { units: number; activation?: 'linear' | 'tanh' | 'relu' | 'sigmoid' | 'softmax'; kernel?: number[][]; bias?: number[] }[],
  seed = 1,
): Promise<TfjsModel> {
  const rng = seededRng(seed);
  const net = tf.sequential();
  let inputs = d;
  for (const [k, l] of layers.entries()) {
    const layer = tf.layers.dense({ units: l.units, activation: l.activation ?? 'linear', ...(k === 0 ? { inputShape: [d] } : {}) });
    net.add(layer);
    const kernel = l.kernel ?? Array.from({ length: inputs }, () => Array.from({ length: l.units }, () => normal(rng) / Math.sqrt(inputs)));
    const bias = l.bias ?? Array.from({ length: l.units }, () => 0.1 * normal(rng));
    const t = [tf.tensor2d(kernel), tf.tensor1d(bias)];
    layer.setWeights(t);
    t.forEach((x) => x.dispose());
    inputs = l.units;
  }
  return TfjsModel.create(net);
}

describe('effects', function () {
  this.timeout(120_000);

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
  });

  describe('linear model (tfjs): PD and ALE are w_i (x - c)', () => {
    const d = 4;
    // Two outputs, so "per output" is checked too: W[j][o].
    const W = [
      [1.5, -0.5],
      [-2, 0.25],
      [0.75, 3],
      [0, 1],
    ];
    const b = [0.3, -1];
    const data = randomRows(400, d, 11, (rng, j) => normal(rng) * (j + 1) + j);
    let model: TfjsModel;
    before(async () => {
      model = await tfjsDense(d, [{ units: 2, kernel: W, bias: b }]);
    });

    it('PD(v) = w_i (v - mean x_i) + E f, for every feature and output, leaking no tensors', async () => {
      const before = tf.memory().numTensors;
      const r = await computeEffects(model, space(d, 2), { kind: 'pd', features: ['x0', 'x1', 'x2', 'x3'] }, { defaultData: data });
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      assert.equal(r.effects.length, 8);
      for (const e of r.effects as PartialDependenceEffect[]) {
        const j = Number(e.feature.slice(1));
        const o = e.outputIndex;
        const c = mean(column(data, j));
        let Ef = b[o];
        for (let k = 0; k < d; k++) Ef += W[k][o] * mean(column(data, k));
        assert.equal(e.grid.length, 50);
        e.grid.forEach((v, k) => assertClose(e.values[k], W[j][o] * (v - c) + Ef, 2e-4 * (1 + Math.abs(Ef)), `${e.feature}/${e.output} at ${v}`));
        assert.equal(e.deciles!.length, 9);
      }
      // One predict call per feature (both outputs come from it): 4 features x 50 grid points x 400 rows.
      assert.equal(r.modelEvaluations, 4 * 50 * 400);
    });

    it('ALE is w_i (z - c), centred so its count-weighted bin midpoints average 0', async () => {
      const r = await computeEffects(model, space(d, 2), { kind: 'ale', features: ['x0', 'x2'] }, { defaultData: data });
      for (const e of r.effects as AleEffect[]) {
        const j = Number(e.feature.slice(1));
        const w = W[j][e.outputIndex];
        assert.equal(e.grid.length, 21);
        assert.equal(e.counts.reduce((a, c) => a + c, 0), 400);
        // Slope exactly w between every pair of edges ...
        e.grid.forEach((z, k) => assertClose(e.values[k] - e.values[0], w * (z - e.grid[0]), 1e-4 * (1 + Math.abs(w * z)), `${e.feature} slope`));
        // ... and centred: sum_k n_k (A_{k-1} + A_k) / 2 = 0, i.e. c = the rows' mean bin midpoint.
        const centre = e.counts.reduce((s, n, k) => s + (n * (e.values[k] + e.values[k + 1])) / 2, 0) / 400;
        assertClose(centre, 0, 1e-5, 'centring');
        const c = e.counts.reduce((s, n, k) => s + (n * (e.grid[k] + e.grid[k + 1])) / 2, 0) / 400;
        e.grid.forEach((z, k) => assertClose(e.values[k], w * (z - c), 1e-4 * (1 + Math.abs(w * z)), `${e.feature} value`));
        // Every row of a bin has the same local effect: no spread, a zero-width band.
        assert.ok(e.stderr.every((s) => s < 1e-5));
        assert.deepEqual(e.intervals![0], [e.grid[0], e.grid[1]]);
      }
      assert.equal(r.modelEvaluations, 2 * 2 * 400, 'two model rows per data row per feature');
    });

    it('in logit space a logistic model has PD and ALE linear in the feature with slope w_i', async () => {
      const w = [1.2, -0.8, 0.5];
      const logistic = await tfjsDense(3, [{ units: 1, activation: 'sigmoid', kernel: w.map((v) => [v]), bias: [0.2] }]);
      const x = randomRows(300, 3, 5);
      for (const kind of ['pd', 'ale'] as const) {
        const r = await computeEffects(logistic, space(3), { kind, features: ['x0', 'x1'], parameters: { link: 'logit' } }, { defaultData: x });
        for (const e of r.effects as (PartialDependenceEffect | AleEffect)[]) {
          const wj = w[Number(e.feature.slice(1))];
          assert.equal(e.link, 'logit');
          e.grid.forEach((z, k) => assertClose(e.values[k] - e.values[0], wj * (z - e.grid[0]), 2e-3, `${kind} ${e.feature}`));
        }
        // In probability space the same curves are not straight lines.
        const p = await computeEffects(logistic, space(3), { kind, features: ['x0'] }, { defaultData: x });
        const e = p.effects[0] as PartialDependenceEffect;
        const slopes = e.grid.slice(1).map((z, k) => (e.values[k + 1] - e.values[k]) / (z - e.grid[k]));
        assert.ok(Math.max(...slopes) - Math.min(...slopes) > 0.05, 'probability-space curve bends');
      }
    });
  });

  describe('ICE', () => {
    it('an additive tfjs network (block-diagonal hidden layer) has parallel ICE curves; a mixing one does not', async () => {
      const d = 3;
      const h = 4;
      const rng = seededRng(3);
      const kernel = Array.from({ length: d }, (_, j) => Array.from({ length: d * h }, (_, u) => (Math.floor(u / h) === j ? 1.5 * normal(rng) : 0)));
      const additive = await tfjsDense(d, [{ units: d * h, activation: 'tanh', kernel }, { units: 1 }], 4);
      const mixing = await tfjsDense(d, [{ units: 8, activation: 'tanh' }, { units: 1 }], 4);
      const data = randomRows(60, d, 9);
      const spread = async (m: Model) => {
        const [e] = (await computeEffects(m, space(d), { kind: 'ice', features: ['x1'], parameters: { resolution: 15 } }, { defaultData: data })).effects as IceEffect[];
        let worst = 0;
        for (let k = 0; k < e.grid.length; k++) {
          const rises = e.curves.map((c) => c[k] - c[0]);
          worst = Math.max(worst, Math.max(...rises) - Math.min(...rises));
        }
        return { worst, e };
      };
      const add = await spread(additive);
      assert.ok(add.worst < 1e-5, `additive curves differ by ${add.worst}`);
      // The curves themselves differ (by the other features' contributions): parallel, not equal.
      assert.ok(Math.abs(add.e.curves[0][0] - add.e.curves[1][0]) > 1e-3);
      const mix = await spread(mixing);
      assert.ok(mix.worst > 1e-2, `a network that mixes features gives non-parallel curves (${mix.worst})`);
    });

    it('PD is the mean of the ICE curves, and both match predictions made here grid point by grid point', async () => {
      const d = 5;
      const model = await tfjsDense(d, [{ units: 16, activation: 'relu' }, { units: 8, activation: 'tanh' }, { units: 3, activation: 'softmax' }], 7);
      const data = randomRows(120, d, 13);
      const pd = await partialDependence(model, data, 'x2', { space: space(d, 3), resolution: 12 });
      const ice = await individualConditionalExpectation(model, data, 'x2', { space: space(d, 3), resolution: 12 });
      assert.equal(pd.length, 3);
      for (let o = 0; o < 3; o++) {
        assert.deepEqual(ice[o].grid, pd[o].grid);
        pd[o].grid.forEach((v, k) => {
          assertClose(mean(ice[o].curves.map((c) => c[k])), pd[o].values[k], 1e-9, 'PD = mean ICE');
          assertClose(ice[o].values[k], pd[o].values[k], 1e-9, 'ICE values are the PD');
        });
      }
      // Independent path: one predict per grid point, done here.
      for (const [k, v] of pd[0].grid.entries()) {
        const rows = { ...data, data: data.data.slice() };
        for (let i = 0; i < rows.n; i++) rows.data[i * d + 2] = v;
        const p = await model.predict(rows);
        for (let o = 0; o < 3; o++) {
          const want = mean(Array.from({ length: rows.n }, (_, i) => p[i * 3 + o]));
          assertClose(pd[o].values[k], want, 1e-6, `PD output ${o} at ${v}`);
          for (const i of [0, 57, 119]) assertClose(ice[o].curves[i][k], p[i * 3 + o], 1e-7, `ICE row ${i}`);
        }
      }
    });

    it('centred ICE subtracts each curve at the first grid point; curves of a sample name their data rows', async () => {
      const model = jsModel(2, 1, (r) => [r[0] * r[1] + r[1]]);
      const data = randomRows(50, 2, 21);
      const r = await computeEffects(model, space(2), { kind: 'ice', features: ['x0'], parameters: { centered: true, maxRows: 20, seed: 3, resolution: 5 } }, { defaultData: data });
      const e = r.effects[0] as IceEffect;
      assert.equal(e.curves.length, 20);
      assert.ok(e.centered);
      e.curves.forEach((c, i) => {
        const x1 = data.data[e.rowIndices[i] * 2 + 1];
        assert.equal(e.rowValues[i], data.data[e.rowIndices[i] * 2]);
        assert.equal(c[0], 0);
        // f(v) - f(v0) = (v - v0) x1 exactly for this row.
        e.grid.forEach((v, k) => assertClose(c[k], Math.fround(v * x1 + x1) - Math.fround(e.grid[0] * x1 + x1), 1e-5));
      });
      assert.equal(new Set(e.rowIndices).size, 20);
      assert.ok(e.rowIndices.every((i, k) => k === 0 || i > e.rowIndices[k - 1]));
    });
  });

  describe('ALE', () => {
    it('for correlated features avoids the extrapolation bias of PD', async () => {
      // x2 follows x1 closely; off that ridge the model has a steep valley no row ever visits. On the
      // data f ≈ x1, whose effect is 1 per unit. PD averages over x2 from all rows, i.e. far off the
      // ridge, and picks up 10 (v - x2)^2 (a bump of ~2); ALE only moves rows within their bin.
      const n = 2000;
      const data = randomRows(n, 2, 31, () => 0);
      const rng = seededRng(32);
      for (let i = 0; i < n; i++) {
        const x1 = rng();
        data.data[i * 2] = x1;
        data.data[i * 2 + 1] = x1 + 0.01 * normal(rng);
      }
      const model = jsModel(2, 1, (r) => [r[0] + 10 * (r[0] - r[1]) ** 2]);
      const [ale] = await accumulatedLocalEffects(model, data, 'x0', { space: space(2) });
      const [pd] = await partialDependence(model, data, 'x0', { space: space(2) });
      const aleError = Math.max(...ale.grid.map((z, k) => Math.abs(ale.values[k] - ale.values[0] - (z - ale.grid[0]))));
      const pdError = Math.max(...pd.grid.map((v, k) => Math.abs(pd.values[k] - pd.values[0] - (v - pd.grid[0]))));
      assert.ok(aleError < 0.02, `ALE error ${aleError}`);
      assert.ok(pdError > 1, `PD is biased by ${pdError}`);
    });

    it('2-D ALE of x1 * x2 has mixed differences (Δz1)(Δz2) in every cell; of an additive model it is 0', async () => {
      const data = randomRows(1500, 3, 41);
      const product = jsModel(3, 1, (r) => [r[0] * r[1] + r[2]]);
      const [e] = await accumulatedLocalEffects2d(product, data, ['x0', 'x1'], { space: space(3), bins: 8 });
      assert.equal(e.grid.length, 9);
      assert.equal(e.grid2.length, 9);
      assert.equal(e.counts.flat().reduce((a, b) => a + b, 0), 1500);
      for (let k = 1; k < e.grid.length; k++) {
        for (let l = 1; l < e.grid2.length; l++) {
          const mixed = e.values[k][l] - e.values[k - 1][l] - e.values[k][l - 1] + e.values[k - 1][l - 1];
          const want = (e.grid[k] - e.grid[k - 1]) * (e.grid2[l] - e.grid2[l - 1]);
          assertClose(mixed, want, 1e-5 * (1 + Math.abs(want)), `cell ${k},${l}`);
        }
      }
      // Pure interaction: no first-order effect of x0 is left (count-weighted mean of its differences is 0).
      for (let k = 0; k < e.grid.length - 1; k++) {
        let s = 0;
        for (let l = 0; l < e.grid2.length - 1; l++) s += e.counts[k][l] * (e.values[k + 1][l] - e.values[k][l] + e.values[k + 1][l + 1] - e.values[k][l + 1]);
        assertClose(s, 0, 1e-5, `no main effect of x0 in column ${k}`);
      }
      const additive = jsModel(3, 1, (r) => [r[0] ** 3 + Math.sin(2 * r[1]) + r[2]]);
      const [z] = await accumulatedLocalEffects2d(additive, data, ['x0', 'x1'], { space: space(3), bins: 8 });
      assert.ok(z.values.flat().every((v) => Math.abs(v) < 1e-5), 'an additive model has no interaction');
    });

    it('local-effect spread gives the band: f = x0 * x1 has per-bin stderr (Δz) sd(x1) / sqrt(n_k)', async () => {
      const data = randomRows(800, 2, 51);
      const model = jsModel(2, 1, (r) => [r[0] * r[1]]);
      const [e] = await accumulatedLocalEffects(model, data, 'x0', { space: space(2), bins: 10 });
      // Expected variance of each bin's mean from the rows' x1 values, computed here.
      let acc = 0;
      for (let k = 0; k < e.counts.length; k++) {
        const ys: number[] = [];
        for (let i = 0; i < 800; i++) {
          const x = data.data[i * 2];
          const inBin = k === 0 ? x <= e.grid[1] : x > e.grid[k] && x <= e.grid[k + 1];
          if (inBin) ys.push((e.grid[k + 1] - e.grid[k]) * data.data[i * 2 + 1]);
        }
        assert.equal(ys.length, e.counts[k]);
        const m = mean(ys);
        acc += ys.reduce((s, y) => s + (y - m) ** 2, 0) / (ys.length - 1) / ys.length;
        assertClose(e.stderr[k + 1], Math.sqrt(acc), 1e-6, `stderr at edge ${k + 1}`);
        assertClose(e.upper[k + 1] - e.values[k + 1], 1.96 * e.stderr[k + 1], 1e-3 * e.stderr[k + 1] + 1e-12);
      }
    });

    it('categorical ALE of g(c) + x is g(c) - its frequency-weighted mean, over categories ordered by similarity', async () => {
      // Category codes 0..3; the other feature's distribution puts them in the order 2, 0, 3, 1.
      const centre: Record<number, number> = { 2: 0, 0: 1, 3: 2, 1: 3 };
      const g = [0.5, -1, 2, 0.25];
      const n = 800;
      const rng = seededRng(61);
      const data = randomRows(n, 2, 62, () => 0);
      for (let i = 0; i < n; i++) {
        const c = i % 4;
        data.data[i * 2] = c;
        data.data[i * 2 + 1] = centre[c] + 0.3 * normal(rng);
      }
      const model = jsModel(2, 1, (r) => [g[r[0]] + r[1]]);
      const sp = space(2);
      const info = { featureTypes: ['categorical', 'numeric'] };
      const [e] = await accumulatedLocalEffects(model, data, 'x0', { space: sp, ...info });
      assert.equal(e.featureKind, 'categorical');
      assert.deepEqual(e.grid, [2, 0, 3, 1]);
      assert.deepEqual(e.categories, ['2', '0', '3', '1']);
      assert.equal(e.categoryOrder, 'similarity');
      const gm = e.grid.reduce((s, c, k) => s + e.counts[k] * g[c], 0) / n;
      e.grid.forEach((c, k) => assertClose(e.values[k], g[c] - gm, 1e-5, `category ${c}`));
      const [v] = await accumulatedLocalEffects(model, data, 'x0', { space: sp, ...info, categoryOrder: 'value' });
      assert.deepEqual(v.grid, [0, 1, 2, 3]);
      v.grid.forEach((c, k) => assertClose(v.values[k], g[c] - gm, 1e-5, `category ${c} (value order)`));
    });

    it('a one-hot group is one categorical feature: PD sets its members, ALE accumulates across them', async () => {
      // Columns 1..3 are one-hot (with a dropped reference level: all zero).
      const effect = [0.7, -0.4, 1.1, 0]; // members 0..2, then "(none)"
      const n = 400;
      const data = randomRows(n, 4, 71, () => 0);
      const rng = seededRng(72);
      for (let i = 0; i < n; i++) {
        data.data[i * 4] = normal(rng);
        const k = i % 4;
        if (k < 3) data.data[i * 4 + 1 + k] = 1;
      }
      const model = jsModel(4, 1, (r) => [r[0] + 0.7 * r[1] - 0.4 * r[2] + 1.1 * r[3]]);
      const sp = { featureNames: ['x', 'colour=red', 'colour=green', 'colour=blue'], outputNames: ['y'], groups: [[1, 2, 3]] };
      const r = await computeEffects(model, sp, { kind: 'pd', features: ['colour'] }, { defaultData: data });
      const e = r.effects[0] as PartialDependenceEffect;
      assert.equal(e.featureKind, 'one-hot');
      assert.deepEqual(e.grid, [0, 1, 2, 3]);
      assert.deepEqual(e.categories, ['colour=red', 'colour=green', 'colour=blue', '(none)']);
      assert.deepEqual(e.counts, [100, 100, 100, 100]);
      const mx = mean(column(data, 0));
      e.grid.forEach((k) => assertClose(e.values[k], effect[k] + mx, 1e-5, `category ${k}`));
      const ale = (await computeEffects(model, sp, { kind: 'ale', features: ['colour'], parameters: { categoryOrder: 'value' } }, { defaultData: data })).effects[0] as AleEffect;
      const em = mean(effect);
      ale.grid.forEach((k, i) => assertClose(ale.values[i], effect[k] - em, 1e-5, `ALE category ${k}`));
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['colour=red'] }, { defaultData: data }), 'BAD_FEATURE');
      // A user grid names member columns.
      const g = (await computeEffects(model, sp, { kind: 'pd', features: ['colour'], grid: { colour: ['colour=blue', '(none)'] } }, { defaultData: data })).effects[0];
      assert.deepEqual(g.grid, [2, 3]);
    });
  });

  describe('2-D partial dependence', () => {
    it('is the grid-product average, one predict call for the whole product', async () => {
      const model = jsModel(3, 1, (r) => [r[0] * r[1] + r[2]]);
      const data = randomRows(30, 3, 81);
      const [e] = await partialDependence2d(model, data, ['x0', 'x1'], { space: space(3), grid: [-1, 0, 2], grid2: [0.5, 1] });
      assert.equal(model.calls, 1);
      assert.equal(e.modelEvaluations, 3 * 2 * 30);
      const m2 = mean(column(data, 2));
      [-1, 0, 2].forEach((a, k) => [0.5, 1].forEach((b, l) => assertClose(e.values[k][l], Math.fround(a * b) + m2, 1e-5)));
    });
  });

  describe('Shapley interaction values (exact)', () => {
    /** Exact Shapley values by the permutation definition: mean marginal contribution over all orderings. */
    function shapleyByOrderings(fn: Fn, x: Float32Array, bg: Rows): number[] {
      const d = bg.d;
      const v = (S: number) => {
        let s = 0;
        const row = new Float32Array(d);
        for (let b = 0; b < bg.n; b++) {
          row.set(bg.data.subarray(b * d, (b + 1) * d));
          for (let j = 0; j < d; j++) if ((S >> j) & 1) row[j] = x[j];
          s += Math.fround(fn(row)[0]);
        }
        return s / bg.n;
      };
      const phi = new Array(d).fill(0);
      let count = 0;
      const permute = (prefix: number[], rest: number[]) => {
        if (rest.length === 0) {
          let S = 0;
          for (const j of prefix) {
            phi[j] += v(S | (1 << j)) - v(S);
            S |= 1 << j;
          }
          count++;
          return;
        }
        rest.forEach((j, k) => permute([...prefix, j], [...rest.slice(0, k), ...rest.slice(k + 1)]));
      };
      permute([], Array.from({ length: d }, (_, j) => j));
      return phi.map((p) => p / count);
    }

    it('match the closed form of 3 x0 x1 + x2 + 0.5 x3^2 and the sum rules', async () => {
      const fn: Fn = (r) => [3 * r[0] * r[1] + r[2] + 0.5 * r[3] ** 2];
      const model = jsModel(4, 1, fn);
      const bg = randomRows(20, 4, 91);
      const x = randomRows(3, 4, 92, (rng) => 2 * normal(rng));
      const iv = await shapleyInteractionValues(model, x, { space: space(4), background: bg });
      const m = [0, 1, 2, 3].map((j) => mean(column(bg, j)));
      const e01 = mean(Array.from({ length: 20 }, (_, b) => bg.data[b * 4] * bg.data[b * 4 + 1]));
      const e33 = mean(column(bg, 3).map((v) => v * v));
      assert.equal(iv.modelEvaluations, 3 * 16 * 20);
      for (let i = 0; i < 3; i++) {
        const [x0, x1, x2, x3] = Array.from(x.data.subarray(i * 4, i * 4 + 4));
        const I = iv.instances[i].outputs[0].interactions;
        const tol = 1e-4 * (1 + Math.abs(x0 * x1));
        assertClose(I[0][1], 1.5 * (x0 * x1 - x0 * m[1] - m[0] * x1 + e01), tol, 'Φ01');
        assertClose(I[1][0], I[0][1], 1e-12, 'symmetric');
        assertClose(I[0][0], 3 * (x0 * m[1] - e01), tol, 'Φ00');
        assertClose(I[1][1], 3 * (x1 * m[0] - e01), tol, 'Φ11');
        assertClose(I[2][2], x2 - m[2], 1e-5, 'Φ22');
        assertClose(I[3][3], 0.5 * (x3 * x3 - e33), 1e-4, 'Φ33');
        for (const [a, b] of [[0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]) assertClose(I[a][b], 0, 1e-5, `Φ${a}${b} of additive terms`);
        // Rows sum to the Shapley values (by orderings, written here); everything to f(x) - E f.
        const phi = shapleyByOrderings(fn, x.data.subarray(i * 4, i * 4 + 4), bg);
        const out = iv.instances[i].outputs[0];
        I.forEach((row, j) => {
          assertClose(row.reduce((a, b) => a + b, 0), phi[j], 1e-4, `row ${j} sum`);
          assertClose(out.shapley[j], phi[j], 1e-4, `φ${j}`);
        });
        const total = I.flat().reduce((a, b) => a + b, 0);
        assertClose(total, out.instanceOutputValue - out.baselineOutputValue, 1e-4, 'total');
      }
    });

    it('on a tfjs MLP with three softmax outputs, in logit space: rows sum to Kernel SHAP exact values, total to link f(x) - link E f', async () => {
      const d = 5;
      const model = await tfjsDense(d, [{ units: 12, activation: 'tanh' }, { units: 3, activation: 'softmax' }], 17);
      const bg = randomRows(16, d, 101);
      const x = randomRows(2, d, 102);
      const iv = await shapleyInteractionValues(model, x, { space: space(d, 3), background: bg, link: 'logit' });
      // Kernel SHAP enumerates every coalition when its budget covers them: exact Shapley values.
      const ks = await kernelShap(model, x, { space: space(d, 3), background: bg, link: 'logit', nSamples: 100 });
      const p = await model.predict(x);
      const pb = await model.predict(bg);
      const logit = (q: number) => Math.log(q / (1 - q));
      for (let i = 0; i < 2; i++) {
        for (let o = 0; o < 3; o++) {
          const out = iv.instances[i].outputs[o];
          const phi = ks.explanations[i].outputs[o].attributions.map((a) => a.attribution);
          out.interactions.forEach((row, j) => assertClose(row.reduce((a, b) => a + b, 0), phi[j], 2e-4, `row ${j} output ${o}`));
          const Ef = mean(Array.from({ length: 16 }, (_, b) => pb[b * 3 + o]));
          assertClose(out.interactions.flat().reduce((a, b) => a + b, 0), logit(p[i * 3 + o]) - logit(Ef), 2e-4, 'total');
        }
      }
    });

    it('refuse models with more players than the cap, before calling the model', async () => {
      const model = jsModel(12, 1, (r) => [r[0]]);
      const data = randomRows(3, 12, 1);
      await expectCode(shapleyInteractionValues(model, data, { space: space(12), background: data }), 'TOO_MANY_PLAYERS');
      assert.equal(model.calls, 0);
    });
  });

  describe('SHAP dependence', () => {
    const d = 4;
    const fn: Fn = (r) => [r[0] * r[1] + r[2] + 0.5 * r[3]];
    const data = randomRows(300, d, 111);
    const bg = randomRows(30, d, 112);

    it('colours x0 by x1, the feature it is planted to interact with (Kernel SHAP run here)', async () => {
      const model = jsModel(d, 1, fn);
      const r = await computeEffects(model, space(d), { kind: 'dependence', features: ['x0', 'x2'], parameters: { maxRows: 300 } }, { defaultData: data, background: bg });
      const [e0, e2] = r.effects as DependenceEffect[];
      assert.equal(e0.attributionMethod, 'kernel-shap');
      assert.equal(e0.interaction!.feature, 'x1');
      assert.equal(e0.interactionScores[0].feature, 'x1');
      assert.ok(e0.interactionScores[0].score > 2 * e0.interactionScores[1].score, JSON.stringify(e0.interactionScores));
      assert.deepEqual(e0.points.interaction, column(data, 1));
      assert.equal(e0.points.values.length, 300);
      // x2 is additive: its attributions are exactly x2 - E x2, so the trend is that line.
      e2.points.values.forEach((v, i) => assertClose(e2.points.attributions[i], v - mean(column(bg, 2)), 1e-4));
      assert.ok(r.modelEvaluations > 0 && r.modelEvaluations === model.rows);
    });

    it('takes attributions as input: the same points as Kernel SHAP gives, and no model call', async () => {
      const model = jsModel(d, 1, fn);
      const e = await kernelShap(model, data, { space: space(d), background: bg, seed: 0 });
      const calls = model.calls;
      const r = await shapDependence(model, data, ['x0'], { space: space(d), explanation: e });
      assert.equal(model.calls, calls);
      assert.equal(r.modelEvaluations, 0);
      const dep = r.effects[0];
      assert.equal(dep.attributionMethod, 'given');
      dep.points.attributions.forEach((a, i) => assert.equal(a, e.explanations[i].outputs[0].attributions[0].attribution));
      // Attributions of other rows are refused.
      const other = randomRows(300, d, 5);
      await expectCode(shapDependence(model, other, ['x0'], { space: space(d), explanation: e }), 'BAD_PARAMETER');
    });

    it('exact mode picks the partner by mean |Φ_ij| and reports Φ per point', async () => {
      const model = jsModel(d, 1, fn);
      const small = { data: data.data.slice(0, 40 * d), n: 40, d };
      const r = await computeEffects(model, space(d), { kind: 'dependence', features: ['x0', 'x2'], parameters: { interactions: 'exact' } }, { defaultData: small, background: bg });
      const [e0, e2] = r.effects as DependenceEffect[];
      assert.equal(e0.interactionMethod, 'exact');
      assert.equal(e0.interaction!.feature, 'x1');
      assert.ok(e0.interactionScores.slice(1).every((s) => s.score < 1e-6));
      // Φ01 = (x0 x1 - x0 m1 - m0 x1 + E b0 b1) / 2 for this product term.
      const m0 = mean(column(bg, 0));
      const m1 = mean(column(bg, 1));
      const e01 = mean(Array.from({ length: 30 }, (_, b) => bg.data[b * d] * bg.data[b * d + 1]));
      e0.points.interactionValues!.forEach((v, i) => {
        const [x0, x1] = [small.data[i * d], small.data[i * d + 1]];
        assertClose(v, 0.5 * (x0 * x1 - x0 * m1 - m0 * x1 + e01), 1e-4);
      });
      assert.ok(e2.interactionScores.every((s) => s.score < 1e-6), 'x2 interacts with nothing');
      assert.equal(r.modelEvaluations, 40 * 16 * 30);
    });

    it("approximate_interactions scores the chunks as shap does: |corr| summed over chunks of max(min(n/10, 50), 1) rows", () => {
      // 40 rows -> chunks of 4. "same" equals the attributions (|corr| 1 in each of 10 chunks);
      // "flat" is constant within chunks (0); "zero" is all zeros (skipped); "half" matches in half the chunks.
      const n = 40;
      const x = Array.from({ length: n }, (_, i) => i);
      const attr = x.map((i) => Math.sin(i * 1.7));
      const same = attr.map((a) => 2 * a + 1);
      const flat = x.map((i) => Math.floor(i / 4));
      const zero = x.map(() => 0);
      const half = x.map((i, k) => (Math.floor(i / 4) % 2 === 0 ? same[k] : 3));
      const scores = approximateInteractions(x, attr, [same, flat, zero, half]);
      assertClose(scores[0], 10, 1e-9);
      assert.equal(scores[1], 0);
      assert.equal(scores[2], 0);
      assertClose(scores[3], 5, 1e-9);
      // Rows are sorted by the feature's value first: shuffling the rows changes nothing.
      const order = x.map((_, i) => (i * 17) % n);
      const pick = (v: number[]) => order.map((i) => v[i]);
      const again = approximateInteractions(pick(x), pick(attr), [pick(same), pick(flat), pick(zero), pick(half)]);
      again.forEach((s, k) => assertClose(s, scores[k], 1e-9));
    });
  });

  describe('computeEffects: validation, limits, deadline', () => {
    const model = jsModel(3, 1, (r) => [r[0] + r[1] * r[2]]);
    const data = randomRows(50, 3, 121);
    const ctx = { defaultData: data };

    it('rejects what the caller got wrong, with stable codes and before any model call', async () => {
      const calls = model.calls;
      const sp = space(3);
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['nope'] }, ctx), 'UNKNOWN_FEATURE');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0', 'nope'] }, ctx), 'UNKNOWN_FEATURE');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'], data: { data: new Float32Array(0), n: 0, d: 3 } }, ctx), 'EMPTY_DATA');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'] }, {}), 'EMPTY_DATA');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'], data: { data: new Float32Array(4), n: 2, d: 2 } }, ctx), 'BAD_DATA');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: [] }, ctx), 'BAD_FEATURE');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0', 'x0'] }, ctx), 'BAD_FEATURE');
      await expectCode(computeEffects(model, sp, { kind: 'ice', features: [['x0', 'x1']] }, ctx), 'BAD_FEATURE');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'], grid: { x0: Array.from({ length: 300 }, (_, i) => i) } }, ctx), 'GRID_TOO_LARGE');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'], grid: { x0: [1, Number.NaN] } }, ctx), 'BAD_GRID');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'], grid: { x1: [1] } }, ctx), 'BAD_GRID');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0', 'x1'] }, { ...ctx, limits: { maxModelRows: 1000 } }), 'GRID_TOO_LARGE');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'], parameters: { bins: 3 } }, ctx), 'BAD_PARAMETER');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'], parameters: { resolution: 1 } }, ctx), 'BAD_PARAMETER');
      await expectCode(computeEffects(model, sp, { kind: 'pd', features: ['x0'], outputs: ['nope'] }, ctx), 'UNKNOWN_OUTPUT');
      await expectCode(computeEffects(model, sp, { kind: 'nope' as 'pd', features: ['x0'] }, ctx), 'BAD_PARAMETER');
      await expectCode(computeEffects(model, sp, { kind: 'dependence', features: ['x0'] }, ctx), 'NO_BACKGROUND');
      assert.equal(model.calls, calls, 'no model call for a bad request');
    });

    it('a deadline already passed stops before the first call; one passing mid-way stops between chunks', async () => {
      const calls = model.calls;
      await expectCode(computeEffects(model, space(3), { kind: 'pd', features: ['x0'] }, { ...ctx, deadline: Date.now() - 1 }), 'DEADLINE_EXCEEDED');
      assert.equal(model.calls, calls);
      // A model that takes 30 ms per call; 5 grid points of 50 rows in chunks of 50 rows: 5 calls unless stopped.
      const slow = jsModel(3, 1, (r) => [r[0]]);
      const predict = slow.predict.bind(slow);
      slow.predict = async (rows: Rows) => {
        await new Promise((res) => setTimeout(res, 30));
        return predict(rows);
      };
      const err = await expectCode(
        partialDependence(slow, data, 'x0', { space: space(3), grid: [0, 1, 2, 3, 4], maxRowsPerCall: 50, deadline: Date.now() + 45 }),
        'DEADLINE_EXCEEDED',
      );
      assert.ok(slow.calls >= 1 && slow.calls < 5, `${slow.calls} calls`);
      assert.equal((err.details as { modelEvaluations: number }).modelEvaluations, slow.rows);
      const controller = new AbortController();
      controller.abort(new Error('client went away'));
      await assert.rejects(computeEffects(model, space(3), { kind: 'ale', features: ['x0'] }, { ...ctx, signal: controller.signal }), /client went away/);
    });

    it('batches: one predict call per feature, and counts every model row', async () => {
      const counted = jsModel(3, 1, (r) => [r[0] * r[1]]);
      const r = await computeEffects(counted, space(3), { kind: 'pd', features: ['x0', 'x1', 'x2'], parameters: { resolution: 10 } }, ctx);
      assert.equal(counted.calls, 3);
      assert.equal(r.modelEvaluations, counted.rows);
      assert.equal(r.modelEvaluations, 3 * 10 * 50);
      const a = await computeEffects(counted, space(3), { kind: 'ale', features: ['x0', ['x1', 'x2']] }, ctx);
      assert.equal(counted.calls, 5);
      assert.equal(a.modelEvaluations, 2 * 50 + 4 * 50);
      assert.deepEqual(a.parameters, { link: 'identity', seed: 0, maxRows: 50_000 });
    });
  });

  describe('sample models (loaded from the repository, as the service serves them)', () => {
    it('linear: PD and ALE slopes are the fitted weights, the binary feature a jump of its weight', async () => {
      const repo = await loadModelRepository('samples/models');
      const m = repo.models.get('linear')!;
      const w = (m.metadata!.notes as { w: number[] }).w;
      const info = { featureTypes: m.metadata!.features!.map((f) => f.type) };
      const ctx = { defaultData: m.reference!.rows, ...info };
      const features = m.space.featureNames;
      for (const kind of ['pd', 'ale'] as const) {
        const r = await computeEffects(m.model, m.space, { kind, features }, ctx);
        for (const e of r.effects as (PartialDependenceEffect | AleEffect)[]) {
          const wj = w[features.indexOf(e.feature)];
          assert.equal(e.featureKind, e.feature === 'x5_binary' ? 'categorical' : 'numeric');
          const scale = Math.max(...e.grid.map((z) => Math.abs(wj * (z - e.grid[0]))));
          e.grid.forEach((z, k) => assertClose(e.values[k] - e.values[0], wj * (z - e.grid[0]), 1e-4 * (1 + scale), `${kind} ${e.feature}`));
        }
      }
    });

    it('credit: a dependence plot of income names its interacting feature and renders as valid SVG', async () => {
      const repo = await loadModelRepository('samples/models');
      const m = repo.models.get('credit')!;
      const groupNames = ['housing'];
      const ctx = { defaultData: m.reference!.rows, background: m.background, featureTypes: m.metadata!.features!.map((f) => f.type), groupNames, link: m.metadata!.link };
      const r = await computeEffects(m.model, m.space, { kind: 'dependence', features: ['income', 'housing'], parameters: { maxRows: 40, nSamples: 300 } }, ctx);
      assert.equal(r.link, 'logit');
      for (const e of r.effects as DependenceEffect[]) {
        assert.ok(e.interaction && m.space.featureNames.concat(groupNames).includes(e.interaction.feature));
        assert.notEqual(e.interaction.feature, e.feature);
        const svg = renderEffect(e);
        const doc = new new JSDOM('').window.DOMParser().parseFromString(svg, 'image/svg+xml');
        assert.equal(doc.getElementsByTagName('parsererror').length, 0);
        assert.equal(doc.querySelector('g.effect')!.getAttribute('data-interaction'), e.interaction.feature);
      }
      assert.equal((r.effects[1] as DependenceEffect).featureKind, 'one-hot');
    });
  });
});
