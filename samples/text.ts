/**
 * The `text` sample: a sentiment classifier over synthetic sentences with planted trigger words.
 * Each sentence is 4..11 filler words (no sentiment) and exactly one trigger word at a uniform
 * position; the label is the trigger's sentiment. So the trigger is the only token that matters,
 * and token attributions must put it first.
 * Model: Embedding(V, 8) -> GlobalAveragePooling1D -> Dense(8, relu) -> Dense(2, softmax), input 12
 * token ids. wasm has no UnsortedSegmentSum (the Embedding gradient), so training is a hand-written
 * float64 pass of the same network (Adam), whose weights are then stored in the tfjs layers; the
 * build checks the tfjs model computes the same.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTokenizer, encodeTexts } from '../models/tokenizer.js';
import { loadLayersModel, saveLayersModel } from './lib/nn.js';
import { intBetween, mulberry32, shuffledIndices, type Rng } from './lib/rng.js';
import type { SampleSummary } from './lib/folder.js';

export const FILLER = [
  'the', 'a', 'this', 'that', 'movie', 'film', 'story', 'plot', 'actor', 'actors', 'scene', 'music', 'ending', 'was', 'is',
  'and', 'with', 'of', 'in', 'it', 'we', 'saw', 'watched', 'yesterday', 'today', 'long', 'short', 'first', 'second', 'part',
  'cast', 'director', 'camera', 'night', 'city', 'book', 'version', 'about', 'really', 'quite',
];
export const POSITIVE = ['excellent', 'wonderful', 'superb', 'brilliant', 'delightful'];
export const NEGATIVE = ['terrible', 'awful', 'horrible', 'dreadful', 'boring'];
export const SPECIAL = ['[PAD]', '[UNK]', '[MASK]'];
const L = 12;
const E = 8;
const H = 8;

export interface Sentence {
  text: string;
  label: number;
  trigger: string;
  triggerPosition: number;
}

function sentence(rng: Rng): Sentence {
  const n = intBetween(rng, 4, 11);
  const words = Array.from({ length: n }, () => FILLER[intBetween(rng, 0, FILLER.length - 1)]);
  const label = rng() < 0.5 ? 1 : 0;
  const pool = label ? POSITIVE : NEGATIVE;
  const trigger = pool[intBetween(rng, 0, pool.length - 1)];
  const pos = intBetween(rng, 0, n);
  words.splice(pos, 0, trigger);
  return { text: words.join(' '), label, trigger, triggerPosition: pos };
}

export async function buildText(root: string): Promise<SampleSummary> {
  const vocabulary = [...SPECIAL, ...FILLER, ...POSITIVE, ...NEGATIVE];
  const tokenizerJson = { type: 'word', lowercase: true, maxLength: L, pad: '[PAD]', unk: '[UNK]', mask: '[MASK]', vocabulary };
  const tok = parseTokenizer(tokenizerJson);
  const rng = mulberry32(20241201);
  const train = Array.from({ length: 2000 }, () => sentence(rng));
  const held = Array.from({ length: 200 }, () => sentence(rng));
  const ids = (s: Sentence[]) => encodeTexts(tok, s.map((x) => x.text)).rows.data;
  const xTrain = ids(train);
  const V = vocabulary.length;

  // Parameters (float64), Glorot-uniform from a seeded stream; biases 0.
  const init = mulberry32(7);
  const glorot = (fanIn: number, fanOut: number, n: number) => Float64Array.from({ length: n }, () => (init() * 2 - 1) * Math.sqrt(6 / (fanIn + fanOut)));
  const P = { emb: glorot(V, E, V * E), w1: glorot(E, H, E * H), b1: new Float64Array(H), w2: glorot(H, 2, H * 2), b2: new Float64Array(2) };
  const keys = Object.keys(P) as (keyof typeof P)[];
  const m = Object.fromEntries(keys.map((k) => [k, new Float64Array(P[k].length)])) as typeof P;
  const v = Object.fromEntries(keys.map((k) => [k, new Float64Array(P[k].length)])) as typeof P;
  const forward = (row: ArrayLike<number>) => {
    const e = new Float64Array(E);
    for (let t = 0; t < L; t++) for (let k = 0; k < E; k++) e[k] += P.emb[row[t] * E + k] / L;
    const h = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      let s = P.b1[j];
      for (let k = 0; k < E; k++) s += e[k] * P.w1[k * H + j];
      h[j] = Math.max(0, s);
    }
    const z = [0, 1].map((c) => P.b2[c] + h.reduce((s, hj, j) => s + hj * P.w2[j * 2 + c], 0));
    const mx = Math.max(...z);
    const ex = z.map((q) => Math.exp(q - mx));
    const p = ex.map((q) => q / (ex[0] + ex[1]));
    return { e, h, p };
  };
  let t = 0;
  const lr = 0.01;
  const shuffle = mulberry32(11);
  for (let epoch = 0; epoch < 12; epoch++) {
    const order = shuffledIndices(shuffle, train.length);
    for (let b = 0; b < order.length; b += 32) {
      const g = Object.fromEntries(keys.map((k) => [k, new Float64Array(P[k].length)])) as typeof P;
      const batch = order.slice(b, b + 32);
      for (const i of batch) {
        const row = xTrain.subarray(i * L, (i + 1) * L);
        const { e, h, p } = forward(row);
        const dz = [p[0] - (train[i].label === 0 ? 1 : 0), p[1] - (train[i].label === 1 ? 1 : 0)];
        const dh = new Float64Array(H);
        for (let j = 0; j < H; j++)
          for (let c = 0; c < 2; c++) {
            g.w2[j * 2 + c] += h[j] * dz[c];
            dh[j] += P.w2[j * 2 + c] * dz[c];
          }
        for (let c = 0; c < 2; c++) g.b2[c] += dz[c];
        const de = new Float64Array(E);
        for (let j = 0; j < H; j++) {
          if (h[j] <= 0) continue;
          g.b1[j] += dh[j];
          for (let k = 0; k < E; k++) {
            g.w1[k * H + j] += e[k] * dh[j];
            de[k] += P.w1[k * H + j] * dh[j];
          }
        }
        for (let tt = 0; tt < L; tt++) for (let k = 0; k < E; k++) g.emb[row[tt] * E + k] += de[k] / L;
      }
      t++;
      for (const k of keys)
        for (let q = 0; q < P[k].length; q++) {
          const gr = g[k][q] / batch.length;
          m[k][q] = 0.9 * m[k][q] + 0.1 * gr;
          v[k][q] = 0.999 * v[k][q] + 0.001 * gr * gr;
          P[k][q] -= (lr * (m[k][q] / (1 - 0.9 ** t))) / (Math.sqrt(v[k][q] / (1 - 0.999 ** t)) + 1e-7);
        }
    }
  }
  const xHeld = ids(held);
  let correct = 0;
  const jsPred: number[][] = [];
  held.forEach((s, i) => {
    const p = forward(xHeld.subarray(i * L, (i + 1) * L)).p;
    jsPred.push(p);
    if ((p[1] > 0.5 ? 1 : 0) === s.label) correct++;
  });

  const model = tf.sequential({
    name: 'text',
    layers: [
      tf.layers.embedding({ name: 'embedding', inputDim: V, outputDim: E, inputLength: L, inputShape: [L] }),
      tf.layers.globalAveragePooling1d({ name: 'pool' }),
      tf.layers.dense({ name: 'hidden', units: H, activation: 'relu' }),
      tf.layers.dense({ name: 'output', units: 2, activation: 'softmax' }),
    ],
  });
  tf.tidy(() =>
    model.setWeights([
      tf.tensor2d(Float32Array.from(P.emb), [V, E]),
      tf.tensor2d(Float32Array.from(P.w1), [E, H]),
      tf.tensor1d(Float32Array.from(P.b1)),
      tf.tensor2d(Float32Array.from(P.w2), [H, 2]),
      tf.tensor1d(Float32Array.from(P.b2)),
    ]),
  );
  const dir = join(root, 'text');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await saveLayersModel(model, dir);
  const reloaded = await loadLayersModel(dir);
  const tfPred = tf.tidy(() => (reloaded.predict(tf.tensor2d(xHeld, [held.length, L])) as tf.Tensor).arraySync() as number[][]);
  const diff = Math.max(...tfPred.flatMap((r, i) => r.map((q, c) => Math.abs(q - jsPred[i][c]))));
  const accuracy = correct / held.length;
  const metadata = {
    description: 'Sentiment of synthetic sentences with one planted trigger word; input: 12 token ids (see tokenizer.json).',
    task: 'multiclass-classification',
    outputs: [{ name: 'negative', description: 'P(negative)' }, { name: 'positive', description: 'P(positive)' }],
    classes: ['negative', 'positive'],
    // Held-out sentences the model report explains (one of each class and one with an unknown word).
    exampleTexts: [held[0].text, held[1].text, `${held[2].text} despite the zorblax`],
    notes: {
      data: 'sentences of 4..11 filler words and one trigger word at a uniform position (mulberry32 seed 20241201); label = the trigger sentiment',
      positive_triggers: POSITIVE,
      negative_triggers: NEGATIVE,
      training: 'hand-written float64 forward/backward of the same network, Adam lr 0.01, batch 32, 12 epochs (wasm lacks the Embedding gradient kernel)',
      handwritten_vs_tfjs_max_abs_diff: diff,
      heldout_accuracy: accuracy,
    },
  };
  writeFileSync(join(dir, 'metadata.json'), JSON.stringify(metadata, null, 2) + '\n');
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson, null, 2) + '\n');
  const expectedRows = Array.from({ length: 12 }, (_, i) => Array.from(xHeld.subarray(i * L, (i + 1) * L)));
  writeFileSync(
    join(dir, 'expected.json'),
    `{\n  "texts": ${JSON.stringify(held.slice(0, 12).map((h2) => h2.text))},\n  "rows": [\n${expectedRows.map((r) => `    ${JSON.stringify(r)}`).join(',\n')}\n  ],\n  "predictions": [\n${tfPred
      .slice(0, 12)
      .map((r) => `    ${JSON.stringify(r)}`)
      .join(',\n')}\n  ]\n}\n`,
  );
  writeFileSync(join(dir, 'sentences.json'), JSON.stringify({ description: 'held-out sentences with their label and planted trigger', sentences: held }, null, 1) + '\n');
  [model, reloaded].forEach((x) => x.dispose());
  if (diff > 1e-5) throw new Error(`text: the tfjs model differs from the trained network by ${diff}`);
  return { name: 'text', metrics: { accuracy } };
}
