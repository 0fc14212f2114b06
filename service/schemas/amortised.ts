/**
 * POST /v1/models/:name/amortised (train the amortised explainer of the model's current version) and
 * GET /v1/models/:name/amortised (its state): request and response schemas. The hyperparameters'
 * defaults and finer checks are the explainers' (explainers/amortised/training.ts); this schema bounds
 * what a request may ask for (a training job costs minutes of a worker thread).
 */
import { z } from 'zod';
import { AMORTISED_ACTIVATIONS, AMORTISED_SYNTHESES, DEFAULT_HYPERPARAMETERS, MAX_ENSEMBLE } from '../../explainers/amortised/training.js';
import { AMORTISED_SAMPLERS } from '../../explainers/amortised/sampling.js';
import { seedSchema, modelRefSchema } from './common.js';

const num = z.number();

export const amortisedParametersSchema = z
  .strictObject({
    seed: seedSchema.optional().meta({ description: 'Seeds the split, synthetic rows, coalitions, initial weights and shuffles (default 0)' }),
    coalitionsPerRow: z
      .number()
      .int()
      .min(4)
      .max(65_536)
      .optional()
      .meta({ description: `Coalitions evaluated per training row (default ${DEFAULT_HYPERPARAMETERS.coalitionsPerRow}; all of them when 2^M - 2 fit)` }),
    syntheticRows: z.number().int().min(0).max(100_000).optional().meta({ description: 'Synthetic training rows (default 12 per real training row, at most 8,000)' }),
    synthesis: z
      .enum(AMORTISED_SYNTHESES)
      .optional()
      .meta({ description: "How synthetic rows are drawn: 'copula' (default; a Gaussian copula of the real training rows) or 'hybrid' (each player's columns from one of two random rows)" }),
    heldOutRows: z.number().int().min(1).max(1000).optional().meta({ description: 'Reference rows held out for validation (default 20%, at most 100)' }),
    earlyStoppingFraction: z.number().min(0.01).max(0.5).optional(),
    hidden: z.array(z.number().int().min(1).max(1024)).max(4).optional().meta({ description: `Hidden layer widths (default [${DEFAULT_HYPERPARAMETERS.hidden.join(', ')}])` }),
    activation: z.enum(AMORTISED_ACTIVATIONS).optional(),
    linearSkip: z.boolean().optional(),
    probes: z.boolean().optional().meta({ description: "Give the network each row's 2M probe values (2M + 1 model rows per explained row)" }),
    probeRows: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .optional()
      .meta({ description: `The probes' rows: 0 = the background's mean row (2M + 1 model rows per explained row); R = a k-means summary of R background rows, the whole background when R covers it (2MR + 1; default ${DEFAULT_HYPERPARAMETERS.probeRows})` }),
    probeBudgetMs: z
      .number()
      .min(0)
      .max(10_000)
      .optional()
      .meta({
        description: `Single-row time the probes may take when served, in ms (0: no limit; default ${DEFAULT_HYPERPARAMETERS.probeBudgetMs}): the build times the probes at probeRows on real rows and takes fewer probe rows until they fit; the choice is in the training record (training.probes)`,
      }),
    sampler: z.enum(AMORTISED_SAMPLERS).optional(),
    maxEpochs: z.number().int().min(1).max(5000).optional().meta({ description: `Default ${DEFAULT_HYPERPARAMETERS.maxEpochs}` }),
    patience: z.number().int().min(1).max(500).optional().meta({ description: `Epochs without improvement before stopping (default ${DEFAULT_HYPERPARAMETERS.patience})` }),
    batchSize: z.number().int().min(1).max(4096).optional(),
    learningRate: z.number().positive().max(1).optional(),
    minLearningRate: z.number().positive().max(1).optional(),
    weightDecay: z.number().min(0).max(1).optional(),
    ensemble: z
      .number()
      .int()
      .min(1)
      .max(MAX_ENSEMBLE)
      .optional()
      .meta({
        description: `Networks trained one after another on the same labels (own initial weights and row order) and served as one network whose output is their mean: training time and hidden widths x ensemble (default ${DEFAULT_HYPERPARAMETERS.ensemble})`,
      }),
    referenceSamples: z
      .number()
      .int()
      .min(256)
      .max(1_000_000)
      .optional()
      .meta({ description: 'Validation beyond 14 players: the Kernel SHAP budget of the reference (default 32,768)' }),
  })
  .meta({ id: 'AmortisedParameters' });

export const amortisedTrainSchema = z
  .strictObject({
    parameters: amortisedParametersSchema.default({}),
    force: z.boolean().default(false).meta({ description: 'Train again although an explainer is stored for this model version' }),
  })
  .meta({ id: 'AmortisedTrainRequest' });

