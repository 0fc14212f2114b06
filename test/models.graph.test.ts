/**
 * Gradients of branching conv nets on the default (wasm) backend through models/graph.ts, held to
 * tfjs's own autodiff on the cpu backend (which has every gradient kernel), and a real pretrained
 * MobileNetV2 from an npm package (nsfwjs, MIT) loaded as a plain model folder with no metadata.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { integratedGradients } from '../explainers/integratedGradients.js';
import { smoothGrad } from '../explainers/image/smoothGrad.js';
import { gradCam } from '../explainers/image/gradCam.js';
import { ExplainerInputError, type Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { mobileNetFolder } from './helpers/mobilenet.js';

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A small MobileNetV2-like block net: every layer kind the graph translates for image models. */
function blockNet(): tf.LayersModel {
  const input = tf.input({ shape: [9, 9, 3] });
  let h = tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]] }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ epsilon: 1e-3 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ maxValue: 6 }).apply(h) as tf.SymbolicTensor;
  const dw = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthMultiplier: 1 }).apply(h) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization().apply(dw) as tf.SymbolicTensor;
  const r = tf.layers.reLU({ maxValue: 6 }).apply(bn) as tf.SymbolicTensor;
  const proj = tf.layers.conv2d({ filters: 6, kernelSize: 1, padding: 'same' }).apply(r) as tf.SymbolicTensor;
  h = tf.layers.add().apply([h, proj]) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2, activation: 'relu' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 4, kernelSize: 2, padding: 'valid', activation: 'relu6' }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  h = tf.layers.dropout({ rate: 0.5 }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const rng = seeded(7);
  // Random weights, with batch-norm statistics away from 0/1 so the folding is exercised.
  model.setWeights(
    model.weights.map((v) => tf.tensor(Float32Array.from({ length: (v.shape as number[]).reduce((a, b) => a * b, 1) }, () => (v.name.includes('variance') ? 0.5 + rng() : rng() * 2 - 1)), v.shape as number[])),
  );
  return model;
}

function rows(n: number, d: number, seed: number): Rows {
  const rng = seeded(seed);
  return { data: Float32Array.from({ length: n * d }, () => rng() * 4 - 1), n, d };
}

/** tfjs's own gradient of the model on the cpu backend: the oracle. */
async function cpuGrad(model: tf.LayersModel, x: Rows, output: number): Promise<Float32Array> {
  await tf.setBackend('cpu');
  try {
    const g = tf.tidy(() =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.slice(model.apply(tf.reshape(t, [x.n, 9, 9, 3]), { training: false }) as tf.Tensor, [0, output], [-1, 1])))(tf.tensor2d(x.data, [x.n, x.d])),
    );
    const out = g.dataSync() as Float32Array;
    g.dispose();
    return out;
  } finally {
    await selectBackend('wasm');
  }
}

describe('models: branching conv nets on wasm (graph.ts)', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('input gradients equal tf.grad on the cpu backend (ZeroPadding, Conv2D, BatchNorm, ReLU6, DepthwiseConv2D stride 1/2 and multiplier 2, Add, pooling, Dense)', async () => {
    const net = blockNet();
    const model = await TfjsModel.create(net);
    const x = rows(5, 243, 3);
    for (const output of [0, 2]) {
      const before = tf.memory().numTensors;
      const ours = await model.inputGradients(x, output);
      assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
      const want = await cpuGrad(net, x, output);
      let maxAbs = 0;
      let maxRef = 0;
      for (let k = 0; k < want.length; k++) {
        maxAbs = Math.max(maxAbs, Math.abs(ours[k] - want[k]));
        maxRef = Math.max(maxRef, Math.abs(want[k]));
      }
      assert.ok(maxRef > 1e-3, 'the gradient is not trivially zero');
      assert.ok(maxAbs <= 1e-4 * maxRef + 1e-6, `max |ours - cpu tf.grad| = ${maxAbs} (gradient scale ${maxRef})`);
    }
    model.dispose();
  });

  it('layerGradients equal tf.grad of the head on the layer output; a replaced activation changes only what follows', async () => {
    const net = blockNet();
    const model = await TfjsModel.create(net);
    const layer = net.layers.find((l) => l.getClassName() === 'Add')!;
    const x = rows(2, 243, 5);
    const before = tf.memory().numTensors;
    const r = await model.layerGradients(x, layer.name, 1);
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(r.shape, [4, 4, 6]);
    // Oracle: tfjs's own sub-models (input -> layer, layer -> output) and tf.grad on the cpu backend.
    const idx = net.layers.indexOf(layer);
    const headIn = tf.input({ shape: [4, 4, 6] });
    let t: tf.SymbolicTensor = headIn;
    for (const l of net.layers.slice(idx + 1)) t = l.apply(t) as tf.SymbolicTensor;
    const head = tf.model({ inputs: headIn, outputs: t });
    const acts = await model.layerActivations(x, layer.name);
    assert.deepEqual(Array.from(acts), Array.from(r.activations));
    await tf.setBackend('cpu');
    const want = tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.slice(head.apply(a) as tf.Tensor, [0, 1], [-1, 1])))(tf.tensor(acts, [2, 4, 4, 6])).dataSync());
    await selectBackend('wasm');
    let err = 0;
    for (let k = 0; k < want.length; k++) err = Math.max(err, Math.abs(want[k] - r.gradients[k]));
    assert.ok(err < 1e-5, `layer gradient error ${err}`);
    const replaced = await model.layerGradients(x, layer.name, 1, new Float32Array(acts.length));
    assert.ok(replaced.activations.every((v) => v === 0));
    await assert.rejects(model.layerGradients(x, 'no_such_layer', 0), (e: unknown) => e instanceof ExplainerInputError && e.code === 'UNKNOWN_LAYER');
    model.dispose();
  });
});

