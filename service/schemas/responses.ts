/**
 * Response schemas: the shapes the service answers with, for the OpenAPI document (and, through it,
 * test/server.openapi.test.ts, which validates real responses of every route). The document's
 * objects are closed (zod's output schemas): a field the service adds must be declared here first,
 * or that test fails. Fields may be added, never removed or renamed.
 */
import { z } from 'zod';
import { IG_RULES } from '../../explainers/defaults.js';
import { ERROR_CODES } from '../errors.js';
import { METHOD_NAMES } from '../methods/index.js';
import { modelRefSchema } from './common.js';

const num = z.number();
const nullableNum = z.number().nullable();

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error', description: "The caller's mistake (4xx) or the service's fault (5xx), with a stable code" });

// ---------------------------------------------------------------------------------------------
// Models.

export const modelDescriptionSchema = z
  .object({
    name: z.string(),
    version: z.string(),
    format: z.enum(['layers', 'graph']).optional(),
    inputShape: z.array(z.number().int()),
    task: z.enum(['binary-classification', 'multiclass-classification', 'regression']).nullable().optional(),
    features: z.array(
      z.object({
        name: z.string(),
        type: z.string().optional(),
        group: z.string().optional(),
        description: z.string().optional(),
        unit: z.string().optional(),
      }),
    ),
    outputs: z.array(z.object({ name: z.string(), description: z.string().optional() })),
    sensitiveFeatures: z.array(z.string()).optional(),
    groups: z.array(z.object({ name: z.string(), features: z.array(z.string()) })).optional(),
    hasBackground: z.boolean().optional(),
    hasReference: z.boolean().optional(),
    backgroundRows: z.number().int().optional(),
    referenceRows: z.number().int().optional(),
    description: z.string().nullable().optional(),
    classes: z.array(z.string()).optional(),
    link: z.enum(['identity', 'logit']).optional(),
    tokenizer: z
      .object({ maxLength: z.number().int(), vocabularySize: z.number().int() })
      .optional()
      .meta({ description: 'text models: the tokenizer.json of the folder (instances may be sentences)' }),
  })
  .meta({ id: 'Model' });

const loadErrorSchema = z.object({ name: z.string(), message: z.string() });

export const modelListSchema = z.object({ models: z.array(modelDescriptionSchema), loadErrors: z.array(loadErrorSchema) });
export const modelDetailSchema = modelDescriptionSchema.extend({ metadata: z.record(z.string(), z.unknown()).nullable() });

export const predictResponseSchema = z.object({
  model: modelRefSchema,
  outputs: z.array(z.string()),
  predictions: z.array(z.array(num)),
});

// ---------------------------------------------------------------------------------------------
// Explanations.

export const instanceExplanationSchema = z
  .object({
    outputs: z.array(
      z.object({
        output: z.string(),
        outputIndex: z.number().int(),
        baselineOutputValue: num,
        instanceOutputValue: num,
        attributions: z.array(z.object({ feature: z.string(), value: num, attribution: num, stderr: num.optional() })),
        approximationError: num,
      }),
    ),
    converged: z.boolean(),
    stopReason: z.enum(['exact', 'tolerance', 'budget', 'deadline', 'amortised']).optional(),
    modelEvaluations: num,
    computeMs: num,
    diagnostics: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'InstanceExplanation' });

export const explanationResponseSchema = z
  .object({
    model: modelRefSchema,
    method: z.enum(METHOD_NAMES),
    id: z.string().regex(/^[0-9a-f]{32}$/),
    links: z.object({ json: z.string(), svg: z.string(), png: z.string(), html: z.string() }),
    explanations: z.array(instanceExplanationSchema),
    diagnostics: z.record(z.string(), z.unknown()).optional(),
    inputShape: z.array(z.number().int()).optional(),
    cached: z.boolean(),
  })
  .meta({ id: 'Explanation' });

const featureImportanceSchema = z.object({ feature: z.string(), mean: num, std: num, values: z.array(num) });

export const importanceResponseSchema = z
  .object({
    model: modelRefSchema,
    dataset: z.enum(['request', 'reference']),
    metric: z.string(),
    baselineScore: num,
    importances: z.array(featureImportanceSchema),
    others: z.record(z.string(), z.object({ baselineScore: num, importances: z.array(featureImportanceSchema) })).optional(),
    nSamples: num,
    repeats: num,
    modelEvaluations: num,
    computeMs: num,
  })
  .meta({ id: 'Importance' });

// ---------------------------------------------------------------------------------------------
// Fairness.

const estimateSchema = z.object({ value: nullableNum, lo: nullableNum.optional(), hi: nullableNum.optional() }).meta({ id: 'Estimate' });

