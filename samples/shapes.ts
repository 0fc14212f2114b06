/**
 * `shapes`: a small CNN (no pooling: strided conv + ReLU, so piecewise linear before the softmax)
 * classifying synthetic 16x16 grey images of a horizontal bar, a vertical bar or a filled square.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { writeModelFolder } from './lib/folder.js';
import { accuracyMulticlass, confusion, r4 } from './lib/metrics.js';
import { maxAbsDiff, predict } from './lib/nn.js';
import { clamp, gaussian, intBetween, mulberry32, Rng, round, shuffledIndices, uniform } from './lib/rng.js';
import type { SampleSummary } from './lib/folder.js';

const SIZE = 16;
const SHAPE = [SIZE, SIZE, 1];
const CLASSES = ['horizontal_bar', 'vertical_bar', 'square'];
const NOISE_SD = 0.05;
const PIXELS = Array.from({ length: SIZE * SIZE }, (_, k) => `p${Math.floor(k / SIZE)}_${k % SIZE}_0`);

interface Image {
  pixels: number[]; // row-major, 256 values in [0, 1]
  mask: number[]; // 1 where the object is
  label: number;
}

/** Draws one image of class `label` (or, for label -1, noise only). */
function draw(rng: Rng, label: number): Image {
  const mask = new Array<number>(SIZE * SIZE).fill(0);
  let h = 0;
  let w = 0;
  if (label === 0) [h, w] = [2, intBetween(rng, 7, 12)];
  else if (label === 1) [h, w] = [intBetween(rng, 7, 12), 2];
  else if (label === 2) h = w = intBetween(rng, 4, 6);
  const intensity = label >= 0 ? round(uniform(rng, 0.7, 1), 2) : 0;
  if (label >= 0) {
    const top = intBetween(rng, 0, SIZE - h);
    const left = intBetween(rng, 0, SIZE - w);
    for (let r = top; r < top + h; r++) for (let c = left; c < left + w; c++) mask[r * SIZE + c] = 1;
  }
  const pixels = mask.map((m) => round(clamp(m * intensity + NOISE_SD * gaussian(rng), 0, 1), 2));
  return { pixels, mask, label };
}

/** n images, classes balanced (n/3 each) in a seeded random order; plus `blank` noise-only images (label -1). */
function dataset(n: number, seed: number, blank = 0): Image[] {
  const rng = mulberry32(seed);
  return shuffledIndices(rng, n + blank).map((k) => draw(rng, k < n ? k % 3 : -1));
}

function buildModel(seed: number): tf.Sequential {
  const model = tf.sequential({ name: 'shapes' });
  model.add(tf.layers.inputLayer({ inputShape: SHAPE, name: 'input' }));
  model.add(
    tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv_1', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
  );
  model.add(
    tf.layers.conv2d({
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      name: 'conv_2',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
    }),
  );
  model.add(tf.layers.flatten({ name: 'flatten' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'dense_1', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }) }));
  return model;
}

/**
 * The network of buildModel in plain float64 JavaScript: forward and backward pass for one image.
 * The wasm backend has no Conv2DBackpropFilter kernel, the cpu backend's took ~8 minutes and an
 * im2col formulation in tf ops was slowed down by wasm's Slice, while this tiny network trains in
 * seconds by hand. Weight layouts are those of the tfjs layers: k1 [3,3,1,8], b1 [8], k2 [3,3,8,8],
 * b2 [8], w [512,3] (flatten order (row, col, channel)), b [3]. 'same' padding: 1 on each side for
 * stride 1; for stride 2 on 16 -> 8, TensorFlow pads 0 before and 1 after.
 */
type Params = Float64Array[];
const F = 8; // filters per conv layer

