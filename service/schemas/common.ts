/**
 * Pieces every request schema shares, and the one way a request is parsed: zod, with each problem
 * reported as "path: message" under a stable code.
 */
import { z } from 'zod';
import type { ServiceConfig } from '../config.js';
import { ServiceError, type ErrorCode } from '../errors.js';

/** The caps a request is validated against (from the config). */
export type Limits = Pick<
  ServiceConfig,
  'maxInstances' | 'maxNSamples' | 'maxSteps' | 'maxBackgroundRows' | 'maxRepeats' | 'maxImportanceRows' | 'maxDeadlineMs' | 'maxSamples'
> &
  /** Where amortised explainers are stored and when they are served (planning amortised-shap needs them). */
  Partial<Pick<ServiceConfig, 'dataDir' | 'amortisedThreshold' | 'amortisedMaxRatio'>>;

export const seedSchema = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);

export const instanceSchema = z.unknown().meta({
  description:
    "One row: an array of numbers in the model's feature order, a nested array of the model's input shape, an object keyed by feature name, or (text models) a string",
});

/** Rows as JSON; each row is checked by service/instances.ts, which names the row and column at fault. */
export const rowsOf = (max: number, what: string) =>
  z.array(instanceSchema).min(1, `${what} needs at least one row`).max(max, `${what} may hold at most ${max} rows`);

export const outputSelectorSchema = z.union([z.number().int().min(0), z.string()]).meta({ description: 'An output index or name' });
export const outputSelectorsSchema = z
  .array(z.union([z.number(), z.string()]))
  .min(1)
  .max(1000);

/** Outputs to explain: a list, or "all"; absent: a classifier's predicted class per instance, else all. */
export const explainOutputsSchema = z.union([z.literal('all'), outputSelectorsSchema]).meta({
  description:
    'Outputs to explain, by index or name, or "all". Absent: for a classifier with several outputs, each instance\'s predicted class; otherwise all outputs',
});

export const labelsSchema = z
  .array(z.union([z.number(), z.string()]))
  .meta({ description: 'One label per row: a number, or a class name' });

export const deadlineMsSchema = (limits: Pick<Limits, 'maxDeadlineMs'>) =>
  z.number().int().positive().max(limits.maxDeadlineMs, `deadlineMs may be at most ${limits.maxDeadlineMs}`);

/**
 * A served version of the model the request pins (its content hash or versions/ label): server/route.ts
 * resolves it, with `?version=`, for every route that names a model; absent: the default version.
 */
export const versionSchema = z
  .string()
  .min(1)
  .max(100)
  .optional()
  .meta({ description: 'Pin a served version of the model (its content hash or versions/ label); default: the newest' });

export const modelRefSchema = z.object({ name: z.string(), version: z.string() });

/** Parses or throws a ServiceError listing each problem as "path: message". */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix = '', code: ErrorCode = 'INVALID_REQUEST'): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const p = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
    return `${p || '(body)'}: ${i.message}`;
  });
  throw new ServiceError(code, problems.join('; '), {
    issues: r.error.issues.map((i) => ({ path: [prefix, ...i.path].filter((x) => x !== ''), message: i.message })),
  });
}