const fairnessFlagSchema = z
  .object({
    kind: z.enum([
      'four-fifths-rule',
      'selection-rate-gap',
      'true-positive-rate-gap',
      'false-positive-rate-gap',
      'mean-prediction-gap',
      'uses-sensitive-feature',
      'proxy',
    ]),
    features: z.array(z.string()),
    positiveClass: z.number().int().nullable(),
    message: z.string(),
    value: num,
    lo: nullableNum.optional(),
    hi: nullableNum.optional(),
  })
  .meta({ id: 'FairnessFlag' });

const disparitySummarySchema = z.object({
  difference: estimateSchema,
  ratio: estimateSchema,
  differenceToOverall: estimateSchema,
  ratioToOverall: estimateSchema,
});

const disparitySchema = z.object({
  differenceBetweenGroups: estimateSchema,
  differenceToOverall: estimateSchema,
  ratioBetweenGroups: estimateSchema,
  ratioToOverall: estimateSchema,
  gap: z
    .object({
      higher: z.string(),
      lower: z.string(),
      difference: estimateSchema,
      ratio: estimateSchema,
      flagInterval: z.object({ confidence: num, lo: nullableNum, hi: nullableNum }).optional(),
    })
    .nullable(),
});

const attributionSummarySchema = z.object({
  feature: z.string(),
  features: z.array(z.string()).optional(),
  meanAttribution: num,
  meanAbsAttribution: num,
  share: num,
});

const associationSchema = z.object({
  sensitiveFeature: z.string(),
  feature: z.string(),
  measure: z.enum(['cramers-v', 'correlation-ratio']),
  association: num,
  normalizedMutualInformation: num,
  attributionShare: num,
  meanAttributionByGroup: z.record(z.string(), num),
  proxy: z.boolean(),
});

const groupAttributionSchema = z.object({
  method: z.literal('kernel-shap'),
  output: z.string(),
  outputIndex: z.number().int(),
  rows: z.number().int(),
  overall: z.array(attributionSummarySchema),
  byGroup: z.array(
    z.object({
      features: z.array(z.string()),
      groups: z.array(z.object({ label: z.string(), count: z.number().int(), attributions: z.array(attributionSummarySchema) })),
    }),
  ),
  sensitive: z.array(z.object({ feature: z.string(), meanAbsAttribution: num, share: num, used: z.boolean() })),
  associations: z.array(associationSchema),
  proxies: z.array(associationSchema),
  thresholds: z.object({ minAssociation: num, minShare: num }),
  flags: z.array(fairnessFlagSchema),
  diagnostics: z.record(z.string(), z.unknown()),
});

export const fairnessResponseSchema = z
  .object({
    model: modelRefSchema,
    dataset: z.enum(['request', 'reference']),
    task: z.enum(['binary-classification', 'multiclass-classification', 'regression']),
    rows: z.number().int(),
    labelled: z.boolean(),
    sensitiveFeatures: z.array(z.string()),
    threshold: nullableNum,
    fourFifthsThreshold: num,
    bootstrap: z.object({ n: z.number().int(), seed: num, confidence: num }).nullable(),
    outcomes: z.array(
      z.object({
        positiveClass: z.number().int().nullable(),
        positiveClassName: z.string().optional(),
        output: z.number().int(),
        overall: z.object({ count: z.number().int(), metrics: z.record(z.string(), estimateSchema) }),
        breakdowns: z.array(
          z.object({
            features: z.array(z.string()),
            groups: z.array(
              z.object({
                label: z.string(),
                key: z.record(z.string(), z.union([num, z.string()])),
                count: z.number().int(),
                metrics: z.record(z.string(), estimateSchema),
              }),
            ),
            disparities: z.record(z.string(), disparitySchema),
            criteria: z
              .object({
                demographicParity: disparitySummarySchema,
                equalOpportunity: disparitySummarySchema,
                equalizedOdds: disparitySummarySchema,
                disparateImpact: z.object({
                  ratio: estimateSchema,
                  lowest: z.string().nullable(),
                  highest: z.string().nullable(),
                  threshold: num,
                  passes: z.boolean().nullable(),
                }),
              })
              .optional(),
            flags: z.array(fairnessFlagSchema),
          }),
        ),
        flags: z.array(fairnessFlagSchema),
        attributions: groupAttributionSchema.optional(),
      }),
    ),
    flags: z.array(fairnessFlagSchema),
    notes: z.array(z.string()),
    stopReason: z
      .enum(['deadline'])
      .optional()
      .meta({ description: 'Present when the deadline cut the report short: the attributions are missing or not converged (see notes)' }),
  })
  .meta({ id: 'FairnessReport' });

// ---------------------------------------------------------------------------------------------
// Drift.

