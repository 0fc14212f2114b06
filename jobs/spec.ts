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
import { resolveOutputs } from '../service/instances.js';
import { fixedOutputs, selectOutputs, type OutputsRequest } from '../service/outputs.js';
import { checkMethod, EXPLAIN_METHODS, planExplanation } from '../service/methods/index.js';
import type { Limits } from '../service/schemas/common.js';
import { DATA_JOB_METHODS, MAX_CHUNK_SIZE, type DataJobMethod } from '../service/schemas/requests.js';
import type { ExplainTask } from '../service/tasks.js';
import { DATA_JOB_CHUNK_SIZE, planDataJob } from './dataJobs.js';
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

/** Options as plain JSON: Rows (at any depth, e.g. smoothgrad's IG baseline) become PlainRows. */
function plainOptions(v: unknown): unknown {
  if (isRows(v)) return toPlain(v);
  if (Array.isArray(v)) return v.map(plainOptions);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plainOptions(x)]));
  return v;
}

/** The inverse of plainOptions. */
function rowsOptions(v: unknown): unknown {
  if (isPlainRows(v)) return fromPlain(v);
  if (Array.isArray(v)) return v.map(rowsOptions);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rowsOptions(x)]));
  return v;
}

function isDataJob(method: string | undefined): method is DataJobMethod {
  return (DATA_JOB_METHODS as readonly (string | undefined)[]).includes(method);
}

/**
 * `rows`: the job's good rows, which an effects job takes its grids from (the other methods ignore them).
 * Counterfactuals and effects jobs are planned by jobs/dataJobs.ts.
 */
export function buildSpec(limits: Limits, m: ServedModel, req: JobRequest, rows?: Rows): JobSpec {
  const checkChunk = (chunkSize: number) => {
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
      throw new ServiceError('BAD_PARAMETER', `chunkSize must be an integer from 1 to ${MAX_CHUNK_SIZE}, got ${chunkSize}`);
    }
    return chunkSize;
  };
  if (isDataJob(req.method)) {
    const method = req.method;
    // Data jobs keep their own output semantics (no predicted-class default): "all" names every output.
    const outputs = req.outputs === 'all' ? m.space.outputNames.map((_, i) => i) : resolveOutputs(req.outputs, m.space);
    const chunkSize = checkChunk(req.chunkSize ?? DATA_JOB_CHUNK_SIZE[method]);
    const plan = planDataJob(limits, m, method, req.parameters ?? {}, outputs, rows);
    return {
      model: m.name,
      version: m.version,
      method,
      parameters: plan.parameters,
      ...(outputs ? { outputs } : {}),
      options: plan.options,
      chunkSize,
      nFeatures: m.model.nFeatures,
      featureNames: m.space.featureNames,
      outputNames: m.space.outputNames,
    };
  }
  const method = checkMethod(req.method);
  const selection = selectOutputs(req.outputs, m);
  const outputs = fixedOutputs(selection);
  const chunkSize = checkChunk(req.chunkSize ?? EXPLAIN_METHODS[method].chunkSize);
  // The same validation, defaults and background/baseline resolution as POST /explain; no deadline.
  const plan = planExplanation(limits, m, method, req.parameters ?? {});
  const options = plainOptions(plan.options) as Record<string, unknown>;
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

/** The task that explains `rows` of an explanation job: the same for every chunk, worker and restart. */
export function taskFor(spec: JobSpec, rows: Rows): ExplainTask {
  const options = rowsOptions(spec.options) as Record<string, unknown>;
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
