/**
 * A layers model (Sequential or functional, with branches and merges such as MobileNetV2's residual
 * Adds) re-expressed as a graph of plain, unfused tf ops, one node per layer. Two things need it:
 *
 * - Input gradients on the wasm backend. tf.grad over the model itself runs the layers' fused
 *   conv2d, whose gradient always computes the filter gradient (wasm has no Conv2DBackpropFilter),
 *   and ReLU(max_value) as clipByValue (whose gradient aborted the wasm module). Here a convolution is
 *   a plain conv2d (tf.grad asks only for Conv2DBackpropInput, which wasm has), a depthwise
 *   convolution carries its own input gradient written in forward ops (wasm has no
 *   DepthwiseConv2dNativeBackpropInput), batch normalisation is a per-channel scale and shift, and
 *   ReLU6 is tf.relu6. Measured in bench/imageBench.ts against tf.grad on the cpu backend.
 * - Layer access: the activations of any layer, and gradients of an output with respect to a layer's
 *   output, optionally with that output replaced by given values (Grad-CAM, Integrated Gradients in
 *   an embedding space).
 *
 * A layer we do not translate runs as `layer.apply`; its gradient is then whatever tfjs offers on
 * the backend (and a missing kernel becomes a clear error, see tfjsModel.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { applyAct, type Act } from './plan.js';

export interface LayerInfo {
  name: string;
  className: string;
  /** Per-row output shape (without the batch axis). */
  shape: number[];
}

interface Node extends LayerInfo {
  inputs: number[];
  run: (inputs: tf.Tensor[]) => tf.Tensor;
  /** True when the node runs our own ops (false: layer.apply). */
  ours: boolean;
}

export interface LayerGraph {
  nodes: Node[];
  output: number;
  /** Constants made at compile time (folded batch norms, flipped kernels); freed by disposeGraph. */
  constants: tf.Tensor[];
}

/** The model as a graph, or null when some layer is shared (called more than once) or multi-output. */
export function compileGraph(model: tf.LayersModel): LayerGraph | null {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return null;
  const index = new Map<tf.layers.Layer, number>();
  const nodes: Node[] = [];
  const constants: tf.Tensor[] = [];
  // Node 0 is the input (Sequential models do not list their InputLayer among model.layers).
  const inner = model as unknown as { inputLayers?: tf.layers.Layer[]; outputLayers?: tf.layers.Layer[] };
  const first = model.layers[0];
  const inputLayer = inner.inputLayers?.[0] ?? (first?.getClassName() === 'InputLayer' ? first : first?.inboundNodes[0]?.inboundLayers[0]);
  const outputLayer = inner.outputLayers?.[0] ?? model.layers[model.layers.length - 1];
  if (!inputLayer || !outputLayer || !model.inputs[0].shape) return null;
  index.set(inputLayer, 0);
  nodes.push({ name: inputLayer.name, className: 'InputLayer', shape: (model.inputs[0].shape as number[]).slice(1), inputs: [], run: (xs) => xs[0], ours: true });
  try {
    for (const layer of model.layers) {
      if (layer === inputLayer) continue;
      if (layer.inboundNodes.length !== 1) return null;
      const inbound = layer.inboundNodes[0];
      const inputs: number[] = [];
      for (const [k, from] of inbound.inboundLayers.entries()) {
        const i = index.get(from);
        if (i === undefined || inbound.tensorIndices[k] !== 0 || inbound.nodeIndices[k] !== 0) return null;
        inputs.push(i);
      }
      const shape = (layer.outputShape as (number | null)[]).slice(1);
      if (!shape.every((s) => typeof s === 'number' && s > 0)) return null;
      const own = translate(layer, constants);
      const run = own ?? ((xs: tf.Tensor[]) => layer.apply(xs.length === 1 ? xs[0] : xs, { training: false }) as tf.Tensor);
      index.set(layer, nodes.length);
      nodes.push({ name: layer.name, className: layer.getClassName(), shape: shape as number[], inputs, run, ours: own !== null });
    }
  } catch {
    for (const c of constants) c.dispose();
    return null; // a layer whose output shape or config cannot be read: not a graph we can run
  }
  const output = index.get(outputLayer);
  if (output === undefined || !nodes[0].shape.every((v) => v > 0)) {
    for (const c of constants) c.dispose();
    return null;
  }
  return { nodes, output, constants };
}

export function disposeGraph(g: LayerGraph): void {
  for (const c of g.constants) c.dispose();
  g.constants.length = 0;
}

