import assert from 'node:assert/strict';
import { integratedGradients, type IntegratedGradientsOptions } from '../explainers/integratedGradients.js';
import { QUADRATURE_RULES } from '../explainers/quadrature.js';
import { seededRng, normal } from '../explainers/random.js';
import { ExplainerInputError, type Explanation, type Model, type Rows } from '../explainers/types.js';

// Plain-JS models with analytic gradients: the oracles owe nothing to the code under test.

function rows(list: number[][]): Rows {
  return { data: Float32Array.from(list.flat()), n: list.length, d: list[0].length };
}

function eachRow(r: Rows, f: (x: Float32Array, i: number) => void): void {
  for (let i = 0; i < r.n; i++) f(r.data.subarray(i * r.d, (i + 1) * r.d), i);
}

/** f_o(x) = W[o] . x + c[o]. */
function linearModel(W: number[][], c: number[]): Model & { gradientCalls: number } {
  return {
    nFeatures: W[0].length,
    nOutputs: W.length,
    gradientCalls: 0,
    async predict(r) {
      const out = new Float32Array(r.n * W.length);
      eachRow(r, (x, i) => W.forEach((w, o) => (out[i * W.length + o] = c[o] + w.reduce((s, wj, j) => s + wj * x[j], 0))));
      return out;
    },
    async inputGradients(r, o) {
      this.gradientCalls++;
      const g = new Float32Array(r.n * r.d);
      for (let i = 0; i < r.n; i++) g.set(W[o], i * r.d);
      return g;
    },
  };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Two smooth outputs: sigmoid(w.x + 0.5 x0 x1) and sin(x2) x3 + exp(0.3 x0). */
const smoothModel: Model = {
  nFeatures: 4,
  nOutputs: 2,
  async predict(r) {
    const out = new Float32Array(r.n * 2);
    eachRow(r, (x, i) => {
      out[2 * i] = sigmoid(0.8 * x[0] - 1.2 * x[1] + 0.5 * x[2] + 0.3 * x[3] + 0.5 * x[0] * x[1]);
      out[2 * i + 1] = Math.sin(x[2]) * x[3] + Math.exp(0.3 * x[0]);
    });
    return out;
  },
  async inputGradients(r, o) {
    const g = new Float32Array(r.n * 4);
    eachRow(r, (x, i) => {
      if (o === 0) {
        const s = sigmoid(0.8 * x[0] - 1.2 * x[1] + 0.5 * x[2] + 0.3 * x[3] + 0.5 * x[0] * x[1]);
        const ds = s * (1 - s);
        g.set([ds * (0.8 + 0.5 * x[1]), ds * (-1.2 + 0.5 * x[0]), ds * 0.5, ds * 0.3], i * 4);
      } else {
        g.set([0.3 * Math.exp(0.3 * x[0]), 0, Math.cos(x[2]) * x[3], Math.sin(x[2])], i * 4);
      }
    });
    return g;
  },
};

/**
 * One hidden ReLU layer: out = w2 . relu(W1 x + b1) + b2, optionally through a sigmoid. The exact
 * breakpoints along a path are where a hidden pre-activation p0 + a (p1 - p0) crosses zero.
 */
function reluNet(d: number, h: number, seed: number, sigmoidHead: boolean, withBreakpoints = true, withJacobian = false): Model {
  const rng = seededRng(seed);
  const W1 = Array.from({ length: h }, () => Array.from({ length: d }, () => normal(rng)));
  const b1 = Array.from({ length: h }, () => 0.5 * normal(rng));
  const w2 = Array.from({ length: h }, () => normal(rng));
  const b2 = 0.1;
  const pre = (x: ArrayLike<number>) => W1.map((w, k) => b1[k] + w.reduce((s, wj, j) => s + wj * x[j], 0));
  const headOf = (p: number[]) => w2.reduce((s, v, k) => s + v * Math.max(0, p[k]), b2);
  const head = (x: ArrayLike<number>) => headOf(pre(x));
  const model: Model = {
    nFeatures: d,
    nOutputs: 1,
    async predict(r) {
      const out = new Float32Array(r.n);
      eachRow(r, (x, i) => (out[i] = sigmoidHead ? sigmoid(head(x)) : head(x)));
      return out;
    },
    async inputGradients(r) {
      const g = new Float32Array(r.n * d);
      eachRow(r, (x, i) => {
        const p = pre(x);
        const s = sigmoid(headOf(p));
        const scale = sigmoidHead ? s * (1 - s) : 1;
        for (let k = 0; k < h; k++) {
          if (p[k] <= 0) continue;
          for (let j = 0; j < d; j++) g[i * d + j] += scale * w2[k] * W1[k][j];
        }
      });
      return g;
    },
  };
  if (withJacobian) {
    // z = w2 . relu(W1 x + b1) + b2 and dz/dx = sum over active units of w2_k W1[k].
    model.logitJacobian = async (r) => {
      const logits = new Float32Array(r.n);
      const jacobian = new Float32Array(r.n * d);
      eachRow(r, (x, i) => {
        const p = pre(x);
        logits[i] = headOf(p);
        for (let k = 0; k < h; k++) if (p[k] > 0) for (let j = 0; j < d; j++) jacobian[i * d + j] += w2[k] * W1[k][j];
      });
      return { activation: sigmoidHead ? 'sigmoid' : 'linear', logits, jacobian };
    };
  }
  if (withBreakpoints) {
    model.pathBreakpoints = async (from, to) => {
      const p0 = pre(from);
      const p1 = pre(to);
      const alphas = p0.flatMap((a, k) => (a * p1[k] < 0 ? [a / (a - p1[k])] : [])).sort((a, b) => a - b);
      return { alphas, affineBetween: !sigmoidHead };
    };
  }
  return model;
}

const space = (d: number, nOut = 1) => ({
  featureNames: Array.from({ length: d }, (_, j) => `f${j}`),
  outputNames: Array.from({ length: nOut }, (_, o) => `out${o}`),
});

const attributions = (e: Explanation, i = 0, k = 0) => e.explanations[i].outputs[k].attributions.map((a) => a.attribution);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** One per-instance diagnostic across the instances. */
const perInstance = <T = number>(e: Explanation, key: string) => e.explanations.map((inst) => inst.diagnostics?.[key] as T);

function closeTo(actual: number[], expected: number[], tol: number, what = ''): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, j) => assert.ok(Math.abs(a - expected[j]) <= tol, `${what}[${j}]: ${a} vs ${expected[j]} (tol ${tol})`));
}

