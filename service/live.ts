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
 * empty. Only the main thread records: POST predict and POST explain call `svc.live.record` after
 * parsing the rows.
 *
 * With REDIS_URL the replicas share their windows (RedisLive below); the service reaches either
 * through its `LiveStore` (`svc.live`), so the rule above holds for both.
 */
import type { Rows } from '../explainers/types.js';
import { MIN_DRIFT_ROWS } from '../monitoring/drift/thresholds.js';
import type { SharedRedis } from './redis.js';

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

/** Where live windows are kept: this process (default), or Redis shared by the replicas. */
export interface LiveStore {
  /** Adds rows the model was asked about (never throws, never waits for Redis). */
  record(model: LiveModel, rows: Rows): void;
  /** The model version's window: every replica's traffic with Redis, this replica's otherwise. */
  window(model: LiveModel): Promise<LiveWindow | undefined>;
}

/** This process's windows (the functions above). */
export function localLive(capacity = DEFAULT_LIVE_CAPACITY): LiveStore {
  return {
    record: (model, rows) => recordLive(model, rows, capacity),
    window: async (model) => liveWindow(model),
  };
}

/**
 * Live windows in Redis, one capped stream per model version (XADD MAXLEN ~ capacity, one entry per
 * row as float32 bytes) with a small hash of counts and times, so GET /drift/live sees every
 * replica's traffic. Rows are also kept in this process, which answers while Redis is away.
 *
 *   <prefix>:live:<model>:<version>        stream: field "r" = the row's float32 bytes
 *   <prefix>:live:<model>:<version>:meta   hash: d, total, first, last (ms)
 *
 * Both expire `ttlSeconds` after the last row (a retired version's window goes away by itself).
 */
export class RedisLive implements LiveStore {
  private readonly local: LiveStore;

  constructor(
    private readonly redis: SharedRedis,
    readonly capacity = DEFAULT_LIVE_CAPACITY,
    readonly ttlSeconds = 7 * 24 * 3600,
  ) {
    this.local = localLive(capacity);
  }

  private keys(model: LiveModel): { stream: string; meta: string } {
    const stream = this.redis.key('live', model.name, model.version);
    return { stream, meta: `${stream}:meta` };
  }

  record(model: LiveModel, rows: Rows): void {
    if (rows.n === 0) return;
    this.local.record(model, rows);
    if (!this.redis.up) return;
    const { stream, meta } = this.keys(model);
    const p = this.redis.client.pipeline();
    const skip = Math.max(0, rows.n - this.capacity);
    for (let i = skip; i < rows.n; i++) {
      const row = rows.data.subarray(i * rows.d, (i + 1) * rows.d);
      p.xadd(stream, 'MAXLEN', '~', this.capacity, '*', 'r', Buffer.from(row.buffer, row.byteOffset, row.byteLength));
    }
    const now = String(Date.now());
    p.hset(meta, 'd', rows.d, 'last', now);
    p.hsetnx(meta, 'first', now);
    p.hincrby(meta, 'total', rows.n);
    p.expire(stream, this.ttlSeconds);
    p.expire(meta, this.ttlSeconds);
    p.exec().catch((e: unknown) => this.redis.failed('live', e));
  }

  async window(model: LiveModel): Promise<LiveWindow | undefined> {
    if (!this.redis.up) return this.local.window(model);
    const { stream, meta } = this.keys(model);
    try {
      const [entries, info] = await Promise.all([
        this.redis.client.xrevrangeBuffer(stream, '+', '-', 'COUNT', this.capacity),
        this.redis.client.hgetall(meta),
      ]);
      const d = Number(info.d);
      if (!entries.length || !Number.isInteger(d) || d < 1) return undefined;
      const rows: Float32Array[] = [];
      // Newest first from XREVRANGE; the window is oldest first.
      for (let e = entries.length - 1; e >= 0; e--) {
        const fields = entries[e][1];
        for (let f = 0; f + 1 < fields.length; f += 2) {
          const bytes = fields[f + 1];
          if (fields[f].toString() !== 'r' || bytes.byteLength !== d * 4) continue;
          rows.push(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
        }
      }
      const data = new Float32Array(rows.length * d);
      rows.forEach((r, i) => data.set(r, i * d));
      const at = (v: string | undefined) => (v ? new Date(Number(v)).toISOString() : null);
      return {
        rows: { data, n: rows.length, d },
        capacity: this.capacity,
        totalSeen: Number(info.total ?? rows.length),
        firstSeenAt: at(info.first),
        lastSeenAt: at(info.last),
      };
    } catch (e) {
      this.redis.failed('live', e);
      return this.local.window(model);
    }
  }
}
