/**
 * The vocabulary of batch explanation jobs, shared by the CLI, the embedded runner, the Redis runner
 * and the BullMQ worker processes. Everything here is plain JSON so it can sit in a file or in Redis.
 */
import type { ExplainMethod, InstanceExplanation } from '../explainers/types.js';

/** One input row as the job sees it: its position, where it came from, and either values or what was wrong. */
export interface Item {
  /** 0-based position among the input's data rows (the header does not count). */
  index: number;
  /** 1-based line of the input file the row is on (absent for API instances). */
  line?: number;
  /** nFeatures values, when the row parsed. */
  row?: Float32Array;
  error?: RowError;
  /** The label column of the input, kept as it was (CLI only). */
  label?: string | number;
}

export interface RowError {
  code: string;
  message: string;
}

/** A good row's output record: the API's per-instance explanation plus where the row came from. */
export type ExplainedRecord = { index: number; line?: number; label?: string | number } & InstanceExplanation;
/** A bad row's output record. */
export interface ErrorRecord {
  index: number;
  line?: number;
  label?: string | number;
  error: RowError;
}
export type ResultRecord = ExplainedRecord | ErrorRecord;

export function isErrorRecord(r: ResultRecord): r is ErrorRecord {
  return (r as ErrorRecord).error !== undefined;
}

/** A matrix that survives JSON: float32 values written as numbers read back to the same float32. */
export interface PlainRows {
  n: number;
  d: number;
  data: number[];
}

/**
 * Everything a worker needs to explain any chunk of a job, resolved once at submission: the task
 * options with their background/baseline rows inline, so a worker needs only the model itself.
 */
export interface JobSpec {
  model: string;
  version: string;
  method: ExplainMethod;
  /** The parameters as validated (defaults filled in), for display and for the resume fingerprint. */
  parameters: Record<string, unknown>;
  /** Output indices explained; absent: all. */
  outputs?: number[];
  /** The explainer options (without outputs and deadline), rows as PlainRows. */
  options: Record<string, unknown>;
  /** Rows per chunk; chunk k holds input rows [k * chunkSize, (k + 1) * chunkSize). */
  chunkSize: number;
  nFeatures: number;
  featureNames: string[];
  outputNames: string[];
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const TERMINAL: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled']);

/** GET /v1/jobs/:id. */
export interface JobView {
  id: string;
  model: string;
  version: string;
  method: ExplainMethod;
  status: JobStatus;
  /** Rows with a result line (explained or failed). */
  rowsDone: number;
  rowsTotal: number;
  /** Rows that could not be explained; each has an error line in the results. */
  rowsFailed: number;
  ratePerSecond: number | null;
  etaSeconds: number | null;
  /** The first few row errors, with their index. */
  errors: { index: number; line?: number; code: string; message: string }[];
  /** Why the job as a whole failed. */
  error?: RowError;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  chunkSize: number;
  parameters: Record<string, unknown>;
  outputs?: number[];
}

/** How many row errors a job keeps for its status. */
export const MAX_STATUS_ERRORS = 10;

export interface JobRunner {
  readonly kind: 'local' | 'redis';
  /** Loads persisted jobs and resumes unfinished ones. */
  start(): Promise<void>;
  /** Stops taking work; running jobs stop at a chunk boundary and resume on the next start(). */
  stop(): Promise<void>;
  /**
   * `owner`: the scope of the key that submitted the job, recorded with it. `items` may be a stream
   * (an upload, read as it arrives, in index order): nothing is held whole. If it throws, no job is
   * created (what was written is removed) and the error is rethrown.
   */
  submit(spec: JobSpec, items: Iterable<Item> | AsyncIterable<Item>, owner?: JobOwner): Promise<JobView>;
  /** The scope recorded at submission (undefined: no such job). */
  owner(id: string): Promise<JobOwner | undefined>;
  get(id: string): Promise<JobView | undefined>;
  list(limit?: number): Promise<JobView[]>;
  /** Whether the runner can take and serve jobs now (the Redis runner: Redis answers). Absent: always. */
  health?(): Promise<{ ready: boolean; error?: string }>;
  /** Cancels a queued or running job; a finished job is returned as it is. */
  cancel(id: string): Promise<JobView | undefined>;
  /**
   * The committed results as NDJSON, in index order (a prefix of the final results while the job
   * runs). With `follow`, waits for more until the job ends or the signal fires.
   */
  results(id: string, opts?: { follow?: boolean; signal?: AbortSignal }): AsyncIterable<Buffer | string>;
}

/** Who submitted a job: the key's id and the models it may use (null: all), as server/auth.ts's Scope. */
export interface JobOwner {
  key?: string;
  models: string[] | null;
}

export interface JobMeta {
  id: string;
  spec: JobSpec;
  owner?: JobOwner;
  status: JobStatus;
  rowsTotal: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error?: RowError;
}

export function viewOf(
  meta: JobMeta,
  progress: { rowsDone: number; rowsFailed: number; errors: JobView['errors'] },
  rate: number | null,
): JobView {
  const remaining = Math.max(0, meta.rowsTotal - progress.rowsDone);
  const running = meta.status === 'running' || meta.status === 'queued';
  return {
    id: meta.id,
    model: meta.spec.model,
    version: meta.spec.version,
    method: meta.spec.method,
    status: meta.status,
    rowsDone: progress.rowsDone,
    rowsTotal: meta.rowsTotal,
    rowsFailed: progress.rowsFailed,
    ratePerSecond: rate === null ? null : Math.round(rate * 100) / 100,
    etaSeconds: !running ? (meta.status === 'succeeded' ? 0 : null) : rate && rate > 0 ? Math.round((remaining / rate) * 10) / 10 : null,
    errors: [...progress.errors].sort((a, b) => a.index - b.index),
    ...(meta.error ? { error: meta.error } : {}),
    createdAt: meta.createdAt,
    startedAt: meta.startedAt,
    finishedAt: meta.finishedAt,
    chunkSize: meta.spec.chunkSize,
    parameters: meta.spec.parameters,
    ...(meta.spec.outputs ? { outputs: meta.spec.outputs } : {}),
  };
}
