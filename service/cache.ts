/**
 * Per-instance explanation cache with single flight: concurrent requests for the same key compute
 * once. Level one is in this process (lru-cache, bounded by bytes). With REDIS_URL set, level two is
 * shared by every replica (service/cache/shared.ts): a result computed on one replica is a hit on
 * the others, and identical requests spread over replicas compute once (a lock in Redis, with a
 * fallback to computing when its holder dies). Keys carry the model version, so a new model version
 * never serves an old answer.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { InstanceExplanation } from '../explainers/types.js';
import type { SharedCacheLevel, SharedCacheStats } from './cache/shared.js';

export interface CacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  maxBytes: number;
  /** Level two in Redis (REDIS_URL set). */
  shared?: SharedCacheStats;
}

interface Pending {
  promise: Promise<InstanceExplanation>;
  resolve(v: InstanceExplanation): void;
  reject(e: unknown): void;
  settled: boolean;
}

function pending(): Pending {
  let resolve!: (v: InstanceExplanation) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<InstanceExplanation>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A failed computation is not remembered: the next request tries again.
  promise.catch(() => undefined);
  const p: Pending = {
    promise,
    settled: false,
    resolve: (v) => {
      p.settled = true;
      resolve(v);
    },
    reject: (e) => {
      p.settled = true;
      reject(e);
    },
  };
  return p;
}

/** How many times a key whose holder vanished is tried again through the locks before computing regardless. */
const FLIGHT_ROUNDS = 3;

export class ExplanationCache {
  private readonly lru: LRUCache<string, InstanceExplanation>;
  private readonly inflight = new Map<string, Promise<InstanceExplanation>>();
  /** Request-level diagnostics per context, so a full cache hit answers like the computation did. */
  readonly contextInfo = new LRUCache<string, Record<string, unknown>>({ max: 10_000 });
  /** Instances answered without computing here (level one, level two, or a computation in flight here or elsewhere). */
  hits = 0;
  /** Instances computed here. */
  misses = 0;

  constructor(
    readonly maxBytes: number,
    /** Level two and the cross-replica single flight (REDIS_URL); absent: this process alone. */
    readonly shared?: SharedCacheLevel,
  ) {
    this.lru = new LRUCache<string, InstanceExplanation>({
      maxSize: Math.max(1, maxBytes),
      // JSON length is a fair proxy for the retained size of these plain objects.
      sizeCalculation: (v) => Math.max(1, JSON.stringify(v).length),
    });
  }

  /** Key for one instance under one request context (model version, method, parameters, outputs). */
  static key(context: string, row: Float32Array): string {
    const h = createHash('sha256');
    h.update(context);
    h.update('\u0000');
    h.update(Buffer.from(row.buffer, row.byteOffset, row.byteLength));
    return h.digest('hex');
  }

  static contextHash(parts: unknown): string {
    return createHash('sha256').update(canonicalJson(parts)).digest('hex');
  }

  /** Remembers a context's request-level diagnostics here and, with level two, for the other replicas. */
  async setContextInfo(context: string, info: Record<string, unknown>): Promise<void> {
    const known = this.contextInfo.get(context);
    this.contextInfo.set(context, info);
    // Written once per context and replica, not once per computation.
    if (!known || canonicalJson(known) !== canonicalJson(info)) await this.shared?.setMany([[`ctx-${context}`, info]]);
  }

  async getContextInfo(context: string): Promise<Record<string, unknown> | undefined> {
    const here = this.contextInfo.get(context);
    if (here || !this.shared) return here;
    const [there] = await this.shared.getMany<Record<string, unknown>>([`ctx-${context}`]);
    if (there) this.contextInfo.set(context, there);
    return there;
  }

