/**
 * The explanation cache's second level and its single flight across replicas, on Redis.
 *
 * Level two: per-instance explanations under the same keys as level one, compact (service/cache/codec.ts),
 * bounded by a TTL, an entry count and bytes (service/cache/store.ts).
 *
 * Single flight: before computing an instance a replica takes its lock (SET NX PX, a random owner
 * token, renewed every third of its expiry while the computation runs). A replica that finds the
 * lock taken waits for the value to appear in level two: woken by a message on a Redis channel, and
 * polling in case a message is lost. When the lock disappears without a value (the holder died and
 * its lock expired, or its result was not cacheable) the waiter takes the lock and computes itself.
 *
 *   <prefix>:cache:lock:<key>   owner token, with an expiry of `lockMs`
 *   <prefix>:cache:done         channel: keys whose computation ended (comma-separated)
 *
 * Nothing here throws for Redis: a failed command counts as "not shared" (a miss, a lock taken, a
 * write skipped), so requests degrade to level one and a local single flight while Redis is away.
 */
import type { InstanceExplanation } from '../../explainers/types.js';
import type { SharedRedis } from '../redis.js';
import { decodeValue, encodeValue } from './codec.js';
import { RedisStore, type StoreStats } from './store.js';

export interface SharedCacheOptions {
  ttlSeconds: number;
  maxBytes: number;
  maxCount: number;
  /** Expiry of a computation's lock; renewed while it runs. A dead holder is noticed within this. */
  lockMs: number;
  /** Waiters check level two at least this often (they are also woken by a message). */
  pollMs: number;
  /** A waiter gives up waiting and computes after this long. */
  maxWaitMs: number;
}

export interface SharedCacheStats extends StoreStats {
  up: boolean;
  /** Instances read from level two. */
  hits: number;
  /** Instances that another replica computed while this one waited. */
  waited: number;
  /** Waits that ended without a value (the holder died or its result was not cacheable). */
  fallbacks: number;
  /** Waits in progress now. */
  waiting: number;
  /** Values written, and their encoded bytes in total. */
  writes: number;
  writtenBytes: number;
  errors: number;
}