describe('models: a real pretrained MobileNetV2 from an npm package (nsfwjs)', function () {
  this.timeout(600_000);
  let loaded: LoadedModel;
  const d = 224 * 224 * 3;
  /** A synthetic 224x224 RGB image (no photos needed): smooth colour gradients and a bright disc. */
  const pixels = new Uint8Array(d);
  for (let y = 0; y < 224; y++)
    for (let x = 0; x < 224; x++) {
      const disc = (y - 90) ** 2 + (x - 130) ** 2 < 40 ** 2;
      pixels[(y * 224 + x) * 3] = disc ? 250 : x;
      pixels[(y * 224 + x) * 3 + 1] = disc ? 200 : y;
      pixels[(y * 224 + x) * 3 + 2] = disc ? 40 : 128;
    }
  const image: Rows = { data: Float32Array.from(pixels, (v) => v / 255), n: 1, d };

  before(async () => {
    await selectBackend('wasm');
    loaded = await loadModelFolder('mobilenet_v2', await mobileNetFolder());
  });
  after(() => loaded?.model.dispose());

  it('loads with no metadata and predicts what the package itself infers', async () => {
    assert.deepEqual(loaded.inputShape, [224, 224, 3]);
    assert.equal(loaded.model.nOutputs, 5);
    assert.equal(loaded.space.featureNames[0], 'x0');
    const ours = await loaded.model.predict(image);
    // A variable specifier: nsfwjs's typings pull in the DOM lib, which would change our global types.
    const pkg = 'nsfwjs';
    const { load } = (await import(pkg)) as { load(this: void, name: string): Promise<{ infer(t: tf.Tensor3D): tf.Tensor; model: tf.LayersModel }> };
    const nsfw = await load('MobileNetV2');
    const theirs = tf.tidy(() => nsfw.infer(tf.tensor3d(pixels, [224, 224, 3], 'int32')).dataSync());
    for (let k = 0; k < 5; k++) assert.ok(Math.abs(ours[k] - theirs[k]) < 1e-5, `class ${k}: ours ${ours[k]}, nsfwjs ${theirs[k]}`);
    nsfw.model.dispose();
  });

  it('Integrated Gradients on wasm: finite attributions that are complete, and the gap shrinks with more steps', async () => {
    // From a lower-contrast copy of the image (0.8 x + 0.1): a short path. From an all-black
    // baseline the output jumps within the first few % of the path (ReLU6 saturation) and Gauss-Legendre
    // needs hundreds of points (bench/imageBench.ts prints the gap per step count): a cost, not an error.
    const o = 2;
    const baseline: Rows = { data: image.data.map((v) => 0.8 * v + 0.1), n: 1, d };
    const gaps: number[] = [];
    for (const steps of [8, 16]) {
      const e = await integratedGradients(loaded.model, image, { space: loaded.space, outputs: [o], steps, method: 'gauss-legendre', baseline });
      const out = e.explanations[0].outputs[0];
      const a = out.attributions.map((v) => v.attribution);
      assert.equal(a.length, d);
      assert.ok(a.every(Number.isFinite));
      const delta = out.instanceOutputValue - out.baselineOutputValue;
      const sum = a.reduce((s2, v) => s2 + v, 0);
      assert.ok(Math.abs(sum - delta - out.approximationError) < 1e-5, 'the reported gap is sum(phi) - (f(x) - f(x\'))');
      gaps.push(Math.abs(out.approximationError) / Math.abs(delta));
    }
    // measured: 2.1% at 8 points, 0.47% at 16
    assert.ok(gaps[1] <= 0.02, `completeness gap ${(100 * gaps[1]).toFixed(2)}% of f(x) - f(x')`);
    assert.ok(gaps[1] < gaps[0], `the gap shrinks with more points: ${gaps}`);
  });

  it('SmoothGrad over the gradient on wasm: finite attributions of the input shape', async () => {
    const e = await smoothGrad(loaded.model, image, { space: loaded.space, outputs: [0], samples: 2, seed: 3 });
    const out = e.explanations[0].outputs[0];
    assert.equal(out.attributions.length, d);
    assert.ok(out.attributions.every((v) => Number.isFinite(v.attribution) && Number.isFinite(v.stderr!)));
    assert.deepEqual(e.inputShape, [224, 224, 3]);
  });

  it('Grad-CAM on its last 7x7 feature map: the layer is found without metadata, the map is finite and non-negative', async () => {
    const e = await gradCam(loaded.model, image, { space: loaded.space, outputs: [2] });
    const diag = e.explanations[0].diagnostics as { layer: string; mapShape: number[] };
    assert.deepEqual(diag.mapShape, [7, 7]);
    const a = e.explanations[0].outputs[0].attributions.map((v) => v.attribution);
    assert.equal(a.length, d);
    assert.ok(a.every((v) => Number.isFinite(v) && v >= 0));
  });
});
