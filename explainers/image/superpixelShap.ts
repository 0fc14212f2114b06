/**
 * Shapley values over superpixels, as shap's image explainers: segment the image (SLIC), let each
 * segment be a player, and mask absent segments (blur, mean, inpaint or a constant; masking.ts).
 * Two games solvers over the same masked model:
 * - 'partition' (method 'partition-shap'): Owen values over a spatial hierarchy of the segments
 *   (partition.ts); exact efficiency at any budget, exact Owen values when fully expanded.
 * - 'kernel' (method 'kernel-shap'): our Kernel SHAP (kernelShap.ts, unchanged) on a model whose M
 *   inputs are segment indicators, explaining the all-present row against the all-absent one, which
 *   is exactly the masked game; it brings its standard errors and early stopping.
 * A segment's value is spread equally over its pixels and channels (the sum over the image equals
 * f(x) - f(all masked)); the segment values and labels are in diagnostics for charts.
 */
import { kernelShap } from '../kernelShap.js';
import { owenValues, spatialTree } from '../partition.js';
import { ExplainerInputError, type CommonOptions, type Explanation, type InstanceExplanation, type Model, type Rows, type StopReason } from '../types.js';
import { checkInstances, checkInteger, imageShape, outputExplanation, resolveOutputs, row, type ImageShape } from './common.js';
import { rowsPerCall } from '../rows.js';
import { checkMasking, fixedFill, maskImage, type Masking } from './masking.js';
import { segmentStats, slic, type Segmentation } from './segmentation.js';

export interface SuperpixelShapOptions extends CommonOptions {
  /** 'partition' (default) or 'kernel'. */
  algorithm?: 'partition' | 'kernel';
  /** Approximate number of superpixels (SLIC). Default 50. */
  segments?: number;
  /** SLIC compactness. Default 0.1. */
  compactness?: number;
  /** Default 'blur'. */
  masking?: Masking;
  /** Partition: coalitions evaluated per instance (default 500). Kernel: nSamples (default 'auto'). */
  maxEvaluations?: number;
  nSamples?: number | 'auto';
  seed?: number;
  /** Kernel SHAP's stopping tolerance. Default 0.01. */
  tolerance?: number;
  /** Precomputed segmentation per instance (labels over h x w), instead of SLIC. */
  segmentations?: Segmentation[];
  maxRowsPerCall?: number;
}

export const SUPERPIXEL_DEFAULTS = { segments: 50, maxEvaluations: 500, masking: 'blur' as Masking };

