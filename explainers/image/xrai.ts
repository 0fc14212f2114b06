/**
 * XRAI-style region ranking (Kapishnikov et al. 2019; Vertex AI's image explanations): Integrated
 * Gradients from a black and a white baseline (averaged), then a pool of regions from segmentations
 * at several scales (SLIC here, dilated by `dilation` pixels), and a greedy ranking: repeatedly add the
 * region whose not-yet-covered pixels carry the highest attribution per pixel. Each pixel's value is
 * the gain of the region that first covered it, so the map ranks regions; it is not additive.
 * Quality: the completeness delta of the underlying IG (approximationError), and the region order in
 * diagnostics (gain and cumulative area share per step).
 */
import { integratedGradients, type IntegratedGradientsOptions } from '../integratedGradients.js';
import { ExplainerInputError, type CommonOptions, type Explanation, type InstanceExplanation, type Model, type Rows } from '../types.js';
import { checkInstances, imageShape, outputExplanation, pixelSums, resolveOutputs, row } from './common.js';
import { slic } from './segmentation.js';

export interface XraiOptions extends CommonOptions {
  /** IG options; default baselines: an all-`black` and an all-`white` image (0 and 1). */
  integratedGradients?: Omit<IntegratedGradientsOptions, 'space' | 'outputs' | 'signal' | 'deadline'>;
  black?: number;
  white?: number;
  /** SLIC segment counts of the region pool. Default [8, 16, 32, 64] (capped at the pixel count). */
  scales?: number[];
  /** Pixels each region grows by (XRAI dilates its segments). Default 1. */
  dilation?: number;
}

export async function xrai(model: Model, instances: Rows, options: XraiOptions): Promise<Explanation> {
  const shape = imageShape(model, options.space, 'xrai');
  const { h, w, c } = shape;
  const d = model.nFeatures;
  checkInstances(instances, d);
  const outputs = resolveOutputs(model, options.outputs);
  const scales = options.scales ?? [8, 16, 32, 64];
  if (!Array.isArray(scales) || scales.length === 0 || !scales.every((s) => Number.isInteger(s) && s >= 1))
    throw new ExplainerInputError('BAD_PARAMETER', 'scales must list positive integer segment counts');
  const dilation = options.dilation ?? 1;
  if (!Number.isInteger(dilation) || dilation < 0 || dilation > 16) throw new ExplainerInputError('BAD_PARAMETER', 'dilation must be an integer from 0 to 16');
  const igOpts = options.integratedGradients ?? {};
  const baseline =
    igOpts.baseline ??
    ({ data: Float32Array.from({ length: 2 * d }, (_, k) => (k < d ? (options.black ?? 0) : (options.white ?? 1))), n: 2, d } satisfies Rows);
  const ig = await integratedGradients(model, instances, { ...igOpts, baseline, space: options.space, outputs, signal: options.signal, deadline: options.deadline });

  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < instances.n; i++) {
    const started = performance.now();
    const x = row(instances, i);
    const regions: Uint8Array[] = [];
    for (const k of scales) {
      const seg = slic(x, shape, { segments: Math.min(k, h * w) });
      for (let s = 0; s < seg.count; s++) {
        const m = new Uint8Array(h * w);
        seg.labels.forEach((l, p) => (m[p] = l === s ? 1 : 0));
        regions.push(dilate(m, h, w, dilation));
      }
    }
    const e = ig.explanations[i];
    const orders: { gain: number; area: number }[][] = [];
    const outs = outputs.map((o, oi) => {
      const attr = pixelSums(e.outputs[oi].attributions.map((a) => a.attribution), shape);
      const { map, order } = rankRegions(attr, regions);
      orders.push(order);
      const a = new Float64Array(d);
      for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) a[p * c + ch] = map[p] / c;
      const out = e.outputs[oi];
      return outputExplanation(options.space, o, x, a, { baseline: out.baselineOutputValue, instance: out.instanceOutputValue, error: out.approximationError });
    });
    explanations.push({
      outputs: outs,
      converged: e.converged,
      stopReason: e.stopReason ?? (e.converged ? 'tolerance' : 'budget'),
      modelEvaluations: e.modelEvaluations,
      computeMs: e.computeMs + (performance.now() - started),
      diagnostics: { regions: regions.length, order: orders, integratedGradients: e.diagnostics },
    });
  }
  return { method: 'xrai', explanations, inputShape: options.space.inputShape, diagnostics: { scales, dilation } };
}

/** Greedy XRAI ranking: per step the region with the highest mean attribution over its new pixels. */
export function rankRegions(attr: Float64Array, regions: Uint8Array[]): { map: Float64Array; order: { gain: number; area: number }[] } {
  const P = attr.length;
  const covered = new Uint8Array(P);
  const map = new Float64Array(P);
  const alive = regions.map(() => true);
  const order: { gain: number; area: number }[] = [];
  let coveredCount = 0;
  while (coveredCount < P) {
    let best = -1;
    let bestGain = -Infinity;
    for (let r = 0; r < regions.length; r++) {
      if (!alive[r]) continue;
      let sum = 0;
      let cnt = 0;
      const m = regions[r];
      for (let p = 0; p < P; p++)
        if (m[p] && !covered[p]) {
          sum += attr[p];
          cnt++;
        }
      if (cnt === 0) {
        alive[r] = false;
        continue;
      }
      const gain = sum / cnt;
      if (gain > bestGain) [best, bestGain] = [r, gain];
    }
    if (best < 0) {
      // Pixels no region covers (none with a full segmentation): rank them last by their own value.
      for (let p = 0; p < P; p++) if (!covered[p]) map[p] = attr[p];
      break;
    }
    alive[best] = false;
    for (let p = 0; p < P; p++)
      if (regions[best][p] && !covered[p]) {
        covered[p] = 1;
        map[p] = bestGain;
        coveredCount++;
      }
    order.push({ gain: bestGain, area: coveredCount / P });
  }
  return { map, order };
}

function dilate(m: Uint8Array, h: number, w: number, r: number): Uint8Array {
  if (r === 0) return m;
  const out = new Uint8Array(m.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (!m[y * w + x]) continue;
      for (let dy = -r; dy <= r; dy++)
        for (let dx = -r; dx <= r; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w) out[yy * w + xx] = 1;
        }
    }
  return out;
}
