/**
 * Integrated Gradients as an explain method: parameters, planning against a model, the worker's call.
 * Tabular and image models: the path integral over the input. Text models: over the embedding layer's
 * output (token ids have no gradient), from the all-pad sequence; a token's attribution sums over its
 * embedding dimensions.
 */
import { z } from 'zod';
import { IG_CRITERIA, IG_DEFAULT_TOLERANCE, IG_RULES } from '../../explainers/defaults.js';
import { integratedGradients, type IntegratedGradientsOptions } from '../../explainers/integratedGradients.js';
import { tokenIntegratedGradients } from '../../explainers/text/index.js';
import type { ServedModel } from '../../models/served.js';
import { hashRows } from '../cache.js';
import { ServiceError } from '../errors.js';
import { layoutOf, toRows } from '../instances.js';
import { deadlineMsSchema, rowsOf, type Limits } from '../schemas/common.js';
import { inputKind, onlyFor, requirement, textTokens } from './inputs.js';
import type { ExplainMethodSpec, TaskOptions } from './types.js';

/** Integrated Gradients' default cap on path points per path in automatic mode. */
export const IG_DEFAULT_MAX_STEPS = 1024;

/** Gauss-Legendre points along a text model's embedding path when `steps` is "auto". */
export const TEXT_IG_STEPS = 64;

/** A layer of the model by name (UNKNOWN_LAYER naming the layers there are), or the default. */
export function checkLayer(m: ServedModel, layer: string | undefined, what: string): string | undefined {
  if (layer === undefined) return undefined;
  const layers = m.model.layers ?? [];
  if (!layers.some((l) => l.name === layer)) {
    const names = layers.map((l) => l.name);
    throw new ServiceError(
      'UNKNOWN_LAYER',
      `${what}: model "${m.name}" has no layer "${layer}"; its layers are ${names.slice(0, 30).join(', ')}${names.length > 30 ? ', ...' : ''}`,
      { layers: names },
    );
  }
  return layer;
}

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
    layer: z
      .string()
      .min(1)
      .optional()
      .meta({ description: `Text models: the layer to integrate in; default the first Embedding layer. "auto" steps there are ${TEXT_IG_STEPS} Gauss-Legendre points` }),
  });

/** Tabular and image (no `input`), or text (in the embedding space). */
type Options =
  | (TaskOptions<Omit<IntegratedGradientsOptions, 'outputs' | 'deadline'>> & { input?: undefined })
  | { input: 'text'; layer: string; steps: number };

export const integratedGradientsMethod: ExplainMethodSpec<
  'integrated-gradients',
  ReturnType<typeof integratedGradientsParameters>,
  Options
> = {
  name: 'integrated-gradients',
  summary: 'Integrated Gradients: the gradient path integral from a baseline, with its completeness delta',
  parameters: integratedGradientsParameters,
  supports: (m) =>
    inputKind(m) === 'text'
      ? requirement(m, { inputs: ['text'], layers: true })
      : requirement(m, { inputs: ['tabular', 'image'], gradients: true }),
  plan(m, p) {
    const kind = inputKind(m);
    onlyFor(kind, ['text'], p, ['layer']);
    if (kind === 'text') {
      onlyFor(kind, ['tabular', 'image'], p, ['baseline', 'method', 'maxSteps']);
      const layer = checkLayer(m, p.layer, 'parameters.layer') ?? m.model.layers?.find((l) => l.className === 'Embedding')?.name;
      if (!layer) {
        throw new ServiceError('BAD_LAYER', `model "${m.name}" has no Embedding layer to integrate in; name the layer with parameters.layer`);
      }
      const text = { layer, steps: p.steps === 'auto' ? TEXT_IG_STEPS : p.steps };
      return { context: { ...text, baseline: 'pad' }, display: { ...text, baseline: 'pad' }, deadlineMs: p.deadlineMs, options: { input: 'text', ...text } };
    }
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
  explain(model, rows, options) {
    if (options.input === 'text') {
      const { space, signal, outputs, deadline, layer, steps, tokenizer } = options;
      return tokenIntegratedGradients(model, rows, { space, signal, outputs, deadline, layer, steps, tokens: textTokens(tokenizer, rows), baselineId: tokenizer!.padId });
    }
    return integratedGradients(model, rows, options);
  },
  // Paths (instance x baseline row) x path points at most; one gradient pass per output unless the
  // model gives every output's gradient at once (logitJacobian); plus the instance and its baseline
  // rows predicted. Text: steps layer-gradient rows per instance and output, plus the instance and
  // its all-pad baseline.
  estimate(m, options, request) {
    if (options.input === 'text') {
      return {
        evaluations: request.instances * (options.steps * request.outputs + 2),
        terms: `${request.instances} instance(s) x ${options.steps} path points x ${request.outputs} output(s)`,
      };
    }
    const baselines = typeof options.baseline === 'object' ? options.baseline.n : 1;
    const points = typeof options.steps === 'number' ? options.steps : (options.maxSteps ?? IG_DEFAULT_MAX_STEPS);
    const passes = m.model.logitJacobian ? 1 : request.outputs;
    return {
      evaluations: request.instances * (baselines * points * passes + baselines + 1),
      terms: `${request.instances} instance(s) x ${baselines} baseline(s) x ${points} path points x ${passes} gradient pass(es)`,
    };
  },
  chunkSize: 256,
  queryKeys: ['steps', 'quadrature', 'baseline', 'tolerance', 'criterion', 'maxSteps', 'deadlineMs', 'layer'],
  fromQuery: (q) => ({
    steps: q.numberOrAuto('steps'),
    method: q.string('quadrature'),
    baseline: q.string('baseline'),
    tolerance: q.number('tolerance'),
    criterion: q.string('criterion'),
    maxSteps: q.number('maxSteps'),
    deadlineMs: q.number('deadlineMs'),
    layer: q.string('layer'),
  }),
};
