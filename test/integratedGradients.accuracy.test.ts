/**
 * Integrated Gradients at default settings against exact IG on real tfjs models (wasm backend):
 * a 20-64-64-3 ReLU MLP with a softmax output, and the same shape with tanh hidden layers. Weights
 * are seeded and scaled (He x 2) so that the softmax is confident, as in a trained classifier:
 * that is where one node per segment, or a completeness-only stop, leaves attributions wrong.
 *
 * The oracle owes nothing to the code under test: a very fine composite Gauss-Legendre rule
 * (64 nodes on every segment between the model's breakpoints; 64 panels of 32 nodes for the tanh
 * net) over the model's own per-output inputGradients, checked in turn by completeness.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { integratedGradients, type IntegratedGradientsOptions } from '../explainers/integratedGradients.js';
import { normal, seededRng } from '../explainers/random.js';
import type { Explanation, Model, Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { TfjsModel } from '../models/tfjsModel.js';

const D = 20;
const K = 3;

/** Seeded 20-64-64-3 MLP with a softmax output; weights N(0, 1) x 2 sqrt(2 / fan-in). */
async function mlp(hidden: 'relu' | 'tanh', seed: number): Promise<TfjsModel> {
  const net = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [D], units: 64, activation: hidden }),
      tf.layers.dense({ units: 64, activation: hidden }),
      tf.layers.dense({ units: K, activation: 'softmax' }),
    ],
  });
  const rng = seededRng(seed);
  const weights = net.getWeights().map((w) => {
    const fanIn = w.shape.length === 2 ? w.shape[0] : 16;
    return tf.tensor(Float32Array.from({ length: w.size }, () => 2 * Math.sqrt(2 / fanIn) * normal(rng)), w.shape);
  });
  net.setWeights(weights);
  tf.dispose(weights);
  return TfjsModel.create(net);
}

function gaussLegendre(n: number): { x: number[]; w: number[] } {
  // Golub-Welsch would need an eigensolver; Newton on P_n from the Chebyshev guesses is enough here.
  const x: number[] = [];
  const w: number[] = [];
  for (let i = 0; i < n; i++) {
    let t = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 1;
    for (let it = 0; it < 100; it++) {
      let p0 = 1;
      let p1 = t;
      for (let k = 2; k <= n; k++) [p0, p1] = [p1, ((2 * k - 1) * t * p1 - (k - 1) * p0) / k];
      dp = (n * (t * p1 - p0)) / (t * t - 1);
      const step = p1 / dp;
      t -= step;
      if (Math.abs(step) < 1e-15) break;
    }
    x.push((1 - t) / 2);
    w.push(1 / ((1 - t * t) * dp * dp));
  }
  return { x, w };
}

/** Exact IG of every output for one instance: composite Gauss-Legendre with per-output gradients. */
async function exactIG(model: Model, x: Float32Array, b: Float32Array): Promise<Float64Array> {
  let edges: number[];
  let nodes: number;
  if (model.pathBreakpoints) {
    edges = [0, ...(await model.pathBreakpoints(b, x)).alphas, 1];
    nodes = 64;
  } else {
    edges = Array.from({ length: 65 }, (_, i) => i / 64);
    nodes = 32;
  }
  const gl = gaussLegendre(nodes);
  const alphas: number[] = [];
  const weights: number[] = [];
  for (let s = 0; s + 1 < edges.length; s++) {
    const len = edges[s + 1] - edges[s];
    gl.x.forEach((t, q) => {
      alphas.push(edges[s] + len * t);
      weights.push(len * gl.w[q]);
    });
  }
  const points = new Float32Array(alphas.length * D);
  alphas.forEach((a, r) => {
    for (let j = 0; j < D; j++) points[r * D + j] = b[j] + a * (x[j] - b[j]);
  });
  const out = new Float64Array(K * D);
  for (let o = 0; o < K; o++) {
    const g = await model.inputGradients!({ data: points, n: alphas.length, d: D }, o);
    weights.forEach((w, r) => {
      for (let j = 0; j < D; j++) out[o * D + j] += w * g[r * D + j];
    });
    for (let j = 0; j < D; j++) out[o * D + j] *= x[j] - b[j];
  }
  return out;
}