const randomRows = (n: number, d: number, seed: number, scale = 1) => {
  const rng = seededRng(seed);
  return rows(Array.from({ length: n }, () => Array.from({ length: d }, () => scale * normal(rng))));
};

describe('integratedGradients', () => {
  describe('linear model: IG is (x - x\') * w', () => {
    const W = [[2, -1, 0.5, 3], [0, 1, -2, 0.25]];
    const model = linearModel(W, [0.5, -1]);
    const x = rows([[1, 2, 3, 4], [-1, 0.5, 2, -3]]);
    const b = rows([[0.5, -1, 1, 2]]);
    for (const method of QUADRATURE_RULES) {
      for (const steps of [2, 7, 'auto'] as const) {
        it(`${method}, steps ${steps}`, async () => {
          const e = await integratedGradients(model, x, { space: space(4, 2), method, steps, baseline: b });
          for (let i = 0; i < 2; i++) {
            for (let o = 0; o < 2; o++) {
              const xi = Array.from(x.data.subarray(i * 4, i * 4 + 4));
              closeTo(attributions(e, i, o), xi.map((v, j) => (v - b.data[j]) * W[o][j]), 1e-5);
              assert.ok(Math.abs(e.explanations[i].outputs[o].approximationError) < 1e-5);
            }
            assert.equal(e.explanations[i].converged, true);
          }
        });
      }
    }
  });

  it('carries names, values and output values in the Explanation', async () => {
    const model = linearModel([[1, 2]], [3]);
    const e = await integratedGradients(model, rows([[1, 1]]), { space: { featureNames: ['a', 'b'], outputNames: ['score'] } });
    assert.equal(e.method, 'integrated-gradients');
    const out = e.explanations[0].outputs[0];
    assert.equal(out.output, 'score');
    assert.equal(out.outputIndex, 0);
    assert.equal(out.baselineOutputValue, 3);
    assert.equal(out.instanceOutputValue, 6);
    assert.deepEqual(out.attributions.map((a) => [a.feature, a.value]), [['a', 1], ['b', 1]]);
    closeTo(attributions(e), [1, 2], 1e-12);
    assert.deepEqual(JSON.parse(JSON.stringify(e)), e);
  });

  describe('completeness', () => {
    const x = randomRows(6, 4, 11, 1.5);
    it('auto mode meets the tolerance on a smooth nonlinear model, refining only where needed', async () => {
      for (const tolerance of [1e-2, 1e-6]) {
        const e = await integratedGradients(smoothModel, x, { space: space(4, 2), tolerance, baseline: 'zeros' });
        for (const inst of e.explanations) {
          assert.equal(inst.converged, true);
          for (const out of inst.outputs) {
            const gap = out.instanceOutputValue - out.baselineOutputValue;
            const floor = 1e-5 * Math.max(1, Math.abs(out.instanceOutputValue), Math.abs(out.baselineOutputValue));
            assert.ok(Math.abs(out.approximationError) <= Math.max(tolerance * Math.abs(gap), floor));
            assert.ok(Math.abs(sum(out.attributions.map((a) => a.attribution)) - gap - out.approximationError) < 1e-9);
          }
        }
        assert.equal(e.diagnostics?.quadrature, 'gauss-legendre');
        const used = perInstance(e, 'stepsUsed');
        assert.equal(used.length, 6);
        // Two levels at least: the per-feature estimate is the difference between them.
        assert.ok(used.every((s) => s >= 32 && s <= 1024), `steps ${used}`);
        for (const inst of e.explanations) {
          assert.equal(inst.stopReason, 'tolerance');
          inst.outputs.forEach((out, q) => {
            const bound = (inst.diagnostics!.featureError as number[])[q];
            const floor = 1e-5 * Math.max(1, Math.abs(out.instanceOutputValue), Math.abs(out.baselineOutputValue));
            assert.ok(bound <= Math.max(tolerance * Math.max(...out.attributions.map((a) => Math.abs(a.attribution))), floor));
            assert.equal((inst.diagnostics!.completenessDelta as number[])[q], out.approximationError);
          });
        }
      }
    });

    it('auto mode gives each instance the steps it needs (kinked ReLU paths without breakpoints)', async () => {
      const net = reluNet(5, 24, 3, false, false);
      const e = await integratedGradients(net, randomRows(8, 5, 5, 2), { space: space(5), tolerance: 0.01, maxSteps: 4096 });
      const used = perInstance(e, 'stepsUsed');
      assert.ok(new Set(used).size > 1, `steps used ${used}`);
      assert.ok(Math.min(...used) >= 32 && Math.max(...used) > Math.min(...used), `steps used ${used}`);
      for (const inst of e.explanations) {
        const out = inst.outputs[0];
        assert.equal(inst.converged, true);
        assert.ok(Math.abs(out.approximationError) <= 0.01 * Math.abs(out.instanceOutputValue - out.baselineOutputValue));
      }
    });

    it('a tighter tolerance uses more steps and agrees with a very fine rule', async () => {
      const loose = await integratedGradients(smoothModel, x, { space: space(4, 2), tolerance: 0.05 });
      const tight = await integratedGradients(smoothModel, x, { space: space(4, 2), tolerance: 1e-7, absoluteTolerance: 1e-7 });
      const fine = await integratedGradients(smoothModel, x, { space: space(4, 2), method: 'riemann-middle', steps: 20000 });
      assert.ok(sum(perInstance(tight, 'stepsUsed')) >= sum(perInstance(loose, 'stepsUsed')));
      for (let i = 0; i < 6; i++) for (let o = 0; o < 2; o++) closeTo(attributions(tight, i, o), attributions(fine, i, o), 1e-5);
    });

    for (const withJacobian of [false, true]) {
      const how = withJacobian ? 'exact segment integration (logitJacobian)' : 'per-segment quadrature';
      it(`exact mode on a ReLU net, ${how}: completeness to float precision, where fixed-step Riemann is off`, async () => {
        const net = reluNet(5, 24, 3, false, true, withJacobian);
        const xs = randomRows(8, 5, 5, 2);
        const exact = await integratedGradients(net, xs, { space: space(5) });
        const riemann = await integratedGradients(net, xs, { space: space(5), method: 'riemann-left', steps: 32 });
        assert.equal(exact.diagnostics?.quadrature, 'exact');
        assert.equal(exact.diagnostics?.affineBetween, true);
        let worstRiemann = 0;
        for (let i = 0; i < 8; i++) {
          const inst = exact.explanations[i];
          const out = inst.outputs[0];
          const scale = Math.max(1e-3, Math.abs(out.instanceOutputValue - out.baselineOutputValue));
          assert.ok(Math.abs(out.approximationError) / scale < 1e-6, `instance ${i}: ${out.approximationError} of ${scale}`);
          assert.equal(inst.stopReason, 'exact');
          assert.equal(inst.converged, true);
          assert.equal(inst.diagnostics?.integration, withJacobian ? 'segments-exact' : 'segments');
          // One model row per segment either way.
          assert.equal(inst.diagnostics?.gradientRows, inst.diagnostics?.segments);
          const r = riemann.explanations[i].outputs[0];
          worstRiemann = Math.max(worstRiemann, Math.abs(r.approximationError) / scale);
        }
        assert.ok(worstRiemann > 1e-3, `riemann-left 32 worst relative delta ${worstRiemann}`);
      });

      it(`exact mode, ${how}, matches a 20000-step Riemann sum on a ReLU net, with and without a sigmoid head`, async () => {
        for (const sigmoidHead of [false, true]) {
          const net = reluNet(5, 24, 7, sigmoidHead, true, withJacobian);
          const xs = randomRows(4, 5, 9, 2);
          const baseline = randomRows(1, 5, 10, 0.5);
          const exact = await integratedGradients(net, xs, { space: space(5), method: 'exact', baseline, tolerance: 1e-6 });
          const fine = await integratedGradients(net, xs, { space: space(5), method: 'riemann-middle', steps: 20000, baseline });
          // A ReLU net's gradient jumps at each breakpoint, so a Riemann sum errs by O(1/steps) times
          // the jump: compare relative to the attributions' size.
          for (let i = 0; i < 4; i++) {
            const scale = Math.max(1, ...attributions(fine, i).map(Math.abs));
            closeTo(attributions(exact, i), attributions(fine, i), 1e-4 * scale, `sigmoid ${sigmoidHead} #${i}`);
          }
          assert.equal(exact.diagnostics?.affineBetween, !sigmoidHead);
          assert.ok(perInstance(exact, 'segments').some((s) => s > 3));
          assert.ok(exact.explanations.every((inst) => inst.converged));
          const expected = withJacobian ? 'exact' : sigmoidHead ? 'tolerance' : 'exact';
          assert.deepEqual(exact.explanations.map((inst) => inst.stopReason), [expected, expected, expected, expected]);
        }
      });
    }

    for (const withJacobian of [false, true]) {
      it(`exact mode recovers when a model under-reports its breakpoints, refining per segment${withJacobian ? ' (exact segment integration detects it)' : ''}`, async () => {
        const net = reluNet(5, 24, 3, false, true, withJacobian);
        const honest = net.pathBreakpoints!.bind(net);
        const lossy: Model = { ...net, pathBreakpoints: async (a, b) => ({ ...(await honest(a, b)), alphas: (await honest(a, b)).alphas.filter((_, k) => k % 2 === 0) }) };
        const xs = randomRows(6, 5, 5, 2);
        // A missed kink inside a segment makes quadrature converge like O(1/n): give it room.
        const e = await integratedGradients(lossy, xs, { space: space(5), tolerance: 1e-2, maxSteps: 1 << 14 });
        const reference = await integratedGradients(net, xs, { space: space(5) });
        const used = perInstance(e, 'stepsUsed');
        const segments = perInstance(e, 'segments');
        assert.ok(used.some((u, i) => u > segments[i]), 'some paths needed refinement');
        if (withJacobian) assert.ok((e.diagnostics?.fallbackPaths as number) > 0, 'continuity or completeness caught the missed breakpoints');
        for (let i = 0; i < 6; i++) {
          assert.equal(e.explanations[i].converged, true);
          const scale = Math.max(1, ...attributions(reference, i).map(Math.abs));
          closeTo(attributions(e, i), attributions(reference, i), 5e-2 * scale, `#${i}`);
        }
      });
    }

    it("picks Gauss-Legendre over 'exact' for paths with more segments than maxSteps / 4, unless 'exact' was asked for", async () => {
      const net = reluNet(5, 48, 3, false);
      const xs = randomRows(6, 5, 5, 3);
      const chosen = await integratedGradients(net, xs, { space: space(5), maxSteps: 100 });
      const asked = await integratedGradients(net, xs, { space: space(5), maxSteps: 100, method: 'exact' });
      const segments = perInstance(chosen, 'segments');
      const many = segments.filter((s) => s > 25).length;
      assert.ok(many > 0 && many < 6, `segments ${segments}`);
      assert.equal(chosen.diagnostics?.gaussLegendrePaths, many);
      assert.equal(asked.diagnostics?.gaussLegendrePaths, 0);
      const used = perInstance(chosen, 'stepsUsed');
      // Gauss-Legendre over [0, 1] needs two levels (16 then 32 points) for an error estimate.
      segments.forEach((s, i) => assert.ok(s > 25 ? [32, 64].includes(used[i]) : used[i] === s, `#${i}: ${s} segments, ${used[i]} steps`));
      assert.deepEqual(perInstance(chosen, 'integration'), segments.map((s) => (s > 25 ? 'straight' : 'segments')));
      assert.deepEqual(perInstance(asked, 'stepsUsed'), segments);
    });

    it("an explicitly asked rule overrides 'exact' even when the model has breakpoints", async () => {
      const e = await integratedGradients(reluNet(3, 4, 1, false), randomRows(1, 3, 2), { space: space(3), method: 'gauss-legendre', steps: 8 });
      assert.equal(e.diagnostics?.quadrature, 'gauss-legendre');
      assert.deepEqual(perInstance(e, 'stepsUsed'), [8]);
    });
  });

  describe('baselines', () => {
    const x = randomRows(3, 4, 21);
    it('several baseline rows: attributions are the mean of the single-baseline ones', async () => {
      const bs = randomRows(3, 4, 22);
      const opts: IntegratedGradientsOptions = { space: space(4, 2), method: 'gauss-legendre', steps: 24 };
      const together = await integratedGradients(smoothModel, x, { ...opts, baseline: bs });
      const alone = await Promise.all(
        [0, 1, 2].map((b) => integratedGradients(smoothModel, x, { ...opts, baseline: { data: bs.data.slice(b * 4, b * 4 + 4), n: 1, d: 4 } })),
      );
      for (let i = 0; i < 3; i++) {
        for (let o = 0; o < 2; o++) {
          const want = [0, 1, 2, 3].map((j) => sum(alone.map((e) => attributions(e, i, o)[j])) / 3);
          closeTo(attributions(together, i, o), want, 1e-9);
          const out = together.explanations[i].outputs[o];
          const meanF = sum(alone.map((e) => e.explanations[i].outputs[o].baselineOutputValue)) / 3;
          assert.ok(Math.abs(out.baselineOutputValue - meanF) < 1e-9);
          // Completeness against the mean baseline output.
          const gap = out.instanceOutputValue - out.baselineOutputValue;
          assert.ok(Math.abs(sum(attributions(together, i, o)) - gap - out.approximationError) < 1e-9);
        }
      }
      assert.equal(together.diagnostics?.baselines, 3);
    });

    it("'mean' uses the column mean of the background", async () => {
      const background = rows([[1, 2, 3, 4], [3, 0, -1, 4], [2, 1, 1, 1]]);
      const viaMean = await integratedGradients(smoothModel, x, { space: space(4, 2), baseline: 'mean', background, steps: 16 });
      const explicit = await integratedGradients(smoothModel, x, { space: space(4, 2), baseline: rows([[2, 1, 1, 3]]), steps: 16 });
      for (let i = 0; i < 3; i++) for (let o = 0; o < 2; o++) closeTo(attributions(viaMean, i, o), attributions(explicit, i, o), 1e-12);
      assert.equal(viaMean.diagnostics?.baselineKind, 'mean');
    });

    it("'zeros' is the default", async () => {
      const model = linearModel([[1, 1, 1, 1]], [0]);
      const e = await integratedGradients(model, rows([[1, 2, 3, 4]]), { space: space(4) });
      closeTo(attributions(e), [1, 2, 3, 4], 1e-6);
      assert.equal(e.explanations[0].outputs[0].baselineOutputValue, 0);
    });
  });

  describe('outputs and batching', () => {
    const x = randomRows(5, 4, 31);
    it('explains the outputs asked for, in the order asked, each as when explained alone', async () => {
      const both = await integratedGradients(smoothModel, x, { space: space(4, 2), outputs: [1, 0], steps: 32 });
      const only0 = await integratedGradients(smoothModel, x, { space: space(4, 2), outputs: [0], steps: 32 });
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(both.explanations[i].outputs.map((o) => [o.output, o.outputIndex]), [['out1', 1], ['out0', 0]]);
        closeTo(attributions(both, i, 1), attributions(only0, i, 0), 0);
      }
    });

    it('sends every path point for one output in one inputGradients call, or in chunks of maxRowsPerCall with the same result', async () => {
      const model = linearModel([[1, -2, 3, 0.5]], [0]);
      await integratedGradients(model, x, { space: space(4), steps: 64 });
      assert.equal(model.gradientCalls, 1);
      const e1 = await integratedGradients(smoothModel, x, { space: space(4, 2), steps: 50 });
      const e2 = await integratedGradients(smoothModel, x, { space: space(4, 2), steps: 50, maxRowsPerCall: 7 });
      assert.deepEqual(e1.explanations.map((e) => e.outputs), e2.explanations.map((e) => e.outputs));
    });

    it('counts model evaluations: one predict per instance and baseline plus every gradient row', async () => {
      const e = await integratedGradients(smoothModel, x, { space: space(4, 2), steps: 10 });
      assert.equal(e.explanations[0].modelEvaluations, 1 + 1 + 2 * 10);
      assert.equal(e.diagnostics?.gradientRows, 5 * 2 * 10);
    });

    it('image models keep attributions flat in row-major order and report the input shape', async () => {
      const W = [[1, 2, 3, 4, 5, 6]];
      const e = await integratedGradients(linearModel(W, [0]), rows([[1, 1, 1, 1, 1, 1]]), {
        space: { featureNames: [], outputNames: ['digit'], inputShape: [2, 3, 1] },
      });
      assert.deepEqual(e.inputShape, [2, 3, 1]);
      closeTo(attributions(e), [1, 2, 3, 4, 5, 6], 1e-6);
      assert.deepEqual(e.explanations[0].outputs[0].attributions.map((a) => a.feature), ['x0', 'x1', 'x2', 'x3', 'x4', 'x5']);
    });
  });

  describe('stop reasons and diagnostics', () => {
    it('fixed steps: tolerance when completeness holds, budget when it does not, exact for affine segments', async () => {
      const x = randomRows(3, 4, 51);
      const fine = await integratedGradients(smoothModel, x, { space: space(4, 2), steps: 50 });
      assert.deepEqual(fine.explanations.map((i) => i.stopReason), ['tolerance', 'tolerance', 'tolerance']);
      assert.ok(fine.explanations.every((i) => i.converged && (i.diagnostics!.featureError as unknown[]).every((v) => v === null)));
      const coarse = await integratedGradients(smoothModel, randomRows(3, 4, 51, 3), { space: space(4, 2), method: 'riemann-left', steps: 2 });
      assert.ok(coarse.explanations.every((i) => i.stopReason === 'budget' && !i.converged));
      const relu = await integratedGradients(reluNet(5, 24, 3, false), randomRows(3, 5, 5, 2), { space: space(5), steps: 4 });
      assert.ok(relu.explanations.every((i) => i.stopReason === 'exact' && i.converged));
    });

    it('tolerance 0 spends the whole budget, except where integration is exact', async () => {
      const e = await integratedGradients(smoothModel, randomRows(2, 4, 52), { space: space(4, 2), tolerance: 0, maxSteps: 128 });
      assert.deepEqual(perInstance(e, 'stepsUsed'), [128, 128]);
      assert.ok(e.explanations.every((i) => i.stopReason === 'budget' && !i.converged));
      for (const withJacobian of [false, true]) {
        const exact = await integratedGradients(reluNet(5, 24, 3, false, true, withJacobian), randomRows(3, 5, 5, 2), { space: space(5), tolerance: 0 });
        assert.ok(exact.explanations.every((i) => i.stopReason === 'exact' && i.diagnostics?.gradientRows === i.diagnostics?.segments));
      }
    });

    it('each instance carries its own diagnostics; the request-level ones hold no per-instance arrays', async () => {
      const e = await integratedGradients(reluNet(5, 24, 3, true, true, true), randomRows(4, 5, 5, 2), { space: space(5) });
      for (const inst of e.explanations) {
        const diag = inst.diagnostics!;
        assert.deepEqual(Object.keys(diag).sort(), ['completenessDelta', 'featureError', 'gradientRows', 'integration', 'outputsExplained', 'segments', 'stepsUsed']);
        assert.deepEqual(diag.completenessDelta, inst.outputs.map((o) => o.approximationError));
        assert.equal(inst.modelEvaluations, 2 + (diag.gradientRows as number));
        assert.equal(inst.stopReason, 'exact');
      }
      assert.equal(sum(perInstance(e, 'gradientRows')), e.diagnostics?.gradientRows);
      for (const [key, v] of Object.entries(e.diagnostics!)) assert.ok(!Array.isArray(v), `request-level ${key} is an array`);
    });
  });

  describe('deadline and cancellation', () => {
    it('checks the deadline before every gradient chunk of a refinement level, not only between levels', async () => {
      const net = reluNet(5, 24, 3, false, false);
      const realNow = Date.now;
      let now = 1_000_000;
      let calls = 0;
      // Each gradient call "takes" 10 ms of a clock the test controls.
      const slow: Model = {
        ...net,
        inputGradients: async (r, o) => {
          calls++;
          now += 10;
          return net.inputGradients!(r, o);
        },
      };
      Date.now = () => now;
      try {
        // Level 0: 4 paths x 16 points in chunks of 8 rows = 8 calls (always completed: 80 ms).
        // Level 1: 4 x 32 points = 16 calls; the deadline at +120 ms stops it after 4 of them,
        // which is exactly the first path's 32 points.
        const e = await integratedGradients(slow, randomRows(4, 5, 41, 2), { space: space(5), tolerance: 1e-9, maxRowsPerCall: 8, deadline: now + 120 });
        assert.equal(calls, 12);
        assert.deepEqual(perInstance(e, 'stepsUsed'), [32, 16, 16, 16]);
        assert.equal(e.diagnostics?.deadlineReached, true);
        assert.ok(e.explanations.every((inst) => inst.stopReason === 'deadline' && !inst.converged));
      } finally {
        Date.now = realNow;
      }
    });

    it('a passed deadline returns the first estimate with converged false', async () => {
      const net = reluNet(5, 24, 3, false, false);
      const e = await integratedGradients(net, randomRows(3, 5, 41, 2), { space: space(5), tolerance: 1e-9, deadline: Date.now() - 1 });
      assert.equal(e.diagnostics?.deadlineReached, true);
      assert.deepEqual(perInstance(e, 'stepsUsed'), [16, 16, 16]);
      assert.ok(e.explanations.every((inst) => !inst.converged && inst.stopReason === 'deadline'));
    });

    it('without a deadline the same request refines up to maxSteps and still says converged false if it fails', async () => {
      const net = reluNet(5, 24, 3, false, false);
      const e = await integratedGradients(net, randomRows(3, 5, 41, 2), { space: space(5), tolerance: 1e-9, maxSteps: 64 });
      assert.deepEqual(perInstance(e, 'stepsUsed'), [64, 64, 64]);
      assert.equal(e.diagnostics?.deadlineReached, false);
      assert.ok(e.explanations.every((inst) => !inst.converged && inst.stopReason === 'budget'));
    });

    it('an aborted signal rejects', async () => {
      const ctl = new AbortController();
      ctl.abort();
      await assert.rejects(integratedGradients(smoothModel, randomRows(1, 4, 1), { space: space(4, 2), signal: ctl.signal }), { name: 'AbortError' });
    });
  });

  describe('bad input', () => {
    const x = rows([[1, 2, 3, 4]]);
    const cases: [string, () => Promise<unknown>, string][] = [
      ['no gradients', () => integratedGradients({ nFeatures: 4, nOutputs: 1, predict: async () => new Float32Array(1) }, x, { space: space(4) }), 'METHOD_NOT_SUPPORTED'],
      ['exact without breakpoints', () => integratedGradients(smoothModel, x, { space: space(4, 2), method: 'exact' }), 'METHOD_NOT_SUPPORTED'],
      ['instance width', () => integratedGradients(smoothModel, rows([[1, 2, 3]]), { space: space(4, 2) }), 'BAD_INSTANCES'],
      ['non-finite instance', () => integratedGradients(smoothModel, rows([[1, NaN, 3, 4]]), { space: space(4, 2) }), 'BAD_INSTANCES'],
      ['no instances', () => integratedGradients(smoothModel, { data: new Float32Array(0), n: 0, d: 4 }, { space: space(4, 2) }), 'BAD_INSTANCES'],
      ['baseline width', () => integratedGradients(smoothModel, x, { space: space(4, 2), baseline: rows([[0, 0]]) }), 'BAD_BASELINE'],
      ['mean without background', () => integratedGradients(smoothModel, x, { space: space(4, 2), baseline: 'mean' }), 'BAD_BASELINE'],
      ['unknown baseline', () => integratedGradients(smoothModel, x, { space: space(4, 2), baseline: 'ones' as never }), 'BAD_BASELINE'],
      ['steps 0', () => integratedGradients(smoothModel, x, { space: space(4, 2), steps: 0 }), 'BAD_PARAMETER'],
      ['steps 2.5', () => integratedGradients(smoothModel, x, { space: space(4, 2), steps: 2.5 }), 'BAD_PARAMETER'],
      ['trapezoid with 1 step', () => integratedGradients(smoothModel, x, { space: space(4, 2), method: 'riemann-trapezoid', steps: 1 }), 'BAD_PARAMETER'],
      ['unknown method', () => integratedGradients(smoothModel, x, { space: space(4, 2), method: 'simpson' as never }), 'BAD_PARAMETER'],
      ['negative tolerance', () => integratedGradients(smoothModel, x, { space: space(4, 2), tolerance: -1 }), 'BAD_PARAMETER'],
      ['unknown criterion', () => integratedGradients(smoothModel, x, { space: space(4, 2), criterion: 'sum' as never }), 'BAD_PARAMETER'],
      ['maxSteps 0', () => integratedGradients(smoothModel, x, { space: space(4, 2), maxSteps: 0 }), 'BAD_PARAMETER'],
      ['output out of range', () => integratedGradients(smoothModel, x, { space: space(4, 2), outputs: [2] }), 'BAD_OUTPUTS'],
      ['no outputs', () => integratedGradients(smoothModel, x, { space: space(4, 2), outputs: [] }), 'BAD_OUTPUTS'],
      ['feature names', () => integratedGradients(smoothModel, x, { space: { featureNames: ['a'], outputNames: [] } }), 'BAD_PARAMETER'],
      ['input shape', () => integratedGradients(smoothModel, x, { space: { ...space(4, 2), inputShape: [3, 3] } }), 'BAD_PARAMETER'],
    ];
    for (const [name, call, code] of cases) {
      it(`${name} -> ${code}`, async () => {
        await assert.rejects(call(), (err: unknown) => {
          assert.ok(err instanceof ExplainerInputError, String(err));
          assert.equal(err.code, code);
          assert.ok(err.message.length > 10);
          return true;
        });
      });
    }
    it('suggests kernel-shap when the model has no gradients', async () => {
      await assert.rejects(integratedGradients({ nFeatures: 4, nOutputs: 1, predict: async () => new Float32Array(1) }, x, { space: space(4) }), /kernel-shap/);
    });
  });
});
