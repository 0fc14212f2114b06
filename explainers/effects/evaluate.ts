/**
 * The one place the effect explainers call the model. A whole feature grid over all rows (n x G
 * variant rows) goes to the model as one predict call; only beyond maxRowsPerCall rows (or 2^23
 * values, 32 MB of float32) is it split, and the AbortSignal and the deadline are checked before every
 * call. Outputs come back in link space.
 */
import { ExplainerInputError, type Model, type Rows } from '../types.js';
import { inLinkDomain, linkFunction, type LinkName } from '../link.js';
import { checkPredictLength } from '../rows.js';

/** Values per model call at most, whatever maxRowsPerCall says (as Kernel SHAP). */
const MAX_VALUES_PER_CALL = 2 ** 23;
export const DEFAULT_MAX_ROWS_PER_CALL = 200_000;

export interface Evaluator {
  model: Model;
  /** Output indices reported, in this order. */
  outputs: number[];
  link: LinkName;
  maxRowsPerCall: number;
  /** Epoch ms: no model call starts after it (DEADLINE_EXCEEDED). */
  deadline?: number;
  signal?: AbortSignal;
  /** Model rows and calls so far, shared by every evaluation of one request. */
  counter: { rows: number; calls: number };
}

export function createEvaluator(
  model: Model,
  o: { outputs: number[]; link?: LinkName; maxRowsPerCall?: number; deadline?: number; signal?: AbortSignal },
): Evaluator {
  const maxRowsPerCall = o.maxRowsPerCall ?? DEFAULT_MAX_ROWS_PER_CALL;
  if (!Number.isInteger(maxRowsPerCall) || maxRowsPerCall < 1) {
    throw new ExplainerInputError('BAD_PARAMETER', `maxRowsPerCall must be a positive integer, got ${maxRowsPerCall}`);
  }
  return { model, outputs: o.outputs, link: o.link ?? 'identity', maxRowsPerCall, deadline: o.deadline, signal: o.signal, counter: { rows: 0, calls: 0 } };
}

/**
 * Evaluates `count` rows: row r is row `source(r)` of `data` with `patch(r, buffer, at)` applied (the
 * row's values are buffer[at .. at + d)). Runs of consecutive source rows are copied with one `set`,
 * so a whole grid point's copy of the data costs one memcpy. Returns link(f(row r))[outputs[o]] at
 * [r * outputs.length + o].
 */
export async function evaluateRows(
  ev: Evaluator,
  count: number,
  data: Rows,
  source: (r: number) => number,
  patch: (r: number, buffer: Float32Array, at: number) => void,
): Promise<Float64Array> {
  const { model, outputs } = ev;
  const d = model.nFeatures;
  const k = model.nOutputs;
  const m = outputs.length;
  const identity = ev.link === 'identity';
  const link = linkFunction(ev.link);
  const step = Math.max(1, Math.min(ev.maxRowsPerCall, Math.floor(MAX_VALUES_PER_CALL / Math.max(d, 1)), count));
  const out = new Float64Array(count * m);
  // One buffer for every chunk: predict has returned, so is done with its input, before a refill.
  const buffer = new Float32Array(step * d);
  for (let start = 0; start < count; start += step) {
    ev.signal?.throwIfAborted();
    if (ev.deadline !== undefined && Date.now() >= ev.deadline) {
      throw new ExplainerInputError(
        'DEADLINE_EXCEEDED',
        `the effects were stopped at the deadline after ${ev.counter.rows} model rows; lower maxRows, the grid resolution or the number of features, or allow more time`,
        { modelEvaluations: ev.counter.rows },
      );
    }
    const n = Math.min(step, count - start);
    const chunk = buffer.subarray(0, n * d);
    for (let r = 0; r < n; ) {
      const first = source(start + r);
      let len = 1;
      while (r + len < n && source(start + r + len) === first + len) len++;
      chunk.set(data.data.subarray(first * d, (first + len) * d), r * d);
      r += len;
    }
    for (let r = 0; r < n; r++) patch(start + r, chunk, r * d);
    const pred = checkPredictLength(model, await model.predict({ data: chunk, n, d }), n);
    ev.counter.rows += n;
    ev.counter.calls++;
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < m; o++) {
        const p = pred[r * k + outputs[o]];
        if (!Number.isFinite(p)) throw new Error(`the model returned a non-finite output (${p})`);
        if (identity) {
          out[(start + r) * m + o] = p;
          continue;
        }
        if (!inLinkDomain(ev.link, p)) {
          throw new ExplainerInputError('BAD_PARAMETER', `link 'logit' needs outputs that are probabilities, but the model returned ${p}: use link 'identity'`);
        }
        out[(start + r) * m + o] = link(p);
      }
    }
  }
  return out;
}
