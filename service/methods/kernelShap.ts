/**
 * Kernel SHAP as an explain method: parameters, planning against a model, the worker's call.
 * Tabular models: features are the players, absent ones drawn from the background. Image models:
 * superpixels are the players (SLIC segments, absent ones masked), since 150,528 pixel players of a
 * 224x224 RGB image are far beyond any sampling budget. Text models: tokens are the players, absent
 * ones replaced by the tokenizer's mask token.
 */
import { z } from 'zod';
import { DEFAULT_MAX_BACKGROUND, DEFAULT_TOLERANCE } from '../../explainers/defaults.js';
import { superpixelShap } from '../../explainers/image/index.js';
import { kernelShap, type KernelShapOptions } from '../../explainers/kernelShap.js';
import { LINK_NAMES } from '../../explainers/link.js';
import { tokenShap } from '../../explainers/text/index.js';
import { hashRows } from '../cache.js';
import { ServiceError } from '../errors.js';
import { layoutOf, toRows } from '../instances.js';
import { kernelShapEstimate, playerCount, type Estimate } from '../cost.js';
import { deadlineMsSchema, rowsOf, seedSchema, type Limits } from '../schemas/common.js';
import { inputKind, onlyFor, requirement, textTokens } from './inputs.js';
import { maskingFromQuery, maxSuperpixels, superpixelParameters, superpixelPlan, type SuperpixelPlan } from './superpixels.js';
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
    tolerance: z
      .number()
      .min(0)
      .max(1)
      .default(DEFAULT_TOLERANCE)
      .meta({ description: "stop once max stderr <= tolerance x the attributions' range; 0 spends the whole nSamples budget" }),
    deadlineMs: deadlineMsSchema(limits).optional(),
    maxBackground: z.number().int().min(1).max(1000).default(DEFAULT_MAX_BACKGROUND),
    ...superpixelParameters,
  });

/** Tabular (no `input`), image (superpixel players) or text (token players). */
type Options =
  | (TaskOptions<Omit<KernelShapOptions, 'outputs' | 'deadline'>> & { input?: undefined })
  | ({ input: 'image'; nSamples: number | 'auto'; seed: number; tolerance: number } & SuperpixelPlan)
  | { input: 'text'; nSamples: number | 'auto'; seed: number };

/** One instance's game over masked inputs (coalitions + the instance + its all-masked input), `instances` times. */
function maskedEstimate(one: Estimate, instances: number): Estimate {
  const coalitions = one.evaluations - 2;
  return { evaluations: instances * one.evaluations, terms: `${instances} instance(s) x (${coalitions} coalitions + the instance + its all-masked input)` };
}

export const kernelShapMethod: ExplainMethodSpec<'kernel-shap', ReturnType<typeof kernelShapParameters>, Options> = {
  name: 'kernel-shap',
  summary: 'Kernel SHAP: model-agnostic Shapley values against a background set, each with a standard error',
  parameters: kernelShapParameters,
  supports: (m) => requirement(m, { inputs: ['tabular', 'image', 'text'] }),
  plan(m, p) {
    const kind = inputKind(m);
    onlyFor(kind, ['image'], p, ['segments', 'compactness', 'masking']);
    if (kind !== 'tabular') {
      onlyFor(kind, ['tabular'], p, ['background', 'link']);
      const common = { nSamples: p.nSamples, seed: p.seed };
      if (kind === 'text') {
        return { context: { ...common, players: 'tokens' }, display: { ...common, players: 'tokens' }, deadlineMs: p.deadlineMs, options: { input: 'text', ...common } };
      }
      const sp = superpixelPlan(m, p);
      const image = { ...common, tolerance: p.tolerance, ...sp };
      return { context: { ...image, players: 'superpixels' }, display: { ...image, players: 'superpixels' }, deadlineMs: p.deadlineMs, options: { input: 'image', ...image } };
    }
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
  explain(model, rows, options) {
    const { space, signal, outputs, deadline } = options;
    if (options.input === 'text') {
      const { nSamples, seed } = options;
      return tokenShap(model, rows, { space, signal, outputs, deadline, algorithm: 'kernel', nSamples, seed, tokens: textTokens(options.tokenizer, rows), maskId: options.tokenizer!.maskId });
    }
    if (options.input === 'image') {
      const { input: _, ...image } = options;
      return superpixelShap(model, rows, { ...image, algorithm: 'kernel' });
    }
    return kernelShap(model, rows, options);
  },
  // Image and text: the players are the superpixels (at most maxSuperpixels: SLIC's count is known
  // only once it has run) or the tokens (at most the sequence length), and the one background row is
  // the all-masked input, evaluated for each instance (each is its own game).
  estimate: (m, options, request) =>
    options.input === undefined
      ? kernelShapEstimate({
          instances: request.instances,
          players: playerCount(m.model.nFeatures, m.space.groups),
          nSamples: options.nSamples ?? 'auto',
          backgroundRows: options.background.n,
          maxBackground: options.maxBackground ?? DEFAULT_MAX_BACKGROUND,
        })
      : maskedEstimate(
          kernelShapEstimate({
            instances: 1,
            players: options.input === 'image' ? maxSuperpixels(m.inputShape, options.segments) : m.model.nFeatures,
            nSamples: options.nSamples,
            backgroundRows: 1,
            maxBackground: 1,
          }),
          request.instances,
        ),
  chunkSize: 64,
  queryKeys: ['nSamples', 'seed', 'link', 'tolerance', 'maxBackground', 'deadlineMs', 'segments', 'compactness', 'masking'],
  fromQuery: (q) => ({
    nSamples: q.numberOrAuto('nSamples'),
    seed: q.number('seed'),
    link: q.string('link'),
    tolerance: q.number('tolerance'),
    maxBackground: q.number('maxBackground'),
    deadlineMs: q.number('deadlineMs'),
    segments: q.number('segments'),
    compactness: q.number('compactness'),
    masking: maskingFromQuery(q),
  }),
};
