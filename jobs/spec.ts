/**
 * A job request (model, method, parameters, outputs) checked against the served model and resolved
 * into a JobSpec, the plain-JSON recipe every chunk is explained from. Parameters are validated with
 * the same schemas as POST /v1/models/:name/explain, with the same defaults.
 *
 * Jobs run without a deadline: a deadline would make a row's explanation depend on how busy the
 * machine was, and a job promises the same values whatever chunk, worker or restart a row lands on.
 */
import { createHash } from 'node:crypto';
import type { Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { ServiceError } from '../service/errors.js';
import { fixedOutputs, selectOutputs, type OutputsRequest } from '../service/outputs.js';
import { checkMethod, EXPLAIN_METHODS, planExplanation } from '../service/methods/index.js';
import type { Limits } from '../service/schemas/common.js';
import { MAX_CHUNK_SIZE } from '../service/schemas/requests.js';
import type { ExplainTask } from '../service/tasks.js';
import type { JobSpec, PlainRows } from './types.js';

export { checkMethod, MAX_CHUNK_SIZE };

export interface JobRequest {
  method?: string;
  parameters?: Record<string, unknown>;
  /** Outputs by index or name, or "all"; absent: a classifier's predicted class per row (service/outputs.ts). */
  outputs?: OutputsRequest;
  chunkSize?: number;
}

export function toPlain(rows: Rows): PlainRows {
  return { n: rows.n, d: rows.d, data: Array.from(rows.data) };
}

export function fromPlain(p: PlainRows): Rows {
  return { n: p.n, d: p.d, data: Float32Array.from(p.data) };
}

function isRows(v: unknown): v is Rows {
  return !!v && typeof v === 'object' && (v as Rows).data instanceof Float32Array;
}

function isPlainRows(v: unknown): v is PlainRows {
  return !!v && typeof v === 'object' && Array.isArray((v as PlainRows).data) && typeof (v as PlainRows).n === 'number';
}

export function buildSpec(limits: Limits, m: ServedModel, req: JobRequest): JobSpec {
  const method = checkMethod(req.method);
  const selection = selectOutputs(req.outputs, m);
  const outputs = fixedOutputs(selection);
  const chunkSize = req.chunkSize ?? EXPLAIN_METHODS[method].chunkSize;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new ServiceError('BAD_PARAMETER', `chunkSize must be an integer from 1 to ${MAX_CHUNK_SIZE}, got ${chunkSize}`);
  }
  // The same validation, defaults and background/baseline resolution as POST /explain; no deadline.
  const plan = planExplanation(limits, m, method, req.parameters ?? {});
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(plan.options)) options[k] = isRows(v) ? toPlain(v) : v;
  const parameters = plan.display;
  return {
    model: m.name,
    version: m.version,
    method,
    parameters,
    ...(outputs ? { outputs } : {}),
    outputSelection: selection.kind,
    options,
    chunkSize,
    nFeatures: m.model.nFeatures,
    featureNames: m.space.featureNames,
    outputNames: m.space.outputNames,
  };
}

/** The task that explains `rows` of a job: the same for every chunk, worker and restart. */
export function taskFor(spec: JobSpec, rows: Rows): ExplainTask {
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec.options)) options[k] = isPlainRows(v) ? fromPlain(v) : v;
  if (spec.outputs) options.outputs = spec.outputs;
  return {
    kind: 'explain',
    model: spec.model,
    version: spec.version,
    method: spec.method,
    rows,
    ...(spec.outputSelection === 'predicted-class' ? { predictedClass: true } : {}),
    options,
  } as ExplainTask;
}

/** A short hash of everything that decides a job's values: resuming with another recipe is refused. */
export function specFingerprint(spec: JobSpec, extra: unknown = null): string {
  return createHash('sha256').update(JSON.stringify({ spec, extra })).digest('hex').slice(0, 16);
}