export type AmortisedTrainBody = z.infer<typeof amortisedTrainSchema>;

const errorStatsSchema = z.object({ count: z.number().int(), meanAbs: num, p95Abs: num, meanRelative: num, p95Relative: num });

/** The validation as GET /v1/models/:name publishes it. */
export const amortisedValidationSummarySchema = z
  .object({
    reference: z.enum(['exact', 'kernel-shap']).meta({ description: 'exact: every coalition enumerated; kernel-shap: Kernel SHAP at referenceSamples' }),
    rows: z.number().int(),
    meanAbs: num.meta({ description: 'Mean over held-out rows of max |φ - φ*| over features (link units)' }),
    p95Abs: num,
    meanRelative: num.meta({ description: "The same divided by each row's attribution range" }),
    p95Relative: num,
    kernelShapMeanAbs: num.optional().meta({ description: "Kernel SHAP's own error at 2088 coalitions on the same rows, against the same reference" }),
    ratioToKernelShap: num.optional(),
    shapKernelExplainerMeanAbs: num
      .optional()
      .meta({ description: "The error of shap's KernelExplainer sampling scheme at the same budget on the same rows, against the same reference" }),
    ratioToShapKernelExplainer: num.optional(),
  })
  .meta({ id: 'AmortisedValidationSummary' });

const stateEnum = z.enum(['none', 'training', 'ready', 'failed', 'stale']).meta({
  description:
    'none: never trained; training: a job is queued or running for this version; ready: stored for this version; failed: the last job for this version failed; stale: trained only for other versions',
});

/** In GET /v1/models/:name. */
export const amortisedBriefSchema = z
  .object({
    state: stateEnum,
    servable: z.boolean().meta({ description: 'amortised-shap answers from it (else Kernel SHAP does, saying so)' }),
    threshold: num,
    maxRatio: num,
    validation: amortisedValidationSummarySchema.optional(),
  })
  .meta({ id: 'AmortisedBrief' });

export const amortisedStateSchema = z
  .object({
    model: modelRefSchema,
    state: stateEnum,
    servable: z.boolean(),
    threshold: num.meta({ description: 'AMORTISED_THRESHOLD: the largest validated mean relative error served' }),
    maxRatio: num.meta({
      description: "AMORTISED_MAX_RATIO: also served, at any error, when its validated error is at most this multiple of shap's KernelExplainer scheme's at 2088 coalitions on the same rows (0: never)",
    }),
    reason: z.string().optional().meta({ description: 'Why it is not servable' }),
    job: z
      .object({
        id: z.string(),
        status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
        progress: z.record(z.string(), z.unknown()).optional(),
        error: z.object({ code: z.string(), message: z.string() }).optional(),
        createdAt: z.string(),
        finishedAt: z.string().nullable(),
        etaSeconds: num.nullable(),
      })
      .optional()
      .meta({ description: 'The latest training job of this model version' }),
    explainer: z
      .object({
        id: z.string(),
        createdAt: z.string(),
        modelVersion: z.string(),
        players: z.number().int(),
        link: z.enum(['identity', 'logit']),
        outputs: z.array(z.string()),
        probes: z.boolean(),
        network: z.object({ inputs: z.number().int(), hidden: z.array(z.number().int()), outputs: z.number().int(), activation: z.string(), linearSkip: z.boolean() }),
        hyperparameters: z.record(z.string(), z.unknown()),
        training: z.record(z.string(), z.unknown()).optional().meta({ description: 'Rows, model evaluations, epochs and times of the training (without the loss history)' }),
        validation: z
          .object({
            reference: z.enum(['exact', 'kernel-shap']),
            referenceSamples: num,
            referenceStdErr: num.optional().meta({ description: "Sampled reference only: its mean largest standard error (link units); every error here includes the reference's own" }),
            rows: z.number().int(),
            players: z.number().int(),
            amortised: errorStatsSchema,
            amortisedPerOutput: z.array(errorStatsSchema),
            kernelShap: errorStatsSchema.extend({ nSamples: num }).optional(),
            ratioToKernelShap: num.optional(),
            shapKernelExplainer: errorStatsSchema.extend({ nSamples: num }).optional(),
            ratioToShapKernelExplainer: num.optional(),
            modelEvaluations: num,
            computeMs: num,
          })
          .optional(),
      })
      .optional()
      .meta({ description: 'The explainer stored for this model version' }),
    otherVersions: z.array(z.string()).optional().meta({ description: 'Versions of the model with a stored explainer (state stale)' }),
  })
  .meta({ id: 'AmortisedState' });

export type AmortisedStateBody = z.infer<typeof amortisedStateSchema>;
