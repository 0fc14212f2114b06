/** Integrated Gradients as an explain method: parameters, planning against a model, the worker's call. */
import { z } from 'zod';
import { IG_CRITERIA, IG_DEFAULT_TOLERANCE, IG_RULES } from '../../explainers/defaults.js';
import { integratedGradients, type IntegratedGradientsOptions } from '../../explainers/integratedGradients.js';
import { hashRows } from '../cache.js';
import { ServiceError } from '../errors.js';
import { layoutOf, toRows } from '../instances.js';
import { deadlineMsSchema, rowsOf, type Limits } from '../schemas/common.js';
import type { ExplainMethodSpec, TaskOptions } from './types.js';

/** Integrated Gradients' default cap on path points per path in automatic mode. */
const IG_DEFAULT_MAX_STEPS = 1024;

export const integratedGradientsParameters = (limits: Limits) =>
  z.strictObject({
    steps: z
      .union([z.literal('auto'), z.number().int().min(1).max(limits.maxSteps, `steps may be at most ${limits.maxSteps}`)])
      .default('auto')
      .meta({
        description:
          '"auto" refines until every attribution\'s estimated error <= tolerance * the largest |attribution| (exact for piecewise-linear networks)',
      }),
    // Absent: the explainer picks exact integration for piecewise-linear networks, else Gauss-Legendre.
    method: z.enum(IG_RULES).optional(),
    baseline: z
      .union([z.literal('zeros'), z.literal('mean'), rowsOf(1000, 'baseline')])
      .optional()
      .meta({ description: '"zeros", "mean" of the background, or rows (averaged over); default mean when the model has a background' }),
    tolerance: z
      .number()
      .min(0)
      .max(1)
      .default(IG_DEFAULT_TOLERANCE)
      .meta({ description: 'relative error bound per attribution; 0 spends maxSteps' }),
    criterion: z.enum(IG_CRITERIA).default('attributions').meta({
      description: '"attributions" bounds every attribution\'s error; "completeness" only the sum (cheaper, blind to errors that cancel)',
    }),
    maxSteps: z.number().int().min(1).max(limits.maxSteps, `maxSteps may be at most ${limits.maxSteps}`).optional(),
    deadlineMs: deadlineMsSchema(limits).optional(),
  });

type Options = TaskOptions<Omit<IntegratedGradientsOptions, 'outputs' | 'deadline'>>;

export const integratedGradientsMethod: ExplainMethodSpec<
  'integrated-gradients',
  ReturnType<typeof integratedGradientsParameters>,
  Options
> = {
  name: 'integrated-gradients',
  summary: 'Integrated Gradients: the gradient path integral from a baseline, with its completeness delta',
  parameters: integratedGradientsParameters,
  plan(m, p) {
    // Zeros are meaningless in raw tabular units (age 0, income 0): default to the background mean when there is one.
    const baselineSpec = p.baseline ?? (m.background ? 'mean' : 'zeros');
    if (baselineSpec === 'mean' && !m.background) {
      throw new ServiceError(
        'NO_BACKGROUND',
        `baseline "mean" needs a background set and model "${m.name}" has none; pass baseline rows or "zeros"`,
      );
    }
    const baseline = typeof baselineSpec === 'string' ? baselineSpec : toRows(baselineSpec, layoutOf(m), 'parameters.baseline');
    const common = {
      steps: p.steps,
      ...(p.method ? { method: p.method } : {}),
      tolerance: p.tolerance,
      criterion: p.criterion,
      ...(p.maxSteps !== undefined ? { maxSteps: p.maxSteps } : {}),
    };
    return {
      context: {
        ...common,
        baseline: typeof baseline === 'string' ? (baseline === 'mean' ? `mean:${hashRows(m.background!)}` : baseline) : hashRows(baseline),
      },
      display: { ...common, baseline: typeof baseline === 'string' ? baseline : `${baseline.n} rows` },
      deadlineMs: p.deadlineMs,
      options: { ...common, baseline, ...(baseline === 'mean' ? { background: m.background } : {}) },
    };
  },
  explain: (model, rows, options) => integratedGradients(model, rows, options),
  // Paths (instance x baseline row) x path points at most; one gradient pass per output unless the
  // model gives every output's gradient at once (logitJacobian).
  estimate(m, options, request) {
    const baselines = typeof options.baseline === 'object' ? options.baseline.n : 1;
    const points = typeof options.steps === 'number' ? options.steps : (options.maxSteps ?? IG_DEFAULT_MAX_STEPS);
    const passes = m.model.logitJacobian ? 1 : request.outputs;
    return {
      evaluations: request.instances * baselines * points * passes,
      terms: `${request.instances} instance(s) x ${baselines} baseline(s) x ${points} path points x ${passes} gradient pass(es)`,
    };
  },
  chunkSize: 256,
  queryKeys: ['steps', 'quadrature', 'baseline', 'tolerance', 'criterion', 'maxSteps', 'deadlineMs'],
  fromQuery: (q) => ({
    steps: q.numberOrAuto('steps'),
    method: q.string('quadrature'),
    baseline: q.string('baseline'),
    tolerance: q.number('tolerance'),
    criterion: q.string('criterion'),
    maxSteps: q.number('maxSteps'),
    deadlineMs: q.number('deadlineMs'),
  }),
};
