/**
 * The vocabulary of batch explanation jobs, shared by the CLI, the embedded runner, the Redis runner
 * and the BullMQ worker processes. Everything here is plain JSON so it can sit in a file or in Redis.
 */
import type { ExplainMethod, InstanceExplanation } from '../explainers/types.js';
import type { AmortisedTrainResult, TrainingProgress } from '../service/amortised/task.js';
import type { InstanceCounterfactualsJson } from '../service/counterfactuals.js';
import type { DataJobMethod } from '../service/schemas/requests.js';

/** The method of a job that trains a model version's amortised explainer (one long task, no rows). */
export const TRAINING_METHOD = 'amortised-training';

/** An explain method, a job method over rows of data (counterfactuals, effects), or amortised training. */
export type JobMethod = ExplainMethod | DataJobMethod | typeof TRAINING_METHOD;

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
  /** A text sent as a string: its tokens as written, which name its attributions. */
  tokens?: string[];
}

/** An Item as plain JSON (its row as an array), for an input file or a queued chunk. */
export interface ItemJson {
  index: number;
  line?: number;
  row?: number[];
  error?: RowError;
  label?: string | number;
  tokens?: string[];
}

export function itemToJson(it: Item): ItemJson {
  return {
    index: it.index,
    ...(it.line !== undefined ? { line: it.line } : {}),
    ...(it.row ? { row: Array.from(it.row) } : {}),
    ...(it.error ? { error: it.error } : {}),
    ...(it.label !== undefined ? { label: it.label } : {}),
    ...(it.tokens ? { tokens: it.tokens } : {}),
  };
}

export function itemFromJson(it: ItemJson): Item {
  return {
    index: it.index,
    ...(it.line !== undefined ? { line: it.line } : {}),
    ...(it.row ? { row: Float32Array.from(it.row) } : {}),
    ...(it.error ? { error: it.error } : {}),
    ...(it.label !== undefined ? { label: it.label } : {}),
    ...(it.tokens ? { tokens: it.tokens } : {}),
  };
}

export interface RowError {
  code: string;
  message: string;
}

/** Where a record's row came from. */
export interface RecordHead {
  index: number;
  line?: number;
  label?: string | number;
}
/** A good row's output record: the API's per-instance explanation plus where the row came from. */
export type ExplainedRecord = RecordHead & InstanceExplanation;
/** A counterfactuals job's row: the row's entry of POST /counterfactuals. */
export type CounterfactualRecord = RecordHead & InstanceCounterfactualsJson;
/** An effects job's row: its ICE curve per feature and output, on the job's grids (GET /v1/jobs/:id gives them). */
export type EffectsRecord = RecordHead & { effects: EffectsRowCurve[] };
export interface EffectsRowCurve {
  feature: string;
  output: string;
  outputIndex: number;
  /** The model's output (in the job's link space) with the feature set to each grid point. */
  values: number[];
}
/** What one row of any job yields. */
export type RowResult = InstanceExplanation | InstanceCounterfactualsJson | { effects: EffectsRowCurve[] };
/** A bad row's output record. */
export interface ErrorRecord {
  index: number;
  line?: number;
  label?: string | number;
  error: RowError;
}
export type ResultRecord = ExplainedRecord | CounterfactualRecord | EffectsRecord | ErrorRecord;

export function isErrorRecord(r: ResultRecord): r is ErrorRecord {
  return (r as ErrorRecord).error !== undefined;
}

/** An explanation job's good row (not a counterfactual or effects row, nor an error). */
export function isExplainedRecord(r: ResultRecord): r is ExplainedRecord {
  return 'outputs' in r;
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
  method: JobMethod;
  /** The parameters as validated (defaults filled in), for display and for the resume fingerprint. */
  parameters: Record<string, unknown>;
  /** Output indices explained; absent: all, or each row's predicted class (outputSelection). */
  outputs?: number[];
  /** Which outputs rows explain (service/outputs.ts); absent in older specs: requested when `outputs`, else all. */
  outputSelection?: 'requested' | 'all' | 'predicted-class';
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
  method: JobMethod;
  status: JobStatus;
  /** Rows with a result line (explained or failed). */
  rowsDone: number;
  rowsTotal: number;
  /** Rows that could not be explained; each has an error line in the results. */
  rowsFailed: number;
  /**
   * Explained rows that stopped before converging: stopReason budget (the whole budget spent short of
   * the tolerance; raise nSamples or maxSteps) or deadline. Their values are estimates with larger errors.
   */
  rowsUnconverged: number;
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
  /** A training job: how far it is (phase, epoch, a rough fraction done). */
  progress?: TrainingProgress;
  /** A finished training job: the stored explainer and its validated error. */
  result?: AmortisedTrainResult;
  /** Which outputs rows explain: the requested ones, all, or each row's predicted class (the default for classifiers). */
  outputSelection: 'requested' | 'all' | 'predicted-class';
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
  /** The recipe the job runs (undefined: no such job); an effects job's grids are in it. */
  spec(id: string): Promise<JobSpec | undefined>;
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
  /**
   * Starts a job that trains the amortised explainer of spec.model at spec.version (spec.method is
   * TRAINING_METHOD), or returns the one already queued or running for that version.
   */
  submitTraining(spec: JobSpec, owner?: JobOwner): Promise<JobView>;
  /** The most recent training job of a model version, if any. */
  training(model: string, version: string): Promise<JobView | undefined>;
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
  /** Training jobs: the last progress seen and, once succeeded, the result. */
  progress?: TrainingProgress;
  result?: AmortisedTrainResult;
}

export function viewOf(
  meta: JobMeta,
  progress: { rowsDone: number; rowsFailed: number; rowsUnconverged?: number; errors: JobView['errors'] },
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
    rowsUnconverged: progress.rowsUnconverged ?? 0,
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
    ...(meta.progress ? { progress: meta.progress } : {}),
    ...(meta.result ? { result: meta.result } : {}),
    outputSelection: meta.spec.outputSelection ?? (meta.spec.outputs ? 'requested' : 'all'),
  };
}

/** A training job's view: no rows; the ETA from the share of the work done so far (rough). */
export function trainingView(meta: JobMeta): JobView {
  const view = viewOf(meta, { rowsDone: 0, rowsFailed: 0, errors: [] }, null);
  const f = meta.progress?.fraction ?? 0;
  if (meta.status === 'running' && meta.startedAt && f > 0.02 && f < 1) {
    const secs = (Date.now() - Date.parse(meta.startedAt)) / 1000;
    view.etaSeconds = Math.round(((secs * (1 - f)) / f) * 10) / 10;
  }
  return view;
}
