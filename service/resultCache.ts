/**
 * A cache of whole results (global effects) keyed by a hash of everything the answer depends on
 * (model version, canonical parameters, a hash of the data), bounded by bytes (lru-cache), with
 * single flight: concurrent requests for the same key compute once. Per-instance explanations have
 * their own cache (cache.ts); this one holds answers that only exist for a whole request.
 *
 * With REDIS_URL a second level is shared by the replicas (the same SharedCacheLevel as the
 * explanation cache, in its own namespace): a result computed on one replica is a hit on the others,
 * and the same request arriving at several replicas computes once (a lock per key; a waiter whose
 * holder vanished computes itself). Only finished results are stored: a computation that fails (a
 * deadline, a bad request) leaves nothing behind, here or in Redis.
 */
import { LRUCache } from 'lru-cache';
import type { SharedCacheLevel } from './cache/shared.js';

/** How many times a key whose holder vanished is tried again through the lock before computing regardless. */
const FLIGHT_ROUNDS = 3;

export class ResultCache<V extends object> {
  private readonly lru: LRUCache<string, V>;
  private readonly inflight = new Map<string, Promise<V>>();
  /** Answers that were not computed by this call: level one, a computation in flight here, level two or another replica's. */
  hits = 0;
  /** Answers computed here. */
  misses = 0;

  constructor(
    readonly maxBytes: number,
    /** Level two and the cross-replica single flight (REDIS_URL); absent: this process alone. */
    readonly shared?: SharedCacheLevel,
  ) {
    this.lru = new LRUCache<string, V>({
      maxSize: Math.max(1, maxBytes),
      // JSON length is a fair proxy for the retained size of these plain objects.
      sizeCalculation: (v) => Math.max(1, JSON.stringify(v).length),
      // A result larger than the whole cache is simply not kept.
      maxEntrySize: Math.max(1, maxBytes),
    });
  }

  /**
   * The cached value for `key`, the value of a computation already running for it (here or on
   * another replica), or `compute()`'s (remembered unless it fails). `hit` is true when nothing was
   * computed for this call.
   */
  async get(key: string, compute: () => Promise<V>): Promise<{ value: V; hit: boolean }> {
    const cached = this.lru.get(key);
    if (cached) {
      this.hits++;
      return { value: cached, hit: true };
    }
    const running = this.inflight.get(key);
    if (running) {
      this.hits++;
      return { value: await running, hit: true };
    }
    const p = this.obtain(key, compute);
    const value = p.then((r) => r.value);
    // Callers that join it see the failure; nobody joining is not an unhandled rejection.
    value.catch(() => undefined);
    this.inflight.set(key, value);
    try {
      const r = await p;
      this.lru.set(key, r.value);
      if (r.hit) this.hits++;
      else this.misses++;
      return r;
    } finally {
      this.inflight.delete(key);
    }
  }

  /** Level two, another replica's computation, or ours (under the lock, written before it goes). */
  private async obtain(key: string, compute: () => Promise<V>): Promise<{ value: V; hit: boolean }> {
    const shared = this.shared;
    if (!shared) return { value: await compute(), hit: false };
    const [found] = await shared.getMany<V>([key]);
    if (found) return { value: found, hit: true };
    for (let round = 0; round < FLIGHT_ROUNDS; round++) {
      const [owned] = await shared.acquire([key]);
      if (owned) {
        const stop = shared.heartbeat([key]);
        try {
          const value = await compute();
          await shared.setMany([[key, value]]);
          return { value, hit: false };
        } finally {
          stop();
          await shared.release([key]);
        }
      }
      const theirs = await shared.wait<V>(key);
      if (theirs) return { value: theirs, hit: true };
    }
    // Holders keep vanishing: compute without the lock.
    return { value: await compute(), hit: false };
  }

  stats(): { hits: number; misses: number; entries: number; bytes: number; maxBytes: number } {
    return { hits: this.hits, misses: this.misses, entries: this.lru.size, bytes: this.lru.calculatedSize ?? 0, maxBytes: this.maxBytes };
  }
}
