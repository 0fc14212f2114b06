/**
 * A layers model reduced to a list of plain tf ops ("steps"), when it is a simple chain of layers we
 * understand. The steps let us run things tfjs does not offer: an input-only backward pass (much
 * faster than tf.grad on wasm) and the exact regime changes of ReLU-family units along a path.
 * Anything we do not recognise yields null, and callers fall back to the model itself.
 */
import * as tf from '@tensorflow/tfjs';

export type Act =
  | { kind: 'linear' }
  | { kind: 'relu'; cap?: number } // relu, relu6 (cap 6), ReLU layer with maxValue
  | { kind: 'leaky'; alpha: number }
  | { kind: 'elu' }
  | { kind: 'sigmoid' }
  | { kind: 'tanh' }
  | { kind: 'softmax' };

/** Each step records `shape`, the per-row shape it outputs. */
export type Step = { shape: number[] } & (
  | { op: 'dense'; kernel: tf.Tensor2D; bias?: tf.Tensor1D }
  | {
      op: 'conv2d';
      kernel: tf.Tensor4D;
      bias?: tf.Tensor1D;
      strides: [number, number];
      pad: 'same' | 'valid';
      dilations: [number, number];
    }
  | { op: 'avgpool'; size: [number, number]; strides: [number, number]; pad: 'same' | 'valid' }
  | { op: 'reshape' }
  | { op: 'act'; act: Act }
);

export interface Plan {
  inputShape: number[];
  steps: Step[];
}

/** Piecewise linear activations: their kinks are the path breakpoints. */
export function isPiecewiseLinear(a: Act): boolean {
  return a.kind === 'linear' || a.kind === 'relu' || a.kind === 'leaky';
}

/** Activation named in a layer config ('relu', 'softmax' ...); undefined when not supported. */
function namedAct(name: unknown): Act | undefined {
  switch (name ?? 'linear') {
    case 'linear':
      return { kind: 'linear' };
    case 'relu':
      return { kind: 'relu' };
    case 'relu6':
      return { kind: 'relu', cap: 6 };
    case 'elu':
      return { kind: 'elu' };
    case 'sigmoid':
      return { kind: 'sigmoid' };
    case 'tanh':
      return { kind: 'tanh' };
    case 'softmax':
      return { kind: 'softmax' };
    default:
      return undefined;
  }
}

/** The layers of `model` in order when they form a single chain from one input to one output. */
function chain(model: tf.LayersModel): tf.layers.Layer[] | null {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return null;
  const layers = model.layers;
  if (model instanceof tf.Sequential) return layers;
  for (let i = 1; i < layers.length; i++) {
    const nodes = layers[i].inboundNodes;
    if (nodes.length !== 1 || nodes[0].inboundLayers.length !== 1 || nodes[0].inboundLayers[0] !== layers[i - 1])
      return null;
  }
  return layers;
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0], v[1]] : [Number(v), Number(v)]);

/** Translates one layer into steps, or null when the layer is outside what we model. */
function layerSteps(layer: tf.layers.Layer, inShape: number[]): Step[] | null {
  const cfg = layer.getConfig() as Record<string, unknown>;
  const outShape = (layer.outputShape as number[]).slice(1);
  if (outShape.some((s) => s == null)) return null;
  const withAct = (linear: Step): Step[] | null => {
    const act = namedAct(cfg.activation);
    if (!act) return null;
    return act.kind === 'linear' ? [linear] : [linear, { op: 'act', act, shape: outShape }];
  };
  const [kernel, bias] = layer.getWeights();
  switch (layer.getClassName()) {
    case 'InputLayer':
    case 'Dropout': // identity at inference
      return [];
    case 'Flatten':
      if (cfg.dataFormat === 'channelsFirst') return null; // transposes before flattening
      return [{ op: 'reshape', shape: outShape }];
    case 'Reshape':
      return [{ op: 'reshape', shape: outShape }];
    case 'Dense':
      // A Dense on rank>1 rows acts on the last axis only; keep the flat-row model simple.
      if (inShape.length !== 1) return null;
      return withAct({ op: 'dense', kernel: kernel as tf.Tensor2D, bias: cfg.useBias ? (bias as tf.Tensor1D) : undefined, shape: outShape });
    case 'Conv2D':
      if (cfg.dataFormat === 'channelsFirst' || inShape.length !== 3) return null;
      return withAct({
        op: 'conv2d',
        kernel: kernel as tf.Tensor4D,
        bias: cfg.useBias ? (bias as tf.Tensor1D) : undefined,
        strides: pair(cfg.strides),
        pad: cfg.padding === 'same' ? 'same' : 'valid',
        dilations: pair(cfg.dilationRate ?? 1),
        shape: outShape,
      });
    case 'AveragePooling2D':
      if (cfg.dataFormat === 'channelsFirst' || inShape.length !== 3) return null;
      return [{ op: 'avgpool', size: pair(cfg.poolSize), strides: pair(cfg.strides ?? cfg.poolSize), pad: cfg.padding === 'same' ? 'same' : 'valid', shape: outShape }];
    case 'Activation': {
      const act = namedAct(cfg.activation);
      if (!act || (act.kind === 'softmax' && inShape.length !== 1)) return null;
      return act.kind === 'linear' ? [] : [{ op: 'act', act, shape: outShape }];
    }
    case 'ReLU':
      return [{ op: 'act', act: { kind: 'relu', cap: cfg.maxValue == null ? undefined : Number(cfg.maxValue) }, shape: outShape }];
    case 'LeakyReLU':
      return [{ op: 'act', act: { kind: 'leaky', alpha: Number(cfg.alpha ?? 0.3) }, shape: outShape }];
    case 'ELU':
      return Number(cfg.alpha ?? 1) === 1 ? [{ op: 'act', act: { kind: 'elu' }, shape: outShape }] : null;
    default:
      return null;
  }
}

