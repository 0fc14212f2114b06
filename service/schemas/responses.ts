/**
 * Response schemas: the shapes the service answers with, for the OpenAPI document (and, through it,
 * test/server.openapi.test.ts, which validates real responses of every route). The document's
 * objects are closed (zod's output schemas): a field the service adds must be declared here first,
 * or that test fails. Fields may be added, never removed or renamed.
 */
import { z } from 'zod';
import { IG_RULES } from '../../explainers/defaults.js';
import { EFFECT_KINDS } from '../../explainers/effects/types.js';
import { LINK_NAMES } from '../../explainers/link.js';
import { ERROR_CODES } from '../errors.js';
import { METHOD_NAMES } from '../methods/index.js';
import { DATA_JOB_METHODS } from './requests.js';
import { modelRefSchema } from './common.js';
import { amortisedBriefSchema } from './amortised.js';

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
        immutable: z.boolean().optional().meta({ description: 'Counterfactuals never change it' }),
        monotone: z.enum(['increasing', 'decreasing']).optional().meta({ description: 'Counterfactuals may only raise (lower) it' }),
        min: num.optional().meta({ description: 'Lowest value a counterfactual may propose' }),
        max: num.optional().meta({ description: 'Highest value a counterfactual may propose' }),
        categories: z
          .array(z.object({ value: num, label: z.string() }))
          .optional()
          .meta({ description: 'Readable names of coded values (on a one-hot column: its category)' }),
      }),
    ),
    outputs: z.array(z.object({ name: z.string(), description: z.string().optional() })),
    sensitiveFeatures: z.array(z.string()).optional(),
    groups: z.array(z.object({ name: z.string(), features: z.array(z.string()) })).optional(),
    hasBackground: z.boolean().optional(),
    hasReference: z.boolean().optional(),
    backgroundRows: z.number().int().optional(),
    referenceRows: z.number().int().optional(),
    versionLabel: z.string().optional(),
    description: z.string().nullable().optional(),
    classes: z.array(z.string()).optional(),
    link: z.enum(['identity', 'logit']).optional(),
    tokenizer: z
      .object({ maxLength: z.number().int(), vocabularySize: z.number().int() })
      .optional()
      .meta({ description: 'text models: the tokenizer.json of the folder (instances may be sentences)' }),
    methods: z
      .array(z.enum(METHOD_NAMES))
      .optional()
      .meta({ description: 'The explain methods that work for this model (its kind of input, gradients, layer access)' }),
  })
  .meta({ id: 'Model' });

const loadErrorSchema = z.object({
  name: z.string(),
  version: z.string().optional().meta({ description: 'The version folder (versions/<label>/) that failed' }),
  message: z.string(),
});

export const modelListSchema = z.object({ models: z.array(modelDescriptionSchema), loadErrors: z.array(loadErrorSchema) });
/** One served version of a model (GET /v1/models/{name}). */
export const modelVersionSchema = z.object({
  version: z.string().meta({ description: 'Content hash of the version folder' }),
  label: z.string().optional().meta({ description: 'The folder name under versions/ (that layout only)' }),
  state: z.enum(['serving', 'draining']).meta({ description: 'draining: left MODEL_DIR; still answers pinned requests and permalinks until retiresAt' }),
  default: z.boolean().meta({ description: 'The version requests that pin none get' }),
  loadedAt: z.string().nullable(),
  retiresAt: z.string().optional(),
});

export const modelDetailSchema = modelDescriptionSchema.extend({
  metadata: z.record(z.string(), z.unknown()).nullable(),
  versions: z.array(modelVersionSchema).optional(),
  amortised: amortisedBriefSchema.optional().meta({ description: "The amortised explainer of this version: state, servable, validated error (tabular models with background and reference sets)" }),
});

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
        attributions: z.array(
          z.object({
            feature: z.string(),
            value: num,
            attribution: num,
            stderr: num.optional(),
            position: z.number().int().optional().meta({ description: "Text models: the token's position in the instance (features are its tokens)" }),
          }),
        ),
        approximationError: num
          .nullable()
          .meta({ description: 'null when unknown: a row cut by the deadline before any of its coalitions was evaluated' }),
        groups: z
          .array(
            z.object({
              group: z.string(),
              members: z.array(z.string()),
              active: z.string().nullable(),
              activeFeature: z.string().nullable(),
              attribution: num,
              stderr: num.optional(),
            }),
          )
          .optional()
          .meta({
            description:
              'One-hot groups (metadata "group") as one attribution each: the sum of the members\' attributions (Kernel SHAP estimates ' +
              'only this value; the per-column values are it split equally), the active category by its label, and the stderr when the members have one',
          }),
      }),
    ),
    converged: z.boolean(),
    stopReason: z.enum(['exact', 'tolerance', 'budget', 'deadline', 'amortised']).meta({
      description:
        'Why the computation stopped: exact (enumerated or integrated exactly), tolerance (the error estimate met the tolerance), ' +
        'budget (the whole requested budget was spent without meeting it; still cached), deadline (cut short: the best estimate so far, never cached), ' +
        'amortised (one pass of a trained explainer)',
    }),
    modelEvaluations: num,
    computeMs: num,
    diagnostics: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'InstanceExplanation' });

