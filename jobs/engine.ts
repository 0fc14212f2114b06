/**
 * The job engine shared by the CLI and the runners: rows are cut into chunks on a fixed grid (chunk
 * k holds input rows [k*size, (k+1)*size), whatever was processed before), chunks are explained in
 * parallel through an Executor, and results are committed strictly in chunk order, so an output is
 * always a prefix of the final one and a restart can pick up at the first uncommitted chunk.
 *
 * Determinism: Kernel SHAP seeds each instance's sampler with the job's seed alone and IG has no
 * randomness, so a row's explanation does not depend on the other rows of its chunk (checked in
 * test/jobs.test.ts). The fixed grid makes chunk composition the same on every run anyway, so a
 * resumed or distributed job reproduces an uninterrupted one value for value.
 */
import { ExplainerInputError, type Rows } from '../explainers/types.js';
import { ServiceError } from '../service/errors.js';
import type { Executor } from '../service/executor.js';
import { withWords } from '../service/instances.js';
import { runDataRows } from './dataJobs.js';
import { taskFor } from './spec.js';
import type { Item, JobSpec, ResultRecord, RowError, RowResult } from './types.js';

export interface Chunk {
  chunk: number;
  items: Item[];
}

/** Groups items (in index order) into grid chunks of `size`; a chunk may be partial at the ends. */
export async function* chunked(items: AsyncIterable<Item> | Iterable<Item>, size: number): AsyncGenerator<Chunk> {
  let current: Chunk | undefined;
  for await (const item of items) {
    const k = Math.floor(item.index / size);
    if (current && current.chunk !== k) {
      yield current;
      current = undefined;
    }
    current ??= { chunk: k, items: [] };
    current.items.push(item);
  }
  if (current) yield current;
}

/** A row's result: an instance explanation, or a counterfactuals / effects job's per-row record. */
export type ExplainRows = (rows: Rows) => Promise<RowResult[]>;

/** Errors that come from particular rows (or the request): a chunk that hits one is retried row by row. */
export function isRowLevelError(e: unknown): boolean {
  if (e instanceof ExplainerInputError) return true;
  if (e instanceof ServiceError) return e.status < 500 && e.code !== 'MODEL_NOT_FOUND' && e.code !== 'OVERLOADED' && e.code !== 'CANCELLED';
  return false;
}

function toRowError(e: unknown): RowError {
  if (e instanceof ServiceError || e instanceof ExplainerInputError) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

function head(item: Item) {
  return {
    index: item.index,
    ...(item.line !== undefined ? { line: item.line } : {}),
    ...(item.label !== undefined ? { label: item.label } : {}),
  };
}

/**
 * Explains the good rows of one chunk in one call and returns a record per item, in order. Bad rows
 * become error records; when the call fails because of some row, each row is explained on its own
 * so only the rows at fault get an error. Any other failure is thrown: the chunk did not happen.
 */
export async function explainChunk(items: Item[], d: number, explain: ExplainRows): Promise<ResultRecord[]> {
  const good = items.filter((it) => it.row);
  const byIndex = new Map<number, { result: RowResult } | { error: RowError }>();
  if (good.length > 0) {
    const data = new Float32Array(good.length * d);
    good.forEach((it, i) => data.set(it.row!, i * d));
    try {
      const out = await explain({ data, n: good.length, d });
      if (out.length !== good.length) throw new Error(`the explainer returned ${out.length} explanations for ${good.length} rows`);
      good.forEach((it, i) => byIndex.set(it.index, { result: out[i] }));
    } catch (e) {
      if (!isRowLevelError(e)) throw e;
      for (const it of good) {
        try {
          const [one] = await explain({ data: Float32Array.from(it.row!), n: 1, d });
          byIndex.set(it.index, { result: one });
        } catch (e1) {
          if (!isRowLevelError(e1)) throw e1;
          byIndex.set(it.index, { error: toRowError(e1) });
        }
      }
    }
  }
  return items.map((it): ResultRecord => {
    if (it.error) return { ...head(it), error: it.error };
    const r = byIndex.get(it.index)!;
    if ('result' in r) return { ...head(it), ...('outputs' in r.result ? withWords(r.result, it.tokens) : r.result) } as ResultRecord;
    return { ...head(it), error: r.error };
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Explains rows of `spec` through `executor`. A full queue (OVERLOADED, when the pool is shared
 * with interactive requests) is waited out rather than failing the job.
 */
export function executorExplain(executor: Executor, spec: JobSpec, signal?: AbortSignal): ExplainRows {
  return async (rows) => {
    for (let attempt = 0; ; attempt++) {
      try {
        // A cancelled job stops its running chunk at the next model call (the thread is not killed).
        if (spec.method === 'counterfactuals' || spec.method === 'effects') return await runDataRows(executor, spec, rows, signal);
        return (await executor.run(taskFor(spec, rows), { signal })).explanations;
      } catch (e) {
        if (e instanceof ServiceError && e.code === 'OVERLOADED' && !signal?.aborted) {
          await sleep(Math.min(2000, 50 * 2 ** Math.min(attempt, 6)), signal);
          continue;
        }
        throw e;
      }
    }
  };
}

/**
 * Retries a chunk that failed for a reason other than its rows (a worker thread that died, a full
 * queue): `attempts` in all, with a growing pause. A missing model is not retried.
 */
export async function withRetries<T>(fn: () => Promise<T>, attempts = 3, signal?: AbortSignal): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const permanent = e instanceof ServiceError && e.code === 'MODEL_NOT_FOUND';
      if (permanent || i >= attempts || signal?.aborted || isRowLevelError(e)) throw e;
      await sleep(500 * i, signal);
    }
  }
}

export interface RunChunksOptions {
  chunks: AsyncIterable<Chunk>;
  process(c: Chunk): Promise<ResultRecord[]>;
  /** Called in chunk order, one at a time. */
  commit(c: Chunk, records: ResultRecord[]): Promise<void>;
  /** Chunks being explained at once (the reorder buffer holds at most this many). */
  inFlight: number;
  signal?: AbortSignal;
}

type Settled = { ok: true; c: Chunk; records: ResultRecord[] } | { ok: false; error: unknown };

/**
 * Runs chunks with up to `inFlight` at once and commits them in order. Resolves 'done', or
 * 'aborted' when the signal fired (chunks not yet committed are dropped; they are redone on resume).
 * Rejects with the first failure, after the chunks in flight have settled.
 */
export async function runChunks(opts: RunChunksOptions): Promise<'done' | 'aborted'> {
  const pending: Promise<Settled>[] = [];
  const start = (c: Chunk): Promise<Settled> =>
    opts.process(c).then(
      (records) => ({ ok: true as const, c, records }),
      (error) => ({ ok: false as const, error }),
    );
  const drainOne = async (): Promise<void> => {
    const s = await pending.shift()!;
    // After an abort, nothing more is committed, and a chunk stopped by it (CANCELLED) is not an error:
    // it is done again on resume.
    if (opts.signal?.aborted) return;
    if (!s.ok) throw s.error;
    await opts.commit(s.c, s.records);
  };
  try {
    for await (const c of opts.chunks) {
      if (opts.signal?.aborted) break;
      pending.push(start(c));
      if (pending.length >= Math.max(1, opts.inFlight)) await drainOne();
      if (opts.signal?.aborted) break;
    }
    while (pending.length && !opts.signal?.aborted) await drainOne();
  } finally {
    // Never leave work running behind the caller's back.
    await Promise.all(pending.splice(0));
  }
  return opts.signal?.aborted ? 'aborted' : 'done';
}
