/**
 * XRAI as an explain method (Vertex AI's image explanations): Integrated Gradients from a black and a
 * white image, summed into regions of multi-scale superpixels, regions ranked greedily by attribution
 * per pixel. Each pixel's value is its region's gain (a ranking, not additive). Image models with
 * input gradients.
 */
import { z } from 'zod';
import { IG_RULES } from '../../explainers/defaults.js';
import { xrai, type XraiOptions } from '../../explainers/image/index.js';
import { ServiceError } from '../errors.js';
import { deadlineMsSchema, type Limits } from '../schemas/common.js';
import { requirement } from './inputs.js';
import { IG_DEFAULT_MAX_STEPS } from './integratedGradients.js';
import type { ExplainMethodSpec, TaskOptions } from './types.js';

export const xraiParameters = (limits: Limits) =>
  z.strictObject({
    steps: z
      .union([z.literal('auto'), z.number().int().min(1).max(limits.maxSteps, `steps may be at most ${limits.maxSteps}`)])
      .optional()
      .meta({ description: 'Integrated Gradients path points (default "auto")' }),
    method: z.enum(IG_RULES).optional().meta({ description: "Integrated Gradients' quadrature" }),
    black: z.number().optional().meta({ description: 'Value of the black baseline image; default 0' }),
    white: z.number().optional().meta({ description: 'Value of the white baseline image; default 1' }),
    scales: z
      .array(z.number().int().min(1).max(4096))
      .min(1)
      .max(8)
      .optional()
      .meta({ description: 'Superpixel counts of the region pool (SLIC); default [8, 16, 32, 64]' }),
    dilation: z.number().int().min(0).max(16).optional().meta({ description: 'Pixels each region grows by; default 1' }),
    deadlineMs: deadlineMsSchema(limits).optional(),
  });

type Options = TaskOptions<Omit<XraiOptions, 'outputs' | 'deadline'>>;

export const xraiMethod: ExplainMethodSpec<'xrai', ReturnType<typeof xraiParameters>, Options> = {
  name: 'xrai',
  summary: 'XRAI: regions of multi-scale superpixels ranked by Integrated Gradients (black and white baselines)',
  parameters: xraiParameters,
  supports: (m) => requirement(m, { inputs: ['image'], gradients: true }),
  plan(m, p) {
    const pixels = m.inputShape[0] * m.inputShape[1];
    const big = p.scales?.find((s) => s > pixels);
    if (big !== undefined) throw new ServiceError('BAD_PARAMETER', `parameters.scales: ${big} superpixels is more than the ${pixels} pixels of the image`);
    const ig = { ...(p.steps !== undefined ? { steps: p.steps } : {}), ...(p.method ? { method: p.method } : {}) };
    const rest = {
      ...(p.black !== undefined ? { black: p.black } : {}),
      ...(p.white !== undefined ? { white: p.white } : {}),
      ...(p.scales ? { scales: p.scales } : {}),
      ...(p.dilation !== undefined ? { dilation: p.dilation } : {}),
    };
    return {
      context: { ...ig, ...rest },
      display: { ...ig, ...rest },
      deadlineMs: p.deadlineMs,
      options: { ...rest, ...(Object.keys(ig).length ? { integratedGradients: ig } : {}) },
    };
  },
  explain: (model, rows, options) => xrai(model, rows, options),
  // Integrated Gradients from two baselines (black, white): path points x gradient passes each, and
  // the instance and both baselines predicted.
  estimate(m, options, request) {
    const steps = options.integratedGradients?.steps;
    const points = typeof steps === 'number' ? steps : IG_DEFAULT_MAX_STEPS;
    const passes = m.model.logitJacobian ? 1 : request.outputs;
    return {
      evaluations: request.instances * (2 * points * passes + 3),
      terms: `${request.instances} instance(s) x 2 baselines x ${points} path points x ${passes} gradient pass(es)`,
    };
  },
  chunkSize: 4,
  queryKeys: ['steps', 'quadrature', 'black', 'white', 'dilation', 'deadlineMs'],
  fromQuery: (q) => ({
    steps: q.numberOrAuto('steps'),
    method: q.string('quadrature'),
    black: q.number('black'),
    white: q.number('white'),
    dilation: q.number('dilation'),
    deadlineMs: q.number('deadlineMs'),
  }),
};