export const explanationResponseSchema = z
  .object({
    model: modelRefSchema,
    method: z.enum(METHOD_NAMES),
    fallback: z
      .object({ requested: z.literal('amortised-shap'), reason: z.enum(['not-trained', 'stale', 'not-validated', 'above-threshold', 'unsupported']), message: z.string() })
      .optional()
      .meta({ description: 'amortised-shap was asked for but could not answer (not trained for this model version, stale, above AMORTISED_THRESHOLD): `method` answered instead' }),
    id: z.string().regex(/^[0-9a-f]{32}$/),
    links: z.object({ json: z.string(), svg: z.string(), png: z.string(), html: z.string() }),
    explanations: z.array(instanceExplanationSchema),
    outputSelection: z.enum(['requested', 'all', 'predicted-class']).meta({
      description:
        'Which outputs each instance explains: the requested ones, all, or (the default for classifiers with several outputs) each instance\'s predicted class; each instance lists its outputs with outputIndex',
    }),
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
// Counterfactuals and recourse.

const resolvedDesiredSchema = z.union([
  z.object({ class: z.number().int() }),
  z.object({ range: z.tuple([nullableNum, nullableNum]), output: z.number().int() }),
]);

export const counterfactualSchema = z
  .object({
    values: z.array(num).meta({ description: "The whole row, in the model's feature order" }),
    changes: z.array(
      z.object({
        feature: z.string(),
        from: num,
        to: num,
        group: z.string().optional(),
        fromLabel: z.string().optional(),
        toLabel: z.string().optional(),
      }),
    ),
    distance: num,
    sparsity: z.number().int(),
    plausibility: num,
    neighbourDistance: num,
    valid: z.boolean(),
    prediction: z.array(num),
    source: z.enum(['coordinate', 'gradient', 'prototype', 'sphere']),
  })
  .meta({ id: 'Counterfactual' });

export const instanceCounterfactualsSchema = z
  .object({
    found: z.boolean(),
    status: z.enum(['found', 'not-found', 'already-desired']),
    stopReason: z.enum(['complete', 'budget', 'deadline']),
    prediction: z.array(num),
    desired: resolvedDesiredSchema,
    counterfactuals: z.array(counterfactualSchema),
    diversity: z.object({ dpp: num, meanPairwiseDistance: num }).optional(),
    modelEvaluations: num,
    gradientEvaluations: num,
    computeMs: num,
    diagnostics: z.object({
      validBySource: z.record(z.string(), num),
      candidatesEvaluated: num,
      implausible: num,
    }),
  })
  .meta({ id: 'InstanceCounterfactuals' });

export const counterfactualsResponseSchema = z
  .object({
    model: modelRefSchema,
    explanations: z.array(instanceCounterfactualsSchema).meta({ description: 'One per instance, in request order' }),
    scales: z.array(
      z.object({
        feature: z.string(),
        kind: z.enum(['numeric', 'integer', 'categorical', 'one-hot']),
        scale: num,
        scaleSource: z.enum(['mad', 'mean-absolute-deviation', 'unit']),
        mutable: z.boolean(),
      }),
    ),
    referenceEvaluations: num,
    computeMs: num,
    parameters: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'Counterfactuals' });

const recourseEstimateSchema = z.object({ value: nullableNum, lo: nullableNum, hi: nullableNum });

export const recourseBurdenSchema = z
  .object({
    feature: z.string(),
    favourable: resolvedDesiredSchema,
    groups: z.array(
      z.object({
        label: z.string(),
        rows: z.number().int(),
        unfavourable: z.number().int(),
        withRecourse: z.number().int(),
        withoutRecourse: z.number().int(),
        meanCost: recourseEstimateSchema,
        medianCost: recourseEstimateSchema,
        noRecourseRate: recourseEstimateSchema,
        meanSparsity: nullableNum,
      }),
    ),
    meanCostDifference: recourseEstimateSchema,
    meanCostRatio: recourseEstimateSchema,
    costs: z.array(z.object({ row: z.number().int(), group: z.number().int(), cost: nullableNum, sparsity: nullableNum })),
    bootstrap: z.object({ n: z.number().int(), seed: num, confidence: num }),
    incomplete: z.object({ deadline: z.number().int(), budget: z.number().int() }),
    modelEvaluations: num,
    computeMs: num,
  })
  .meta({ id: 'RecourseBurden' });

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
    recourse: z
      .array(recourseBurdenSchema)
      .optional()
      .meta({ description: 'Recourse burden per sensitive feature (when the request asks for it)' }),
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
      lowConfidence: z.boolean().meta({
        description: 'fewer than minimumRows rows on a side: every statistic is given, nothing is flagged drifted',
      }),
      minimumRows: z.number().int(),
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
// Global effects.

const featureKindSchema = z.enum(['numeric', 'categorical', 'one-hot']);

export const effectSchema = z
  .object({
    kind: z.enum(EFFECT_KINDS),
    feature: z.string(),
    featureKind: featureKindSchema,
    output: z.string(),
    outputIndex: z.number().int(),
    link: z.enum(LINK_NAMES),
    grid: z
      .array(num)
      .meta({ description: 'Grid points (pd, ice), bin edges (numeric ale), categories (codes or positions), or trend bins (dependence)' }),
    categories: z.array(z.string()).optional(),
    values: z
      .union([z.array(num), z.array(z.array(num))])
      .meta({ description: 'Parallel to grid; 2-D: values[i][j] at (grid[i], grid2[j])' }),
    rows: z.number().int(),
    modelEvaluations: num,
    // pd, ice
    deciles: z.array(num).optional(),
    counts: z.union([z.array(num), z.array(z.array(num))]).optional(),
    curves: z.array(z.array(num)).optional().meta({ description: 'ice: one curve per row' }),
    rowIndices: z.array(z.number().int()).optional(),
    centered: z.boolean().optional(),
    rowValues: z.array(num).optional(),
    // ale
    intervals: z.array(z.tuple([num, num])).optional(),
    stderr: z.array(num).optional(),
    lower: z.array(num).optional(),
    upper: z.array(num).optional(),
    confidence: num.optional(),
    offset: num.optional(),
    categoryOrder: z.enum(['similarity', 'value']).optional(),
    // 2-D
    feature2: z.string().optional(),
    featureKind2: featureKindSchema.optional(),
    grid2: z.array(num).optional(),
    categories2: z.array(z.string()).optional(),
    // dependence
    points: z
      .object({
        values: z.array(num),
        attributions: z.array(num),
        interaction: z.array(num).optional(),
        interactionValues: z.array(num).optional(),
      })
      .optional(),
    interaction: z
      .object({ feature: z.string(), kind: featureKindSchema, categories: z.array(z.string()).optional(), score: num })
      .nullable()
      .optional(),
    interactionScores: z.array(z.object({ feature: z.string(), score: num })).optional(),
    interactionMethod: z.enum(['approximate', 'exact', 'given']).optional(),
    attributionMethod: z.enum(['kernel-shap', 'exact', 'given']).optional(),
  })
  .meta({ id: 'Effect' });

export const effectsResponseSchema = z
  .object({
    model: modelRefSchema,
    kind: z.enum(EFFECT_KINDS),
    effects: z.array(effectSchema),
    modelEvaluations: num,
    computeMs: num,
    rows: z.number().int(),
    link: z.enum(LINK_NAMES),
    parameters: z.record(z.string(), z.unknown()),
    cached: z.boolean(),
  })
  .meta({ id: 'Effects' });

// ---------------------------------------------------------------------------------------------
// Jobs.

const rowError = z.object({ code: z.string(), message: z.string() });

export const jobViewSchema = z
  .object({
    id: z.string(),
    model: z.string(),
    version: z.string(),
    method: z.enum([...METHOD_NAMES, ...DATA_JOB_METHODS, 'amortised-training']),
    status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
    rowsDone: z.number().int(),
    rowsTotal: z.number().int(),
    rowsFailed: z.number().int(),
    rowsUnconverged: z
      .number()
      .int()
      .meta({ description: 'explained rows that stopped before converging (stopReason budget or deadline): estimates with larger errors' }),
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
    progress: z
      .object({
        phase: z.enum(['queued', 'labelling', 'training', 'validating', 'saving', 'done']),
        fraction: num.meta({ description: 'A rough share of the work done, 0..1' }),
        rowsDone: z.number().int().optional(),
        rowsTotal: z.number().int().optional(),
        epoch: z.number().int().optional(),
        maxEpochs: z.number().int().optional(),
        bestEpoch: z.number().int().optional(),
        member: z.number().int().optional().meta({ description: 'Training an ensemble: the network being trained (0-based); epoch is its own' }),
        members: z.number().int().optional().meta({ description: 'Training an ensemble: how many networks it has' }),
        validationLoss: num.optional(),
        modelEvaluations: num.optional(),
        elapsedMs: num.optional(),
        updatedAt: z.string(),
      })
      .optional()
      .meta({ description: 'A training job (amortised-training): how far it is' }),
    result: z
      .object({
        id: z.string(),
        validation: z.object({
          reference: z.enum(['exact', 'kernel-shap']),
          rows: z.number().int(),
          amortised: z.object({ count: z.number().int(), meanAbs: num, p95Abs: num, meanRelative: num, p95Relative: num }),
          kernelShap: z.object({ count: z.number().int(), meanAbs: num, p95Abs: num, meanRelative: num, p95Relative: num, nSamples: num }).optional(),
          ratioToKernelShap: num.optional(),
          shapKernelExplainer: z.object({ count: z.number().int(), meanAbs: num, p95Abs: num, meanRelative: num, p95Relative: num, nSamples: num }).optional(),
          ratioToShapKernelExplainer: num.optional(),
        }),
        trainingRows: z.number().int(),
        epochs: z.number().int(),
        modelEvaluations: num,
        totalMs: num,
      })
      .optional()
      .meta({ description: 'A succeeded training job: the stored explainer (GET /v1/models/{name}/amortised has the rest)' }),
    outputSelection: z.enum(['requested', 'all', 'predicted-class']).meta({
      description: 'Which outputs rows explain: the requested ones, all, or (default for classifiers) each row\'s predicted class',
    }),
  })
  .meta({ id: 'Job' });

export const jobListSchema = z.object({ jobs: z.array(jobViewSchema) });

/** GET /v1/jobs/:id/effects.json: an effects job's partial dependence over the rows done so far. */
export const jobEffectsSchema = z
  .object({
    job: z.object({
      id: z.string(),
      status: z.string(),
      rowsDone: z.number().int(),
      rowsTotal: z.number().int(),
      rowsFailed: z.number().int(),
    }),
    model: modelRefSchema,
    kind: z.literal('pd'),
    effects: z.array(effectSchema),
    rows: z.number().int(),
    link: z.enum(LINK_NAMES),
    parameters: z.record(z.string(), z.unknown()),
    modelEvaluations: num,
  })
  .meta({ id: 'JobEffects' });

const recordHead = { index: z.number().int(), line: z.number().int().optional(), label: z.union([z.string(), num]).optional() };

/** One line of GET /v1/jobs/:id/results: an explained row, a counterfactuals or effects job's row, or a row that failed. */
export const jobResultLineSchema = z.union([
  instanceExplanationSchema.extend(recordHead),
  instanceCounterfactualsSchema.extend(recordHead),
  z.object({
    ...recordHead,
    effects: z.array(z.object({ feature: z.string(), output: z.string(), outputIndex: z.number().int(), values: z.array(num) })),
  }),
  z.object({ index: z.number().int(), line: z.number().int().optional(), label: z.union([z.string(), num]).optional(), error: rowError }),
]);

// ---------------------------------------------------------------------------------------------
// Operations and the rest.

export const signedUrlResponseSchema = z.object({ url: z.string(), expiresAt: z.string() });

/** A bounded store the replicas share on Redis (REDIS_URL): its bounds and, as of this replica's last write, its size. */
const sharedStoreSchema = z.object({ up: z.boolean(), count: num, bytes: num, maxCount: num, maxBytes: num, ttlSeconds: num });

/** Level two of the explanation cache (REDIS_URL), with this replica's counters since start. */
const sharedCacheSchema = sharedStoreSchema.extend({
  hits: num.meta({ description: 'Instances read from level two' }),
  waited: num.meta({ description: 'Instances another replica computed while this one waited (single flight)' }),
  fallbacks: num.meta({ description: 'Waits that ended without a value (holder gone, or result not cacheable)' }),
  waiting: num.meta({ description: 'Waits in progress now' }),
  writes: num,
  writtenBytes: num.meta({ description: 'Encoded bytes written (writtenBytes / writes = bytes per explanation)' }),
  errors: num,
});

/** With API keys on, a request without a valid key gets `status` alone. */
export const healthSchema = z.object({
  status: z.literal('ok'),
  backend: z.string().optional(),
  models: z.number().int().optional(),
  loadErrors: z.array(loadErrorSchema).optional(),
  uptimeSeconds: num.optional(),
  cache: z.object({ hits: num, misses: num, entries: num, bytes: num, maxBytes: num, shared: sharedCacheSchema.optional() }).optional(),
  records: z.object({ count: num, bytes: num, maxCount: num, maxBytes: num, shared: sharedStoreSchema.optional() }).optional(),
});

/** With API keys on, a request without a valid key gets no model names, reason or queue error. */
export const readySchema = z.object({
  ready: z.boolean(),
  models: z.array(z.string()),
  reason: z.string().optional().meta({ description: 'Why the process is not ready' }),
  queue: z
    .object({ kind: z.enum(['local', 'redis']), ready: z.boolean(), error: z.string().optional() })
    .optional()
    .meta({ description: 'The batch job queue: not ready while Redis cannot be reached' }),
  shared: z
    .object({ ready: z.boolean() })
    .optional()
    .meta({ description: 'The state shared with other replicas on Redis (REDIS_URL): while Redis is down this replica serves alone (still ready)' }),
});

/** IG rules and explain methods, for the API document's enums. */
export const ENUMS = { methods: METHOD_NAMES, igRules: IG_RULES };

// ---------------------------------------------------------------------------------------------
// Versions comparison (GET /v1/models/{name}/versions/compare).

const versionRefSchema = z.object({ version: z.string(), label: z.string().optional() });

export const versionComparisonSchema = z
  .object({
    model: z.string(),
    from: versionRefSchema,
    to: versionRefSchema,
    data: z.object({ source: z.enum(['reference', 'background']), rows: num }),
    features: z.array(z.string()),
    outputs: z.array(z.string()),
    predictions: z.object({
      shifts: z.array(
        z.object({
          output: z.string(),
          outputIndex: num,
          meanFrom: num,
          meanTo: num,
          meanDifference: num.meta({ description: 'Mean of to - from over the rows' }),
          meanAbsDifference: num,
          maxAbsDifference: num,
          quantiles: z.array(z.object({ q: num, value: num })),
          histogram: z.object({ edges: z.array(num), counts: z.array(num) }),
        }),
      ),
      agreement: z
        .object({
          rule: z.enum(['argmax', 'threshold']),
          threshold: num.optional(),
          classes: z.array(z.string()),
          rows: num,
          agreeing: num,
          rate: num.meta({ description: 'Share of rows both versions decide the same (classifiers)' }),
          confusion: z.array(z.array(num)).meta({ description: 'confusion[a][b]: rows decided a before and b after' }),
        })
        .optional(),
      largestChanges: z.array(
        z.object({
          row: num,
          values: z.array(num),
          from: z.array(num),
          to: z.array(num),
          maxAbsDifference: num,
          fromClass: z.string().optional(),
          toClass: z.string().optional(),
        }),
      ),
    }),
    attributions: z
      .object({
        method: z.literal('kernel-shap'),
        sampleSize: num,
        nSamples: num,
        seed: num,
        maxBackground: num,
        outputs: z.array(
          z.object({
            output: z.string(),
            outputIndex: num,
            rows: num,
            ndcg: num.meta({ description: 'NDCG of the to ranking against the from ranking (as attribution drift)' }),
            features: z.array(
              z.object({
                feature: z.string(),
                meanAbsFrom: num,
                meanAbsTo: num,
                change: num,
                rankFrom: num,
                rankTo: num,
                meanFrom: num,
                meanTo: num,
                signFlipped: z.boolean(),
                rowSignFlipRate: num,
              }),
            ),
            signFlips: z.array(z.string()),
          }),
        ),
      })
      .optional(),
    fairness: z
      .object({
        sensitiveFeatures: z.array(z.string()),
        metrics: z.array(
          z.object({
            features: z.array(z.string()),
            positiveClass: num.nullable(),
            metric: z.string(),
            differenceFrom: num.nullable(),
            differenceTo: num.nullable(),
            ratioFrom: num.nullable(),
            ratioTo: num.nullable(),
          }),
        ),
        flagsFrom: z.array(z.string()),
        flagsTo: z.array(z.string()),
      })
      .optional(),
    notes: z.array(z.string()),
    computedAt: z.string(),
    computeMs: num,
  })
  .meta({ id: 'VersionComparison' });

export const comparisonPendingSchema = z.object({
  status: z.literal('pending'),
  from: versionRefSchema,
  to: versionRefSchema,
  startedAt: z.string(),
  retryAfterSeconds: num,
});
