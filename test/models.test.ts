/**
 * The model runtime: backend choice, loading from disk (layers and graph formats), batched
 * predictions, input gradients (hand-written pass and tf.grad), path breakpoints, no leaked tensors.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ExplainerInputError, type Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { fileSystemHandler, groupBytes } from '../models/fsio.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { kernelStatus } from '../models/fusedKernel.js';
import {
  graphForward,
  randomGraph,
  randomRows,
  relError,
  saveLayers,
  seedWeights,
  tempDir,
  writeGraphModel,
} from './fixtures/models-lib/build.js';

/** Reference gradients straight from tf.grad over the in-memory model. */
function tfGrad(model: tf.LayersModel, rows: Rows, inputShape: number[], output: number): Float32Array {
  const g = tf.tidy(() => {
    const x = tf.tensor(rows.data, [rows.n, ...inputShape]);
    return tf.grad((t: tf.Tensor) => tf.sum(tf.slice((model.predict(t) as tf.Tensor).reshape([rows.n, -1]), [0, output], [-1, 1])))(x);
  });
  const out = g.dataSync() as Float32Array;
  g.dispose();
  return out;
}

function predictInMemory(model: tf.LayersModel, rows: Rows, inputShape: number[]): Float32Array {
  const y = tf.tidy(() => model.predict(tf.tensor(rows.data, [rows.n, ...inputShape]), { batchSize: rows.n }) as tf.Tensor);
  const out = y.dataSync() as Float32Array;
  y.dispose();
  return out;
}

/** Central finite differences of output `k` for every feature of every row (float64 step sizes). */
async function finiteDiff(model: TfjsModel, rows: Rows, k: number, eps: number): Promise<Float64Array> {
  const { n, d } = rows;
  const shifted = new Float32Array(2 * n * d * d);
  for (let r = 0; r < n; r++)
    for (let j = 0; j < d; j++)
      for (const [s, sign] of [[0, 1], [1, -1]] as const) {
        const at = ((r * d + j) * 2 + s) * d;
        shifted.set(rows.data.subarray(r * d, (r + 1) * d), at);
        shifted[at + j] += sign * eps;
      }
  const y = await model.predict({ data: shifted, n: 2 * n * d, d });
  const g = new Float64Array(n * d);
  for (let i = 0; i < n * d; i++) g[i] = (y[2 * i * model.nOutputs + k] - y[(2 * i + 1) * model.nOutputs + k]) / (2 * eps);
  return g;
}

async function load(dir: string, format: 'layers' | 'graph' = 'layers', options = {}): Promise<TfjsModel> {
  const handler = fileSystemHandler(dir);
  const m = format === 'graph' ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
  return TfjsModel.create(m, options);
}

/** Calls `f` a few times and checks the tensor count does not move. */
async function assertNoLeak(f: () => Promise<unknown>): Promise<void> {
  await f(); // first call may create lazily cached state
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await f();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
}

