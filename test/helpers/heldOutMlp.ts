/**
 * Seeded MLP classifiers that are not in the repository, written into a model folder the way a person
 * deploying one would (model.json + weights, metadata.json, background.csv, reference.csv): the kind
 * of model the amortised explainer is checked on. Features are correlated, on unrelated scales and
 * offsets (some integer-valued); the labels come from a planted nonlinear rule with noise; the
 * network (Dense ReLU or tanh layers, softmax output) is trained on them for a few seeded epochs with
 * the standardisation folded into its first layer, so it takes the raw features.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { csv } from '../../samples/lib/folder.js';
import { applyScaler, fitScaler, foldStandardisation, saveLayersModel, train, type Matrix } from '../../samples/lib/nn.js';
import { gaussian, mulberry32 } from '../../samples/lib/rng.js';

export interface HeldOutMlpOptions {
  seed: number;
  /** Default 12. */
  features?: number;
  /** Default 3. */
  classes?: number;
  /** Default [32, 32]. */
  hidden?: number[];
  /** Default 'relu'. */
  activation?: 'relu' | 'tanh';
  /** Reference rows (the first 100 are also the background). Default 1000. */
  rows?: number;
  /** Training epochs of the classifier. Default 30. */
  epochs?: number;
  /** metadata.json link; default none (identity). */
  link?: 'identity' | 'logit';
}

/** Writes <modelDir>/<name>/ and returns the feature names. */
export async function writeHeldOutMlp(modelDir: string, name: string, o: HeldOutMlpOptions): Promise<string[]> {
  const d = o.features ?? 12;
  const classes = o.classes ?? 3;
  const hidden = o.hidden ?? [32, 32];
  const n = o.rows ?? 1000;
  const rng = mulberry32(o.seed);
  // Correlated Gaussians: z = L e with a random lower-triangular L, then per-feature scale and offset.
  const L = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (j < i ? 0.5 * gaussian(rng) : j === i ? 1 : 0)));
  const scale = Array.from({ length: d }, () => Math.exp(3 * rng() - 1));
  const offset = Array.from({ length: d }, () => 10 * gaussian(rng));
  const integer = Array.from({ length: d }, (_, j) => j % 4 === 3);
  const rows: Matrix = [];
  const std: Matrix = [];
  for (let r = 0; r < n; r++) {
    const e = Array.from({ length: d }, () => gaussian(rng));
    const z = L.map((row) => row.reduce((s, l, j) => s + l * e[j], 0));
    std.push(z);
    rows.push(z.map((v, j) => (integer[j] ? Math.round(v * 2 + 5) : Math.fround(v * scale[j] + offset[j]))));
  }
  // Planted rule: class scores with main effects, pairwise products and a threshold.
  const W = Array.from({ length: classes }, () => Array.from({ length: d }, () => gaussian(rng)));
  const pairs = Array.from({ length: 2 * d }, () => [Math.floor(rng() * d), Math.floor(rng() * d), gaussian(rng)] as const);
  const labels = std.map((z) => {
    const s = W.map((w, k) => {
      let v = w.reduce((a, wi, j) => a + wi * z[j], 0);
      for (const [a, b, c] of pairs) if ((a + b + k) % classes === 0) v += c * z[a] * z[b];
      v += (z[k % d] > 0.5 ? 1.5 : 0) + 0.5 * gaussian(rng);
      return v;
    });
    return s.indexOf(Math.max(...s));
  });
  const onehot = labels.map((l) => Array.from({ length: classes }, (_, k) => (k === l ? 1 : 0)));
  const layers = (modelName: string) => {
    const m = tf.sequential({ name: modelName });
    hidden.forEach((units, i) =>
      m.add(
        tf.layers.dense({
          units,
          activation: o.activation ?? 'relu',
          ...(i === 0 ? { inputShape: [d] } : {}),
          kernelInitializer: tf.initializers.glorotUniform({ seed: o.seed * 31 + i }),
        }),
      ),
    );
    m.add(tf.layers.dense({ units: classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: o.seed * 31 + 17 }) }));
    return m;
  };
  const scaler = fitScaler(rows);
  const trained = layers('trained');
  await train(trained, applyScaler(rows, scaler), onehot, {
    epochs: o.epochs ?? 30,
    batchSize: 32,
    learningRate: 0.01,
    loss: 'categoricalCrossentropy',
    rng: mulberry32(o.seed + 1),
  });
  const model = layers(name);
  foldStandardisation(trained, model, scaler);
  trained.dispose();
  const dir = path.join(modelDir, name);
  mkdirSync(dir, { recursive: true });
  await saveLayersModel(model, dir);
  model.dispose();
  const names = Array.from({ length: d }, (_, j) => `f${j}`);
  const classNames = Array.from({ length: classes }, (_, k) => `class_${k}`);
  writeFileSync(
    path.join(dir, 'metadata.json'),
    JSON.stringify(
      {
        task: 'multiclass-classification',
        features: names.map((f, j) => ({ name: f, type: integer[j] ? 'integer' : 'numeric' })),
        outputs: classNames.map((c) => ({ name: c })),
        classes: classNames,
        background: 'background.csv',
        reference: 'reference.csv',
        label: 'label',
        ...(o.link ? { link: o.link } : {}),
      },
      null,
      2,
    ),
  );
  writeFileSync(path.join(dir, 'background.csv'), csv(names, rows.slice(0, 100)));
  writeFileSync(
    path.join(dir, 'reference.csv'),
    csv(
      [...names, 'label'],
      rows.map((r, i) => [...r, classNames[labels[i]]]),
    ),
  );
  return names;
}