/** True when every layer runs as our own ops (so gradients need only kernels every backend has). */
export function graphIsOurs(g: LayerGraph): boolean {
  return g.nodes.every((n) => n.ours);
}

export function findLayer(g: LayerGraph, name: string): number {
  return g.nodes.findIndex((n) => n.name === name);
}

/**
 * Runs the graph on a batch x [m, ...inputShape] (call inside tidy). `replace` substitutes a node's
 * output (nodes only it feeds are then not computed); `capture` also returns a node's output.
 */
export function runGraph(
  g: LayerGraph,
  x: tf.Tensor,
  opts: { replace?: { node: number; value: tf.Tensor }; capture?: number } = {},
): { y: tf.Tensor; captured?: tf.Tensor } {
  const needed = new Uint8Array(g.nodes.length);
  const mark = (i: number): void => {
    if (needed[i]) return;
    needed[i] = 1;
    if (opts.replace?.node === i) return;
    for (const j of g.nodes[i].inputs) mark(j);
  };
  mark(g.output);
  if (opts.capture !== undefined) mark(opts.capture);
  const values: (tf.Tensor | undefined)[] = new Array(g.nodes.length);
  for (let i = 0; i < g.nodes.length; i++) {
    if (!needed[i]) continue;
    const node = g.nodes[i];
    if (opts.replace?.node === i) values[i] = opts.replace.value;
    else if (i === 0) values[i] = x;
    else values[i] = node.run(node.inputs.map((j) => values[j] as tf.Tensor));
  }
  return { y: values[g.output] as tf.Tensor, captured: opts.capture === undefined ? undefined : values[opts.capture] };
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1])] : [Number(v), Number(v)]);

