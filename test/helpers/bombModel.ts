/**
 * A model whose first call makes the wasm backend fail for good, from a tiny request: a 16x16x1
 * image upsampled 128x to 2048x2048, then 512 conv filters, whose activations (8.6 GB) are far past
 * wasm's 4 GB address space. The failure is real (the wasm module itself breaks), not simulated.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { saveLayersModel } from '../../samples/lib/nn.js';

/** Writes the model as folder `dir/name` (model.json + weights.bin, no metadata). */
export async function writeBombModel(dir: string, name = 'bomb'): Promise<void> {
  const input = tf.input({ shape: [16, 16, 1] });
  const up = tf.layers.upSampling2d({ size: [128, 128] }).apply(input) as tf.SymbolicTensor;
  const conv = tf.layers.conv2d({ filters: 512, kernelSize: 3, padding: 'same', kernelInitializer: 'ones' }).apply(up) as tf.SymbolicTensor;
  const out = tf.layers.globalAveragePooling2d({}).apply(conv) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  await saveLayersModel(model, path.join(dir, name));
  model.dispose();
}

/** One instance for it (an all-0.5 image). */
export const BOMB_INSTANCE = Array.from({ length: 16 }, () => Array.from({ length: 16 }, () => [0.5]));