const driftStatus = z.enum(['ok', 'warn', 'alert']);
const columnDriftSchema = z
  .object({
    feature: z.string(),
    kind: z.enum(['categorical', 'quantile']),
    psi: num,
    psiStatus: driftStatus,
    ks: z.object({ statistic: num, pValue: num, pValueAdjusted: num, significant: z.boolean() }),
    status: driftStatus,
    drifted: z.boolean(),
    referenceMean: num,
    currentMean: num,
    bins: z.array(z.object({ label: z.string(), reference: num, current: num })),
  })
  .meta({ id: 'ColumnDrift' });

export const driftResponseSchema = z
  .object({
    model: modelRefSchema,
    reference: z.object({ rows: z.number().int(), source: z.string() }),
    current: z.object({
      rows: z.number().int(),
      source: z.string(),
      // The live window's (GET drift/live).
      capacity: z.number().int().optional(),
      totalSeen: z.number().int().optional(),
      firstSeenAt: z.string().nullable().optional(),
      lastSeenAt: z.string().nullable().optional(),
    }),
    bins: z.number().int(),
    thresholds: z.object({ psiWarn: num, psiAlert: num, ksAlpha: num, ndcg: num }),
    features: z.array(columnDriftSchema),
    predictions: z.array(columnDriftSchema),
    labels: columnDriftSchema.optional(),
    performance: z.object({ metric: z.enum(['accuracy', 'rmse']), reference: num, current: num, change: num }).optional(),
    attributions: z
      .array(
        z.object({
          output: z.string(),
          outputIndex: z.number().int(),
          ndcg: num,
          flagged: z.boolean(),
          referenceRows: z.number().int(),
          currentRows: z.number().int(),
          features: z.array(
            z.object({
              feature: z.string(),
              reference: num,
              current: num,
              change: num,
              relativeChange: nullableNum,
              referenceRank: z.number().int(),
              currentRank: z.number().int(),
            }),
          ),
        }),
      )
      .optional(),
    summary: z.object({
      drifted: z.array(z.string()),
      warned: z.array(z.string()),
      predictionDrift: z.boolean(),
      attributionDrift: z.boolean().nullable(),
    }),
    flags: z.array(
      z.object({
        kind: z.enum(['feature-drift', 'prediction-drift', 'label-drift', 'attribution-drift']),
        feature: z.string().optional(),
        message: z.string(),
      }),
    ),
    notes: z.array(z.string()),
    stopReason: z
      .enum(['deadline'])
      .optional()
      .meta({ description: 'Present when the deadline cut the report short: attribution drift is missing (see notes)' }),
  })
  .meta({ id: 'DriftReport' });

// ---------------------------------------------------------------------------------------------
// Jobs.

const rowError = z.object({ code: z.string(), message: z.string() });

export const jobViewSchema = z
  .object({
    id: z.string(),
    model: z.string(),
    version: z.string(),
    method: z.enum(METHOD_NAMES),
    status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
    rowsDone: z.number().int(),
    rowsTotal: z.number().int(),
    rowsFailed: z.number().int(),
    ratePerSecond: nullableNum,
    etaSeconds: nullableNum,
    errors: z.array(z.object({ index: z.number().int(), line: z.number().int().optional(), code: z.string(), message: z.string() })),
    error: rowError.optional(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    chunkSize: z.number().int(),
    parameters: z.record(z.string(), z.unknown()),
    outputs: z.array(z.number().int()).optional(),
  })
  .meta({ id: 'Job' });

export const jobListSchema = z.object({ jobs: z.array(jobViewSchema) });

/** One line of GET /v1/jobs/:id/results: an explained row, or a row that failed. */
export const jobResultLineSchema = z.union([
  instanceExplanationSchema.extend({
    index: z.number().int(),
    line: z.number().int().optional(),
    label: z.union([z.string(), num]).optional(),
  }),
  z.object({ index: z.number().int(), line: z.number().int().optional(), label: z.union([z.string(), num]).optional(), error: rowError }),
]);

// ---------------------------------------------------------------------------------------------
// Operations and the rest.

export const signedUrlResponseSchema = z.object({ url: z.string(), expiresAt: z.string() });

/** With API keys on, a request without a valid key gets `status` alone. */
export const healthSchema = z.object({
  status: z.literal('ok'),
  backend: z.string().optional(),
  models: z.number().int().optional(),
  loadErrors: z.array(loadErrorSchema).optional(),
  uptimeSeconds: num.optional(),
  cache: z.object({ hits: num, misses: num, entries: num, bytes: num, maxBytes: num }).optional(),
  records: z.object({ count: num, bytes: num, maxCount: num, maxBytes: num }).optional(),
});

export const readySchema = z.object({
  ready: z.boolean(),
  models: z.array(z.string()),
  queue: z
    .object({ kind: z.enum(['local', 'redis']), ready: z.boolean(), error: z.string().optional() })
    .optional()
    .meta({ description: 'The batch job queue: not ready while Redis cannot be reached' }),
});

/** IG rules and explain methods, for the API document's enums. */
export const ENUMS = { methods: METHOD_NAMES, igRules: IG_RULES };
