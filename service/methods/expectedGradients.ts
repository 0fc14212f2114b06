/**
 * Expected Gradients as an explain method (shap's GradientExplainer, Captum's GradientShap):
 * Integrated Gradients averaged over baselines drawn from the background set. Image and tabular
 * models with input gradients and a background (the model's, or rows in the request).
 */
import { z } from 'zod';
import { expectedGradients, EXPECTED_GRADIENTS_DEFAULTS, type ExpectedGradientsOptions } from '../../explainers/image/index.js';
import { hashRows } from '../cache.js';
import { ServiceError } from '../errors.js';
import { layoutOf, toRows } from '../instances.js';
import { deadlineMsSchema, rowsOf, seedSchema, type Limits } from '../schemas/common.js';
import { requirement } from './inputs.js';
import type { ExplainMethodSpec, TaskOptions } from './types.js';

export const expectedGradientsParameters = (limits: Limits) =>
  z.strictObject({
    samples: z
      .number()
      .int()
      .min(1)
      .max(limits.maxSamples, `samples may be at most ${limits.maxSamples}`)
      .default(EXPECTED_GRADIENTS_DEFAULTS.samples)
      .meta({ description: 'Drawn (baseline, path point) pairs per instance' }),
    seed: seedSchema.default(EXPECTED_GRADIENTS_DEFAULTS.seed),
    background: rowsOf(limits.maxBackgroundRows, 'background')
      .optional()
      .meta({ description: "Rows the baselines are drawn from; default the model's background set" }),
    deadlineMs: deadlineMsSchema(limits).optional(),
  });

type Options = TaskOptions<Omit<ExpectedGradientsOptions, 'outputs' | 'deadline'>>;

export const expectedGradientsMethod: ExplainMethodSpec<'expected-gradients', ReturnType<typeof expectedGradientsParameters>, Options> = {
  name: 'expected-gradients',
  summary: 'Expected Gradients: Integrated Gradients averaged over baselines drawn from the background, complete in expectation',
  parameters: expectedGradientsParameters,
  supports: (m) => requirement(m, { inputs: ['image', 'tabular'], gradients: true }),
  plan(m, p) {
    const background = p.background ? toRows(p.background, layoutOf(m), 'parameters.background') : m.background;
    if (!background) {
      throw new ServiceError(
        'NO_BACKGROUND',
        `model "${m.name}" has no background set in its metadata; pass parameters.background (rows like the instances) for expected-gradients`,
      );
    }
    const common = { samples: p.samples, seed: p.seed };
    return {
      context: { ...common, background: hashRows(background) },
      display: { ...common, ...(p.background ? { background: `${background.n} rows` } : {}) },
      deadlineMs: p.deadlineMs,
      options: { ...common, background },
    };
  },
  explain: (model, rows, options) => expectedGradients(model, rows, options),
  // Per instance and output one gradient row per sample, the instance's prediction; the background once.
  estimate(_m, options, request) {
    const samples = options.samples ?? EXPECTED_GRADIENTS_DEFAULTS.samples;
    return {
      evaluations: request.instances * (samples * request.outputs + 1) + options.background.n,
      terms: `${request.instances} instance(s) x ${samples} samples x ${request.outputs} output(s)`,
    };
  },
  chunkSize: 8,
  queryKeys: ['samples', 'seed', 'deadlineMs'],
  fromQuery: (q) => ({ samples: q.number('samples'), seed: q.number('seed'), deadlineMs: q.number('deadlineMs') }),
};
