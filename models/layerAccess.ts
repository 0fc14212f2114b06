/**
 * Gradients and activations through a LayerGraph (graph.ts), for TfjsModel: input gradients of
 * non-chain models (MobileNetV2 and other branching nets) and layer-level access for Grad-CAM and
 * embedding-space Integrated Gradients. All functions run inside the caller's tf.tidy.
 */
import * as tf from '@tensorflow/tfjs';
import { runGraph, type LayerGraph } from './graph.js';

/** d y[:, output] / d x for flat rows x [m, d]; rows are independent, so the column sum's gradient is every row's own. */
export function graphInputGradients(g: LayerGraph, inputShape: number[], x: tf.Tensor2D, output: number): tf.Tensor2D {
  const m = x.shape[0];
  const f = (t: tf.Tensor) => tf.sum(tf.slice(tf.reshape(runGraph(g, tf.reshape(t, [m, ...inputShape])).y, [m, -1]), [0, output], [-1, 1]));
  return tf.grad(f)(x) as tf.Tensor2D;
}

/** Activations of node `layer` for flat rows x, as [m, size]. */
export function graphLayerActivations(g: LayerGraph, inputShape: number[], x: tf.Tensor2D, layer: number): tf.Tensor2D {
  const m = x.shape[0];
  const { captured } = runGraph(g, tf.reshape(x, [m, ...inputShape]), { capture: layer });
  return tf.reshape(captured as tf.Tensor, [m, -1]);
}

/**
 * Activations of node `layer` and d y[:, output] / d activations, both [m, size]. With `given`
 * ([m, size]) the layer's output is replaced by those values (the rest of the graph still sees x).
 */
export function graphLayerGradients(
  g: LayerGraph,
  inputShape: number[],
  x: tf.Tensor2D,
  layer: number,
  output: number,
  given?: tf.Tensor2D,
): { activations: tf.Tensor2D; gradients: tf.Tensor2D } {
  const m = x.shape[0];
  const input = tf.reshape(x, [m, ...inputShape]);
  const shape = g.nodes[layer].shape;
  const acts = given ?? graphLayerActivations(g, inputShape, x, layer);
  const f = (a: tf.Tensor) => {
    const { y } = runGraph(g, input, { replace: { node: layer, value: tf.reshape(a, [m, ...shape]) } });
    return tf.sum(tf.slice(tf.reshape(y, [m, -1]), [0, output], [-1, 1]));
  };
  return { activations: acts, gradients: tf.grad(f)(acts) as tf.Tensor2D };
}
