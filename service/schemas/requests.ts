/**
 * Request schemas: the single source of the request types, the validation and the API document.
 * Caps come from the config, so a request beyond one fails validation with a message naming it.
 */
import { z } from 'zod';
import type { ExplainMethod } from '../../explainers/types.js';
import { DEFAULT_REPEATS, METRIC_NAMES } from '../../explainers/defaults.js';
import {
  DEFAULT_ATTRIBUTION_BACKGROUND,
  DEFAULT_ATTRIBUTION_NSAMPLES,
  DEFAULT_ATTRIBUTION_SAMPLE,
} from '../../monitoring/fairness/assess.js';
import { DEFAULT_PROXY } from '../../monitoring/fairness/attributions.js';
import { DEFAULT_BOOTSTRAP, DEFAULT_FOUR_FIFTHS } from '../../monitoring/fairness/report.js';
import { DEFAULT_THRESHOLDS } from '../../monitoring/drift/thresholds.js';
import { DEFAULT_METHOD, EXPLAIN_METHODS, METHOD_NAMES } from '../methods/index.js';
import {
  deadlineMsSchema,
  explainOutputsSchema,
  labelsSchema,
  outputSelectorSchema,
  rowsOf,
  seedSchema,
  versionSchema,
  type Limits,
} from './common.js';
import { counterfactualsRequestSchemas, recourseSettingsSchema } from './counterfactuals.js';
import { effectsRequestSchemas } from './effects.js';

/** The most rows a POST /v1/jobs may carry (JOBS_MAX_INSTANCES). */
export interface JobLimits {
  maxJobInstances: number;
}

/** Rows per job chunk at most. */
export const MAX_CHUNK_SIZE = 4096;

/** Job methods beyond the explain methods: counterfactuals per row, and ICE curves per row whose mean is the partial dependence. */
export const DATA_JOB_METHODS = ['counterfactuals', 'effects'] as const;
export type DataJobMethod = (typeof DATA_JOB_METHODS)[number];