/** KEYS: lock. ARGV: token, ms. Extends the lock only while we still own it. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
/** KEYS: lock. ARGV: token. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** KEYS: value, lock. The value (nil if absent) and the lock's remaining ms (-2: no lock), read at once. */
const PEEK = `return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[2])}`;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class SharedCacheLevel {
  readonly store: RedisStore;
  private readonly channel: string;
  private readonly lockPrefix: string;
  private readonly waiters = new Map<string, Set<() => void>>();
  private subscribed = false;
  hits = 0;
  waited = 0;
  fallbacks = 0;
  writes = 0;
  writtenBytes = 0;
  /** Waits in progress now. */
  waiting = 0;

  constructor(
    readonly redis: SharedRedis,
    readonly o: SharedCacheOptions,
    namespace = 'cache',
  ) {
    this.store = new RedisStore(redis, namespace, { ttlSeconds: o.ttlSeconds, maxBytes: o.maxBytes, maxCount: o.maxCount });
    this.channel = redis.key(namespace, 'done');
    this.lockPrefix = `${redis.key(namespace, 'lock')}:`;
  }

  /** Values by key; undefined where absent, unreadable, or Redis is away. */
  async getMany<T = InstanceExplanation>(keys: string[]): Promise<(T | undefined)[]> {
    if (!keys.length || !this.redis.up) return keys.map(() => undefined);
    try {
      const raw = await this.store.getMany(keys);
      const out = await Promise.all(raw.map((b) => (b ? decodeValue<T>(b) : Promise.resolve(undefined))));
      this.hits += out.filter((v) => v !== undefined).length;
      return out;
    } catch (e) {
      this.redis.failed('cache-get', e);
      return keys.map(() => undefined);
    }
  }

  async setMany(entries: [string, unknown][]): Promise<void> {
    if (!entries.length || !this.redis.up) return;
    try {
      for (const [key, value] of entries) {
        const bytes = await encodeValue(value);
        if (await this.store.put(key, bytes)) {
          this.writes++;
          this.writtenBytes += bytes.byteLength;
        }
      }
    } catch (e) {
      this.redis.failed('cache-set', e);
    }
  }

  /** Takes the locks it can: true where this replica now owns the computation (also when Redis is away). */
  async acquire(keys: string[]): Promise<boolean[]> {
    if (!keys.length) return [];
    if (!this.redis.up) return keys.map(() => true);
    try {
      const p = this.redis.client.pipeline();
      for (const k of keys) p.set(this.lockPrefix + k, this.redis.id, 'PX', this.o.lockMs, 'NX');
      const replies = (await p.exec()) ?? [];
      return keys.map((_, i) => {
        const [err, reply] = replies[i] ?? [new Error('no reply'), null];
        return err ? true : reply === 'OK';
      });
    } catch (e) {
      this.redis.failed('lock', e);
      return keys.map(() => true);
    }
  }

  /** Renews the locks every third of their expiry until the returned function is called. */
  heartbeat(keys: string[]): () => void {
    if (!keys.length) return () => undefined;
    const timer = setInterval(() => {
      if (!this.redis.up) return;
      const p = this.redis.client.pipeline();
      for (const k of keys) p.eval(RENEW, 1, this.lockPrefix + k, this.redis.id, String(this.o.lockMs));
      p.exec().catch((e: unknown) => this.redis.failed('lock', e));
    }, Math.max(50, Math.floor(this.o.lockMs / 3)));
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Releases our locks and tells the waiters (their value is in level two, or they compute). */
  async release(keys: string[]): Promise<void> {
    if (!keys.length || !this.redis.up) return;
    try {
      const p = this.redis.client.pipeline();
      for (const k of keys) p.eval(RELEASE, 1, this.lockPrefix + k, this.redis.id);
      await p.exec();
      await this.redis.publish(this.channel, keys.join(','));
    } catch (e) {
      this.redis.failed('lock', e);
    }
  }

  /**
   * Waits for another replica's computation of `key`: its value, or undefined when the computation
   * ended without one (the holder died, failed, or its result is not cacheable), Redis went away, or
   * `maxWaitMs` passed. The caller then computes.
   */
  async wait<T = InstanceExplanation>(key: string): Promise<T | undefined> {
    this.waiting++;
    try {
      return await this.waitFor<T>(key);
    } finally {
      this.waiting--;
    }
  }

  private async waitFor<T>(key: string): Promise<T | undefined> {
    this.listen();
    const end = Date.now() + this.o.maxWaitMs;
    for (;;) {
      if (!this.redis.up) return undefined;
      let value: Buffer | null;
      let ttl: number;
      try {
        [value, ttl] = (await this.redis.client.callBuffer('EVAL', [PEEK, 2, this.store.valueKey(key), this.lockPrefix + key])) as [
          Buffer | null,
          number,
        ];
      } catch (e) {
        this.redis.failed('wait', e);
        return undefined;
      }
      if (value) {
        const v = await decodeValue<T>(value);
        if (v !== undefined) {
          this.waited++;
          return v;
        }
      }
      if (ttl < 0 || value || Date.now() >= end) {
        this.fallbacks++;
        return undefined;
      }
      await this.woken(key, Math.min(this.o.pollMs, ttl, Math.max(1, end - Date.now())));
    }
  }

  private woken(key: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = () => {
        set.delete(done);
        if (!set.size) this.waiters.delete(key);
        resolve();
      };
      set.add(done);
      void sleep(ms).then(done);
    });
  }

  private listen(): void {
    if (this.subscribed) return;
    this.subscribed = true;
    this.redis.subscribe(this.channel, (message) => {
      for (const key of message.split(',')) for (const wake of [...(this.waiters.get(key) ?? [])]) wake();
    });
  }

  stats(): SharedCacheStats {
    return {
      ...this.store.stats(),
      up: this.redis.up,
      hits: this.hits,
      waited: this.waited,
      fallbacks: this.fallbacks,
      waiting: this.waiting,
      writes: this.writes,
      writtenBytes: this.writtenBytes,
      errors: [...this.redis.errors.entries()].filter(([op]) => op.startsWith('cache') || op === 'lock' || op === 'wait').reduce((a, [, n]) => a + n, 0),
    };
  }
}
