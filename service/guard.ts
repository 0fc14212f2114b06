/**
 * Bounded model work. Every model a task hands to an explainer (or to monitoring) is wrapped here,
 * so that whatever the explainer does, no single model call runs long and none starts after the
 * task was stopped:
 *
 * - Calls are split into chunks bounded by bytes (at most `maxBytesPerCall` of input rows, 8 MB by
 *   default) and by time: after each chunk the cost per row is measured, and the next chunk is sized
 *   to take about `sliceMs` (default 100 ms, or 1/40 of the time left before the deadline if less;
 *   the first chunk of a call holds at most 1 MB of rows). A wasm heap
 *   grows to the largest call it has served and never shrinks, so the byte bound is also a memory
 *   bound.
 * - Before every chunk the guard checks the task's stop conditions: the AbortSignal (inline), the
 *   cancellation flag (a SharedArrayBuffer the main thread sets when the client has gone, for tasks
 *   on worker threads), and the hard deadline. A stopped task rejects with CANCELLED or
 *   DEADLINE_EXCEEDED (ServiceError), which the explainers do not catch: an explainer that checks
 *   the (earlier) soft deadline itself returns its best estimate with stopReason "deadline" first.
 *
 * Splitting a call is invisible to the caller: predictions, gradients and Jacobians are row-wise.
 */
import type { LogitJacobian, Model, Rows } from '../explainers/types.js';
import { ServiceError } from './errors.js';

/** When a task must stop. */
export interface TaskStop {
  /** Epoch ms after which no model call starts (the hard deadline). */
  deadline?: number;
  signal?: AbortSignal;
  /** True once the task is cancelled from outside (the main thread's flag, for worker threads). */
  cancelled?: () => boolean;
}

