/**
 * Per-instance explanation cache (lru-cache, bounded by bytes) with single flight: concurrent
 * requests for the same key compute once. Keys carry the model version, so a new model version
 * never serves an old answer.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { InstanceExplanation } from '../explainers/types.js';

export interface CacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
  maxBytes: number;
}

export class ExplanationCache {
  private readonly lru: LRUCache<string, InstanceExplanation>;
  private readonly inflight = new Map<string, Promise<InstanceExplanation>>();
  /** Request-level diagnostics per context, so a full cache hit answers like the computation did. */
  readonly contextInfo = new LRUCache<string, Record<string, unknown>>({ max: 10_000 });
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {
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

  /**
   * Resolves every key: from the cache, from a computation already in flight, or by calling
   * `compute` once with the indices nobody has yet. Returns results in key order and how many came
   * without computing here.
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
      this.misses++;
    });
    if (missing.length) {
      const batch = compute(missing);
      missing.forEach((i, j) => {
        const p = batch.then((r) => r[j]);
        // A failed computation is not remembered: the next request tries again.
        p.catch(() => undefined);
        this.inflight.set(keys[i], p);
        results[i] = p;
      });
      try {
        const computed = await batch;
        missing.forEach((i, j) => {
          if (cacheable(computed[j])) this.lru.set(keys[i], computed[j]);
        });
      } finally {
        for (const i of missing) this.inflight.delete(keys[i]);
      }
    }
    const settled = await Promise.all(results.map((r) => Promise.resolve(r)));
    for (const [i, first] of duplicateOf) settled[i] = settled[first];
    return { results: settled, reused };
  }

  stats(): CacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.lru.size, bytes: this.lru.calculatedSize ?? 0, maxBytes: this.maxBytes };
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
