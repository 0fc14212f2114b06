/**
 * Grad-CAM (Selvaraju et al. 2017; Captum's LayerGradCam): on a convolutional layer with activations
 * A [h', w', K], weight each channel by its mean gradient alpha_k = mean_{h',w'} d y / d A_k, take
 * relu(sum_k alpha_k A_k), and upsample the coarse map bilinearly to the input (half-pixel centres, as
 * tf.image.resizeBilinear). Each input value gets its pixel's map value divided by the channel count,
 * so summing over channels gives the map. The layer is chosen by name (metadata or request), default
 * the last layer with a spatial [h', w', K] output. Not additive: approximationError is 0 (nothing is
 * estimated); the coarse map is in diagnostics.
 */
import { ExplainerInputError, type CommonOptions, type Explanation, type InstanceExplanation, type Model, type ModelLayer, type Rows } from '../types.js';
import { checkInstances, imageShape, outputExplanation, resolveOutputs, row } from './common.js';
import { predictChunked, rowsPerCall } from '../rows.js';

export interface GradCamOptions extends CommonOptions {
  /** Layer name; default the last layer whose output is [h', w', K] with h', w' > 1. */
  layer?: string;
  /** Keep only positive evidence (Grad-CAM's relu). Default true. */
  relu?: boolean;
}

/** The last layer with a spatial output: Grad-CAM's usual choice (the deepest conv feature map). */
export function defaultGradCamLayer(layers: readonly ModelLayer[]): string | undefined {
  for (let i = layers.length - 1; i >= 0; i--) {
    const s = layers[i].shape;
    if (s.length === 3 && s[0] > 1 && s[1] > 1) return layers[i].name;
  }
  return undefined;
}

export async function gradCam(model: Model, instances: Rows, options: GradCamOptions): Promise<Explanation> {
  const started = performance.now();
  const { h, w, c } = imageShape(model, options.space, 'grad-cam');
  const d = model.nFeatures;
  checkInstances(instances, d);
  const outputs = resolveOutputs(model, options.outputs);
  if (!model.layerGradients || !model.layers || model.layers.length === 0)
    throw new ExplainerInputError('METHOD_NOT_SUPPORTED', 'grad-cam needs layer gradients, which this model does not provide (tfjs layers models do); use smoothgrad or occlusion');
  const layerName = options.layer ?? defaultGradCamLayer(model.layers);
  if (!layerName) throw new ExplainerInputError('BAD_LAYER', 'the model has no layer with a spatial [height, width, channels] output; name one with "layer"');
  const layer = model.layers.find((l) => l.name === layerName);
  if (!layer)
    throw new ExplainerInputError('UNKNOWN_LAYER', `the model has no layer "${layerName}"`, { layers: model.layers.map((l) => l.name) });
  if (layer.shape.length !== 3)
    throw new ExplainerInputError('BAD_LAYER', `layer "${layerName}" outputs shape [${layer.shape}], not [height, width, channels]: grad-cam needs a convolutional feature map`);
  const [lh, lw, K] = layer.shape;
  const fx = await predictChunked(model, instances, rowsPerCall(d), options.signal);
  const k = model.nOutputs;
  const maps: Float64Array[][] = Array.from({ length: instances.n }, () => []);
  for (const o of outputs) {
    options.signal?.throwIfAborted();
    const { activations, gradients } = await model.layerGradients(instances, layerName, o);
    const size = lh * lw * K;
    for (let i = 0; i < instances.n; i++) {
      const alpha = new Float64Array(K);
      for (let p = 0; p < lh * lw; p++) for (let ch = 0; ch < K; ch++) alpha[ch] += gradients[i * size + p * K + ch] / (lh * lw);
      const cam = new Float64Array(lh * lw);
      for (let p = 0; p < lh * lw; p++) {
        let s = 0;
        for (let ch = 0; ch < K; ch++) s += alpha[ch] * activations[i * size + p * K + ch];
        cam[p] = options.relu === false ? s : Math.max(0, s);
      }
      maps[i].push(cam);
    }
  }
  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < instances.n; i++) {
    const x = row(instances, i);
    const outs = outputs.map((o, oi) => {
      const up = resizeBilinear(maps[i][oi], lh, lw, h, w);
      const a = new Float64Array(d);
      for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) a[p * c + ch] = up[p] / c;
      return outputExplanation(options.space, o, x, a, { baseline: 0, instance: fx[i * k + o], error: 0 });
    });
    explanations.push({
      outputs: outs,
      converged: true,
      stopReason: 'exact',
      modelEvaluations: outputs.length + 1,
      computeMs: (performance.now() - started) / instances.n,
      diagnostics: { layer: layerName, mapShape: [lh, lw], maps: maps[i].map((m) => Array.from(m)) },
    });
  }
  return { method: 'grad-cam', explanations, inputShape: options.space.inputShape, diagnostics: { layer: layerName, relu: options.relu !== false } };
}

/** Bilinear resize of a [h0, w0] map to [h, w] with half-pixel centres (edges clamp). */
export function resizeBilinear(src: ArrayLike<number>, h0: number, w0: number, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(h0 - 1, Math.max(0, ((y + 0.5) * h0) / h - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h0 - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < w; x++) {
      const sx = Math.min(w0 - 1, Math.max(0, ((x + 0.5) * w0) / w - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(w0 - 1, x0 + 1);
      const fx = sx - x0;
      const top = src[y0 * w0 + x0] * (1 - fx) + src[y0 * w0 + x1] * fx;
      const bottom = src[y1 * w0 + x0] * (1 - fx) + src[y1 * w0 + x1] * fx;
      out[y * w + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}