export interface GuardOptions extends TaskStop {
  /** Bytes of input rows per model call at most (default 8 MB). */
  maxBytesPerCall?: number;
  /** Target duration of one model call, ms (default 100). */
  sliceMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

/** What a guarded model did: model calls (chunks) and rows sent. */
export interface GuardStats {
  calls: number;
  rows: number;
}

export const DEFAULT_MAX_BYTES_PER_CALL = 8 * 1024 * 1024;
const FIRST_CHUNK_BYTES = 1024 * 1024;
const DEFAULT_SLICE_MS = 100;

/** Milliseconds per row, learned per model and kind of call across tasks (a task starts from what the last one measured). */
const costs = new WeakMap<Model, Map<string, number>>();

/** Throws CANCELLED or DEADLINE_EXCEEDED when the task must stop. */
export function checkStop(stop: TaskStop, now: () => number = Date.now, what = 'the computation'): void {
  if (stop.signal?.aborted || stop.cancelled?.()) {
    throw new ServiceError('CANCELLED', `${what} was cancelled: the client went away`);
  }
  if (stop.deadline !== undefined && now() >= stop.deadline) {
    throw new ServiceError(
      'DEADLINE_EXCEEDED',
      `${what} was stopped at its deadline before an answer was ready; allow more time (deadlineMs), ask for less work, or use POST /v1/jobs`,
    );
  }
}

/**
 * `model` with every call chunked and checked (see the file comment). Optional capabilities stay
 * optional: the wrapper has pathBreakpoints, logitJacobian ... exactly when `model` has them.
 */
export function guardModel(model: Model, options: GuardOptions = {}): { model: Model; stats: GuardStats } {
  const now = options.now ?? Date.now;
  const maxBytes = Math.max(4, options.maxBytesPerCall ?? DEFAULT_MAX_BYTES_PER_CALL);
  // A call should take a small share of the time left, so the deadline is seen soon after it passes.
  const left = options.deadline !== undefined ? options.deadline - now() : Infinity;
  const sliceMs = Math.max(1, options.sliceMs ?? Math.min(DEFAULT_SLICE_MS, Math.max(5, left / 40)));
  const stats: GuardStats = { calls: 0, rows: 0 };
  let learned = costs.get(model);
  if (!learned) costs.set(model, (learned = new Map()));
  const perRow = learned;
  const check = () => checkStop(options, now);

  /** Runs `call` over row chunks of `rows`, gathering `width(n)` values per chunk of n rows. */
  async function chunked<T>(kind: string, rows: Rows, call: (part: Rows) => Promise<T>, gather: (parts: T[], n: number) => T): Promise<T> {
    if (rows.n === 0) {
      check();
      return call(rows);
    }
    const rowBytes = Math.max(1, rows.d * 4);
    const byBytes = Math.max(1, Math.floor(maxBytes / rowBytes));
    const parts: T[] = [];
    let chunk = Math.max(1, Math.min(byBytes, Math.floor(FIRST_CHUNK_BYTES / rowBytes)));
    const ms = perRow.get(kind);
    if (ms !== undefined && ms > 0) chunk = Math.max(1, Math.min(byBytes, Math.floor(sliceMs / ms)));
    for (let start = 0; start < rows.n;) {
      check();
      const n = Math.min(chunk, rows.n - start);
      const part = n === rows.n ? rows : { data: rows.data.subarray(start * rows.d, (start + n) * rows.d), n, d: rows.d };
      const t0 = performance.now();
      parts.push(await call(part));
      const took = performance.now() - t0;
      stats.calls++;
      stats.rows += n;
      start += n;
      // Learn the cost per row from calls long enough to measure; grow at most 4x per step.
      if (took >= 1) {
        const msPerRow = took / n;
        perRow.set(kind, msPerRow);
        chunk = Math.max(1, Math.min(byBytes, 4 * n, Math.floor(sliceMs / msPerRow)));
      } else {
        chunk = Math.min(byBytes, 4 * chunk);
      }
    }
    return parts.length === 1 ? parts[0] : gather(parts, rows.n);
  }

  const concat = (parts: Float32Array[]): Float32Array => {
    let total = 0;
    for (const p of parts) total += p.length;
    const out = new Float32Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };

  const guarded: Model = {
    nFeatures: model.nFeatures,
    nOutputs: model.nOutputs,
    predict: (rows) => chunked('predict', rows, (part) => model.predict(part), concat),
  };
  if (model.inputGradients) {
    const grad = model.inputGradients.bind(model);
    guarded.inputGradients = (rows, output) => chunked(`gradient:${output}`, rows, (part) => grad(part, output), concat);
  }
  if (model.logitJacobian) {
    const jac = model.logitJacobian.bind(model);
    guarded.logitJacobian = (rows) =>
      chunked<LogitJacobian>('jacobian', rows, jac, (parts) => ({
        activation: parts[0].activation,
        logits: concat(parts.map((p) => p.logits)),
        jacobian: concat(parts.map((p) => p.jacobian)),
      }));
  }
  if (model.pathBreakpoints) {
    const bp = model.pathBreakpoints.bind(model);
    // Synchronous check, then straight through: the model batches the calls made in one turn.
    guarded.pathBreakpoints = (from, to) => {
      check();
      return bp(from, to);
    };
  }
  if (model.layers) Object.defineProperty(guarded, 'layers', { value: model.layers, enumerable: true });
  if (model.layerActivations) {
    const act = model.layerActivations.bind(model);
    guarded.layerActivations = (rows, layer) => {
      check();
      stats.calls++;
      stats.rows += rows.n;
      return act(rows, layer);
    };
  }
  if (model.layerGradients) {
    const lg = model.layerGradients.bind(model);
    guarded.layerGradients = (rows, layer, output, activations) => {
      check();
      stats.calls++;
      stats.rows += rows.n;
      return lg(rows, layer, output, activations);
    };
  }
  if (model.maskedRows) {
    const masked = model.maskedRows.bind(model);
    // Masked rows are chunked like predict's rows (by bytes of the rows they stand for, and by time),
    // with the stop conditions checked before every chunk.
    guarded.maskedRows = async (background) => {
      check();
      const inner = await masked(background);
      if (!inner) return null;
      return {
        mode: inner.mode,
        predict: async (spec, k0, row0, n, out, at) => {
          const G = spec.rows.length;
          const rowBytes = Math.max(1, model.nFeatures * 4);
          const byBytes = Math.max(1, Math.floor(maxBytes / rowBytes));
          let chunk = Math.max(1, Math.min(byBytes, Math.floor(FIRST_CHUNK_BYTES / rowBytes)));
          const ms = perRow.get('masked');
          if (ms !== undefined && ms > 0) chunk = Math.max(1, Math.min(byBytes, Math.floor(sliceMs / ms)));
          if (n === 0) return check();
          for (let done = 0; done < n; ) {
            check();
            const m = Math.min(chunk, n - done);
            const pos = row0 + done;
            const t0 = performance.now();
            await inner.predict(spec, k0 + Math.floor(pos / G), pos % G, m, out, at + done);
            const took = performance.now() - t0;
            stats.calls++;
            stats.rows += m;
            done += m;
            if (took >= 1) {
              const msPerRow = took / m;
              perRow.set('masked', msPerRow);
              chunk = Math.max(1, Math.min(byBytes, 4 * m, Math.floor(sliceMs / msPerRow)));
            } else {
              chunk = Math.min(byBytes, 4 * chunk);
            }
          }
        },
      };
    };
  }
  return { model: guarded, stats };
}