function forward(p: Params, x: ArrayLike<number>) {
  const [k1, b1, k2, b2, w, b] = p;
  const z1 = new Float64Array(SIZE * SIZE * F);
  for (let r = 0; r < SIZE; r++)
    for (let c = 0; c < SIZE; c++)
      for (let f = 0; f < F; f++) {
        let s = b1[f];
        for (let dh = 0; dh < 3; dh++) {
          const rr = r + dh - 1;
          if (rr < 0 || rr >= SIZE) continue;
          for (let dw = 0; dw < 3; dw++) {
            const cc = c + dw - 1;
            if (cc >= 0 && cc < SIZE) s += x[rr * SIZE + cc] * k1[(dh * 3 + dw) * F + f];
          }
        }
        z1[(r * SIZE + c) * F + f] = s;
      }
  const a1 = z1.map((v) => (v > 0 ? v : 0));
  const H = SIZE / 2;
  const z2 = new Float64Array(H * H * F);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < H; j++)
      for (let f = 0; f < F; f++) {
        let s = b2[f];
        for (let dh = 0; dh < 3; dh++) {
          const rr = 2 * i + dh;
          if (rr >= SIZE) continue;
          for (let dw = 0; dw < 3; dw++) {
            const cc = 2 * j + dw;
            if (cc >= SIZE) continue;
            for (let ci = 0; ci < F; ci++) s += a1[(rr * SIZE + cc) * F + ci] * k2[((dh * 3 + dw) * F + ci) * F + f];
          }
        }
        z2[(i * H + j) * F + f] = s;
      }
  const a2 = z2.map((v) => (v > 0 ? v : 0));
  const K = CLASSES.length;
  const logits = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let s = b[k];
    for (let q = 0; q < a2.length; q++) s += a2[q] * w[q * K + k];
    logits[k] = s;
  }
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const tot = e.reduce((u, v) => u + v, 0);
  return { z1, a1, z2, a2, probs: e.map((v) => v / tot) };
}

/**
 * Adds the gradient of the cross-entropy -sum_k t_k log p_k for one image to g; returns that loss.
 * The target t is one-hot for an object image and uniform (1/3 each) for a noise-only image.
 */
function backward(p: Params, x: ArrayLike<number>, label: number, g: Params): number {
  const [, , k2, , w] = p;
  const [gk1, gb1, gk2, gb2, gw, gb] = g;
  const { z1, a1, z2, a2, probs } = forward(p, x);
  const K = CLASSES.length;
  const target = (k: number) => (label < 0 ? 1 / K : k === label ? 1 : 0);
  const dl = probs.map((v, k) => v - target(k));
  const dz2 = new Float64Array(a2.length);
  for (let q = 0; q < a2.length; q++) {
    let s = 0;
    for (let k = 0; k < K; k++) {
      gw[q * K + k] += a2[q] * dl[k];
      s += w[q * K + k] * dl[k];
    }
    dz2[q] = z2[q] > 0 ? s : 0;
  }
  for (let k = 0; k < K; k++) gb[k] += dl[k];
  const H = SIZE / 2;
  const da1 = new Float64Array(a1.length);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < H; j++)
      for (let f = 0; f < F; f++) {
        const d = dz2[(i * H + j) * F + f];
        if (d === 0) continue;
        gb2[f] += d;
        for (let dh = 0; dh < 3; dh++) {
          const rr = 2 * i + dh;
          if (rr >= SIZE) continue;
          for (let dw = 0; dw < 3; dw++) {
            const cc = 2 * j + dw;
            if (cc >= SIZE) continue;
            for (let ci = 0; ci < F; ci++) {
              const kIdx = ((dh * 3 + dw) * F + ci) * F + f;
              const aIdx = (rr * SIZE + cc) * F + ci;
              gk2[kIdx] += a1[aIdx] * d;
              da1[aIdx] += k2[kIdx] * d;
            }
          }
        }
      }
  for (let r = 0; r < SIZE; r++)
    for (let c = 0; c < SIZE; c++)
      for (let f = 0; f < F; f++) {
        const q = (r * SIZE + c) * F + f;
        if (!(z1[q] > 0) || da1[q] === 0) continue;
        const d = da1[q];
        gb1[f] += d;
        for (let dh = 0; dh < 3; dh++) {
          const rr = r + dh - 1;
          if (rr < 0 || rr >= SIZE) continue;
          for (let dw = 0; dw < 3; dw++) {
            const cc = c + dw - 1;
            if (cc >= 0 && cc < SIZE) gk1[(dh * 3 + dw) * F + f] += x[rr * SIZE + cc] * d;
          }
        }
      }
  let loss = 0;
  probs.forEach((v, k) => (loss -= target(k) > 0 ? target(k) * Math.log(Math.max(v, 1e-12)) : 0));
  return loss;
}

