/**
 * POST /v1/models/:name/counterfactuals and the recourse part of POST /fairness: requests as the
 * service validates them and the API document shows them. Defaults and caps come from the
 * counterfactual explainer (COUNTERFACTUAL_DEFAULTS, COUNTERFACTUAL_LIMITS) and the config.
 */
import { z } from 'zod';
import { COUNTERFACTUAL_DEFAULTS, COUNTERFACTUAL_LIMITS } from '../../explainers/counterfactuals/counterfactuals.js';
import { deadlineMsSchema, rowsOf, seedSchema, versionSchema, type Limits } from './common.js';

const index = z.number().int().min(0);

const constraintSchema = z.strictObject({
  type: z.enum(['numeric', 'integer', 'binary', 'categorical']).optional(),
  immutable: z.boolean().optional(),
  monotone: z.enum(['increasing', 'decreasing']).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
});

/** The outcome sought: a class (index, name, or "opposite" for a binary classifier), or a range of an output. */
export const desiredSchema = z
  .union([
    z.strictObject({ class: z.union([index, z.literal('opposite'), z.string().min(1)]) }),
    // null stands for an open end: [25, null] is "at least 25".
    z.strictObject({
      range: z.tuple([z.number().nullable(), z.number().nullable()]),
      output: z.union([index, z.string().min(1)]).optional(),
    }),
  ])
  .meta({
    id: 'DesiredOutcome',
    description: '{"class": index | name | "opposite"} or {"range": [lo | null, hi | null], "output"?: index | name}',
  });

export function counterfactualParametersSchema(limits: Pick<Limits, 'maxDeadlineMs'>) {
  return z.strictObject({
    k: z
      .number()
      .int()
      .min(1)
      .max(COUNTERFACTUAL_LIMITS.k)
      .default(COUNTERFACTUAL_DEFAULTS.k)
      .meta({ description: 'Counterfactuals per instance at most' }),
    seed: seedSchema.default(COUNTERFACTUAL_DEFAULTS.seed),
    deadlineMs: deadlineMsSchema(limits).optional(),
    maxEvaluations: z
      .number()
      .int()
      .min(10)
      .max(COUNTERFACTUAL_LIMITS.maxEvaluations)
      .default(COUNTERFACTUAL_DEFAULTS.maxEvaluations)
      .meta({ description: 'Model evaluations per instance for the search' }),
    maxChangedFeatures: z.number().int().min(1).optional().meta({ description: 'Features one counterfactual may change at most' }),
    minPlausibility: z.number().min(0).max(1).default(COUNTERFACTUAL_DEFAULTS.minPlausibility),
    neighbours: z.number().int().min(1).max(COUNTERFACTUAL_LIMITS.neighbours).default(COUNTERFACTUAL_DEFAULTS.neighbours),
    useGradients: z.boolean().default(COUNTERFACTUAL_DEFAULTS.useGradients),
    threshold: z.number().optional().meta({ description: 'Binary classifiers: class 1 when the output is at least this (default 0.5)' }),
    /** Features (or one-hot groups) to hold fixed on top of the metadata's immutables. */
    immutable: z
      .array(z.string().min(1))
      .max(10_000)
      .optional()
      .meta({ description: "Features held fixed on top of metadata.json's immutables" }),
    /** Per feature or group, replacing the metadata's declarations field by field. */
    constraints: z
      .record(z.string(), constraintSchema)
      .optional()
      .meta({ description: "Per feature or one-hot group: type, immutable, monotone, min, max (over metadata.json's, field by field)" }),
  });
}

export type CounterfactualParameters = z.infer<ReturnType<typeof counterfactualParametersSchema>>;

/** Recourse burden by group (POST /fairness `recourse`): cost-bounded by a row sample, the search budget and the deadline. */
export const DEFAULT_RECOURSE_ROWS = 1000;
export const MAX_RECOURSE_ROWS = 20_000;
export const DEFAULT_RECOURSE_EVALUATIONS = 2000;

export const recourseSettingsSchema = z.strictObject({
  sensitiveFeatures: z
    .array(z.string().min(1))
    .min(1)
    .max(10)
    .optional()
    .meta({ description: "One burden per feature; default the request's (else the model's) sensitive features" }),
  favourable: desiredSchema.optional().meta({ description: 'The favourable outcome; default class 1 of a binary classifier' }),
  maxRows: z
    .number()
    .int()
    .min(1)
    .max(MAX_RECOURSE_ROWS)
    .default(DEFAULT_RECOURSE_ROWS)
    .meta({ description: 'Rows assessed at most (a seeded sample above)' }),
  maxEvaluations: z
    .number()
    .int()
    .min(10)
    .max(100_000)
    .default(DEFAULT_RECOURSE_EVALUATIONS)
    .meta({ description: 'Model evaluations per unfavourable row for its search' }),
  seed: seedSchema.default(0),
  bootstrap: z
    .strictObject({
      n: z.number().int().min(0).max(5000).default(1000),
      seed: seedSchema.default(0),
      confidence: z.number().gt(0).lt(1).default(0.95),
    })
    .optional(),
});

export type RecourseSettings = z.infer<typeof recourseSettingsSchema>;

export function counterfactualsRequestSchemas(limits: Limits) {
  const parameters = counterfactualParametersSchema(limits);
  const counterfactuals = z
    .strictObject({
      instances: rowsOf(limits.maxInstances, 'instances'),
      desired: desiredSchema.optional(),
      parameters: parameters.default(parameters.parse({})),
      version: versionSchema,
    })
    .meta({ id: 'CounterfactualsRequest' });
  return { counterfactuals, counterfactualParameters: parameters, recourseSettings: recourseSettingsSchema };
}

export type CounterfactualsBody = z.infer<ReturnType<typeof counterfactualsRequestSchemas>['counterfactuals']>;
export type DesiredBody = z.infer<typeof desiredSchema>;