function activationOf(name: unknown): Act | undefined {
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

/** applyAct, but a capped ReLU as relu6 / minimum: tfjs's clipByValue gradient aborted on wasm. */
function act(a: Act, z: tf.Tensor): tf.Tensor {
  if (a.kind === 'relu' && a.cap !== undefined) return a.cap === 6 ? tf.relu6(z) : tf.minimum(tf.relu(z), a.cap);
  return applyAct(a, z);
}

function weight(layer: tf.layers.Layer, suffix: string): tf.Tensor | undefined {
  const w = layer.weights.find((v) => v.name.endsWith(`/${suffix}`) || v.originalName?.endsWith(`/${suffix}`));
  return w?.read();
}

/** Our ops for one layer, or null to run the layer itself. Throws when the config cannot be read. */
function translate(layer: tf.layers.Layer, constants: tf.Tensor[]): ((xs: tf.Tensor[]) => tf.Tensor) | null {
  const cfg = layer.getConfig() as Record<string, unknown>;
  if (cfg.dataFormat === 'channelsFirst') return null;
  const keep = <T extends tf.Tensor>(t: T): T => {
    constants.push(t);
    return t;
  };
  const withAct = (f: (x: tf.Tensor) => tf.Tensor) => {
    const a = activationOf(cfg.activation);
    if (!a) return null;
    return (xs: tf.Tensor[]) => act(a, f(xs[0]));
  };
  const padding = cfg.padding === 'same' ? 'same' : cfg.padding === 'valid' ? 'valid' : undefined;
  switch (layer.getClassName()) {
    case 'InputLayer':
    case 'Dropout':
    case 'SpatialDropout1D':
    case 'SpatialDropout2D':
    case 'GaussianNoise':
    case 'GaussianDropout':
    case 'AlphaDropout':
      return (xs) => xs[0]; // identity at inference
    case 'Flatten':
    case 'Reshape': {
      const shape = (layer.outputShape as number[]).slice(1);
      return (xs) => tf.reshape(xs[0], [xs[0].shape[0], ...shape]);
    }
    case 'ZeroPadding2D': {
      const [[t, b], [l, r]] = cfg.padding as [[number, number], [number, number]];
      return (xs) => tf.pad(xs[0], [[0, 0], [t, b], [l, r], [0, 0]]);
    }
    case 'Dense': {
      const kernel = weight(layer, 'kernel') as tf.Tensor2D;
      const bias = cfg.useBias ? (weight(layer, 'bias') as tf.Tensor1D) : undefined;
      return withAct((x) => {
        const flat = x.rank === 2 ? x : tf.reshape(x, [-1, x.shape[x.rank - 1]]);
        let y: tf.Tensor = tf.matMul(flat as tf.Tensor2D, kernel);
        if (bias) y = tf.add(y, bias);
        return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), kernel.shape[1]]);
      });
    }
    case 'Conv2D': {
      const dil = pair(cfg.dilationRate ?? 1);
      if (!padding || (dil[0] !== 1 && pair(cfg.strides)[0] !== 1)) return null;
      const kernel = weight(layer, 'kernel') as tf.Tensor4D;
      const bias = cfg.useBias ? (weight(layer, 'bias') as tf.Tensor1D) : undefined;
      const strides = pair(cfg.strides);
      return withAct((x) => {
        const y = tf.conv2d(x as tf.Tensor4D, kernel, strides, padding, 'NHWC', dil);
        return bias ? tf.add(y, bias) : y;
      });
    }
    case 'Conv1D': {
      if (!padding || Number(pair(cfg.dilationRate ?? 1)[0]) !== 1) return null;
      const kernel = weight(layer, 'kernel') as tf.Tensor3D;
      const bias = cfg.useBias ? (weight(layer, 'bias') as tf.Tensor1D) : undefined;
      const stride = pair(cfg.strides)[0];
      return withAct((x) => {
        const y = tf.conv1d(x as tf.Tensor3D, kernel, stride, padding);
        return bias ? tf.add(y, bias) : y;
      });
    }
    case 'DepthwiseConv2D': {
      const dil = pair(cfg.dilationRate ?? 1);
      if (!padding || dil[0] !== 1 || dil[1] !== 1) return null;
      const kernel = weight(layer, 'depthwise_kernel') as tf.Tensor4D;
      const bias = cfg.useBias ? (weight(layer, 'bias') as tf.Tensor1D) : undefined;
      const conv = depthwiseWithInputGradient(kernel, pair(cfg.strides), padding, keep);
      return withAct((x) => {
        const y = conv(x as tf.Tensor4D);
        return bias ? tf.add(y, bias) : y;
      });
    }
    case 'BatchNormalization': {
      const axis = Number(Array.isArray(cfg.axis) ? cfg.axis[0] : (cfg.axis ?? -1));
      const rank = (layer.outputShape as number[]).length;
      if (axis !== -1 && axis !== rank - 1) return null;
      const mean = weight(layer, 'moving_mean');
      const variance = weight(layer, 'moving_variance');
      if (!mean || !variance) return null;
      const gamma = cfg.scale ? weight(layer, 'gamma') : undefined;
      const beta = cfg.center ? weight(layer, 'beta') : undefined;
      // Inference batch norm is y = x * scale + shift per channel.
      const { scale, shift } = tf.tidy(() => {
        const s = tf.div(gamma ?? tf.onesLike(variance), tf.sqrt(tf.add(variance, Number(cfg.epsilon ?? 1e-3))));
        return { scale: s, shift: tf.sub(beta ?? tf.zerosLike(mean), tf.mul(mean, s)) };
      });
      keep(scale);
      keep(shift);
      return (xs) => tf.add(tf.mul(xs[0], scale), shift);
    }
    case 'ReLU': {
      if (Number(cfg.threshold ?? 0) !== 0 || Number(cfg.negativeSlope ?? 0) !== 0) return null;
      const cap = cfg.maxValue == null ? undefined : Number(cfg.maxValue);
      return (xs) => act({ kind: 'relu', cap }, xs[0]);
    }
    case 'Activation': {
      const a = activationOf(cfg.activation);
      return a ? (xs) => act(a, xs[0]) : null;
    }
    case 'Softmax': {
      const axis = Number(Array.isArray(cfg.axis) ? cfg.axis[0] : (cfg.axis ?? -1));
      return (xs) => tf.softmax(xs[0], axis);
    }
    case 'LeakyReLU':
      return (xs) => tf.leakyRelu(xs[0], Number(cfg.alpha ?? 0.3));
    case 'Add':
      return (xs) => (xs.length === 1 ? xs[0] : tf.addN(xs));
    case 'Multiply':
      return (xs) => xs.reduce((a, b) => tf.mul(a, b));
    case 'Average':
      return (xs) => tf.div(tf.addN(xs), xs.length);
    case 'Concatenate':
      return (xs) => tf.concat(xs, Number(cfg.axis ?? -1));
    case 'AveragePooling2D':
    case 'MaxPooling2D': {
      if (!padding) return null;
      const size = pair(cfg.poolSize);
      const strides = pair(cfg.strides ?? cfg.poolSize);
      const max = layer.getClassName() === 'MaxPooling2D';
      return (xs) => (max ? tf.maxPool : tf.avgPool)(xs[0] as tf.Tensor4D, size, strides, padding);
    }
    case 'GlobalAveragePooling2D':
      return (xs) => tf.mean(xs[0], [1, 2]);
    case 'GlobalMaxPooling2D':
      return (xs) => tf.max(xs[0], [1, 2]);
    case 'GlobalAveragePooling1D':
      return (xs) => tf.mean(xs[0], 1);
    case 'GlobalMaxPooling1D':
      return (xs) => tf.max(xs[0], 1);
    case 'Embedding': {
      if (cfg.maskZero) return null; // the mask would change what downstream layers compute
      const table = weight(layer, 'embeddings') as tf.Tensor2D;
      return (xs) => tf.gather(table, tf.cast(xs[0], 'int32'));
    }
    default:
      return null;
  }
}

