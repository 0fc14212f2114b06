/**
 * The live window: the last rows each model was asked to predict or explain, kept in a bounded
 * ring buffer so drift can be measured against what the model sees now (GET
 * /v1/models/:name/drift/live). Only real traffic counts: the rows of POST predict and POST explain.
 * Views of charts (GET explain.{ext} URLs, whose rows are partly the background's defaults, and
 * permalinks, which re-render a stored request) and batch jobs (backfills, often of the reference
 * set itself) are never recorded.
 *
 * Windows are keyed by the served model object, so every app (and every test) that loads its own
 * registry gets its own windows, and a reloaded model (a new object, maybe a new version) starts
 * empty. Only the main thread records: routes call `recordLive` after parsing the rows.
 */
import type { Rows } from '../explainers/types.js';
import { MIN_DRIFT_ROWS } from '../monitoring/drift/thresholds.js';

export const DEFAULT_LIVE_CAPACITY = 5000;
/** Fewer live rows than this make drift statistics too noisy to report (the same minimum as any drift report). */
export const MIN_LIVE_ROWS = MIN_DRIFT_ROWS;

export interface LiveWindow {
  /** The rows in the window, oldest first (a copy). */
  rows: Rows;
  capacity: number;
  /** Rows seen since the window was created, including those that have left it. */
  totalSeen: number;
  firstSeenAt: string | null;
  lastSeenAt: string | null;
}

class RingBuffer {
  private readonly data: Float32Array;
  private next = 0;
  size = 0;
  total = 0;
  firstAt: number | null = null;
  lastAt: number | null = null;

  constructor(
    readonly d: number,
    readonly capacity: number,
  ) {
    this.data = new Float32Array(capacity * d);
  }

  push(rows: Rows): void {
    const { d, capacity } = this;
    // Only the last `capacity` rows of a large batch can stay.
    const skip = Math.max(0, rows.n - capacity);
    for (let i = skip; i < rows.n; i++) {
      this.data.set(rows.data.subarray(i * d, (i + 1) * d), this.next * d);
      this.next = (this.next + 1) % capacity;
    }
    this.size = Math.min(capacity, this.size + rows.n);
    this.total += rows.n;
    const now = Date.now();
    this.firstAt ??= now;
    this.lastAt = now;
  }

  snapshot(): Rows {
    const { d, size, capacity } = this;
    const out = new Float32Array(size * d);
    const start = size < capacity ? 0 : this.next;
    for (let k = 0; k < size; k++) {
      const r = (start + k) % capacity;
      out.set(this.data.subarray(r * d, (r + 1) * d), k * d);
    }
    return { data: out, n: size, d };
  }
}

/** What identifies a model's window: the served model object (ServedModel satisfies this). */
export interface LiveModel {
  name: string;
  version: string;
}

const windows = new WeakMap<LiveModel, { version: string; buffer: RingBuffer }>();

/**
 * Adds rows the model was asked about to its live window. Call it from predict and explain after the
 * rows are parsed: `recordLive(m, rows)`. Cheap (a copy into the ring buffer), never throws for
 * rows of the model's width. `capacity` applies when the window is created.
 */
export function recordLive(model: LiveModel, rows: Rows, capacity = DEFAULT_LIVE_CAPACITY): void {
  if (rows.n === 0) return;
  let w = windows.get(model);
  if (!w || w.version !== model.version || w.buffer.d !== rows.d) {
    w = { version: model.version, buffer: new RingBuffer(rows.d, Math.max(1, Math.floor(capacity))) };
    windows.set(model, w);
  }
  w.buffer.push(rows);
}

/** The model's live window, or undefined when nothing was recorded for this model version. */
export function liveWindow(model: LiveModel): LiveWindow | undefined {
  const w = windows.get(model);
  if (!w || w.version !== model.version) return undefined;
  const b = w.buffer;
  return {
    rows: b.snapshot(),
    capacity: b.capacity,
    totalSeen: b.total,
    firstSeenAt: b.firstAt === null ? null : new Date(b.firstAt).toISOString(),
    lastSeenAt: b.lastAt === null ? null : new Date(b.lastAt).toISOString(),
  };
}

export function clearLive(model: LiveModel): void {
  windows.delete(model);
}