  /**
   * Resolves every key: from level one, from a computation already in flight here, from level two,
   * from another replica's computation, or by calling `compute` with the indices nobody has (maybe
   * more than once, for disjoint indices). Returns results in key order and how many came without
   * computing here. Only results that pass `cacheable` are kept.
   */
  async resolve(
    keys: string[],
    compute: (missing: number[]) => Promise<InstanceExplanation[]>,
    cacheable: (e: InstanceExplanation) => boolean = () => true,
  ): Promise<{ results: InstanceExplanation[]; reused: number }> {
    const results: (InstanceExplanation | Promise<InstanceExplanation>)[] = new Array(keys.length);
    const missing: number[] = [];
    const firstIndex = new Map<string, number>();
    const duplicateOf = new Map<number, number>();
    let reused = 0;
    keys.forEach((k, i) => {
      const hit = this.lru.get(k);
      if (hit) {
        results[i] = hit;
        reused++;
        this.hits++;
        return;
      }
      const running = this.inflight.get(k);
      if (running) {
        results[i] = running;
        reused++;
        this.hits++;
        return;
      }
      const first = firstIndex.get(k);
      if (first !== undefined) {
        // The same instance twice in one request: compute once.
        duplicateOf.set(i, first);
        return;
      }
      firstIndex.set(k, i);
      missing.push(i);
    });
    if (missing.length) {
      // Registered before the first await, so concurrent requests here join these computations.
      const slots = missing.map(() => pending());
      missing.forEach((i, j) => {
        this.inflight.set(keys[i], slots[j].promise);
        results[i] = slots[j].promise;
      });
      try {
        reused += await this.produce(
          missing.map((i) => keys[i]),
          slots,
          (js) => compute(js.map((j) => missing[j])),
          cacheable,
        );
      } catch (e) {
        for (const s of slots) if (!s.settled) s.reject(e);
        throw e;
      } finally {
        missing.forEach((i, j) => {
          if (this.inflight.get(keys[i]) === slots[j].promise) this.inflight.delete(keys[i]);
        });
      }
    }
    const settled = await Promise.all(results.map((r) => Promise.resolve(r)));
    for (const [i, first] of duplicateOf) settled[i] = settled[first];
    return { results: settled, reused };
  }

  /** Fills every slot; returns how many were not computed here. */
  private async produce(
    keys: string[],
    slots: Pending[],
    compute: (js: number[]) => Promise<InstanceExplanation[]>,
    cacheable: (e: InstanceExplanation) => boolean,
  ): Promise<number> {
    const shared = this.shared;
    let todo = keys.map((_, j) => j);
    if (!shared) {
      await this.computeHere(keys, slots, todo, compute, cacheable, false);
      return 0;
    }
    let reused = 0;
    const found = await shared.getMany(todo.map((j) => keys[j]));
    todo = todo.filter((j, t) => {
      const v = found[t];
      if (!v) return true;
      this.lru.set(keys[j], v);
      slots[j].resolve(v);
      return false;
    });
    reused += keys.length - todo.length;
    for (let round = 0; todo.length && round < FLIGHT_ROUNDS; round++) {
      const owned = await shared.acquire(todo.map((j) => keys[j]));
      const mine = todo.filter((_, t) => owned[t]);
      const theirs = todo.filter((_, t) => !owned[t]);
      const waits = theirs.map(async (j) => {
        const v = await shared.wait(keys[j]);
        if (!v) return j;
        this.lru.set(keys[j], v);
        slots[j].resolve(v);
        reused++;
        return undefined;
      });
      const [, left] = await Promise.all([this.computeHere(keys, slots, mine, compute, cacheable, true), Promise.all(waits)]);
      todo = left.filter((j): j is number => j !== undefined);
    }
    // Still nobody's after several rounds (holders keep vanishing): compute without the lock.
    await this.computeHere(keys, slots, todo, compute, cacheable, false);
    this.hits += reused;
    return reused;
  }

  private async computeHere(
    keys: string[],
    slots: Pending[],
    js: number[],
    compute: (js: number[]) => Promise<InstanceExplanation[]>,
    cacheable: (e: InstanceExplanation) => boolean,
    locked: boolean,
  ): Promise<void> {
    if (!js.length) return;
    this.misses += js.length;
    const mine = js.map((j) => keys[j]);
    const stop = locked && this.shared ? this.shared.heartbeat(mine) : () => undefined;
    try {
      const computed = await compute(js);
      const keep: [string, InstanceExplanation][] = [];
      js.forEach((j, t) => {
        if (cacheable(computed[t])) {
          this.lru.set(keys[j], computed[t]);
          keep.push([keys[j], computed[t]]);
        }
      });
      // Written before the locks go, so a replica waiting on them finds the values.
      await this.shared?.setMany(keep);
      js.forEach((j, t) => slots[j].resolve(computed[t]));
    } finally {
      stop();
      if (locked) await this.shared?.release(mine);
    }
  }

  stats(): CacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      entries: this.lru.size,
      bytes: this.lru.calculatedSize ?? 0,
      maxBytes: this.maxBytes,
      ...(this.shared ? { shared: this.shared.stats() } : {}),
    };
  }
}

/** JSON with object keys sorted, so equal parameters give equal keys whatever their order. */
export function canonicalJson(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (ArrayBuffer.isView(v)) return JSON.stringify(Array.from(v as unknown as ArrayLike<number>));
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/** A hash of rows (background, baseline ...) for cache contexts. */
export function hashRows(rows: { data: Float32Array }): string {
  return ExplanationCache.key('rows', rows.data);
}
