/**
 * What a model's last layer does to its outputs: softmax or sigmoid outputs are class
 * probabilities (a classifier, even without metadata saying so), linear ones are scores or
 * regression values. Read from the model's own structure, never from its values.
 */
import * as tf from '@tensorflow/tfjs';

export type OutputKind = 'softmax' | 'sigmoid' | 'linear' | 'other';

const KINDS: Record<string, OutputKind> = { softmax: 'softmax', sigmoid: 'sigmoid', linear: 'linear' };

/** The activation of the model's output: the last layer's (layers models) or the output op's (graph models). */
export function outputKindOf(model: tf.LayersModel | tf.GraphModel): OutputKind {
  if (model instanceof tf.LayersModel) {
    const last = model.layers[model.layers.length - 1];
    if (!last) return 'other';
    const cls = last.getClassName();
    if (cls === 'Softmax') return 'softmax';
    const act = (last.getConfig() as { activation?: unknown }).activation;
    if (typeof act === 'string') return KINDS[act] ?? 'other';
    // Layers without an activation (Reshape, Flatten ...) pass the previous one's through: not known here.
    return 'other';
  }
  // Graph models: the op that produces the output (tfjs keeps it on the executor's graph).
  const ops = (model as unknown as { executor?: { graph?: { outputs?: { op?: string }[] } } }).executor?.graph?.outputs?.map((n) => n.op);
  const op = ops?.length === 1 ? ops[0] : undefined;
  return op === 'Softmax' ? 'softmax' : op === 'Sigmoid' ? 'sigmoid' : 'other';
}