const dirs: string[] = [];
function tmp(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

describe('models: runtime', function () {
  this.timeout(120_000);
  let backend: string;

  before(async () => {
    backend = await selectBackend(process.env.TFJS_BACKEND);
  });
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  describe('selectBackend', () => {
    it('picks an available backend, wasm here (tfjs-node is not installed), and is idempotent', async () => {
      assert.ok(['tensorflow', 'wasm', 'cpu'].includes(backend));
      assert.equal(tf.getBackend(), backend);
      assert.equal(await selectBackend(process.env.TFJS_BACKEND), backend);
      if (!process.env.TFJS_BACKEND) {
        assert.equal(await selectBackend(''), backend);
        assert.equal(await selectBackend('auto'), backend);
      }
    });

    it('honours a preference and fails clearly on one that cannot be used', async () => {
      try {
        assert.equal(await selectBackend('cpu'), 'cpu');
        assert.equal(tf.getBackend(), 'cpu');
        await assert.rejects(selectBackend('no-such-backend'), /TFJS_BACKEND=no-such-backend/);
      } finally {
        assert.equal(await selectBackend(backend), backend);
      }
    });
  });

  describe('dense models (the hand-written gradient pass)', () => {
    const specs: { name: string; inputShape: number[]; layers: () => tf.layers.Layer[] }[] = [
      {
        name: 'relu/dropout/elu/LeakyReLU/tanh/relu6 -> softmax',
        inputShape: [20],
        layers: () => [
          tf.layers.dense({ inputShape: [20], units: 16, activation: 'relu' }),
          tf.layers.dropout({ rate: 0.5 }),
          tf.layers.dense({ units: 12, activation: 'elu' }),
          tf.layers.dense({ units: 10 }),
          tf.layers.leakyReLU({ alpha: 0.2 }),
          tf.layers.dense({ units: 8, activation: 'tanh' }),
          tf.layers.dense({ units: 8 }),
          tf.layers.activation({ activation: 'relu6' }),
          tf.layers.dense({ units: 3, activation: 'softmax' }),
        ],
      },
      {
        name: 'flatten [4,5] -> sigmoid -> relu6 -> linear',
        inputShape: [4, 5],
        layers: () => [
          tf.layers.flatten({ inputShape: [4, 5] }),
          tf.layers.dense({ units: 6, activation: 'sigmoid' }),
          tf.layers.dense({ units: 5, activation: 'relu6' }),
          tf.layers.reLU({ maxValue: 2 }),
          tf.layers.dense({ units: 2 }),
        ],
      },
    ];

    for (const spec of specs) {
      it(`${spec.name}: predictions and gradients match the in-memory model`, async () => {
        const net = tf.sequential({ layers: spec.layers() });
        seedWeights(net, 7, 0.8);
        const dir = tmp('dense');
        await saveLayers(net, dir);
        const model = await load(dir, 'layers', { chunkSize: 7, gradientChunkSize: 9 });
        try {
          const d = spec.inputShape.reduce((a, b) => a * b, 1);
          assert.equal(model.nFeatures, d);
          assert.deepEqual(model.inputShape, spec.inputShape);
          assert.equal(model.gradientMethod, 'dense-backward');
          // Dense stacks predict through the fused kernel: the addon where it was built, else wasm.
          assert.equal(model.predictMethod, 'isa' in kernelStatus().native ? 'fused-native' : 'fused-wasm');
          const rows = randomRows(3, 40, d, 2);

          const y = await model.predict(rows);
          assert.equal(y.length, 40 * model.nOutputs);
          assert.ok(relError(y, predictInMemory(net, rows, spec.inputShape)) < 1e-6);

          for (let k = 0; k < model.nOutputs; k++) {
            const g = await model.inputGradients(rows, k);
            const ref = tfGrad(net, rows, spec.inputShape, k);
            assert.ok(relError(g, ref) < 1e-4, `output ${k}: relative error ${relError(g, ref)}`);
          }
          await assertNoLeak(() => model.predict(rows));
          await assertNoLeak(() => model.inputGradients(rows, 0));
        } finally {
          model.dispose();
          net.dispose();
        }
      });
    }

    const jacobianCases = [
      ...(['softmax', 'sigmoid', 'tanh', 'linear', 'relu'] as const).map((head) => ({ head, conv: false, fastGradients: true })),
      { head: 'softmax' as const, conv: false, fastGradients: false },
      { head: 'softmax' as const, conv: true, fastGradients: true },
      { head: 'tanh' as const, conv: true, fastGradients: true },
    ];
    for (const { head, conv, fastGradients } of jacobianCases) {
      const how = conv ? 'a Conv2D net (tf.grad, stacked rows)' : fastGradients ? 'a Dense net (stacked backward pass)' : 'a Dense net through tf.grad';
      it(`logitJacobian, ${how}, ${head} output: act(z) is the prediction and J_act(z) dz/dx is tf.grad's gradient of every output`, async () => {
        const inputShape = conv ? [3, 3, 2] : [6];
        const D = conv ? 18 : 6;
        const net = tf.sequential({
          layers: conv
            ? [
                tf.layers.conv2d({ inputShape, filters: 3, kernelSize: 2, activation: 'relu' }),
                tf.layers.flatten(),
                tf.layers.dense({ units: 4, activation: head }),
              ]
            : [
                tf.layers.dense({ inputShape, units: 9, activation: 'relu' }),
                tf.layers.dense({ units: 7, activation: 'tanh' }),
                tf.layers.dense({ units: 4, activation: head }),
              ],
        });
        seedWeights(net, 11, 0.9);
        const model = await TfjsModel.create(net, { gradientChunkSize: 10, fastGradients });
        try {
          const rows = randomRows(5, 23, D, 1.5);
          const { activation, logits, jacobian } = await model.logitJacobian!(rows);
          assert.equal(activation, head === 'relu' ? 'linear' : head);
          const y = predictInMemory(net, rows, inputShape);
          // act(z) written out from the definitions, not from our code.
          const act = (z: number[]) => {
            if (activation === 'softmax') {
              const e = z.map((v) => Math.exp(v - Math.max(...z)));
              return e.map((v) => v / e.reduce((a, b) => a + b, 0));
            }
            return z.map((v) => (activation === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : activation === 'tanh' ? Math.tanh(v) : v));
          };
          const fromLogits = Array.from({ length: 23 }, (_, i) => act(Array.from(logits.subarray(i * 4, i * 4 + 4)))).flat();
          assert.ok(relError(fromLogits, y) < 1e-5, `act(z) vs predict: ${relError(fromLogits, y)}`);
          for (let o = 0; o < 4; o++) {
            const ref = tfGrad(net, rows, inputShape, o);
            // d y_o / d x = sum_c (d y_o / d z_c) dz_c/dx, with d y / d z by central differences of act.
            const chained = new Float64Array(23 * D);
            for (let i = 0; i < 23; i++) {
              const z = Array.from(logits.subarray(i * 4, i * 4 + 4));
              for (let c = 0; c < 4; c++) {
                const up = [...z];
                const down = [...z];
                up[c] += 1e-4;
                down[c] -= 1e-4;
                const dyo = (act(up)[o] - act(down)[o]) / 2e-4;
                for (let j = 0; j < D; j++) chained[i * D + j] += dyo * jacobian[(i * 4 + c) * D + j];
              }
            }
            assert.ok(relError(chained, ref) < 1e-4, `output ${o}: ${relError(chained, ref)}`);
          }
          await assertNoLeak(() => model.logitJacobian!(rows));
        } finally {
          model.dispose(); // disposes net too
        }
      });
    }

    it('lean predict (kernel: tfjs) gives exactly what tfjs predict gives (same kernels in the same order) and can be turned off', async () => {
      const net = tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [20], units: 64, activation: 'relu' }),
          tf.layers.dense({ units: 32, activation: 'relu6' }),
          tf.layers.dense({ units: 16, activation: 'sigmoid' }),
          tf.layers.dense({ units: 16, activation: 'elu' }),
          tf.layers.leakyReLU({ alpha: 0.1 }),
          tf.layers.dense({ units: 3, activation: 'softmax' }),
        ],
      });
      seedWeights(net, 5, 0.7);
      const lean = await TfjsModel.create(net, { chunkSize: 300, kernel: 'tfjs' });
      const plain = await TfjsModel.create(net, { chunkSize: 300, leanPredict: false });
      try {
        assert.equal(lean.predictMethod, 'dense-forward');
        assert.equal(plain.predictMethod, 'model');
        const rows = randomRows(9, 1000, 20, 2);
        const a = await lean.predict(rows);
        const b = await plain.predict(rows);
        const ref = predictInMemory(net, rows, [20]);
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - ref[i]), Math.abs(b[i] - ref[i]));
        assert.equal(worst, 0, `largest difference ${worst}`);
        await assertNoLeak(() => lean.predict(rows));
      } finally {
        lean.dispose(); // disposes net, which both wrap
      }
    });

    it('checks row sizes and output indices', async () => {
      const net = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 })] });
      const model = await TfjsModel.create(net);
      try {
        await assert.rejects(model.predict({ data: new Float32Array(8), n: 2, d: 4 }), ExplainerInputError);
        await assert.rejects(model.inputGradients({ data: new Float32Array(3), n: 1, d: 3 }, 2), /out of range/);
        assert.equal((await model.predict({ data: new Float32Array(0), n: 0, d: 3 })).length, 0);
      } finally {
        model.dispose();
      }
    });
  });

  describe('fallback gradients (tf.grad)', () => {
    it('a Conv2D model: tf.grad gradients agree with finite differences', async () => {
      const net = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, activation: 'tanh' }),
          tf.layers.averagePooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 2, activation: 'sigmoid' }),
        ],
      });
      seedWeights(net, 11, 0.5);
      const dir = tmp('conv');
      await saveLayers(net, dir);
      const model = await load(dir);
      try {
        assert.equal(model.gradientMethod, 'tf.grad');
        assert.equal(model.pathBreakpoints, undefined, 'tanh hidden layer: no breakpoints');
        const rows = randomRows(5, 3, 72, 0.5);
        assert.ok(relError(await model.predict(rows), predictInMemory(net, rows, [6, 6, 2])) < 1e-6);
        const g = await model.inputGradients(rows, 1);
        const fd = await finiteDiff(model, rows, 1, 1e-2);
        assert.ok(relError(g, fd) < 2e-3, `relative error ${relError(g, fd)}`);
        // (No tf.grad over the model itself here: tfjs's fused conv2d gradient always computes the
        // filter gradient, whose kernel wasm lacks. TfjsModel differentiates unfused ops instead.)
        await assertNoLeak(() => model.inputGradients(rows, 0));
        await assertNoLeak(() => model.predict(rows));
      } finally {
        model.dispose();
        net.dispose();
      }
    });

    it('max pooling gradients are right for negative windows (works around a tfjs-backend-wasm bug)', async () => {
      await TfjsModel.create(tf.sequential({ layers: [tf.layers.dense({ inputShape: [1], units: 1 })] })).then((m) => m.dispose());
      const g = tf.tidy(() =>
        tf.grad((t: tf.Tensor) => tf.sum(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid')))(tf.tensor4d([1, -1, 2, -2, -3, -3, 4, -4, -5, -6, -7, -8, -9, -10, -11, -12], [1, 2, 4, 2])),
      );
      // [h][w][c]; windows: columns 0-1 c0 {1,2,-5,-7} -> 2, c1 {-1,-2,-6,-8} -> -1;
      // columns 2-3 c0 {-3,4,-9,-11} -> 4, c1 {-3,-4,-10,-12} -> -3 (the all-negative ones wasm loses).
      assert.deepEqual(Array.from(g.dataSync()), [0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      g.dispose();
    });

    it('a chain with layers we do not model (BatchNormalization, MaxPooling2D) still has gradients on wasm', async () => {
      const net = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, activation: 'tanh' }),
          tf.layers.batchNormalization(),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 2 }),
        ],
      });
      seedWeights(net, 12, 0.5);
      const bn = net.layers[1];
      const bnWeights = [tf.ones([2]), tf.fill([2], 0.1), tf.fill([2], 0.2), tf.fill([2], 1.5)];
      bn.setWeights(bnWeights);
      tf.dispose(bnWeights);
      const model = await TfjsModel.create(net);
      try {
        assert.equal(model.gradientMethod, 'tf.grad');
        assert.equal(model.pathBreakpoints, undefined);
        const rows = randomRows(9, 3, 36, 0.5);
        assert.ok(relError(await model.predict(rows), predictInMemory(net, rows, [6, 6, 1])) < 1e-6);
        const g = await model.inputGradients(rows, 0);
        const fd = await finiteDiff(model, rows, 0, 1e-3);
        assert.ok(relError(g, fd) < 1e-2, `relative error ${relError(g, fd)}`);
        await assertNoLeak(() => model.inputGradients(rows, 1));
      } finally {
        model.dispose();
      }
    });

    it('a hand-written graph model: loads, predicts what plain matrix math says, and has gradients', async () => {
      const g = randomGraph(21, 4, 6, 2);
      const dir = tmp('graph');
      writeGraphModel(dir, g);
      const model = await load(dir, 'graph');
      try {
        assert.equal(model.nFeatures, 4);
        assert.equal(model.nOutputs, 2);
        assert.deepEqual(model.inputShape, [4]);
        assert.equal(model.gradientMethod, 'tf.grad');
        assert.equal(model.pathBreakpoints, undefined);
        const rows = randomRows(8, 30, 4);
        const y = await model.predict(rows);
        const ref = Array.from({ length: rows.n }, (_, r) => graphForward(g, rows.data.subarray(r * 4, r * 4 + 4))).flat();
        assert.ok(relError(y, ref) < 1e-5);

        const grad = await model.inputGradients(rows, 1);
        const fd = await finiteDiff(model, rows, 1, 1e-3);
        assert.ok(relError(grad, fd) < 1e-2, `relative error ${relError(grad, fd)}`);
        // And exactly the ReLU net's analytic gradient: sum_j W1[i][j] [z_j > 0] W2[j][1].
        for (let r = 0; r < rows.n; r++) {
          const x = rows.data.subarray(r * 4, r * 4 + 4);
          const z = g.b1.map((b, j) => b + g.W1.reduce((s, row, i) => s + x[i] * row[j], 0));
          for (let i = 0; i < 4; i++) {
            const want = z.reduce((s, zj, j) => s + (zj > 0 ? g.W1[i][j] * g.W2[j][1] : 0), 0);
            assert.ok(Math.abs(grad[r * 4 + i] - want) < 1e-4 * (1 + Math.abs(want)));
          }
        }
        await assertNoLeak(() => model.predict(rows));
        await assertNoLeak(() => model.inputGradients(rows, 0));
      } finally {
        model.dispose();
      }
    });
  });

  describe('pathBreakpoints', () => {
    /** Gradients of every output at x(alpha) = from + alpha (to - from), for many alphas at once. */
    async function pathGradients(model: TfjsModel, from: Float32Array, to: Float32Array, alphas: number[]): Promise<Float32Array[]> {
      const d = from.length;
      const data = new Float32Array(alphas.length * d);
      alphas.forEach((a, r) => {
        for (let i = 0; i < d; i++) data[r * d + i] = from[i] + a * (to[i] - from[i]);
      });
      const per: Float32Array[] = [];
      for (let k = 0; k < model.nOutputs; k++) per.push(await model.inputGradients({ data, n: alphas.length, d }, k));
      // Row r: the gradients of all outputs, concatenated.
      return alphas.map((_, r) => Float32Array.from(per.flatMap((g) => Array.from(g.subarray(r * d, (r + 1) * d)))));
    }

    /** The breakpoints are exact: constant gradients between them, a different gradient across each. */
    async function checkExact(model: TfjsModel, from: Float32Array, to: Float32Array): Promise<number> {
      assert.ok(model.pathBreakpoints);
      const { alphas, affineBetween } = await model.pathBreakpoints(from, to);
      assert.equal(affineBetween, true);
      assert.ok(alphas.every((a, i) => a > 0 && a < 1 && (i === 0 || a > alphas[i - 1])), 'sorted, inside (0, 1)');
      const edges = [0, ...alphas, 1];
      const probes: number[] = [];
      const owner: number[] = [];
      // Probes stay DELTA away from the edges: float32 rounding of x(alpha) is about 1e-7 relative
      // and could push a probe right next to an edge across it. Thin segments get their middle.
      const DELTA = 1e-5;
      const segmentOf = (a: number) => edges.findIndex((e, j) => j + 1 < edges.length && a >= e && a < edges[j + 1]);
      for (let s = 0; s + 1 < edges.length; s++) {
        const [a0, a1] = [edges[s], edges[s + 1]];
        const inner = a1 - a0 > 4 * DELTA ? [a0 + DELTA, a0 + 0.3 * (a1 - a0), a0 + 0.7 * (a1 - a0), a1 - DELTA] : [];
        for (const a of [(a0 + a1) / 2, ...inner]) {
          probes.push(a);
          owner.push(s);
        }
      }
      // An even grid too: a missed breakpoint shows up as a gradient unlike its segment's.
      for (let i = 0; i < 1000; i++) {
        const a = (i + 0.5) / 1000;
        const s = segmentOf(a);
        if (Math.min(a - edges[s], edges[s + 1] - a) > DELTA) {
          probes.push(a);
          owner.push(s);
        }
      }
      const grads = await pathGradients(model, from, to, probes);
      const mid = new Map<number, Float32Array>();
      for (const [p, s] of owner.entries()) {
        if (!mid.has(s)) mid.set(s, grads[p]);
        assert.ok(relError(grads[p], mid.get(s) as Float32Array) < 1e-5, `gradient not constant in segment ${s} (alpha ${probes[p]})`);
      }
      for (let s = 0; s + 1 < edges.length - 1; s++) {
        const change = relError(mid.get(s) as Float32Array, mid.get(s + 1) as Float32Array);
        assert.ok(change > 1e-4, `the gradient does not change across breakpoint ${edges[s + 1]}`);
      }
      return alphas.length;
    }

    // The nets below put zero-slope regimes (relu, relu6) only where a kink cannot be hidden by
    // every downstream unit being off or saturated; otherwise an exact breakpoint may leave the
    // input gradient unchanged (both sides zero), which this check would wrongly call spurious.
    it('a random dense ReLU6 / LeakyReLU net: exact breakpoints, none missed', async () => {
      const net = tf.sequential({
        layers: [
          tf.layers.dense({ inputShape: [5], units: 10, activation: 'relu6' }),
          tf.layers.dense({ units: 8 }),
          tf.layers.leakyReLU({ alpha: 0.1 }),
          tf.layers.dense({ units: 2 }),
        ],
      });
      seedWeights(net, 99, 1);
      const model = await TfjsModel.create(net);
      try {
        const [from, to] = [randomRows(1, 1, 5, 2).data, randomRows(2, 1, 5, 2).data];
        const count = await checkExact(model, from, to);
        assert.ok(count >= 5, `expected a fair number of breakpoints, got ${count}`);
        await assertNoLeak(() => (model.pathBreakpoints as NonNullable<TfjsModel['pathBreakpoints']>)(from, to));
        // Requests made together are walked together: the same answers as one at a time.
        const pairs = Array.from({ length: 12 }, (_, i) => [randomRows(10 + i, 1, 5, 2).data, randomRows(40 + i, 1, 5, 2).data]);
        const alone: number[][] = [];
        for (const [a, b] of pairs) alone.push((await model.pathBreakpoints!(a, b)).alphas);
        const together = await Promise.all(pairs.map(([a, b]) => model.pathBreakpoints!(a, b)));
        assert.deepEqual(together.map((r) => r.alphas), alone);
        await assertNoLeak(() => Promise.all(pairs.map(([a, b]) => model.pathBreakpoints!(a, b))));
        await assert.rejects(model.pathBreakpoints!(new Float32Array(4), to), ExplainerInputError);
      } finally {
        model.dispose();
      }
    });

    it('a random Conv2D / AveragePooling2D / Dense ReLU net: exact breakpoints', async () => {
      const net = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [5, 5, 1], filters: 2, kernelSize: 2, activation: 'relu', padding: 'same' }),
          tf.layers.averagePooling2d({ poolSize: 2, strides: 1 }),
          tf.layers.conv2d({ filters: 2, kernelSize: 2, strides: 2 }),
          tf.layers.leakyReLU({ alpha: 0.2 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 4 }),
          tf.layers.activation({ activation: 'relu' }),
          tf.layers.dense({ units: 1 }),
        ],
      });
      seedWeights(net, 5, 1);
      const model = await TfjsModel.create(net);
      try {
        assert.equal(model.gradientMethod, 'tf.grad');
        const [from, to] = [randomRows(3, 1, 25, 2).data, randomRows(4, 1, 25, 2).data];
        const count = await checkExact(model, from, to);
        assert.ok(count >= 3, `expected some breakpoints, got ${count}`);
        await assertNoLeak(() => (model.pathBreakpoints as NonNullable<TfjsModel['pathBreakpoints']>)(from, to));
      } finally {
        model.dispose();
      }
    });

    it('a smooth output activation keeps the hidden breakpoints with affineBetween false', async () => {
      const build = (out: string) =>
        tf.sequential({
          layers: [
            tf.layers.dense({ inputShape: [4], units: 6, activation: 'relu' }),
            tf.layers.dense({ units: 3, activation: out as 'linear' }),
          ],
        });
      const linear = build('linear');
      const soft = build('softmax');
      seedWeights(linear, 3, 1);
      soft.setWeights(linear.getWeights());
      const [a, b] = [await TfjsModel.create(linear), await TfjsModel.create(soft)];
      try {
        const [from, to] = [randomRows(6, 1, 4, 3).data, randomRows(7, 1, 4, 3).data];
        const ra = await (a.pathBreakpoints as NonNullable<TfjsModel['pathBreakpoints']>)(from, to);
        const rb = await (b.pathBreakpoints as NonNullable<TfjsModel['pathBreakpoints']>)(from, to);
        assert.deepEqual(rb.alphas, ra.alphas);
        assert.equal(ra.affineBetween, true);
        assert.equal(rb.affineBetween, false);
      } finally {
        a.dispose();
        b.dispose();
      }
    });

    it('is undefined for models that are not piecewise linear', async () => {
      for (const act of ['elu', 'tanh', 'sigmoid'] as const) {
        const net = tf.sequential({
          layers: [tf.layers.dense({ inputShape: [3], units: 4, activation: act }), tf.layers.dense({ units: 1 })],
        });
        const model = await TfjsModel.create(net);
        assert.equal(model.pathBreakpoints, undefined, act);
        assert.ok(!('pathBreakpoints' in model), act);
        model.dispose();
      }
      const maxPool = tf.sequential({
        layers: [tf.layers.maxPooling2d({ inputShape: [4, 4, 1], poolSize: 2 }), tf.layers.flatten(), tf.layers.dense({ units: 1 })],
      });
      const model = await TfjsModel.create(maxPool);
      assert.equal(model.pathBreakpoints, undefined);
      model.dispose();
    });
  });

  describe('fsio', () => {
    it('sizes weights by dtype and quantization', () => {
      const w = (dtype: string, shape: number[], q?: string) =>
        ({ name: 'w', dtype, shape, ...(q ? { quantization: { dtype: q, scale: 1, min: 0 } } : {}) }) as tf.io.WeightsManifestEntry;
      assert.equal(groupBytes([w('float32', [3, 4]), w('int32', [2])]), 56);
      assert.equal(groupBytes([w('bool', [5]), w('float32', [3, 4], 'uint8')]), 17);
      assert.equal(groupBytes([w('float32', [10], 'uint16'), w('float32', [10], 'float16')]), 40);
      // Strings: a uint32 length before each element's bytes.
      const data = new Uint8Array([2, 0, 0, 0, 104, 105, 1, 0, 0, 0, 33]);
      assert.equal(groupBytes([w('string', [2])], data), 11);
    });

    it('loads uint8-quantized weights', async () => {
      const net = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2, activation: 'relu' })] });
      seedWeights(net, 1);
      const dir = tmp('quant');
      await saveLayers(net, dir);
      // Rewrite the weights as uint8 with per-weight min/scale, as the tfjs converter does.
      const { readFileSync, writeFileSync } = await import('node:fs');
      const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const floats = new Float32Array(new Uint8Array(readFileSync(path.join(dir, 'weights.bin'))).buffer);
      const bytes: number[] = [];
      let at = 0;
      for (const spec of json.weightsManifest[0].weights) {
        const n = spec.shape.reduce((a: number, b: number) => a * b, 1);
        const v = Array.from(floats.subarray(at, at + n));
        at += n;
        const min = Math.min(...v);
        const scale = (Math.max(...v) - min) / 255 || 1;
        spec.quantization = { dtype: 'uint8', min, scale };
        bytes.push(...v.map((x) => Math.round((x - min) / scale)));
      }
      writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      writeFileSync(path.join(dir, 'weights.bin'), Uint8Array.from(bytes));
      const model = await load(dir);
      try {
        const rows = randomRows(2, 5, 3);
        assert.ok(relError(await model.predict(rows), predictInMemory(net, rows, [3])) < 0.05);
      } finally {
        model.dispose();
      }
    });
  });
});
