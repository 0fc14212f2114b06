/**
 * Kernel SHAP held to oracles that do not come from our code: closed forms for linear models, the
 * Shapley axioms, and a brute-force Shapley value written here (all 2^M subsets of players, the
 * interventional value function, the Shapley formula).
 */
import assert from 'node:assert/strict';
import { kernelShap, type KernelShapOptions } from '../explainers/kernelShap.js';
import { ExplainerInputError, type Explanation, type InstanceExplanation, type Model, type Rows } from '../explainers/types.js';
import { seededRng, normal } from '../explainers/random.js';

type Fn = (row: Float32Array) => number[];

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

const sigmoid = (t: number) => 1 / (1 + Math.exp(-t));
const logit = (p: number) => Math.log(p / (1 - p));

/** Exact Shapley values of v(S) = link(Σ_b w_b f(x on S, background elsewhere)), players = column sets. */
function bruteForce(
  fn: Fn,
  x: Float32Array,
  bg: Rows,
  opts: { players?: number[][]; weights?: number[]; output?: number; link?: (p: number) => number } = {},
): number[] {
  const d = bg.d;
  const players = opts.players ?? Array.from({ length: d }, (_, i) => [i]);
  const P = players.length;
  const w = opts.weights ?? new Array(bg.n).fill(1);
  const wsum = w.reduce((a, b) => a + b, 0);
  const link = opts.link ?? ((p: number) => p);
  const o = opts.output ?? 0;
  const v = new Float64Array(1 << P);
  const row = new Float32Array(d);
  for (let S = 0; S < 1 << P; S++) {
    let s = 0;
    for (let b = 0; b < bg.n; b++) {
      row.set(bg.data.subarray(b * d, (b + 1) * d));
      players.forEach((cols, p) => {
        if ((S >> p) & 1) for (const c of cols) row[c] = x[c];
      });
      s += w[b] * Math.fround(fn(row)[o]);
    }
    v[S] = link(s / wsum);
  }
  const fact = (n: number): number => (n <= 1 ? 1 : n * fact(n - 1));
  const phi = new Array(P).fill(0);
  for (let S = 0; S < 1 << P; S++) {
    let size = 0;
    for (let p = 0; p < P; p++) size += (S >> p) & 1;
    const weight = (fact(size) * fact(P - size - 1)) / fact(P);
    for (let i = 0; i < P; i++) if (!((S >> i) & 1)) phi[i] += weight * (v[S | (1 << i)] - v[S]);
  }
  return phi;
}

function randomRows(n: number, d: number, seed: number, scale = 1): Rows {
  const rng = seededRng(seed);
  return { n, d, data: Float32Array.from({ length: n * d }, () => normal(rng) * scale) };
}

function space(d: number, nOutputs = 1, groups?: number[][]) {
  return {
    featureNames: Array.from({ length: d }, (_, i) => `f${i}`),
    outputNames: Array.from({ length: nOutputs }, (_, i) => `y${i}`),
    ...(groups && { groups }),
  };
}

const phiOf = (e: Explanation, i = 0, o = 0) => e.explanations[i].outputs[o].attributions.map((a) => a.attribution);
const seOf = (e: Explanation, i = 0, o = 0) => e.explanations[i].outputs[o].attributions.map((a) => a.stderr ?? NaN);
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);

function assertClose(actual: number[], expected: number[], tol: number, what = '') {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) <= tol, `${what}[${i}]: ${a} vs ${expected[i]}`));
}

/** Products, a max and a sigmoid: interactions of orders 2 and 3 and a non-additive squashing. */
const nonlinear: Fn = (r) => [
  r[0] * r[1] + Math.max(r[2], r[3], 0) + 2 * sigmoid(r[4] - r[5] * r[6]) + r[7] * r[8] * r[9] + 0.5 * r[1],
];

