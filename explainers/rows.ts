/**
 * What every explainer does with rows before and while it calls the model: check a matrix the caller
 * sent (`checkRows`), turn feature groups into players (`playersOf`), and send many rows to the model
 * in calls of bounded size (`predictChunked`). One copy, so a check means the same everywhere and a
 * caller's mistake gets the same kind of message whichever method it reached.
 */
import { ExplainerInputError, type Model, type Rows } from './types.js';

/** How `checkRows` names a failure. */
export interface RowsRule {
  /** The code of every failure (BAD_INSTANCES, BAD_BACKGROUND, BAD_DATA ...). */
  code: string;
  /** The rows as the message names them: 'instances', 'background', 'data' ... */
  what: string;
  /** The fewest rows accepted (default 1). */
  minRows?: number;
  /** Code and message when there are fewer than `minRows` rows (default: `code`, "... is empty: give at least one row"). */
  tooFew?: { code?: string; message: string };
  /** How to fix rows of the wrong width (default "send rows of {d} numbers"). */
  fix?: string;
}

/**
 * Checks that `rows` is an n x d matrix of finite numbers with at least `rule.minRows` rows, throwing
 * ExplainerInputError(rule.code) with a message that says which row and column is wrong. Returns the rows.
 */
export function checkRows(rows: Rows | undefined, d: number, rule: RowsRule): Rows {
  const { code, what } = rule;
  if (!rows || !(rows.data instanceof Float32Array) || !Number.isInteger(rows.n) || !Number.isInteger(rows.d)) {
    throw new ExplainerInputError(code, `${what} must be a matrix of numbers`);
  }
  const minRows = rule.minRows ?? 1;
  if (rows.n < minRows) {
    throw new ExplainerInputError(rule.tooFew?.code ?? code, rule.tooFew?.message ?? `${what} is empty: give at least one row`);
  }
  if (rows.d !== d) {
    throw new ExplainerInputError(code, `${what} rows have ${rows.d} values but the model takes ${d}: ${rule.fix ?? `send rows of ${d} numbers`}`, {
      expected: d,
      got: rows.d,
    });
  }
  if (rows.data.length !== rows.n * d) throw new ExplainerInputError(code, `${what} holds ${rows.data.length} values, not ${rows.n} x ${d}`);
  for (let i = 0; i < rows.data.length; i++) {
    if (!Number.isFinite(rows.data[i])) {
      const row = Math.floor(i / d);
      const column = i % d;
      throw new ExplainerInputError(code, `${what} row ${row}, column ${column} is not a finite number: replace missing values`, { row, column });
    }
  }
  return rows;
}

/** A player: the columns that are absent or present together, and the group they came from (if any). */
export interface Player {
  /** Feature columns, ascending. */
  columns: number[];
  /** Index into the groups given to `playersOf`; absent for a feature in no group. */
  group?: number;
}

/**
 * Groups (one-hot columns, superpixels ...) become players; every feature in no group is a player of
 * its own. Ordered by first column. BAD_GROUPS for an empty group, a column outside 0..d-1, or a
 * column in two groups (or twice in one).
 */
export function playersOf(groups: readonly (readonly number[])[] | undefined, d: number): Player[] {
  const owner = new Int32Array(d).fill(-1);
  for (const [g, members] of (groups ?? []).entries()) {
    if (!Array.isArray(members) || members.length === 0) throw new ExplainerInputError('BAD_GROUPS', `group ${g} is empty: list its feature indices`);
    for (const c of members) {
      if (!Number.isInteger(c) || c < 0 || c >= d) throw new ExplainerInputError('BAD_GROUPS', `group ${g} names feature ${c}, not in 0..${d - 1}`);
      if (owner[c] >= 0) throw new ExplainerInputError('BAD_GROUPS', `feature ${c} is in more than one group (or twice in group ${g})`);
      owner[c] = g;
    }
  }
  const players: Player[] = [];
  const seen = new Set<number>();
  for (let c = 0; c < d; c++) {
    const g = owner[c];
    if (g < 0) players.push({ columns: [c] });
    else if (!seen.has(g)) {
      seen.add(g);
      players.push({ columns: [...groups![g]].sort((a, b) => a - b), group: g });
    }
  }
  return players;
}

/** Checks the length of what model.predict returned for `n` rows (a wrong length is the model's fault: a plain Error). */
export function checkPredictLength(model: Model, out: Float32Array, n: number): Float32Array {
  if (out.length !== n * model.nOutputs) {
    throw new Error(`model.predict returned ${out.length} values for ${n} rows of ${model.nOutputs} outputs`);
  }
  return out;
}

/**
 * model.predict over `rows` in calls of at most `maxRowsPerCall` rows, the signal checked before each
 * call; returns n x nOutputs, row-major. `maxRowsPerCall` may be a function, asked before every call
 * (a clock that sizes calls by measured time), and `onCall(rows, ms)` hears how long each call took.
 */
export async function predictChunked(
  model: Model,
  rows: Rows,
  maxRowsPerCall: number | (() => number),
  signal?: AbortSignal,
  onCall?: (rows: number, ms: number) => void,
): Promise<Float32Array> {
  const k = model.nOutputs;
  const out = new Float32Array(rows.n * k);
  for (let start = 0; start < rows.n; ) {
    signal?.throwIfAborted();
    const n = Math.min(typeof maxRowsPerCall === 'number' ? maxRowsPerCall : maxRowsPerCall(), rows.n - start);
    const part = { data: rows.data.subarray(start * rows.d, (start + n) * rows.d), n, d: rows.d };
    const t0 = onCall ? performance.now() : 0;
    const values = await model.predict(part);
    onCall?.(n, performance.now() - t0);
    out.set(checkPredictLength(model, values, n), start * k);
    start += n;
  }
  return out;
}

/** Rows per model call so that one call holds about `values` input values (default 2^23: 32 MB of float32). */
export function rowsPerCall(d: number, maxRowsPerCall?: number, values = 2 ** 23): number {
  return Math.max(1, maxRowsPerCall ?? Math.floor(values / d));
}

/** A positive integer option (maxRowsPerCall and the like), BAD_PARAMETER otherwise. */
export function positiveInteger(v: number, name: string, least = 1): number {
  if (!(Number.isInteger(v) && v >= least)) throw new ExplainerInputError('BAD_PARAMETER', `${name} must be an integer >= ${least}, got ${v}`);
  return v;
}
