/**
 * SmoothGrad as an explain method (Captum's NoiseTunnel): a gradient method averaged over noisy
 * copies of the instance. `base` names the gradient method (the plain gradient, gradient x input, or
 * Integrated Gradients, whose steps / quadrature / baseline then apply); `form` mean, squared or
 * variance. Image models with input gradients.
 */
import { z } from 'zod';
import { IG_RULES } from '../../explainers/defaults.js';
import { smoothGrad, SMOOTHGRAD_DEFAULTS, type SmoothGradOptions } from '../../explainers/image/index.js';
import { SMOOTHGRAD_MAX_SAMPLES } from '../../explainers/image/smoothGrad.js';
import { hashRows } from '../cache.js';
import { ServiceError } from '../errors.js';
import { layoutOf, toRows } from '../instances.js';
import { deadlineMsSchema, rowsOf, seedSchema, type Limits } from '../schemas/common.js';
import { requirement } from './inputs.js';
import { IG_DEFAULT_MAX_STEPS } from './integratedGradients.js';
import type { ExplainMethodSpec, TaskOptions } from './types.js';

export const SMOOTHGRAD_BASES = ['gradient', 'input-x-gradient', 'integrated-gradients'] as const;
export const SMOOTHGRAD_FORMS = ['mean', 'squared', 'variance'] as const;

export const smoothGradParameters = (limits: Limits) => {
  const maxSamples = Math.min(limits.maxSamples, SMOOTHGRAD_MAX_SAMPLES);
  return z.strictObject({
    base: z
      .enum(SMOOTHGRAD_BASES)
      .default(SMOOTHGRAD_DEFAULTS.base)
      .meta({ description: 'The gradient method averaged over noise' }),
    form: z
      .enum(SMOOTHGRAD_FORMS)
      .default(SMOOTHGRAD_DEFAULTS.form)
      .meta({ description: '"mean" (SmoothGrad), "squared" (SmoothGrad²), "variance" (VarGrad)' }),
    samples: z
      .number()
      .int()
      .min(1)
      .max(maxSamples, `samples may be at most ${maxSamples}`)
      .default(SMOOTHGRAD_DEFAULTS.samples)
      .meta({ description: 'Noisy copies per instance' }),
    noise: z
      .number()
      .min(0)
      .max(10)
      .default(SMOOTHGRAD_DEFAULTS.noise)
      .meta({ description: 'Noise standard deviation as a share of (max - min) of the instance; 0 gives the base method itself' }),
    seed: seedSchema.default(SMOOTHGRAD_DEFAULTS.seed),
    steps: z
      .union([z.literal('auto'), z.number().int().min(1).max(limits.maxSteps, `steps may be at most ${limits.maxSteps}`)])
      .optional()
      .meta({ description: 'base "integrated-gradients" only: path points per copy (default "auto")' }),
    method: z.enum(IG_RULES).optional().meta({ description: 'base "integrated-gradients" only: the quadrature' }),
    baseline: z
      .union([z.literal('zeros'), z.literal('mean'), rowsOf(1000, 'baseline')])
      .optional()
      .meta({ description: 'base "integrated-gradients" only: "zeros", "mean" of the background, or rows; default as integrated-gradients (mean with a background)' }),
    deadlineMs: deadlineMsSchema(limits).optional(),
  });
};

type Options = TaskOptions<Omit<SmoothGradOptions, 'outputs' | 'deadline'>>;

export const smoothGradMethod: ExplainMethodSpec<'smoothgrad', ReturnType<typeof smoothGradParameters>, Options> = {
  name: 'smoothgrad',
  summary: 'SmoothGrad (NoiseTunnel): a gradient method averaged over noisy copies of the instance, with standard errors',
  parameters: smoothGradParameters,
  // Image models only: the noise is scaled by the instance's value range, which means nothing across
  // tabular features in different units (an income and a ratio).
  supports: (m) => requirement(m, { inputs: ['image'], gradients: true }),
  plan(m, p) {
    const igOnly = (['steps', 'method', 'baseline'] as const).filter((k) => p[k] !== undefined);
    if (p.base !== 'integrated-gradients' && igOnly.length) {
      throw new ServiceError('BAD_PARAMETER', `parameters.${igOnly[0]} applies only with base "integrated-gradients" (base is "${p.base}")`);
    }
    const common = { base: p.base, form: p.form, samples: p.samples, noise: p.noise, seed: p.seed };
    if (p.base !== 'integrated-gradients') return { context: common, display: common, deadlineMs: p.deadlineMs, options: common };
    const spec = p.baseline ?? (m.background ? 'mean' : 'zeros');
    if (spec === 'mean' && !m.background) {
      throw new ServiceError('NO_BACKGROUND', `baseline "mean" needs a background set and model "${m.name}" has none; pass baseline rows or "zeros"`);
    }
    const baseline = typeof spec === 'string' ? spec : toRows(spec, layoutOf(m), 'parameters.baseline');
    const ig = { ...(p.steps !== undefined ? { steps: p.steps } : {}), ...(p.method ? { method: p.method } : {}) };
    const baselineKey = typeof baseline === 'string' ? (baseline === 'mean' ? `mean:${hashRows(m.background!)}` : baseline) : hashRows(baseline);
    return {
      context: { ...common, ...ig, baseline: baselineKey },
      display: { ...common, ...ig, baseline: typeof baseline === 'string' ? baseline : `${baseline.n} rows` },
      deadlineMs: p.deadlineMs,
      options: { ...common, integratedGradients: { ...ig, baseline, ...(baseline === 'mean' ? { background: m.background } : {}) } },
    };
  },
  explain: (model, rows, options) => smoothGrad(model, rows, options),
  // Noisy copies x (one gradient row per output, or IG's baselines x path points x passes and its
  // predictions of the copy and the baselines), plus one prediction of the instance and of each copy.
  estimate(m, options, request) {
    const copies = options.noise === 0 ? 1 : (options.samples ?? SMOOTHGRAD_DEFAULTS.samples);
    const ig = options.base === 'integrated-gradients' ? (options.integratedGradients ?? {}) : undefined;
    const baselines = ig && typeof ig.baseline === 'object' ? ig.baseline.n : 1;
    const points = ig ? (typeof ig.steps === 'number' ? ig.steps : IG_DEFAULT_MAX_STEPS) : 1;
    const passes = ig && m.model.logitJacobian ? 1 : request.outputs;
    const perCopy = baselines * points * passes + (ig ? baselines + 1 : 0);
    return {
      evaluations: request.instances * (copies * perCopy + copies + 1),
      terms: `${request.instances} instance(s) x ${copies} noisy copies x ${ig ? `${baselines} baseline(s) x ${points} path points x ` : ''}${passes} gradient pass(es)`,
    };
  },
  chunkSize: 8,
  queryKeys: ['base', 'form', 'samples', 'noise', 'seed', 'steps', 'quadrature', 'baseline', 'deadlineMs'],
  fromQuery: (q) => ({
    base: q.string('base'),
    form: q.string('form'),
    samples: q.number('samples'),
    noise: q.number('noise'),
    seed: q.number('seed'),
    steps: q.numberOrAuto('steps'),
    method: q.string('quadrature'),
    baseline: q.string('baseline'),
    deadlineMs: q.number('deadlineMs'),
  }),
};
