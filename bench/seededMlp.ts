/**
 * The tfjs model the IG and predict benches measure: a seeded 20-64-64-3 MLP with a softmax output,
 * weights N(0, 1) x 2 sqrt(2 / fan-in) so that the softmax is as confident as a trained
 * classifier's. Also: random rows, and the same model seen through predict and per-output
 * gradients only (what every model offered before logitJacobian).
 */
import * as tf from '@tensorflow/tfjs';
import { normal, seededRng } from '../explainers/random.js';
import type { Model, Rows } from '../explainers/types.js';
import { TfjsModel, type TfjsModelOptions } from '../models/tfjsModel.js';

export const MLP_SIZES = [20, 64, 64, 3] as const;

export async function seededMlp(hidden: 'relu' | 'tanh', seed = 5, options: TfjsModelOptions = {}): Promise<TfjsModel> {
  const [d, h1, h2, k] = MLP_SIZES;
  const net = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [d], units: h1, activation: hidden }),
      tf.layers.dense({ units: h2, activation: hidden }),
      tf.layers.dense({ units: k, activation: 'softmax' }),
    ],
  });
  const rng = seededRng(seed);
  const weights = net.getWeights().map((w) => {
    const fanIn = w.shape.length === 2 ? w.shape[0] : 16;
    return tf.tensor(Float32Array.from({ length: w.size }, () => 2 * Math.sqrt(2 / fanIn) * normal(rng)), w.shape);
  });
  net.setWeights(weights);
  tf.dispose(weights);
  return TfjsModel.create(net, options);
}

export function normalRows(seed: number, n: number, d: number = MLP_SIZES[0]): Rows {
  const rng = seededRng(seed);
  return { data: Float32Array.from({ length: n * d }, () => normal(rng)), n, d };
}

/** `model` through predict, inputGradients and pathBreakpoints only: no logitJacobian. */
export function perOutputView(model: Model): Model {
  return {
    nFeatures: model.nFeatures,
    nOutputs: model.nOutputs,
    predict: (r) => model.predict(r),
    inputGradients: (r, o) => model.inputGradients!(r, o),
    ...(model.pathBreakpoints ? { pathBreakpoints: (a: Float32Array, b: Float32Array) => model.pathBreakpoints!(a, b) } : {}),
  };
}
