/**
 * Request schemas: the single source of the request types. Limits come from the config, so a
 * request beyond a cap fails validation with a message naming the cap.
 */
import { z } from 'zod';
import type { Config } from './config.js';
import { ApiError, type ErrorCode } from './errors.js';

export const METHODS = ['kernel-shap', 'integrated-gradients'] as const;
export const IG_RULES = ['gauss-legendre', 'riemann-left', 'riemann-right', 'riemann-middle', 'riemann-trapezoid', 'exact'] as const;
export const METRICS = ['accuracy', 'balanced_accuracy', 'log_loss', 'roc_auc', 'mse', 'rmse', 'mae', 'r2'] as const;

const rowsOf = (max: number, what: string) =>
  z.array(z.unknown()).min(1, `${what} needs at least one row`).max(max, `${what} may hold at most ${max} rows`);

const outputSelectors = z
  .array(z.union([z.number(), z.string()]))
  .min(1)
  .max(1000);

export function schemas(cfg: Config) {
  const deadlineMs = z.number().int().positive().max(cfg.maxDeadlineMs, `deadlineMs may be at most ${cfg.maxDeadlineMs}`);

  const predict = z.strictObject({
    instances: rowsOf(cfg.maxInstances, 'instances'),
  });

  const explain = z.strictObject({
    instances: rowsOf(cfg.maxInstances, 'instances'),
    method: z.string().default('kernel-shap'),
    outputs: outputSelectors.optional(),
    parameters: z.record(z.string(), z.unknown()).default({}),
  });

  const kernelShap = z.strictObject({
    nSamples: z
      .union([
        z.literal('auto'),
        z.number().int().min(2, 'nSamples must be at least 2').max(cfg.maxNSamples, `nSamples may be at most ${cfg.maxNSamples}`),
      ])
      .default('auto'),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(0),
    background: rowsOf(cfg.maxBackgroundRows, 'background').optional(),
    link: z.enum(['identity', 'logit']).optional(),
    tolerance: z.number().positive().max(1).default(0.01),
    deadlineMs: deadlineMs.optional(),
    maxBackground: z.number().int().min(1).max(1000).default(100),
  });

  const integratedGradients = z.strictObject({
    steps: z.union([z.literal('auto'), z.number().int().min(1).max(cfg.maxSteps, `steps may be at most ${cfg.maxSteps}`)]).default('auto'),
    // Absent: the explainer picks exact integration for piecewise-linear networks, else Gauss-Legendre.
    method: z.enum(IG_RULES).optional(),
    baseline: z.union([z.literal('zeros'), z.literal('mean'), rowsOf(1000, 'baseline')]).optional(),
    tolerance: z.number().positive().max(1).default(0.01),
    maxSteps: z.number().int().min(1).max(cfg.maxSteps, `maxSteps may be at most ${cfg.maxSteps}`).optional(),
    deadlineMs: deadlineMs.optional(),
  });

  const importance = z.strictObject({
    data: rowsOf(cfg.maxImportanceRows, 'data').optional(),
    labels: z.array(z.union([z.number(), z.string()])).optional(),
    metric: z.enum(METRICS).optional(),
    metrics: z.array(z.enum(METRICS)).max(METRICS.length).optional(),
    repeats: z.number().int().min(1).max(cfg.maxRepeats, `repeats may be at most ${cfg.maxRepeats}`).default(5),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(0),
    maxSamples: z.number().positive().optional(),
    sampleWeights: z.array(z.number()).optional(),
    output: z.union([z.number(), z.string()]).optional(),
  });

  return { predict, explain, kernelShap, integratedGradients, importance };
}

export type Schemas = ReturnType<typeof schemas>;

/** Parses or throws an ApiError listing each problem as "path: message". */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix = '', code: ErrorCode = 'INVALID_REQUEST'): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const p = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
    return `${p || '(body)'}: ${i.message}`;
  });
  throw new ApiError(code, problems.join('; '), {
    issues: r.error.issues.map((i) => ({ path: [prefix, ...i.path].filter((x) => x !== ''), message: i.message })),
  });
}