export function requestSchemas(limits: Limits & JobLimits) {
  const version = versionSchema;
  const predict = z.strictObject({ instances: rowsOf(limits.maxInstances, 'instances'), version });

  /**
   * What POST /explain accepts before the method is known: `parameters` is then checked by the
   * method's own schema (BAD_PARAMETER), an unknown method answers UNKNOWN_METHOD.
   */
  const explainEnvelope = z.strictObject({
    instances: rowsOf(limits.maxInstances, 'instances'),
    method: z.string().default(DEFAULT_METHOD),
    outputs: explainOutputsSchema.optional(),
    parameters: z.record(z.string(), z.unknown()).default({}),
    version,
  });

  /** The same request as the API document shows it: one variant per method, discriminated on `method`. */
  const variant = (name: ExplainMethod) =>
    z.strictObject({
      instances: rowsOf(limits.maxInstances, 'instances'),
      method: z.literal(name).meta({ description: `Absent: ${DEFAULT_METHOD}` }),
      outputs: explainOutputsSchema.optional(),
      parameters: EXPLAIN_METHODS[name].parameters(limits).optional(),
      version,
    });
  const [first, ...rest] = METHOD_NAMES;
  const explain = z.discriminatedUnion('method', [variant(first), ...rest.map(variant)]).meta({ id: 'ExplainRequest' });

  const importance = z.strictObject({
    data: rowsOf(limits.maxImportanceRows, 'data').optional(),
    labels: labelsSchema.optional(),
    metric: z.enum(METRIC_NAMES).optional().meta({ description: 'Default: r2 for regression, else accuracy' }),
    metrics: z.array(z.enum(METRIC_NAMES)).max(METRIC_NAMES.length).optional(),
    repeats: z.number().int().min(1).max(limits.maxRepeats, `repeats may be at most ${limits.maxRepeats}`).default(DEFAULT_REPEATS),
    seed: seedSchema.default(0),
    maxSamples: z.number().positive().optional(),
    sampleWeights: z.array(z.number()).optional(),
    output: outputSelectorSchema.optional(),
    deadlineMs: deadlineMsSchema(limits).optional(),
    version,
  });

  const attributionSettings = z.strictObject({
    sampleSize: z.number().int().min(1).max(2000).default(DEFAULT_ATTRIBUTION_SAMPLE),
    nSamples: z.number().int().min(2).max(limits.maxNSamples).default(DEFAULT_ATTRIBUTION_NSAMPLES),
    seed: seedSchema.default(0),
    maxBackground: z.number().int().min(1).max(1000).default(DEFAULT_ATTRIBUTION_BACKGROUND),
    background: rowsOf(limits.maxBackgroundRows, 'attributions.background').optional(),
  });

  const fairness = z.strictObject({
    data: rowsOf(limits.maxImportanceRows, 'data').optional(),
    labels: labelsSchema.optional(),
    sensitiveFeatures: z.array(z.string().min(1)).min(1).max(10).optional(),
    intersections: z.boolean().default(true),
    task: z.enum(['binary-classification', 'multiclass-classification', 'regression']).optional(),
    threshold: z.number().min(0).max(1).optional(),
    positiveClass: z.union([z.number().int().min(0), z.string()]).optional(),
    output: outputSelectorSchema.optional(),
    bootstrap: z
      .strictObject({
        n: z.number().int().min(0).max(5000).default(DEFAULT_BOOTSTRAP.n),
        seed: seedSchema.default(DEFAULT_BOOTSTRAP.seed),
        confidence: z.number().gt(0).lt(1).default(DEFAULT_BOOTSTRAP.confidence),
      })
      .optional(),
    fourFifths: z.number().gt(0).max(1).default(DEFAULT_FOUR_FIFTHS),
    attributions: z.union([z.boolean(), attributionSettings]).optional(),
    proxy: z
      .strictObject({
        minAssociation: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .meta({ description: `Default ${DEFAULT_PROXY.minAssociation}` }),
        minShare: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .meta({ description: `Default ${DEFAULT_PROXY.minShare}` }),
      })
      .optional(),
    deadlineMs: deadlineMsSchema(limits).optional(),
    recourse: z
      .union([z.boolean(), recourseSettingsSchema])
      .optional()
      .meta({ description: 'Recourse burden by group (counterfactual cost of the unfavourable rows); off unless asked for' }),
    version,
  });

  const drift = z.strictObject({
    current: rowsOf(limits.maxImportanceRows, 'current'),
    currentLabels: labelsSchema.optional(),
    reference: rowsOf(limits.maxImportanceRows, 'reference').optional(),
    referenceLabels: labelsSchema.optional(),
    bins: z.number().int().min(2).max(100).default(10),
    thresholds: z
      .strictObject({
        psiWarn: z
          .number()
          .min(0)
          .optional()
          .meta({ description: `Default ${DEFAULT_THRESHOLDS.psiWarn}` }),
        psiAlert: z
          .number()
          .min(0)
          .optional()
          .meta({ description: `Default ${DEFAULT_THRESHOLDS.psiAlert}` }),
        ksAlpha: z
          .number()
          .gt(0)
          .lt(1)
          .optional()
          .meta({ description: `Default ${DEFAULT_THRESHOLDS.ksAlpha}` }),
        ndcg: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .meta({ description: `Default ${DEFAULT_THRESHOLDS.ndcg}` }),
      })
      .optional(),
    attributions: z.union([z.boolean(), attributionSettings]).optional(),
    deadlineMs: deadlineMsSchema(limits).optional(),
    version,
  });

  const jobSubmit = z.strictObject({
    model: z.string().min(1),
    method: z
      .string()
      .optional()
      .meta({ description: `One of ${[...METHOD_NAMES, ...DATA_JOB_METHODS].join(', ')}; absent: ${DEFAULT_METHOD}` }),
    parameters: z.record(z.string(), z.unknown()).default({}).meta({
      description:
        "The method's parameters, as in POST /explain; counterfactuals: those of POST /counterfactuals plus desired; effects: features, grid and the pd parameters",
    }),
    outputs: explainOutputsSchema.optional().meta({
      description:
        'Outputs by index or name, or "all". Explain methods, absent: a classifier\'s predicted class per row, otherwise all outputs; ' +
        'effects, absent: all outputs; counterfactuals take none (say the outcome in parameters.desired)',
    }),
    instances: z
      .array(z.unknown())
      .min(1, 'instances needs at least one row')
      .max(limits.maxJobInstances, `a job may hold at most ${limits.maxJobInstances} instances`)
      .optional(),
    dataset: z.literal('reference').optional(),
    chunkSize: z.number().int().min(1).max(MAX_CHUNK_SIZE).optional(),
    version,
  });

  return {
    predict,
    explainEnvelope,
    explain,
    importance,
    attributionSettings,
    fairness,
    drift,
    jobSubmit,
    ...effectsRequestSchemas(limits),
    ...counterfactualsRequestSchemas(limits),
  };
}

export type RequestSchemas = ReturnType<typeof requestSchemas>;
export type ExplainBody = z.infer<RequestSchemas['explainEnvelope']>;
export type ImportanceRequest = z.infer<RequestSchemas['importance']>;
export type FairnessRequest = z.infer<RequestSchemas['fairness']>;
export type DriftRequest = z.infer<RequestSchemas['drift']>;
export type AttributionSettings = z.infer<RequestSchemas['attributionSettings']>;
export type JobSubmitRequest = z.infer<RequestSchemas['jobSubmit']>;
