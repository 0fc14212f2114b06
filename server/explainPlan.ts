/**
 * An explain request's parameters, validated and resolved against a model once: the explainer
 * options (without the per-request deadline and outputs), the canonical context that cache keys and
 * ids hash, and the parameters as echoed back. Used by POST /explain, the GET chart URLs and jobs.
 */
import type { IntegratedGradientsOptions } from '../explainers/integratedGradients.js';
import type { KernelShapOptions } from '../explainers/kernelShap.js';
import type { ExplainMethod, Rows } from '../explainers/types.js';
import { ExplanationCache } from './cache.js';
import { ApiError } from './errors.js';
import { toRows } from './instances.js';
import type { ServedModel } from './registry.js';
import { parseWith, type Schemas } from './schemas.js';

type Base<T> = Omit<T, 'space' | 'signal' | 'deadline' | 'outputs'>;

export type ExplainPlan = {
  /** What the answer depends on, hashable: rows are replaced by their hash. */
  context: Record<string, unknown>;
  /** The parameters as a person reads them back (rows summarised as "N rows"). */
  display: Record<string, unknown>;
  deadlineMs?: number;
} & (
  | { method: 'kernel-shap'; options: Base<KernelShapOptions> }
  | { method: 'integrated-gradients'; options: Base<IntegratedGradientsOptions> }
);

const rowHash = (rows: Rows) => ExplanationCache.key('rows', rows.data);

export function planExplanation(schemas: Schemas, m: ServedModel, method: ExplainMethod, raw: unknown): ExplainPlan {
  const layout = { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space };
  if (method === 'kernel-shap') {
    const p = parseWith(schemas.kernelShap, raw, 'parameters', 'BAD_PARAMETER');
    const background = p.background ? toRows(p.background, layout, 'parameters.background') : m.background;
    if (!background) {
      throw new ApiError(
        'NO_BACKGROUND',
        `model "${m.name}" has no background set in its metadata; pass parameters.background (rows like the instances) for kernel-shap`,
      );
    }
    const link = p.link ?? m.metadata?.link ?? 'identity';
    const common = { nSamples: p.nSamples, seed: p.seed, link, tolerance: p.tolerance, maxBackground: p.maxBackground };
    return {
      method,
      context: { ...common, background: rowHash(background) },
      display: { ...common, ...(p.background ? { background: `${background.n} rows` } : {}) },
      deadlineMs: p.deadlineMs,
      options: { ...common, background },
    };
  }
  const p = parseWith(schemas.integratedGradients, raw, 'parameters', 'BAD_PARAMETER');
  // Zeros are meaningless in raw tabular units (age 0, income 0): default to the background mean when there is one.
  const baselineSpec = p.baseline ?? (m.background ? 'mean' : 'zeros');
  if (baselineSpec === 'mean' && !m.background) {
    throw new ApiError(
      'NO_BACKGROUND',
      `baseline "mean" needs a background set and model "${m.name}" has none; pass baseline rows or "zeros"`,
    );
  }
  const baseline = typeof baselineSpec === 'string' ? baselineSpec : toRows(baselineSpec, layout, 'parameters.baseline');
  const common = {
    steps: p.steps,
    ...(p.method ? { method: p.method } : {}),
    tolerance: p.tolerance,
    ...(p.maxSteps !== undefined ? { maxSteps: p.maxSteps } : {}),
  };
  return {
    method,
    context: {
      ...common,
      baseline: typeof baseline === 'string' ? (baseline === 'mean' ? `mean:${rowHash(m.background!)}` : baseline) : rowHash(baseline),
    },
    display: { ...common, baseline: typeof baseline === 'string' ? baseline : `${baseline.n} rows` },
    deadlineMs: p.deadlineMs,
    options: { ...common, baseline, ...(baseline === 'mean' ? { background: m.background } : {}) },
  };
}