/**
 * depthwiseConv2d whose input gradient is computed from forward ops: the transposed depthwise
 * convolution is a stride-1 depthwise convolution, with the spatially flipped kernel, of the output
 * gradient dilated by the stride and padded. Weights get no gradient (they are constants here).
 */
function depthwiseWithInputGradient(
  kernel: tf.Tensor4D,
  strides: [number, number],
  pad: 'same' | 'valid',
  keep: <T extends tf.Tensor>(t: T) => T,
): (x: tf.Tensor4D) => tf.Tensor4D {
  const [kh, kw, c, mult] = kernel.shape;
  // [kh, kw, c * mult, 1]: each output channel convolved with its own flipped kernel.
  const flipped = keep(tf.tidy(() => tf.reshape(tf.reverse(kernel, [0, 1]), [kh, kw, c * mult, 1])) as tf.Tensor4D);
  return (x) => {
    const [, h, w] = x.shape;
    const f = tf.customGrad(((input: tf.Tensor) => {
      const value = tf.depthwiseConv2d(input as tf.Tensor4D, kernel, strides, pad);
      const [, ho, wo] = value.shape;
      const gradFunc = (dy: tf.Tensor) => {
        const top = pad === 'same' ? Math.floor(Math.max((ho - 1) * strides[0] + kh - h, 0) / 2) : 0;
        const left = pad === 'same' ? Math.floor(Math.max((wo - 1) * strides[1] + kw - w, 0) / 2) : 0;
        let g = dilate(dilate(dy as tf.Tensor4D, strides[0], 1), strides[1], 2);
        g = padOrCrop(g, 1, kh - 1 - top, h + kh - 1);
        g = padOrCrop(g, 2, kw - 1 - left, w + kw - 1);
        let dx: tf.Tensor = tf.depthwiseConv2d(g, flipped, 1, 'valid');
        if (mult > 1) dx = tf.sum(tf.reshape(dx, [dx.shape[0], h, w, c, mult]), -1);
        return dx;
      };
      return { value, gradFunc };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return f(x) as tf.Tensor4D;
  };
}

/** Inserts s - 1 zeros between neighbours along `axis` (1 or 2) of [n, h, w, c]. */
function dilate(t: tf.Tensor4D, s: number, axis: 1 | 2): tf.Tensor4D {
  if (s === 1) return t;
  const len = t.shape[axis];
  const parts = [t, ...Array.from({ length: s - 1 }, () => tf.zerosLike(t))];
  const stacked = tf.stack(parts, axis + 1); // [.., len, s, ..]
  const shape = [...t.shape] as [number, number, number, number];
  shape[axis] = len * s;
  const merged = tf.reshape(stacked, shape) as tf.Tensor4D;
  const begin = [0, 0, 0, 0];
  const size = [-1, -1, -1, -1];
  size[axis] = (len - 1) * s + 1;
  return tf.slice(merged, begin, size);
}

/** Pads `before` zeros (crops when negative) along `axis`, then pads or crops the end to `total`. */
function padOrCrop(t: tf.Tensor4D, axis: number, before: number, total: number): tf.Tensor4D {
  const begin = [0, 0, 0, 0];
  if (before < 0) {
    begin[axis] = -before;
    t = tf.slice(t, begin, [-1, -1, -1, -1]);
    before = 0;
  }
  const after = total - before - t.shape[axis];
  const pads: [number, number][] = [
    [0, 0],
    [0, 0],
    [0, 0],
    [0, 0],
  ];
  pads[axis] = [before, Math.max(0, after)];
  let out = tf.pad(t, pads);
  if (after < 0) {
    const size = [-1, -1, -1, -1];
    size[axis] = total;
    out = tf.slice(out, [0, 0, 0, 0], size);
  }
  return out as tf.Tensor4D;
}
