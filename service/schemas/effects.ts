/**
 * POST /v1/models/:name/effects: the request (global effects: partial dependence, ICE, ALE, SHAP
 * dependence) as the service validates it and the API document shows it. The effect explainers
 * (explainers/effects) own the defaults and the finer checks (a parameter that does not apply to the
 * kind, a grid or a cost over the limits); this schema bounds what a body may carry at all.
 */
import { z } from 'zod';
import { EFFECT_KINDS } from '../../explainers/effects/types.js';
import { LINK_NAMES } from '../../explainers/link.js';
import { deadlineMsSchema, instanceSchema, outputSelectorsSchema, seedSchema, versionSchema, type Limits } from './common.js';

/** Features (or pairs) per request at most, and grid values per feature a body may list. */
export const MAX_EFFECT_FEATURES = 50;
export const MAX_GRID_VALUES = 10_000;

const featureName = z.string().min(1).max(1000);

export function effectsParametersSchema(limits: Pick<Limits, 'maxNSamples' | 'maxDeadlineMs'>) {
  return z
    .strictObject({
      link: z.enum(LINK_NAMES).optional().meta({ description: "identity or logit; default the model's metadata link, else identity" }),
      resolution: z.number().int().min(2).max(10_000).optional().meta({
        description: 'pd, ice: grid points of a numeric feature from data quantiles (default 50; 20 per axis in 2-D; at most 256)',
      }),
      percentiles: z
        .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
        .optional()
        .meta({ description: 'pd, ice: the quantile range the grid spans (default [0.05, 0.95])' }),
      bins: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .optional()
        .meta({ description: 'ale: quantile bins (default 20; 10 per axis in 2-D); dependence: bins of the trend line' }),
      centered: z.boolean().optional().meta({ description: "ice: subtract each curve's value at the first grid point (default false)" }),
      categoryOrder: z.enum(['similarity', 'value']).optional().meta({ description: 'ale of categorical features (default similarity)' }),
      maxRows: z
        .number()
        .int()
        .min(1)
        .optional()
        .meta({ description: 'Data rows used at most, a seeded sample above (defaults: pd 10000, ice 1000, ale 50000, dependence 200)' }),
      seed: seedSchema.optional().meta({ description: 'Seed of the row sample and of Kernel SHAP (default 0)' }),
      nSamples: z
        .union([z.literal('auto'), z.number().int().min(2).max(limits.maxNSamples, `nSamples may be at most ${limits.maxNSamples}`)])
        .optional()
        .meta({ description: 'dependence: Kernel SHAP coalitions per row (default auto)' }),
      interactions: z.enum(['approximate', 'exact']).optional().meta({ description: 'dependence: how the colouring feature is chosen' }),
      interactionFeature: featureName.optional().meta({ description: 'dependence: colour by this feature instead' }),
      maxPlayers: z
        .number()
        .int()
        .min(1)
        .optional()
        .meta({ description: 'dependence, exact interactions: players at most (default 10, at most 16)' }),
      maxBackground: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .optional()
        .meta({ description: 'dependence: background rows kept (default 50 exact, 100 Kernel SHAP)' }),
      deadlineMs: deadlineMsSchema(limits).optional(),
    })
    .meta({ description: "The effect's parameters; each kind takes the ones that apply to it (BAD_PARAMETER names the others)" });
}

export function effectsRequestSchemas(limits: Limits) {
  /** Everything but `parameters`, which is checked by effectsParametersSchema (BAD_PARAMETER). */
  const envelope = z.strictObject({
    kind: z.enum(EFFECT_KINDS).meta({
      description: 'pd: partial dependence; ice: ICE curves and their mean; ale: accumulated local effects; dependence: SHAP dependence',
    }),
    features: z
      .array(z.union([featureName, z.tuple([featureName, featureName])]))
      .min(1, 'features needs at least one feature name')
      .max(MAX_EFFECT_FEATURES, `features may list at most ${MAX_EFFECT_FEATURES} features`)
      .meta({ description: 'Feature or one-hot group names; a [name, name] pair asks for a 2-D effect (pd and ale)' }),
    outputs: z
      .union([outputSelectorsSchema, z.literal('all')])
      .optional()
      .meta({ description: 'Output indices or names, or "all" (default all)' }),
    // No minimum here: an empty list is EMPTY_DATA, with its own message (service/effects.ts).
    data: z
      .array(instanceSchema)
      .max(limits.maxImportanceRows, `data may hold at most ${limits.maxImportanceRows} rows`)
      .optional()
      .meta({ description: "Rows to average over; default the model's reference set, else its background set" }),
    grid: z
      .record(
        featureName,
        z
          .array(z.union([z.number(), z.string()]))
          .min(1)
          .max(MAX_GRID_VALUES),
      )
      .optional()
      .meta({ description: 'Per feature: grid values (pd, ice; member names for one-hot groups) or bin edges (ale)' }),
    parameters: z.record(z.string(), z.unknown()).default({}),
    version: versionSchema,
  });
  const parameters = effectsParametersSchema(limits);
  /** The request as the API document shows it. */
  const effects = envelope.extend({ parameters: parameters.optional() }).meta({ id: 'EffectsRequest' });
  return { effectsEnvelope: envelope, effectsParameters: parameters, effects };
}

export type EffectsBody = z.infer<ReturnType<typeof effectsRequestSchemas>['effectsEnvelope']>;
export type EffectsParametersBody = z.infer<ReturnType<typeof effectsParametersSchema>>;
