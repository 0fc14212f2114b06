/**
 * Partition SHAP as an explain method (shap's Partition explainer): Owen values over a hierarchy of
 * players, exactly efficient at any budget. Image models: SLIC superpixels grouped by position,
 * missing ones masked (blur, mean, inpaint or a constant). Text models: tokens grouped into
 * contiguous halves of the sentence, missing ones replaced by the tokenizer's mask token.
 */
import { z } from 'zod';
import { SUPERPIXEL_DEFAULTS, superpixelShap } from '../../explainers/image/index.js';
import { tokenShap } from '../../explainers/text/index.js';
import { deadlineMsSchema, type Limits } from '../schemas/common.js';
import { inputKind, onlyFor, requirement, textTokens } from './inputs.js';
import { maskingFromQuery, superpixelParameters, superpixelPlan, type SuperpixelPlan } from './superpixels.js';
import type { ExplainMethodSpec } from './types.js';

export const partitionShapParameters = (limits: Limits) =>
  z.strictObject({
    maxEvaluations: z
      .number()
      .int()
      .min(4)
      .max(limits.maxNSamples, `maxEvaluations may be at most ${limits.maxNSamples}`)
      .default(SUPERPIXEL_DEFAULTS.maxEvaluations)
      .meta({ description: 'Masked inputs evaluated per instance (the hierarchy is expanded while the budget lasts; exact Owen values when fully expanded)' }),
    ...superpixelParameters,
    deadlineMs: deadlineMsSchema(limits).optional(),
  });

type Options = ({ input: 'image' } & SuperpixelPlan & { maxEvaluations: number }) | { input: 'text'; maxEvaluations: number };

export const partitionShapMethod: ExplainMethodSpec<'partition-shap', ReturnType<typeof partitionShapParameters>, Options> = {
  name: 'partition-shap',
  summary: 'Partition SHAP: Owen values over superpixels (images) or tokens (text), exactly efficient',
  parameters: partitionShapParameters,
  supports: (m) => requirement(m, { inputs: ['image', 'text'] }),
  plan(m, p) {
    const kind = inputKind(m);
    onlyFor(kind, ['image'], p, ['segments', 'compactness', 'masking']);
    if (kind === 'text') {
      const text = { maxEvaluations: p.maxEvaluations, players: 'tokens' };
      return { context: text, display: text, deadlineMs: p.deadlineMs, options: { input: 'text', maxEvaluations: p.maxEvaluations } };
    }
    const image = { maxEvaluations: p.maxEvaluations, ...superpixelPlan(m, p) };
    return { context: image, display: { ...image, players: 'superpixels' }, deadlineMs: p.deadlineMs, options: { input: 'image', ...image } };
  },
  explain(model, rows, options) {
    const { space, signal, outputs, deadline } = options;
    if (options.input === 'text') {
      const tok = options.tokenizer;
      return tokenShap(model, rows, { space, signal, outputs, deadline, algorithm: 'partition', maxEvaluations: options.maxEvaluations, tokens: textTokens(tok, rows), maskId: tok!.maskId });
    }
    const { input: _, ...image } = options;
    return superpixelShap(model, rows, { ...image, algorithm: 'partition' });
  },
  // Coalitions per instance at most maxEvaluations (the empty and full ones included).
  estimate: (_m, options, request) => ({
    evaluations: request.instances * options.maxEvaluations,
    terms: `${request.instances} instance(s) x ${options.maxEvaluations} coalitions`,
  }),
  chunkSize: 16,
  queryKeys: ['maxEvaluations', 'segments', 'compactness', 'masking', 'deadlineMs'],
  fromQuery: (q) => ({
    maxEvaluations: q.number('maxEvaluations'),
    segments: q.number('segments'),
    compactness: q.number('compactness'),
    masking: maskingFromQuery(q),
    deadlineMs: q.number('deadlineMs'),
  }),
};