describe('kernelShap', () => {
  it('gives a linear model w_i (x_i - E bg_i) exactly, with weighted background', async () => {
    const d = 6;
    const w = [1.5, -2, 0.25, 3, 0, -1];
    const model = jsModel(d, 1, (r) => [w.reduce((s, wi, i) => s + wi * r[i], 0.5)]);
    const bg = randomRows(12, d, 1);
    const weights = Float32Array.from({ length: 12 }, (_, i) => 1 + (i % 3));
    const x = randomRows(2, d, 2);
    const e = await kernelShap(model, x, { space: space(d), background: bg, backgroundWeights: weights });
    for (let i = 0; i < 2; i++) {
      const expected = w.map((wi, j) => {
        let m = 0;
        for (let b = 0; b < 12; b++) m += weights[b] * bg.data[b * d + j];
        return wi * (x.data[i * d + j] - m / sum(Array.from(weights)));
      });
      assertClose(phiOf(e, i), expected, 1e-5, 'phi');
      assert.equal(e.explanations[i].converged, true);
      assert.equal(e.explanations[i].outputs[0].approximationError, 0);
    }
    assert.equal(e.method, 'kernel-shap');
  });

  it('matches brute-force Shapley values exactly when all coalitions fit (M = 10)', async () => {
    const d = 10;
    const model = jsModel(d, 1, nonlinear);
    const bg = randomRows(8, d, 3);
    const x = randomRows(3, d, 4, 1.5);
    const e = await kernelShap(model, x, { space: space(d), background: bg, nSamples: 5000 });
    for (let i = 0; i < 3; i++) {
      const xi = x.data.subarray(i * d, (i + 1) * d);
      assertClose(phiOf(e, i), bruteForce(nonlinear, xi, bg), 1e-5, 'phi');
      assert.ok(seOf(e, i).every((s) => s === 0));
      const ex = e.explanations[i];
      assert.equal(ex.modelEvaluations, 1022 * 8 + 1 + 8);
      assert.equal(ex.converged, true);
      assert.ok(ex.computeMs >= 0);
    }
  });

  it('reports stderr that covers the error of sampled estimates (>= 95% within 3 stderr)', async () => {
    const d = 10;
    const model = jsModel(d, 1, nonlinear);
    const bg = randomRows(8, d, 5);
    let inside = 0;
    let withinOne = 0;
    let total = 0;
    for (let i = 0; i < 3; i++) {
      const x = randomRows(1, d, 100 + i, 1.5);
      const exact = bruteForce(nonlinear, x.data, bg);
      for (const sampler of ['per-background', 'balanced', 'leverage', 'shap'] as const) {
        for (let seed = 0; seed < 8; seed++) {
          const e = await kernelShap(model, x, { space: space(d), background: bg, nSamples: 300, seed, sampler, tolerance: 0 });
          const phi = phiOf(e);
          const se = seOf(e);
          assert.equal(e.explanations[0].converged, false);
          assert.ok(e.explanations[0].outputs[0].approximationError === Math.max(...se));
          phi.forEach((p, j) => {
            total++;
            if (Math.abs(p - exact[j]) <= 3 * se[j]) inside++;
            if (Math.abs(p - exact[j]) <= se[j]) withinOne++;
          });
        }
      }
    }
    assert.ok(inside / total >= 0.95, `${inside} of ${total} within 3 stderr`);
    // Not honest by being huge: about 68% should fall within one stderr.
    assert.ok(withinOne / total > 0.55 && withinOne / total < 0.85, `${withinOne} of ${total} within 1 stderr`);
  });

  it('recovers games with only pairwise interactions exactly even when sampling (paired draws)', async () => {
    // v(S) = Σ_{i∈S} a_i + Σ_{i<j∈S} b_ij (x = 1, background 0): closed form φ_i = a_i + Σ_j b_ij / 2.
    const d = 14;
    const rng = seededRng(30);
    const a = Array.from({ length: d }, () => normal(rng));
    const b = Array.from({ length: d * d }, () => normal(rng));
    const fn: Fn = (r) => {
      let s = 0;
      for (let i = 0; i < d; i++) {
        s += a[i] * r[i];
        for (let j = i + 1; j < d; j++) s += b[i * d + j] * r[i] * r[j];
      }
      return [s];
    };
    const exact = a.map((ai, i) => {
      let s = ai;
      for (let j = 0; j < d; j++) if (j !== i) s += b[Math.min(i, j) * d + Math.max(i, j)] / 2;
      return s;
    });
    const x: Rows = { n: 1, d, data: new Float32Array(d).fill(1) };
    const bg: Rows = { n: 1, d, data: new Float32Array(d) };
    for (const sampler of ['balanced', 'leverage'] as const) {
      const e = await kernelShap(jsModel(d, 1, fn), x, { space: space(d), background: bg, nSamples: 200, sampler, tolerance: 0 });
      assertClose(phiOf(e), exact, 1e-4, sampler);
    }
    // Against several background rows each row's game is pairwise too, so 'per-background' is exact as well.
    const bg3 = randomRows(3, d, 31);
    const x3 = randomRows(1, d, 32);
    const oracle = bruteForce(fn, x3.data, bg3);
    for (const sampler of ['per-background', 'balanced'] as const) {
      const e = await kernelShap(jsModel(d, 1, fn), x3, { space: space(d), background: bg3, nSamples: 200, sampler, tolerance: 0 });
      assertClose(phiOf(e), oracle, 1e-4, `${sampler}, 3 background rows`);
    }
  });

  it('is efficient to float precision with identity and logit links, sampled or not', async () => {
    const d = 12;
    const fn: Fn = (r) => [sigmoid(r[0] * r[1] - r[2] + Math.max(r[3], r[4]) * r[5] + 0.3 * r[11])];
    const model = jsModel(d, 1, fn);
    const bg = randomRows(10, d, 6);
    const x = randomRows(2, d, 7, 2);
    for (const link of ['identity', 'logit'] as const) {
      const e = await kernelShap(model, x, { space: space(d), background: bg, link, nSamples: 400, tolerance: 0 });
      for (let i = 0; i < 2; i++) {
        const o = e.explanations[i].outputs[0];
        const L = link === 'logit' ? logit : (p: number) => p;
        let mean = 0;
        for (let b = 0; b < 10; b++) mean += Math.fround(fn(bg.data.subarray(b * d, (b + 1) * d))[0]) / 10;
        assert.ok(Math.abs(o.baselineOutputValue - L(mean)) < 1e-6);
        assert.ok(Math.abs(o.instanceOutputValue - L(Math.fround(fn(x.data.subarray(i * d, (i + 1) * d))[0]))) < 1e-6);
        assert.ok(Math.abs(sum(phiOf(e, i)) - (o.instanceOutputValue - o.baselineOutputValue)) < 1e-9);
      }
    }
    // Exact under the logit link equals brute force on the logit of the expected output.
    const small = randomRows(1, d, 8, 2);
    const model8 = jsModel(8, 1, (r) => fn(Float32Array.of(...r, 0, 0, 0, 0)));
    const bg8: Rows = { n: 6, d: 8, data: randomRows(6, 8, 9).data };
    const x8: Rows = { n: 1, d: 8, data: small.data.subarray(0, 8) };
    const e = await kernelShap(model8, x8, { space: space(8), background: bg8, link: 'logit' });
    const f8: Fn = (r) => fn(Float32Array.of(...r, 0, 0, 0, 0));
    assertClose(phiOf(e), bruteForce(f8, x8.data, bg8, { link: logit }), 1e-5, 'logit phi');
  });

  it('gives symmetric players equal values, a dummy and a background-constant feature exactly 0', async () => {
    const d = 6;
    // f0 and f1 play the same role (and their columns are equal everywhere); f4 is ignored; f5 is
    // constant in the background and equal to it in x.
    const fn: Fn = (r) => [r[0] * r[1] + Math.tanh(r[0] + r[1] + r[2]) * r[3] + r[5] * r[2]];
    const model = jsModel(d, 1, fn);
    const bg = randomRows(10, d, 10);
    for (let b = 0; b < 10; b++) {
      bg.data[b * d + 1] = bg.data[b * d];
      bg.data[b * d + 5] = 0.75;
    }
    const x: Rows = { n: 1, d, data: Float32Array.of(1.25, 1.25, -0.5, 2, 3, 0.75) };
    const exact = await kernelShap(model, x, { space: space(d), background: bg });
    const phi = phiOf(exact);
    assert.ok(Math.abs(phi[0] - phi[1]) < 1e-9, `symmetry ${phi[0]} vs ${phi[1]}`);
    assert.ok(Math.abs(phi[4]) < 1e-9, `dummy ${phi[4]}`);
    assert.equal(phi[5], 0);
    assert.equal(exact.explanations[0].diagnostics!.varyingPlayers, 5);
    assert.equal(exact.explanations[0].stopReason, 'exact');
    // Sampled: the constant feature still leaves the problem (exactly 0, stderr 0).
    const wide = jsModel(14, 1, (r) => [fn(r)[0] + r[6] * r[7] * r[8] + Math.max(r[9], r[10]) * r[11] + r[12] - r[13]]);
    const bgw = randomRows(6, 14, 11);
    for (let b = 0; b < 6; b++) bgw.data[b * 14 + 5] = 0.75;
    const xw = randomRows(1, 14, 12);
    xw.data[5] = 0.75;
    const e = await kernelShap(wide, xw, { space: space(14), background: bgw, nSamples: 300, tolerance: 0 });
    assert.equal(phiOf(e)[5], 0);
    assert.equal(seOf(e)[5], 0);
    assert.equal(e.explanations[0].modelEvaluations, 300 * 6 + 1 + 6);
  });

  it('handles instances where no player, or one, differs from the background', async () => {
    const d = 3;
    const fn: Fn = (r) => [r[0] * r[1] + r[2]];
    const model = jsModel(d, 1, fn);
    const bg: Rows = { n: 2, d, data: Float32Array.of(1, 2, 3, 1, 5, 3) };
    // Only column 1 differs from the background (from its second row), so f1 gets all of Δ.
    const x: Rows = { n: 1, d, data: Float32Array.of(1, 2, 3) };
    const none = await kernelShap(model, { n: 1, d, data: Float32Array.of(1, 2, 3) }, { space: space(d), background: { n: 1, d, data: Float32Array.of(1, 2, 3) } });
    assert.deepEqual(phiOf(none), [0, 0, 0]);
    assert.equal(none.explanations[0].converged, true);
    assert.equal(none.explanations[0].modelEvaluations, 2);
    const one = await kernelShap(model, x, { space: space(d), background: bg });
    const o = one.explanations[0].outputs[0];
    assert.deepEqual(phiOf(one).map((v, i) => (i === 1 ? 0 : v)), [0, 0, 0]);
    assert.ok(Math.abs(phiOf(one)[1] - (o.instanceOutputValue - o.baselineOutputValue)) < 1e-12);
    assert.ok(Math.abs(phiOf(one)[1] - (5 - 6.5)) < 1e-6);
  });

  it('moves a group of one-hot columns together and splits the group value equally', async () => {
    const d = 7;
    // Columns 2..4 are a one-hot category; 5..6 a second group.
    const fn: Fn = (r) => [r[0] * (2 * r[2] - r[3] + 0.5 * r[4]) + r[1] * r[3] + sigmoid(r[5] + r[6] * r[0])];
    const model = jsModel(d, 1, fn);
    const rng = seededRng(13);
    const bg: Rows = { n: 9, d, data: new Float32Array(9 * d) };
    for (let b = 0; b < 9; b++) {
      bg.data[b * d] = normal(rng);
      bg.data[b * d + 1] = normal(rng);
      bg.data[b * d + 2 + (b % 3)] = 1;
      bg.data[b * d + 5] = normal(rng);
      bg.data[b * d + 6] = normal(rng);
    }
    const x: Rows = { n: 1, d, data: Float32Array.of(1.5, -1, 0, 1, 0, 0.3, 2) };
    const groups = [[2, 3, 4], [6, 5]];
    const e = await kernelShap(model, x, { space: space(d, 1, groups), background: bg });
    const players = [[0], [1], [2, 3, 4], [5, 6]];
    const exact = bruteForce(fn, x.data, bg, { players });
    const phi = phiOf(e);
    assertClose([phi[0], phi[1], phi[2] + phi[3] + phi[4], phi[5] + phi[6]], exact, 1e-5, 'players');
    assert.ok(Math.abs(phi[2] - phi[3]) < 1e-12 && Math.abs(phi[3] - phi[4]) < 1e-12);
    const diag = e.explanations[0].diagnostics as { groups: { features: string[]; attribution: number[] }[] };
    assert.deepEqual(diag.groups[0].features, ['f2', 'f3', 'f4']);
    assert.ok(Math.abs(diag.groups[0].attribution[0] - exact[2]) < 1e-5);
    assert.ok(Math.abs(diag.groups[1].attribution[0] - exact[3]) < 1e-5);
  });

  it('returns the same bytes for the same seed and different estimates for another seed', async () => {
    const d = 14;
    const fn: Fn = (r) => [r[0] * r[1] * r[2] + Math.max(r[3], r[4]) + sigmoid(r[5] * r[6] - r[7]) + r[8] * r[9] - r[10] * r[11] * r[12] + r[13]];
    const model = jsModel(d, 1, fn);
    const bg = randomRows(5, d, 14);
    const x = randomRows(2, d, 15);
    const strip = (e: Explanation) => JSON.stringify(e.explanations.map((i) => ({ ...i, computeMs: 0 })));
    for (const sampler of ['balanced', 'leverage', 'shap'] as const) {
      const opts: KernelShapOptions = { space: space(d), background: bg, nSamples: 500, seed: 42, sampler, tolerance: 0 };
      const a = await kernelShap(model, x, opts);
      const b = await kernelShap(model, x, opts);
      const c = await kernelShap(model, x, { ...opts, seed: 43 });
      assert.equal(strip(a), strip(b));
      assert.notEqual(strip(a), strip(c));
      assert.notDeepEqual(phiOf(a), phiOf(c));
    }
    // Concurrent calls do not disturb each other, and an instance's result does not depend on its batch.
    const opts: KernelShapOptions = { space: space(d), background: bg, nSamples: 500, seed: 7, tolerance: 0 };
    const [p, q] = await Promise.all([kernelShap(model, x, opts), kernelShap(model, x, { ...opts, seed: 8 })]);
    const single = await kernelShap(model, { n: 1, d, data: x.data.slice(d) }, opts);
    assert.deepEqual(phiOf(p, 1), phiOf(single));
    assert.deepEqual(phiOf(q), phiOf(await kernelShap(model, x, { ...opts, seed: 8 })));
  });

  it('evaluates all instances in few large model calls, chunked by maxRowsPerCall', async () => {
    const d = 10;
    const model = jsModel(d, 2, (r) => [nonlinear(r)[0], r[0] - r[1] * r[2]]);
    const bg = randomRows(10, d, 16);
    const x = randomRows(4, d, 17);
    const opts: KernelShapOptions = { space: space(d, 2), background: bg, nSamples: 400, tolerance: 0 };
    const big = await kernelShap(model, x, opts);
    const rounds = big.explanations[0].diagnostics!.rounds as number;
    // One call per round: f(x) and f(background) ride at the head of the first.
    assert.equal(model.calls, rounds);
    // Each instance's count includes the background's own evaluation, which the call does once.
    assert.equal(model.rows, sum(big.explanations.map((e) => e.modelEvaluations)) - 3 * 10);
    const chunked = jsModel(d, 2, (r) => [nonlinear(r)[0], r[0] - r[1] * r[2]]);
    const small = await kernelShap(chunked, x, { ...opts, maxRowsPerCall: 777 });
    assert.ok(chunked.calls > 10);
    for (let i = 0; i < 4; i++) for (const o of [0, 1]) assertClose(phiOf(small, i, o), phiOf(big, i, o), 1e-9);
    // Only the requested output, named.
    const one = await kernelShap(model, x, { ...opts, outputs: [1] });
    assert.equal(one.explanations[0].outputs.length, 1);
    assert.equal(one.explanations[0].outputs[0].output, 'y1');
    assertClose(phiOf(one, 2), phiOf(big, 2, 1), 1e-9);
  });

  it('per-background games with feature groups: exact on a game of pairwise interactions between players', async () => {
    // 16 columns, two groups of 3 columns: 12 players. Products of columns are products of at most two
    // player indicators, so paired Kernel SHAP is exact on every background row's game.
    const d = 16;
    const rng = seededRng(80);
    const a = Array.from({ length: d }, () => normal(rng));
    const b = Array.from({ length: d * d }, () => normal(rng) * 0.5);
    const fn: Fn = (r) => {
      let s = 0;
      for (let i = 0; i < d; i++) {
        s += a[i] * r[i];
        for (let j = i + 1; j < d; j++) s += b[i * d + j] * r[i] * r[j];
      }
      return [s];
    };
    const groups = [[2, 3, 4], [9, 10, 11]];
    const players = [[0], [1], [2, 3, 4], [5], [6], [7], [8], [9, 10, 11], [12], [13], [14], [15]];
    const bg = randomRows(5, d, 81);
    const x = randomRows(1, d, 82);
    const oracle = bruteForce(fn, x.data, bg, { players });
    const e = await kernelShap(jsModel(d, 1, fn), x, { space: space(d, 1, groups), background: bg, nSamples: 300, tolerance: 0 });
    assert.equal(e.explanations[0].diagnostics!.estimator, 'per-background');
    const phi = phiOf(e);
    const byPlayer = players.map((cols) => cols.reduce((t, c) => t + phi[c], 0));
    assertClose(byPlayer, oracle, 1e-4, 'players');
  });

  it('summarises a large background with k-means and says so', async () => {
    const d = 5;
    const model = jsModel(d, 1, (r) => [r[0] * r[1] + r[2] - r[3] * r[4]]);
    const bg = randomRows(500, d, 18);
    const x = randomRows(1, d, 19);
    const e = await kernelShap(model, x, { space: space(d), background: bg, maxBackground: 20 });
    const km = (e.diagnostics!.background as { rows: number; kmeans: { originalRows: number; k: number } });
    assert.equal(km.kmeans.originalRows, 500);
    assert.equal(km.rows, km.kmeans.k);
    assert.ok(km.kmeans.k <= 20 && km.kmeans.k >= 15);
    assert.equal(e.explanations[0].modelEvaluations, 30 * km.rows + 1 + km.rows);
    const again = await kernelShap(model, x, { space: space(d), background: bg, maxBackground: 20 });
    assert.deepEqual(phiOf(again), phiOf(e));
  });

  it('returns stopReason deadline and did not compute past N model calls (time moves only in model calls)', async () => {
    const d = 20;
    const fn: Fn = (r) => [sigmoid(r[0] * r[1] + r[2] * r[3] * r[4] + Math.max(r[5], r[6]) - r[13] + r[19] * r[15])];
    const bg = randomRows(6, d, 20);
    const x = randomRows(3, d, 21);
    const realNow = Date.now;
    try {
      // One round cut by the deadline (tolerance 0), and rounds that never meet a tiny tolerance.
      for (const [link, tolerance] of [['identity', 0], ['logit', 0], ['identity', 1e-6], ['logit', 1e-6]] as const) {
        // Each model call takes 100 ms of (fake) time; the deadline is 1000 ms away: 10 calls fit.
        let now = realNow();
        Date.now = () => now;
        const model = jsModel(d, 1, fn);
        const timed: Model = { ...model, predict: async (rows) => ((now += 100), model.predict(rows)) };
        const deadline = now + 1000;
        const e = await kernelShap(timed, x, { space: space(d), background: bg, link, nSamples: 100_000, deadline, tolerance, maxRowsPerCall: 5000 });
        assert.equal(model.calls, 10, `${link}: ${model.calls} model calls`);
        let evaluations = 0;
        for (const ex of e.explanations) {
          assert.equal(ex.stopReason, 'deadline');
          assert.equal(ex.converged, false);
          const o = ex.outputs[0];
          assert.ok(o.attributions.every((a) => Number.isFinite(a.attribution) && Number.isFinite(a.stderr!)));
          assert.ok(Math.abs(sum(o.attributions.map((a) => a.attribution)) - (o.instanceOutputValue - o.baselineOutputValue)) < 1e-9);
          assert.ok(o.approximationError > 0 && Number.isFinite(o.approximationError));
          assert.ok((ex.diagnostics!.coalitions as number) > 0);
          evaluations += ex.modelEvaluations;
        }
        // Every row the model saw is counted (a shared-background coalition cut mid-way is not).
        const counted = evaluations - (x.n - 1) * bg.n;
        assert.ok(counted <= model.rows && model.rows - counted < bg.n, `${link}: ${counted} counted, ${model.rows} evaluated`);
        assert.ok(model.rows < (x.n * 100_000 * bg.n) / 2, 'stopped well before the budget');
      }
      // Already past: only f(x) and f(background) (one call), then Δ split equally with an unknown error.
      let now = realNow();
      Date.now = () => now;
      const model = jsModel(d, 1, fn);
      const e = await kernelShap(model, x, { space: space(d), background: bg, deadline: now - 1 });
      assert.equal(model.calls, 1);
      for (const ex of e.explanations) {
        const o = ex.outputs[0];
        assert.equal(ex.stopReason, 'deadline');
        assert.equal(ex.diagnostics!.coalitions, 0);
        const delta = o.instanceOutputValue - o.baselineOutputValue;
        for (const a of o.attributions) assert.ok(Math.abs(a.attribution - delta / d) < 1e-12 && a.stderr === undefined);
        assert.equal(o.approximationError, Infinity);
      }
    } finally {
      Date.now = realNow;
    }
  });

  it('a deadline over many rows: the first rows get estimates, every other row the equal split, nothing past the deadline', async () => {
    const d = 12;
    const fn: Fn = (r) => [Math.tanh(r[0] * r[1] - r[2]) + r[3] * r[4] * r[5] + Math.max(r[6], r[7]) - r[8] * r[11], sigmoid(r[9] + r[10])];
    const bg = randomRows(7, d, 90);
    const x = randomRows(60, d, 91);
    const realNow = Date.now;
    try {
      // Each model call takes 100 ms of (fake) time and the deadline is 800 ms away: 8 calls fit.
      let now = realNow();
      Date.now = () => now;
      const model = jsModel(d, 2, fn);
      const timed: Model = { ...model, predict: async (rows) => ((now += 100), model.predict(rows)) };
      const e = await kernelShap(timed, x, { space: space(d, 2), background: bg, nSamples: 100_000, deadline: now + 800, maxRowsPerCall: 2000 });
      assert.equal(model.calls, 8);
      assert.equal(e.explanations.length, 60);
      let estimated = 0;
      for (const [i, ex] of e.explanations.entries()) {
        assert.equal(ex.stopReason, 'deadline', `row ${i}`);
        for (const o of ex.outputs) {
          const delta = o.instanceOutputValue - o.baselineOutputValue;
          assert.ok(Math.abs(sum(o.attributions.map((a) => a.attribution)) - delta) < 1e-9, `row ${i}: efficiency`);
        }
        if ((ex.diagnostics!.coalitions as number) > 0) {
          // Rows are taken in order: those with estimates come first, with a finite error.
          assert.equal(i, estimated++, `row ${i} has an estimate after a row without`);
          assert.ok(ex.outputs.every((o) => Number.isFinite(o.approximationError) && o.attributions.every((a) => Number.isFinite(a.stderr!))));
        } else {
          // Never reached: Δ split equally over the players that vary, the error unknown, only f(x) and f(background) paid.
          assert.equal(ex.modelEvaluations, 1 + bg.n);
          for (const o of ex.outputs) {
            const delta = o.instanceOutputValue - o.baselineOutputValue;
            for (const a of o.attributions) assert.ok(Math.abs(a.attribution - delta / d) < 1e-12 && a.stderr === undefined);
            assert.equal(o.approximationError, Infinity);
          }
        }
      }
      assert.ok(estimated >= 1 && estimated < 60, `${estimated} rows with estimates`);
      // Every row the model saw is counted.
      const counted = sum(e.explanations.map((ex) => ex.modelEvaluations)) - 59 * bg.n;
      assert.equal(counted, model.rows);
    } finally {
      Date.now = realNow;
    }
  });

  it('stops model calls as soon as the signal aborts, rejecting with its reason', async () => {
    const d = 14;
    const model = jsModel(d, 1, (r) => [r[0] * r[1] * r[2] + r[3] - r[13] * r[4]]);
    const controller = new AbortController();
    const aborting: Model = {
      ...model,
      predict: async (rows) => {
        if (model.calls === 2) controller.abort(new Error('client went away'));
        return model.predict(rows);
      },
    };
    await assert.rejects(
      kernelShap(aborting, randomRows(20, d, 1), { space: space(d), background: randomRows(8, d, 2), nSamples: 50_000, signal: controller.signal }),
      /client went away/,
    );
    assert.equal(model.calls, 3);
  });

  it('stops early once the stderr is within tolerance, and rejects when aborted', async () => {
    const d = 14;
    // Nearly additive: tiny interactions, so the sampled estimate converges fast.
    const fn: Fn = (r) => [r.reduce((s, v, i) => s + (i + 1) * v, 0) + 0.01 * r[0] * r[1] * r[2]];
    const model = jsModel(d, 1, fn);
    const bg = randomRows(5, d, 22);
    const x = randomRows(1, d, 23);
    const e = await kernelShap(model, x, { space: space(d), background: bg, tolerance: 0.01 });
    assert.equal(e.explanations[0].converged, true);
    assert.ok(e.explanations[0].modelEvaluations < (2 * d + 2048) * 5, 'stopped before the whole budget');
    const o = e.explanations[0].outputs[0];
    const range = Math.max(...phiOf(e)) - Math.min(...phiOf(e));
    assert.ok(o.approximationError <= 0.01 * range);
    const controller = new AbortController();
    controller.abort(new Error('client went away'));
    await assert.rejects(kernelShap(model, x, { space: space(d), background: bg, signal: controller.signal }), /client went away/);
  });

  it("per-background games: at the model evaluations of one shared design, less than 0.7x its squared error (brute force)", async () => {
    // A 12-16-1 ReLU network against 16 background rows: each row's game gets its own 400 coalitions.
    const d = 12;
    const rng = seededRng(40);
    const H = 16;
    const W1 = Array.from({ length: H * d }, () => normal(rng) / Math.sqrt(d));
    const b1 = Array.from({ length: H }, () => normal(rng) * 0.5);
    const W2 = Array.from({ length: H }, () => normal(rng));
    const fn: Fn = (r) => {
      let y = 0;
      for (let h = 0; h < H; h++) {
        let z = b1[h];
        for (let j = 0; j < d; j++) z += W1[h * d + j] * r[j];
        y += W2[h] * Math.max(0, z);
      }
      return [y];
    };
    const bg = randomRows(16, d, 41);
    const sq = { 'per-background': 0, balanced: 0 };
    let inside = 0;
    let total = 0;
    for (let i = 0; i < 3; i++) {
      const x = randomRows(1, d, 50 + i, 1.5);
      const exact = bruteForce(fn, x.data, bg);
      for (const sampler of ['per-background', 'balanced'] as const) {
        for (let seed = 0; seed < 8; seed++) {
          const model = jsModel(d, 1, fn);
          const e = await kernelShap(model, x, { space: space(d), background: bg, nSamples: 400, seed, sampler, tolerance: 0 });
          const ex = e.explanations[0];
          assert.equal(ex.modelEvaluations, 400 * 16 + 1 + 16, 'the same model evaluations');
          assert.equal(model.rows, ex.modelEvaluations);
          assert.equal(ex.diagnostics!.estimator, sampler === 'balanced' ? 'shared' : 'per-background');
          phiOf(e).forEach((p, j) => {
            sq[sampler] += (p - exact[j]) ** 2;
            if (sampler === 'per-background') {
              total++;
              if (Math.abs(p - exact[j]) <= 2 * seOf(e)[j]) inside++;
            }
          });
        }
      }
    }
    assert.ok(sq['per-background'] < 0.7 * sq.balanced, `squared error ${sq['per-background']} vs ${sq.balanced}`);
    assert.ok(inside / total >= 0.9, `${inside} of ${total} within 2 stderr`);
  });

  it('says why each instance stopped: exact, tolerance, budget (tolerance 0 spends it all)', async () => {
    const d = 14;
    const fn: Fn = (r) => [r.reduce((s, v, i) => s + (i + 1) * v, 0) + 0.01 * r[0] * r[1] * r[2] + Math.tanh(r[3] * r[4])];
    const bg = randomRows(5, d, 60);
    const x = randomRows(2, d, 61);
    const base = { space: space(d), background: bg };
    const exact = await kernelShap(jsModel(d, 1, fn), x, { ...base, nSamples: 20_000 });
    for (const ex of exact.explanations) {
      assert.equal(ex.stopReason, 'exact');
      assert.equal(ex.converged, true);
      assert.equal(ex.outputs[0].approximationError, 0);
    }
    for (const sampler of ['per-background', 'balanced', 'shap'] as const) {
      const spent = await kernelShap(jsModel(d, 1, fn), x, { ...base, nSamples: 600, tolerance: 0, sampler });
      for (const ex of spent.explanations) {
        assert.equal(ex.stopReason, 'budget', sampler);
        assert.equal(ex.converged, false);
        assert.equal(ex.diagnostics!.coalitions, 600);
        assert.equal(ex.modelEvaluations, 600 * 5 + 1 + 5);
      }
    }
    const early = await kernelShap(jsModel(d, 1, fn), x, { ...base, tolerance: 0.05 });
    for (const ex of early.explanations) {
      assert.equal(ex.stopReason, 'tolerance');
      assert.equal(ex.converged, true);
      assert.ok((ex.diagnostics!.coalitions as number) < 2 * d + 2048);
      const phi = ex.outputs[0].attributions.map((a) => a.attribution);
      assert.ok(ex.outputs[0].approximationError <= 0.05 * (Math.max(...phi) - Math.min(...phi)));
    }
  });

  it('shares designs across a batch: same results as one call per instance, with fewer model calls', async () => {
    const d = 16;
    const fn: Fn = (r) => [Math.tanh(r[0] * r[1] - r[2]) + r[3] * r[4] * r[5] + Math.max(r[6], r[7]) * r[15], r[8] - r[9] * r[10]];
    const bg = randomRows(6, d, 70);
    const x = randomRows(5, d, 71);
    // One background column is constant and equal to one instance's value: that instance has fewer players.
    for (let b = 0; b < 6; b++) bg.data[b * d + 12] = 0.5;
    x.data[2 * d + 12] = 0.5;
    for (const tolerance of [0, 0.02]) {
      const opts: KernelShapOptions = { space: space(d, 2), background: bg, nSamples: 700, seed: 3, tolerance };
      const batchModel = jsModel(d, 2, fn);
      const batch = await kernelShap(batchModel, x, opts);
      let calls = 0;
      let rows = 0;
      for (let i = 0; i < x.n; i++) {
        const model = jsModel(d, 2, fn);
        const one = await kernelShap(model, { n: 1, d, data: x.data.slice(i * d, (i + 1) * d) }, opts);
        calls += model.calls;
        rows += model.rows;
        const strip = (e: InstanceExplanation) => JSON.stringify({ ...e, computeMs: 0 });
        assert.equal(strip(batch.explanations[i]), strip(one.explanations[0]), `instance ${i}, tolerance ${tolerance}`);
      }
      assert.ok(batchModel.calls < calls, `${batchModel.calls} calls for the batch, ${calls} one by one`);
      // Coalitions are the same; the instance and background rows are evaluated once per call.
      assert.equal(batchModel.rows, rows - (x.n - 1) * (1 + 6) + (x.n - 1));
    }
  });

  it('rejects when the model returns a non-finite output for a masked row (every sampler), or leaves the logit domain', async () => {
    const d = 10;
    const bg = randomRows(6, d, 95);
    const x = randomRows(2, d, 96);
    // Finite on x and on the background rows, NaN or ±Infinity on a few masked rows.
    const poisoned = (bad: number): Fn => (r) => (r[0] === x.data[0] && r[1] !== x.data[1] && r[2] === bg.data[2] ? [bad, 0.5] : [Math.tanh(r[0] + r[1] * r[2]), 0.5]);
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const sampler of ['per-background', 'balanced', 'shap'] as const) {
        await assert.rejects(
          kernelShap(jsModel(d, 2, poisoned(bad)), x, { space: space(d, 2), background: bg, sampler, nSamples: 300 }),
          /non-finite output/,
          `${sampler}, ${bad}`,
        );
      }
    }
    // The same rows out of [0, 1] under the logit link: a caller error (use the identity link).
    await assert.rejects(
      kernelShap(jsModel(d, 2, poisoned(1.5)), x, { space: space(d, 2), background: bg, link: 'logit', nSamples: 300, outputs: [0] }),
      (e: unknown) => e instanceof ExplainerInputError && e.code === 'BAD_PARAMETER',
    );
  });

  it('throws ExplainerInputError with a stable code for what the caller got wrong', async () => {
    const d = 4;
    const model = jsModel(d, 2, (r) => [r[0], sigmoid(r[1])]);
    const bg = randomRows(5, d, 24);
    const x = randomRows(1, d, 25);
    const base: KernelShapOptions = { space: space(d, 2), background: bg };
    const cases: [string, Rows, Partial<KernelShapOptions>][] = [
      ['BAD_BACKGROUND', x, { background: randomRows(5, 3, 1) }],
      ['BAD_BACKGROUND', x, { background: { n: 0, d, data: new Float32Array(0) } }],
      ['BAD_BACKGROUND', x, { backgroundWeights: new Float32Array(4) }],
      ['BAD_BACKGROUND', x, { backgroundWeights: new Float32Array(5) }],
      ['BAD_BACKGROUND', x, { background: { n: 1, d, data: Float32Array.of(1, NaN, 0, 0) } }],
      ['BAD_INSTANCES', randomRows(1, 5, 1), {}],
      ['BAD_INSTANCES', { n: 0, d, data: new Float32Array(0) }, {}],
      ['BAD_PARAMETER', x, { nSamples: 1 }],
      ['BAD_PARAMETER', x, { nSamples: 2.5 }],
      ['BAD_PARAMETER', x, { nSamples: 1e12 }],
      ['BAD_PARAMETER', x, { seed: 0.5 }],
      ['BAD_PARAMETER', x, { tolerance: -1 }],
      ['BAD_PARAMETER', x, { maxBackground: 0 }],
      ['BAD_PARAMETER', x, { link: 'probit' as 'logit' }],
      ['BAD_PARAMETER', x, { sampler: 'magic' as 'shap' }],
      ['BAD_PARAMETER', x, { sampler: 'per-background', link: 'logit', outputs: [1] }], // the rows' games do not average under logit
      ['BAD_PARAMETER', x, { space: space(3, 2) }],
      ['BAD_PARAMETER', x, { link: 'logit' }], // output 0 is not a probability
      ['BAD_OUTPUTS', x, { outputs: [2] }],
      ['BAD_OUTPUTS', x, { outputs: [] }],
      ['BAD_GROUPS', x, { space: space(d, 2, [[0, 1], [1, 2]]) }],
      ['BAD_GROUPS', x, { space: space(d, 2, [[0, 9]]) }],
      ['BAD_GROUPS', x, { space: space(d, 2, [[]]) }],
    ];
    for (const [code, inst, change] of cases) {
      await assert.rejects(
        kernelShap(model, inst, { ...base, ...change }),
        (err: unknown) => err instanceof ExplainerInputError && err.code === code && err.message.length > 10,
        `${code} for ${JSON.stringify(Object.keys(change))}`,
      );
    }
    // Too small a budget to sample M players (but not too small to enumerate a small M).
    const wide = jsModel(20, 1, (r) => [r[0] * r[1]]);
    await assert.rejects(
      kernelShap(wide, randomRows(1, 20, 2), { space: space(20), background: randomRows(3, 20, 3), nSamples: 10 }),
      (err: unknown) => err instanceof ExplainerInputError && err.code === 'BAD_PARAMETER' && /at least 40/.test(err.message),
    );
    const huge = jsModel(600, 1, (r) => [r[0]]);
    await assert.rejects(
      kernelShap(huge, randomRows(1, 600, 6), { space: space(600), background: randomRows(2, 600, 7) }),
      (err: unknown) => err instanceof ExplainerInputError && err.code === 'BAD_PARAMETER' && /group features/.test(err.message),
    );
    const two = jsModel(2, 1, (r) => [sigmoid(r[0] * r[1])]);
    const ok = await kernelShap(two, randomRows(1, 2, 4), { space: space(2), background: randomRows(3, 2, 5), nSamples: 2, link: 'logit' });
    assert.equal(ok.explanations[0].converged, true);
  });
});