function randomRows(seed: number, n: number): Rows {
  const rng = seededRng(seed);
  return { data: Float32Array.from({ length: n * D }, () => normal(rng)), n, d: D };
}

const space = { featureNames: [], outputNames: [] };

/** The largest |attribution - exact| of each instance, and the reported per-output bounds. */
function errors(e: Explanation, exact: Float64Array[]): { worst: number[]; reported: number[] } {
  const worst: number[] = [];
  const reported: number[] = [];
  e.explanations.forEach((inst, i) => {
    let w = 0;
    inst.outputs.forEach((out, q) => {
      out.attributions.forEach((a, j) => (w = Math.max(w, Math.abs(a.attribution - exact[i][q * D + j]))));
    });
    worst.push(w);
    reported.push(Math.max(...(inst.diagnostics?.featureError as number[])));
  });
  return { worst, reported };
}

describe('integratedGradients: default settings against exact IG (tfjs, 20-64-64-3 softmax MLPs)', function () {
  this.timeout(300_000);
  const instances = randomRows(101, 30);
  const background = randomRows(102, 200);
  const options: IntegratedGradientsOptions = { space, baseline: 'mean', background };
  let baseline: Float32Array;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    baseline = new Float32Array(D);
    for (let r = 0; r < background.n; r++) for (let j = 0; j < D; j++) baseline[j] += background.data[r * D + j] / background.n;
  });

  async function oracle(model: Model): Promise<Float64Array[]> {
    const exact: Float64Array[] = [];
    const values = await model.predict({ data: Float32Array.from([...instances.data, ...baseline]), n: instances.n + 1, d: D });
    for (let i = 0; i < instances.n; i++) {
      const ig = await exactIG(model, instances.data.subarray(i * D, (i + 1) * D), baseline);
      // The oracle itself must be complete: its attributions sum to f(x) - f(x') per output.
      for (let o = 0; o < K; o++) {
        const gap = values[i * K + o] - values[instances.n * K + o];
        const sum = ig.subarray(o * D, (o + 1) * D).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - gap) < 1e-5, `oracle completeness #${i}/${o}: ${sum} vs ${gap}`);
      }
      exact.push(ig);
    }
    return exact;
  }

  it('ReLU hidden layers: every attribution within 1e-4 of exact IG, integrated exactly (one model row per segment)', async () => {
    const model = await mlp('relu', 5);
    try {
      const exact = await oracle(model);
      const before = tf.memory().numTensors;
      const e = await integratedGradients(model, instances, options);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      const { worst, reported } = errors(e, exact);
      assert.ok(Math.max(...worst) <= 1e-4, `worst per-feature error ${Math.max(...worst)}`);
      for (const [i, inst] of e.explanations.entries()) {
        assert.equal(inst.stopReason, 'exact');
        assert.equal(inst.diagnostics?.integration, 'segments-exact');
        assert.equal(inst.diagnostics?.gradientRows, inst.diagnostics?.segments);
        // The reported bound covers the real error (up to the oracle's own float32 noise).
        assert.ok(worst[i] <= reported[i] + 2e-6, `#${i}: error ${worst[i]}, reported ${reported[i]}`);
        assert.ok(reported[i] <= 1e-4);
      }
      assert.equal(e.diagnostics?.gradients, 'jacobian');
      assert.equal(e.diagnostics?.fallbackPaths, 0);

      // One instance per call gives the same attributions as all in one call.
      for (const i of [0, 17]) {
        const one = await integratedGradients(model, { data: instances.data.subarray(i * D, (i + 1) * D), n: 1, d: D }, options);
        one.explanations[0].outputs.forEach((out, q) =>
          out.attributions.forEach((a, j) => assert.ok(Math.abs(a.attribution - e.explanations[i].outputs[q].attributions[j].attribution) < 1e-6)),
        );
      }
    } finally {
      model.dispose();
    }
  });

  it('ReLU hidden layers, model without logitJacobian: per-segment quadrature meets the same bound', async () => {
    const model = await mlp('relu', 5);
    try {
      const exact = await oracle(model);
      // The same model through predict, inputGradients and pathBreakpoints only.
      const plain: Model = {
        nFeatures: D,
        nOutputs: K,
        predict: (r) => model.predict(r),
        inputGradients: (r, o) => model.inputGradients(r, o),
        pathBreakpoints: (a, b) => model.pathBreakpoints!(a, b),
      };
      const e = await integratedGradients(plain, instances, options);
      const { worst, reported } = errors(e, exact);
      assert.ok(Math.max(...worst) <= 1e-4, `worst per-feature error ${Math.max(...worst)}`);
      e.explanations.forEach((inst, i) => {
        assert.equal(inst.stopReason, 'tolerance');
        assert.ok(worst[i] <= reported[i] + 2e-6, `#${i}: error ${worst[i]}, reported ${reported[i]}`);
      });
      assert.equal(e.diagnostics?.gradients, 'per-output');
    } finally {
      model.dispose();
    }
  });

  it('a small Conv2D ReLU net with a softmax output (image rows): exact segment integration through tf.grad', async () => {
    const net = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: K, activation: 'softmax' }),
      ],
    });
    const rng = seededRng(9);
    const weights = net.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => 0.8 * normal(rng)), w.shape));
    net.setWeights(weights);
    tf.dispose(weights);
    const model = await TfjsModel.create(net);
    try {
      const d = 36;
      const rows = { data: Float32Array.from({ length: 6 * d }, () => normal(rng)), n: 6, d };
      const zero = new Float32Array(d);
      const e = await integratedGradients(model, rows, { space: { featureNames: [], outputNames: [], inputShape: [6, 6, 1] } });
      for (let i = 0; i < rows.n; i++) {
        const x = rows.data.subarray(i * d, (i + 1) * d);
        // Oracle: 16 Gauss-Legendre nodes on every segment, per-output tf.grad gradients.
        const edges = [0, ...(await model.pathBreakpoints!(zero, x)).alphas, 1];
        const gl = gaussLegendre(16);
        const points: number[] = [];
        const weights: number[] = [];
        for (let s = 0; s + 1 < edges.length; s++) gl.x.forEach((t, q) => (points.push(edges[s] + (edges[s + 1] - edges[s]) * t), weights.push((edges[s + 1] - edges[s]) * gl.w[q])));
        const data = new Float32Array(points.length * d);
        points.forEach((a, r) => x.forEach((v, j) => (data[r * d + j] = a * v)));
        const inst = e.explanations[i];
        assert.equal(inst.stopReason, 'exact');
        assert.equal(inst.diagnostics?.integration, 'segments-exact');
        for (let o = 0; o < K; o++) {
          const g = await model.inputGradients({ data, n: points.length, d }, o);
          for (let j = 0; j < d; j++) {
            let ig = 0;
            weights.forEach((w, r) => (ig += w * g[r * d + j]));
            ig *= x[j];
            assert.ok(Math.abs(inst.outputs[o].attributions[j].attribution - ig) <= 1e-5, `#${i} output ${o} pixel ${j}`);
          }
        }
      }
    } finally {
      model.dispose();
    }
  });

  it('tanh hidden layers (smooth, no breakpoints): every attribution within 1e-4 of exact IG', async () => {
    const model = await mlp('tanh', 6);
    try {
      assert.equal(model.pathBreakpoints, undefined);
      const exact = await oracle(model);
      const e = await integratedGradients(model, instances, options);
      const { worst, reported } = errors(e, exact);
      assert.ok(Math.max(...worst) <= 1e-4, `worst per-feature error ${Math.max(...worst)}`);
      e.explanations.forEach((inst, i) => {
        assert.equal(inst.stopReason, 'tolerance');
        assert.equal(inst.diagnostics?.integration, 'straight');
        assert.ok(worst[i] <= reported[i] + 2e-6, `#${i}: error ${worst[i]}, reported ${reported[i]}`);
      });
      assert.equal(e.diagnostics?.quadrature, 'gauss-legendre');
    } finally {
      model.dispose();
    }
  });
});