export async function superpixelShap(model: Model, instances: Rows, options: SuperpixelShapOptions): Promise<Explanation> {
  const shape = imageShape(model, options.space, 'partition-shap');
  const d = model.nFeatures;
  checkInstances(instances, d);
  const outputs = resolveOutputs(model, options.outputs);
  const algorithm = options.algorithm ?? 'partition';
  if (algorithm !== 'partition' && algorithm !== 'kernel')
    throw new ExplainerInputError('BAD_PARAMETER', `algorithm must be 'partition' or 'kernel', got ${String(algorithm)}`);
  const masking = checkMasking(options.masking);
  const maxEvaluations = checkInteger('maxEvaluations', options.maxEvaluations ?? SUPERPIXEL_DEFAULTS.maxEvaluations, 4, 1_000_000);
  if (options.segmentations && options.segmentations.length !== instances.n)
    throw new ExplainerInputError('BAD_PARAMETER', `segmentations must hold one segmentation per instance (${instances.n})`);
  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < instances.n; i++) {
    const started = performance.now();
    const x = row(instances, i);
    const seg = options.segmentations?.[i] ?? slic(x, shape, { segments: options.segments ?? SUPERPIXEL_DEFAULTS.segments, compactness: options.compactness });
    if (seg.labels.length !== shape.h * shape.w) throw new ExplainerInputError('BAD_PARAMETER', `segmentation ${i} does not cover the ${shape.h} x ${shape.w} image`);
    const masked = maskedModel(model, x, shape, seg, masking, options.maxRowsPerCall);
    const M = seg.count;
    let phi: Float64Array[];
    let stderr: Float64Array[] | undefined;
    let baseline: number[];
    let full: number[];
    let evaluations: number;
    let stopReason: StopReason;
    if (algorithm === 'partition') {
      const stats = segmentStats(seg, shape.w);
      const tree = spatialTree(Array.from({ length: M }, (_, s) => s), stats.cy, stats.cx);
      const r = await owenValues(M, tree, outputs.length, async (coalitions) => {
        const data = new Float32Array(coalitions.length * M);
        coalitions.forEach((z, t) => data.set(z, t * M));
        const y = await masked.predict({ data, n: coalitions.length, d: M });
        return coalitions.map((_, t) => Float64Array.from(outputs, (o) => y[t * model.nOutputs + o]));
      }, { maxEvaluations, signal: options.signal, deadline: options.deadline });
      phi = r.phi;
      baseline = Array.from(r.empty);
      full = Array.from(r.full);
      evaluations = r.evaluations;
      stopReason = r.deadlineReached ? 'deadline' : r.exact ? 'exact' : 'budget';
    } else {
      const names = Array.from({ length: M }, (_, s) => `segment_${s}`);
      const ks = await kernelShap(masked, { data: new Float32Array(M).fill(1), n: 1, d: M }, {
        space: { featureNames: names, outputNames: options.space.outputNames },
        background: { data: new Float32Array(M), n: 1, d: M },
        outputs,
        nSamples: options.nSamples,
        seed: options.seed,
        tolerance: options.tolerance,
        deadline: options.deadline,
        signal: options.signal,
      });
      const e = ks.explanations[0];
      phi = e.outputs.map((out) => Float64Array.from(out.attributions, (a) => a.attribution));
      stderr = e.outputs.map((out) => Float64Array.from(out.attributions, (a) => a.stderr ?? 0));
      baseline = e.outputs.map((out) => out.baselineOutputValue);
      full = e.outputs.map((out) => out.instanceOutputValue);
      evaluations = e.modelEvaluations;
      stopReason = e.stopReason ?? (e.converged ? 'tolerance' : 'budget');
    }
    const sizes = segmentStats(seg, shape.w).size;
    const outs = outputs.map((o, oi) => {
      const a = new Float64Array(d);
      const se = stderr ? new Float64Array(d) : undefined;
      for (let p = 0; p < shape.h * shape.w; p++) {
        const s = seg.labels[p];
        const share = 1 / (sizes[s] * shape.c);
        for (let ch = 0; ch < shape.c; ch++) {
          a[p * shape.c + ch] = phi[oi][s] * share;
          if (se) se[p * shape.c + ch] = stderr![oi][s] * share;
        }
      }
      let sum = 0;
      for (const v of phi[oi]) sum += v;
      const maxSe = stderr ? stderr[oi].reduce((m, v) => Math.max(m, v), 0) : 0;
      // Partition: efficiency is exact, the error is float rounding; Kernel SHAP: its largest stderr.
      const error = stderr ? maxSe : sum - (full[oi] - baseline[oi]);
      return outputExplanation(options.space, o, x, a, { baseline: baseline[oi], instance: full[oi], error }, se);
    });
    explanations.push({
      outputs: outs,
      converged: stopReason !== 'deadline' && (algorithm === 'partition' || stopReason !== 'budget'),
      stopReason,
      modelEvaluations: evaluations,
      computeMs: performance.now() - started,
      diagnostics: {
        segments: { count: M, labels: Array.from(seg.labels) },
        segmentValues: phi.map((p) => Array.from(p)),
        ...(stderr ? { segmentStderr: stderr.map((p) => Array.from(p)) } : {}),
      },
    });
  }
  return {
    method: algorithm === 'partition' ? 'partition-shap' : 'kernel-shap',
    explanations,
    inputShape: options.space.inputShape,
    diagnostics: { superpixels: true, algorithm, masking, maxEvaluations: algorithm === 'partition' ? maxEvaluations : undefined },
  };
}

/** A model over segment indicators (z_s >= 0.5: segment s visible) that masks the image and calls the real model. */
export function maskedModel(model: Model, x: Float32Array, shape: ImageShape, seg: Segmentation, masking: Masking, maxRowsPerCall?: number): Model {
  const d = x.length;
  const fill = fixedFill(x, shape, masking);
  const chunk = rowsPerCall(d, maxRowsPerCall, 2 ** 22);
  return {
    nFeatures: seg.count,
    nOutputs: model.nOutputs,
    async predict(z: Rows) {
      const out = new Float32Array(z.n * model.nOutputs);
      for (let s = 0; s < z.n; s += chunk) {
        const e = Math.min(z.n, s + chunk);
        const images = new Float32Array((e - s) * d);
        for (let t = s; t < e; t++) maskImage(x, shape, seg.labels, z.data.subarray(t * z.d, (t + 1) * z.d), fill, images.subarray((t - s) * d, (t - s + 1) * d));
        out.set(await model.predict({ data: images, n: e - s, d }), s * model.nOutputs);
      }
      return out;
    },
  };
}
