/**
 * What it takes to recompute an explanation from its id: the model, its version and the request
 * body, persisted as one small JSON file per id under DATA_DIR/explanations (and, with REDIS_URL,
 * in Redis too: SharedRecords below). A link pasted into a
 * ticket keeps working after the result left the cache and after a restart, within bounds: at most
 * `maxCount` records and `maxBytes` bytes (the oldest go first) and none older than `ttlSeconds`.
 */
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { decodeValue, encodeValue } from './cache/codec.js';
import { RedisStore, type StoreStats } from './cache/store.js';
import type { SharedRedis } from './redis.js';
import type { ExplainBody } from './schemas/requests.js';

export interface ExplanationRecord {
  model: string;
  version: string;
  body: ExplainBody;
}

export interface RecordLimits {
  maxCount: number;
  maxBytes: number;
  ttlSeconds: number;
}

export interface RecordStats {
  count: number;
  bytes: number;
  maxCount: number;
  maxBytes: number;
}

const ID = /^[0-9a-f]{32}$/;

export class ExplanationRecords implements RecordStore {
  private readonly memory = new LRUCache<string, ExplanationRecord>({ max: 10_000 });
  // Bounded: forgetting an id only costs one more (idempotent) write.
  private readonly written = new LRUCache<string, Promise<void>>({ max: 100_000 });
  /** Records on disk, oldest first: id -> bytes and write time. */
  private readonly index = new Map<string, { bytes: number; at: number }>();
  private bytes = 0;
  private loaded: Promise<void> | undefined;
  /** Writes and evictions run one at a time, so the bounds hold whatever the concurrency. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    readonly limits: RecordLimits,
  ) {}

  static isId(id: string): boolean {
    return ID.test(id);
  }

  /** Reads what is already on disk once (a restart keeps its records and its bounds). */
  private load(): Promise<void> {
    this.loaded ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      const found: { id: string; bytes: number; at: number }[] = [];
      for (const name of await readdir(this.dir)) {
        const file = path.join(this.dir, name);
        if (name.endsWith('.tmp')) {
          await unlink(file).catch(() => undefined); // a write a crash interrupted
          continue;
        }
        const id = name.slice(0, -'.json'.length);
        if (!name.endsWith('.json') || !ID.test(id)) continue;
        const s = await stat(file).catch(() => undefined);
        if (s) found.push({ id, bytes: s.size, at: s.mtimeMs });
      }
      found.sort((a, b) => a.at - b.at);
      for (const r of found) this.add(r.id, r.bytes, r.at);
      await this.evict();
    })();
    return this.loaded;
  }

  private add(id: string, bytes: number, at: number): void {
    const old = this.index.get(id);
    if (old) {
      this.bytes -= old.bytes;
      this.index.delete(id);
    }
    this.index.set(id, { bytes, at });
    this.bytes += bytes;
  }

  private async remove(id: string): Promise<void> {
    const r = this.index.get(id);
    if (!r) return;
    this.index.delete(id);
    this.bytes -= r.bytes;
    this.memory.delete(id);
    this.written.delete(id);
    await unlink(path.join(this.dir, `${id}.json`)).catch(() => undefined);
  }

  /** Oldest first: past the TTL, then beyond the count and byte caps. */
  private async evict(now = Date.now()): Promise<void> {
    const ttlMs = this.limits.ttlSeconds * 1000;
    for (const [id, r] of this.index) {
      const expired = ttlMs > 0 && now - r.at > ttlMs;
      if (!expired && this.index.size <= this.limits.maxCount && this.bytes <= this.limits.maxBytes) break;
      await this.remove(id);
    }
  }

  /** Persists once per id; concurrent puts of one id share the write. */
  put(id: string, record: ExplanationRecord): Promise<void> {
    this.memory.set(id, record);
    let writing = this.written.get(id);
    if (!writing) {
      writing = this.enqueue(() => this.write(id, record));
      this.written.set(id, writing);
      writing.catch(() => this.written.delete(id));
    }
    return writing;
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(id: string, record: ExplanationRecord): Promise<void> {
    await this.load();
    if (this.index.has(id)) return;
    const text = JSON.stringify(record);
    const bytes = Buffer.byteLength(text);
    // A record larger than the whole store would only evict everything else.
    if (bytes > this.limits.maxBytes || this.limits.maxCount === 0) return;
    const file = path.join(this.dir, `${id}.json`);
    // Write then rename: a crash never leaves a half-written record behind.
    const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, file);
    this.add(id, bytes, Date.now());
    await this.evict();
  }

  async get(id: string): Promise<ExplanationRecord | undefined> {
    if (!ExplanationRecords.isId(id)) return undefined;
    await this.load();
    const entry = this.index.get(id);
    const ttlMs = this.limits.ttlSeconds * 1000;
    if (entry && ttlMs > 0 && Date.now() - entry.at > ttlMs) {
      await this.enqueue(() => this.remove(id));
      return undefined;
    }
    const hit = this.memory.get(id);
    if (hit) return hit;
    if (!entry) return undefined;
    try {
      const record = JSON.parse(await readFile(path.join(this.dir, `${id}.json`), 'utf8')) as ExplanationRecord;
      this.memory.set(id, record);
      return record;
    } catch {
      return undefined;
    }
  }

  stats(): RecordStats {
    return { count: this.index.size, bytes: this.bytes, maxCount: this.limits.maxCount, maxBytes: this.limits.maxBytes };
  }
}

/** Where explanation records live: this process's DATA_DIR, or that plus Redis shared by the replicas. */
export interface RecordStore {
  put(id: string, record: ExplanationRecord): Promise<void>;
  get(id: string): Promise<ExplanationRecord | undefined>;
  stats(): RecordStats & { shared?: StoreStats & { up: boolean } };
}

/**
 * Records shared by the replicas (REDIS_URL): written to this replica's DATA_DIR and to Redis
 * (compact, with the same TTL, count and byte bounds), read here first and then from Redis, so a
 * permalink minted on one replica answers on every other. While Redis is away, records are written
 * and read here only (a permalink then works on the replica that minted it), and nothing fails.
 */
export class SharedRecords implements RecordStore {
  private readonly store: RedisStore;

  constructor(
    readonly local: ExplanationRecords,
    private readonly redis: SharedRedis,
  ) {
    this.store = new RedisStore(redis, 'records', {
      ttlSeconds: local.limits.ttlSeconds,
      maxCount: local.limits.maxCount,
      maxBytes: local.limits.maxBytes,
    });
  }

  async put(id: string, record: ExplanationRecord): Promise<void> {
    await this.local.put(id, record);
    if (!this.redis.up) return;
    try {
      await this.store.put(id, await encodeValue(record));
    } catch (e) {
      this.redis.failed('records', e);
    }
  }

  async get(id: string): Promise<ExplanationRecord | undefined> {
    if (!ExplanationRecords.isId(id)) return undefined;
    const here = await this.local.get(id);
    if (here || !this.redis.up) return here;
    try {
      const bytes = await this.store.get(id);
      return bytes ? await decodeValue<ExplanationRecord>(bytes) : undefined;
    } catch (e) {
      this.redis.failed('records', e);
      return undefined;
    }
  }

  stats(): ReturnType<RecordStore['stats']> {
    return { ...this.local.stats(), shared: { ...this.store.stats(), up: this.redis.up } };
  }
}
