/**
 * A cache of whole results (global effects) keyed by a hash of everything the answer depends on
 * (model version, canonical parameters, a hash of the data), bounded by bytes (lru-cache), with
 * single flight: concurrent requests for the same key compute once. Per-instance explanations have
 * their own cache (cache.ts); this one holds answers that only exist for a whole request.
 */
import { LRUCache } from 'lru-cache';

export class ResultCache<V extends object> {
  private readonly lru: LRUCache<string, V>;
  private readonly inflight = new Map<string, Promise<V>>();
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {
    this.lru = new LRUCache<string, V>({
      maxSize: Math.max(1, maxBytes),
      // JSON length is a fair proxy for the retained size of these plain objects.
      sizeCalculation: (v) => Math.max(1, JSON.stringify(v).length),
      // A result larger than the whole cache is simply not kept.
      maxEntrySize: Math.max(1, maxBytes),
    });
  }

  /**
   * The cached value for `key`, the value of a computation already running for it, or `compute()`'s
   * (remembered unless it fails). `hit` is true when nothing was computed for this call.
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
    this.misses++;
    const p = compute();
    this.inflight.set(key, p);
    try {
      const value = await p;
      this.lru.set(key, value);
      return { value, hit: false };
    } finally {
      this.inflight.delete(key);
    }
  }

  stats(): { hits: number; misses: number; entries: number; bytes: number; maxBytes: number } {
    return { hits: this.hits, misses: this.misses, entries: this.lru.size, bytes: this.lru.calculatedSize ?? 0, maxBytes: this.maxBytes };
  }
}
