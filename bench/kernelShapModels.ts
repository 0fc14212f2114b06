/**
 * The model the Kernel SHAP benches run on: a seeded 20-64-64-3 ReLU MLP with a softmax output (the
 * shape of the held-out model Kernel SHAP's targets are stated for), He-normal weights, small biases,
 * on the tfjs backend the service uses.
 */
import * as tf from '@tensorflow/tfjs';
import { normal, seededRng } from '../explainers/random.js';
import { TfjsModel, type TfjsModelOptions } from '../models/tfjsModel.js';

export async function reluMlp(seed: number, inputs = 20, options: TfjsModelOptions = {}): Promise<TfjsModel> {
  const rng = seededRng(seed);
  const net = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [inputs], units: 64, activation: 'relu' }),
      tf.layers.dense({ units: 64, activation: 'relu' }),
      tf.layers.dense({ units: 3, activation: 'softmax' }),
    ],
  });
  for (const layer of net.layers) {
    const [fanIn, fanOut] = layer.getWeights()[0].shape;
    const kernel = Float32Array.from({ length: fanIn * fanOut }, () => normal(rng) * Math.sqrt(2 / fanIn));
    const bias = Float32Array.from({ length: fanOut }, () => normal(rng) * 0.1);
    const w = [tf.tensor2d(kernel, [fanIn, fanOut]), tf.tensor1d(bias)];
    layer.setWeights(w);
    tf.dispose(w);
  }
  return TfjsModel.create(net, options);
}
