/** Kernel SHAP as an explain method: parameters, planning against a model, the worker's call. */
import { z } from 'zod';
import { DEFAULT_MAX_BACKGROUND, DEFAULT_TOLERANCE } from '../../explainers/defaults.js';
import { kernelShap, type KernelShapOptions } from '../../explainers/kernelShap.js';
import { LINK_NAMES } from '../../explainers/link.js';
import { hashRows } from '../cache.js';
import { ServiceError } from '../errors.js';
import { layoutOf, toRows } from '../instances.js';
import { kernelShapEstimate, playerCount } from '../cost.js';
import { deadlineMsSchema, rowsOf, seedSchema, type Limits } from '../schemas/common.js';
import type { ExplainMethodSpec, TaskOptions } from './types.js';

export const kernelShapParameters = (limits: Limits) =>
  z.strictObject({
    nSamples: z
      .union([
        z.literal('auto'),
        z.number().int().min(2, 'nSamples must be at least 2').max(limits.maxNSamples, `nSamples may be at most ${limits.maxNSamples}`),
      ])
      .default('auto')
      .meta({ description: 'Coalitions per instance; "auto" = 2M + 2048 for M players' }),
    seed: seedSchema.default(0),
    background: rowsOf(limits.maxBackgroundRows, 'background')
      .optional()
      .meta({ description: "Rows standing for 'feature unknown'; default the model's background set" }),
    link: z.enum(LINK_NAMES).optional().meta({ description: "Default: the model's metadata link, else identity" }),
    tolerance: z.number().positive().max(1).default(DEFAULT_TOLERANCE),
    deadlineMs: deadlineMsSchema(limits).optional(),
    maxBackground: z.number().int().min(1).max(1000).default(DEFAULT_MAX_BACKGROUND),
  });

type Options = TaskOptions<Omit<KernelShapOptions, 'outputs' | 'deadline'>>;

export const kernelShapMethod: ExplainMethodSpec<'kernel-shap', ReturnType<typeof kernelShapParameters>, Options> = {
  name: 'kernel-shap',
  summary: 'Kernel SHAP: model-agnostic Shapley values against a background set, each with a standard error',
  parameters: kernelShapParameters,
  plan(m, p) {
    const background = p.background ? toRows(p.background, layoutOf(m), 'parameters.background') : m.background;
    if (!background) {
      throw new ServiceError(
        'NO_BACKGROUND',
        `model "${m.name}" has no background set in its metadata; pass parameters.background (rows like the instances) for kernel-shap`,
      );
    }
    const link = p.link ?? m.metadata?.link ?? 'identity';
    const common = { nSamples: p.nSamples, seed: p.seed, link, tolerance: p.tolerance, maxBackground: p.maxBackground };
    return {
      context: { ...common, background: hashRows(background) },
      display: { ...common, ...(p.background ? { background: `${background.n} rows` } : {}) },
      deadlineMs: p.deadlineMs,
      options: { ...common, background },
    };
  },
  explain: (model, rows, options) => kernelShap(model, rows, options),
  estimate: (m, options, request) =>
    kernelShapEstimate({
      instances: request.instances,
      players: playerCount(m.model.nFeatures, m.space.groups),
      nSamples: options.nSamples ?? 'auto',
      backgroundRows: options.background.n,
      maxBackground: options.maxBackground ?? 100,
    }),
  chunkSize: 64,
  queryKeys: ['nSamples', 'seed', 'link', 'tolerance', 'maxBackground', 'deadlineMs'],
  fromQuery: (q) => ({
    nSamples: q.numberOrAuto('nSamples'),
    seed: q.number('seed'),
    link: q.string('link'),
    tolerance: q.number('tolerance'),
    maxBackground: q.number('maxBackground'),
    deadlineMs: q.number('deadlineMs'),
  }),
};