/** Mini-batch Adam on seeded shuffles, starting from buildModel(seed)'s seeded initial weights. */
function trainByHand(images: Image[], seed: number, rng: Rng, o: { epochs: number; batchSize: number; learningRate: number }) {
  const init = buildModel(seed);
  const params: Params = init.getWeights().map((t) => Float64Array.from(t.dataSync()));
  init.dispose();
  const m = params.map((q) => new Float64Array(q.length));
  const v = params.map((q) => new Float64Array(q.length));
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-7];
  let t = 0;
  let loss = NaN;
  for (let e = 0; e < o.epochs; e++) {
    const order = shuffledIndices(rng, images.length);
    let total = 0;
    for (let start = 0; start < order.length; start += o.batchSize) {
      const idx = order.slice(start, start + o.batchSize);
      const g = params.map((q) => new Float64Array(q.length));
      for (const i of idx) total += backward(params, images[i].pixels, images[i].label, g);
      t++;
      const lr = (o.learningRate * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
      params.forEach((q, pi) => {
        for (let k = 0; k < q.length; k++) {
          const gk = g[pi][k] / idx.length;
          m[pi][k] = beta1 * m[pi][k] + (1 - beta1) * gk;
          v[pi][k] = beta2 * v[pi][k] + (1 - beta2) * gk * gk;
          q[k] -= (lr * m[pi][k]) / (Math.sqrt(v[pi][k]) + eps);
        }
      });
    }
    loss = total / images.length;
  }
  // Round to what the saved float32 weights will hold.
  return { params: params.map((q) => q.map(Math.fround)), loss };
}

/** JSON with one image row (16 values) per line. */
function masksJson(meta: Record<string, unknown>, masks: number[][]): string {
  const head = Object.entries(meta).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  const body = masks
    .map((m) => {
      const rows = Array.from({ length: SIZE }, (_, r) => `      ${JSON.stringify(m.slice(r * SIZE, (r + 1) * SIZE))}`);
      return `    [\n${rows.join(',\n')}\n    ]`;
    })
    .join(',\n');
  return `{\n${head.join(',\n')},\n  "masks": [\n${body}\n  ]\n}\n`;
}

