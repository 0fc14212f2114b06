/**
 * tfjs helpers for the sample builders: seeded Dense stacks, a seeded training loop,
 * standardisation folded into the first Dense layer, and a save handler that writes
 * model.json + weights.bin.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, shuffledIndices } from './rng.js';

export type Matrix = number[][];

export interface DenseSpec {
  units: number;
  activation: 'relu' | 'sigmoid' | 'softmax' | 'linear';
}

/** A Sequential Dense stack with explicit layer names and seeded Glorot-uniform kernels. */
export function denseStack(name: string, nIn: number, layers: DenseSpec[], seed: number): tf.Sequential {
  const model = tf.sequential({ name });
  model.add(tf.layers.inputLayer({ inputShape: [nIn], name: 'input' }));
  layers.forEach((l, i) =>
    model.add(
      tf.layers.dense({
        units: l.units,
        activation: l.activation,
        name: `dense_${i + 1}`,
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }),
        biasInitializer: 'zeros',
      }),
    ),
  );
  return model;
}

export interface Scaler {
  mean: number[];
  std: number[];
}

/** Column means and (population) standard deviations, computed in float64. */
export function fitScaler(x: Matrix): Scaler {
  const n = x.length;
  const d = x[0].length;
  const mean = new Array<number>(d).fill(0);
  const std = new Array<number>(d).fill(0);
  for (const r of x) for (let j = 0; j < d; j++) mean[j] += r[j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (const r of x) for (let j = 0; j < d; j++) std[j] += (r[j] - mean[j]) ** 2;
  for (let j = 0; j < d; j++) {
    std[j] = Math.sqrt(std[j] / n);
    if (!(std[j] > 1e-12)) std[j] = 1;
  }
  return { mean, std };
}

export function applyScaler(x: Matrix, s: Scaler): Matrix {
  return x.map((r) => r.map((v, j) => (v - s.mean[j]) / s.std[j]));
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  loss: 'binaryCrossentropy' | 'categoricalCrossentropy' | 'meanSquaredError';
  /** Seeds the per-epoch shuffling of the training rows. */
  rng: Rng;
  /** Input shape of one example when it is not a flat vector (e.g. [16, 16, 1]). */
  exampleShape?: number[];
}

/**
 * Trains with Adam, one `fit` call per epoch on rows permuted by the seeded rng
 * (`shuffle: false` inside tfjs), so the result is the same on every run.
 * Returns the final epoch's training loss.
 */
export async function train(model: tf.LayersModel, x: Matrix, y: Matrix, o: TrainOptions): Promise<number> {
  model.compile({ optimizer: tf.train.adam(o.learningRate), loss: o.loss });
  const n = x.length;
  const d = x[0].length;
  const k = y[0].length;
  const xs = new Float32Array(n * d);
  const ys = new Float32Array(n * k);
  let last = NaN;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = shuffledIndices(o.rng, n);
    order.forEach((src, i) => {
      xs.set(x[src], i * d);
      ys.set(y[src], i * k);
    });
    const xt = tf.tensor(xs, [n, ...(o.exampleShape ?? [d])]);
    const yt = tf.tensor2d(ys, [n, k]);
    const h = await model.fit(xt, yt, { epochs: 1, batchSize: o.batchSize, shuffle: false, verbose: 0 });
    last = h.history.loss[0] as number;
    xt.dispose();
    yt.dispose();
  }
  model.optimizer.dispose(); // Adam's moment variables
  return last;
}

/** Predicts a batch of rows; returns plain arrays (one per row). */
export function predict(model: tf.LayersModel, x: Matrix, exampleShape?: number[]): Matrix {
  const n = x.length;
  const d = x[0].length;
  const flat = new Float32Array(n * d);
  x.forEach((r, i) => flat.set(r, i * d));
  const xt = tf.tensor(flat, [n, ...(exampleShape ?? [d])]);
  const out = model.predict(xt, { batchSize: 4096 }) as tf.Tensor;
  const k = out.shape[1] as number;
  const values = out.dataSync();
  xt.dispose();
  out.dispose();
  return Array.from({ length: n }, (_, i) => Array.from(values.subarray(i * k, (i + 1) * k)));
}

/**
 * Copies `trained` (which expects standardised inputs, and for regressions may emit a
 * standardised target) into `fresh` (same architecture) so that `fresh` takes raw inputs:
 * first kernel W' = W / std (row-wise), b' = b - (mean / std) . W; and, when `output` is given,
 * last layer W' = W * sy, b' = b * sy + my. Arithmetic in float64, stored as float32.
 */
export function foldStandardisation(trained: tf.LayersModel, fresh: tf.LayersModel, s: Scaler, output?: { mean: number; std: number }): void {
  const weights = trained.getWeights().map((w) => ({ shape: w.shape, values: Array.from(w.dataSync()) }));
  const [k0, b0] = [weights[0], weights[1]];
  const [nIn, nOut] = k0.shape as [number, number];
  const k = k0.values.slice();
  const b = b0.values.slice();
  for (let j = 0; j < nOut; j++) {
    let shift = 0;
    for (let i = 0; i < nIn; i++) {
      const w = k0.values[i * nOut + j];
      k[i * nOut + j] = w / s.std[i];
      shift += (s.mean[i] / s.std[i]) * w;
    }
    b[j] = b0.values[j] - shift;
  }
  weights[0] = { shape: k0.shape, values: k };
  weights[1] = { shape: b0.shape, values: b };
  if (output) {
    const last = weights.length - 2;
    weights[last] = { shape: weights[last].shape, values: weights[last].values.map((w) => w * output.std) };
    weights[last + 1] = { shape: weights[last + 1].shape, values: weights[last + 1].values.map((v) => v * output.std + output.mean) };
  }
  const tensors = weights.map((w) => tf.tensor(w.values, w.shape, 'float32'));
  fresh.setWeights(tensors);
  tensors.forEach((t) => t.dispose());
}

/** Saves a layers model as <dir>/model.json + <dir>/weights.bin through tf.io.withSaveHandler. */
export async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      if (data === undefined || artifacts.weightSpecs === undefined) throw new Error('model has no weights to save');
      const buffer = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data;
      const modelJson = {
        format: 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson) + '\n');
      writeFileSync(join(dir, 'weights.bin'), new Uint8Array(buffer));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(0),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs).length,
          weightDataBytes: buffer.byteLength,
        },
      };
    }),
  );
}

/** Loads <dir>/model.json + weights.bin back from disk (the way a server would see them). */
export async function loadLayersModel(dir: string): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const bin = readFileSync(join(dir, 'weights.bin'));
  const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  const weightSpecs = modelJson.weightsManifest.flatMap((g: { weights: tf.io.WeightsManifestEntry[] }) => g.weights);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData }));
}

export function maxAbsDiff(a: Matrix, b: Matrix): number {
  let m = 0;
  a.forEach((r, i) => r.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}
