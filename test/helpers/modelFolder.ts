/**
 * Model folders written at test time into a temporary MODEL_DIR, as a person deploying a model would
 * write them: a tfjs layers model (Dense layers with the weights the test chose), metadata.json, and
 * background/reference CSV files. The weights are the test's oracle; the service only ever sees files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { csv } from '../../samples/lib/folder.js';
import { saveLayersModel } from '../../samples/lib/nn.js';

export interface DenseLayer {
  /** kernel[i][j]: input i to unit j. */
  kernel: number[][];
  bias: number[];
  activation: 'linear' | 'relu' | 'sigmoid' | 'softmax' | 'tanh';
}

/** A Sequential stack of Dense layers with exactly these weights. */
export function denseModel(layers: DenseLayer[]): tf.Sequential {
  const model = tf.sequential();
  layers.forEach((l, i) => {
    model.add(
      tf.layers.dense({
        units: l.bias.length,
        activation: l.activation,
        ...(i === 0 ? { inputShape: [l.kernel.length] } : {}),
        name: `dense_${i + 1}`,
      }),
    );
  });
  layers.forEach((l, i) => {
    const kernel = tf.tensor2d(l.kernel);
    const bias = tf.tensor1d(l.bias);
    model.layers[i].setWeights([kernel, bias]);
    kernel.dispose();
    bias.dispose();
  });
  return model;
}

export interface FolderContents {
  /** Dense layers with these weights, or a model already built (and trained). */
  layers?: DenseLayer[];
  model?: tf.LayersModel;
  metadata: Record<string, unknown> & { features: { name: string }[] };
  /** Rows for background.csv and reference.csv (labels: a column named "label"). */
  rows: number[][];
  labels: (number | string)[];
}

/** Writes <modelDir>/<name>/ with model.json, weights.bin, metadata.json, background.csv and reference.csv. */
export async function writeModelFolder(modelDir: string, name: string, c: FolderContents): Promise<void> {
  const dir = path.join(modelDir, name);
  mkdirSync(dir, { recursive: true });
  const model = c.model ?? denseModel(c.layers ?? []);
  await saveLayersModel(model, dir);
  if (!c.model) model.dispose();
  const header = c.metadata.features.map((f) => f.name);
  writeFileSync(
    path.join(dir, 'metadata.json'),
    JSON.stringify({ background: 'background.csv', reference: 'reference.csv', label: 'label', ...c.metadata }, null, 2),
  );
  writeFileSync(path.join(dir, 'background.csv'), csv(header, c.rows.slice(0, Math.min(100, c.rows.length))));
  writeFileSync(
    path.join(dir, 'reference.csv'),
    csv(
      [...header, 'label'],
      c.rows.map((r, i) => [...r, c.labels[i]]),
    ),
  );
}