export async function buildShapes(root: string): Promise<SampleSummary> {
  const trainSet = dataset(3000, 1601, 300);
  const refSet = dataset(300, 1602);
  const bgRng = mulberry32(1603);
  const background = Array.from({ length: 100 }, () => draw(bgRng, -1).pixels);

  const TRAINING = { epochs: 6, batchSize: 32, learningRate: 0.005 };
  const trained = trainByHand(trainSet, 1701, mulberry32(1801), TRAINING);
  const model = buildModel(1701);
  const tensors = trained.params.map((q, i) => tf.tensor(Float32Array.from(q), model.getWeights()[i].shape));
  model.setWeights(tensors);
  tensors.forEach((t) => t.dispose());
  const refX = refSet.map((im) => im.pixels);
  // The tfjs Conv2D model must compute what the hand-written network computes.
  const convDiff = maxAbsDiff(refX.map((x) => Array.from(forward(trained.params, x).probs)), predict(model, refX, SHAPE));
  if (convDiff > 1e-4) throw new Error(`shapes: the Conv2D model differs from the network it was trained as by ${convDiff}`);
  const loss = trained.loss;
  const round4 = (r: number[]) => r.map(r4);
  const onZero = round4(predict(model, [new Array<number>(SIZE * SIZE).fill(0)], SHAPE)[0]);
  const bgPred = predict(model, background, SHAPE);
  const onBackground = round4(CLASSES.map((_, k) => bgPred.reduce((u, r) => u + r[k], 0) / bgPred.length));

  const refY = refSet.map((im) => im.label);
  const pRef = predict(model, refX, SHAPE);
  const metrics = { accuracy: r4(accuracyMulticlass(pRef, refY)), final_training_loss: r4(loss) };

  const nMasks = 20;
  const metadata = {
    description: 'Synthetic 16x16x1 images of a horizontal bar, a vertical bar or a filled square on low noise; a small CNN without pooling.',
    task: 'multiclass-classification',
    inputShape: SHAPE,
    outputs: CLASSES.map((c) => ({ name: c, description: `P(class = ${c})` })),
    sensitiveFeatures: [],
    background: 'background.csv',
    reference: 'reference.csv',
    label: 'label',
    classes: CLASSES,
    notes: {
      data_generating_process:
        'Each image starts black (0). horizontal_bar: 2 rows high, 7..12 columns wide; vertical_bar: 7..12 rows high, 2 columns wide; square: filled, side 4..6. ' +
        'The object is placed uniformly at random fully inside the image with one intensity ~ Uniform(0.7, 1.0) (2 decimals); then every pixel gets N(0, 0.05^2) noise, ' +
        'is clipped to [0, 1] and rounded to 2 decimals. Classes balanced, in seeded random order (mulberry32 seeds 1601 train 3000 images, 1602 reference 300, 1603 background). ' +
        'The training set also holds 300 noise-only images with the uniform target (1/3 each), so that a blank or noise image (an IG baseline) is predicted near 1/3 per class.',
      pixel_columns: 'p{row}_{col}_0, row-major over [16, 16, 1]: column k is row floor(k/16), col k%16. expected.json rows use the same flat order.',
      background_images: '100 noise-only images (no object): N(0, 0.05^2) clipped to [0, 1], rounded to 2 decimals',
      masks: `masks.json holds the 0/1 object mask (16 x 16, [row][col]) of the first ${nMasks} reference images`,
      label_encoding: 'class index: 0 = horizontal_bar, 1 = vertical_bar, 2 = square',
      training: {
        architecture: 'Conv2D 8 3x3 same relu -> Conv2D 8 3x3 stride 2 same relu -> Flatten -> Dense 3 softmax (no pooling: piecewise linear up to the softmax)',
        inputs: 'raw pixels in [0, 1], no standardisation',
        optimizer:
          `adam lr ${TRAINING.learningRate}, batch ${TRAINING.batchSize}, ${TRAINING.epochs} epochs, categorical cross-entropy, seeded init (the layers' seeded Glorot kernels) and per-epoch shuffling. ` +
          'Trained by a hand-written float64 forward/backward pass of the same network (samples/shapes.ts; the wasm backend lacks Conv2DBackpropFilter), weights then stored as float32 in the Conv2D layers',
        handwritten_vs_tfjs_max_abs_diff: convDiff,
      },
      baseline_predictions: { all_zero_image: onZero, mean_over_background: onBackground },
      heldout_metrics: { ...metrics, confusion_rows_true_cols_predicted: confusion(pRef, refY, 3) },
    },
  };
  const masks = masksJson(
    {
      description: `Object pixel masks (1 = object) of the first ${nMasks} rows of reference.csv, each 16 rows x 16 columns ([row][col], same order as the p{row}_{col}_0 columns).`,
      inputShape: SHAPE,
      rows: Array.from({ length: nMasks }, (_, i) => i),
      labels: refY.slice(0, nMasks),
      classes: CLASSES,
    },
    refSet.slice(0, nMasks).map((im) => im.mask),
  );

  const reloaded = await writeModelFolder({
    dir: join(root, 'shapes'),
    model,
    metadata,
    header: PIXELS,
    background,
    reference: { rows: refX, labels: refY, labelName: 'label' },
    expectedRows: refX.slice(0, 12),
    exampleShape: SHAPE,
    extraFiles: { 'masks.json': masks },
  });
  [model, reloaded].forEach((m) => m.dispose());
  return { name: 'shapes', metrics: { accuracy: metrics.accuracy } };
}