/** A chain model layer by layer: our steps where we understand a layer, the layer itself otherwise. */
export interface Chain {
  inputShape: number[];
  parts: ({ steps: Step[] } | { layer: tf.layers.Layer })[];
}

/** The model as a chain of parts, or null when it is not a single chain with a known input shape. */
export function compileChain(model: tf.LayersModel): Chain | null {
  const layers = chain(model);
  if (!layers) return null;
  const inputShape = (model.inputs[0].shape as (number | null)[]).slice(1);
  if (inputShape.some((s) => s == null)) return null;
  let shape = inputShape as number[];
  const parts: Chain['parts'] = [];
  for (const layer of layers) {
    let steps: Step[] | null;
    try {
      steps = layerSteps(layer, shape);
    } catch {
      steps = null; // e.g. a custom layer whose getConfig throws: run the layer itself
    }
    try {
      shape = (layer.outputShape as number[]).slice(1);
    } catch {
      return null; // a layer with several output shapes is not part of a simple chain
    }
    const flatSoftmax = steps?.every((st) => st.op !== 'act' || st.act.kind !== 'softmax' || st.shape.length === 1);
    parts.push(steps && flatSoftmax ? { steps } : { layer });
  }
  return { inputShape: inputShape as number[], parts };
}

/** The chain as steps only, or null when some layer is not one we reproduce. */
export function planOf(c: Chain): Plan | null {
  const steps: Step[] = [];
  for (const part of c.parts) {
    if (!('steps' in part)) return null;
    steps.push(...part.steps);
  }
  return { inputShape: c.inputShape, steps };
}

/**
 * Forward pass of a chain on a batch [m, ...inputShape]. Built from plain (unfused) ops, whose
 * gradients are computed only for what tf.grad asks: tfjs's fused conv2d/matMul gradients always
 * compute the weight gradients too, and wasm has no Conv2DBackpropFilter kernel at all.
 */
export function runChain(c: Chain, x: tf.Tensor): tf.Tensor {
  let h = x;
  for (const part of c.parts) {
    if ('layer' in part) h = part.layer.apply(h, { training: false }) as tf.Tensor;
    else for (const step of part.steps) h = step.op === 'act' ? applyAct(step.act, h) : applyLinear(step, h);
  }
  return h;
}

/** Applies the affine (non-activation) part of a step to a batch [m, ...shape]. */
export function applyLinear(step: Step, x: tf.Tensor): tf.Tensor {
  const m = x.shape[0];
  switch (step.op) {
    case 'dense': {
      const y = tf.matMul(x as tf.Tensor2D, step.kernel);
      return step.bias ? tf.add(y, step.bias) : y;
    }
    case 'conv2d': {
      const y = tf.conv2d(x as tf.Tensor4D, step.kernel, step.strides, step.pad, 'NHWC', step.dilations);
      return step.bias ? tf.add(y, step.bias) : y;
    }
    case 'avgpool':
      return tf.avgPool(x as tf.Tensor4D, step.size, step.strides, step.pad);
    case 'reshape':
      return tf.reshape(x, [m, ...step.shape]);
    case 'act':
      throw new Error('applyLinear called on an activation step');
  }
}

/** The activation as tf ops, matching tfjs's own kernels (so gradients agree at the kinks). */
export function applyAct(act: Act, z: tf.Tensor): tf.Tensor {
  switch (act.kind) {
    case 'linear':
      return z;
    case 'relu':
      return act.cap === undefined ? tf.relu(z) : tf.clipByValue(tf.relu(z), 0, act.cap);
    case 'leaky':
      return tf.leakyRelu(z, act.alpha);
    case 'elu':
      return tf.elu(z);
    case 'sigmoid':
      return tf.sigmoid(z);
    case 'tanh':
      return tf.tanh(z);
    case 'softmax':
      return tf.softmax(z);
  }
}
