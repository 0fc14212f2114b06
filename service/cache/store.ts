/**
 * A bounded key-value store on Redis, shared by the replicas: each entry has a TTL, and the store as
 * a whole keeps at most `maxCount` entries and `maxBytes` bytes of values, the oldest written
 * removed first. The bounds are the application's own (an index sorted by write time, trimmed by
 * one Lua script on every write), not Redis's `maxmemory` eviction: the same Redis holds BullMQ's
 * job state, which must never be evicted (BullMQ requires `maxmemory-policy noeviction`).
 *
 *   <prefix>:<ns>:v:<id>   the value (binary), with its TTL
 *   <prefix>:<ns>:idx      sorted set: id -> write time (ms)
 *   <prefix>:<ns>:size     hash: id -> value bytes, and "#bytes" -> their total
 */
import type { Redis } from 'ioredis';
import type { SharedRedis } from '../redis.js';

export interface StoreLimits {
  /** Seconds an entry lives (0: no TTL; the count and byte bounds still apply). */
  ttlSeconds: number;
  maxCount: number;
  maxBytes: number;
}

export interface StoreStats {
  count: number;
  bytes: number;
  maxCount: number;
  maxBytes: number;
  ttlSeconds: number;
}

/**
 * KEYS: value, index, sizes. ARGV: value, ttl ms (0: none), now ms, max bytes, max count, id,
 * value-key prefix, most removals. Returns {count, bytes}.
 */
const PUT = `
local id = ARGV[6]
local n = string.len(ARGV[1])
local ttl = tonumber(ARGV[2])
local old = tonumber(redis.call('HGET', KEYS[3], id) or '0')
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl) else redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[2], ARGV[3], id)
redis.call('HSET', KEYS[3], id, n)
local total = redis.call('HINCRBY', KEYS[3], '#bytes', n - old)
local cutoff = -1
if ttl > 0 then cutoff = tonumber(ARGV[3]) - ttl end
local maxBytes = tonumber(ARGV[4])
local maxCount = tonumber(ARGV[5])
local budget = tonumber(ARGV[8])
local count = redis.call('ZCARD', KEYS[2])
while budget > 0 do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #oldest == 0 then break end
  if tonumber(oldest[2]) > cutoff and total <= maxBytes and count <= maxCount then break end
  local victim = oldest[1]
  local size = tonumber(redis.call('HGET', KEYS[3], victim) or '0')
  redis.call('ZREM', KEYS[2], victim)
  redis.call('HDEL', KEYS[3], victim)
  redis.call('DEL', ARGV[7] .. victim)
  total = redis.call('HINCRBY', KEYS[3], '#bytes', -size)
  count = count - 1
  budget = budget - 1
end
return {count, total}
`;

export class RedisStore {
  private readonly client: Redis;
  private readonly valuePrefix: string;
  private readonly index: string;
  private readonly sizes: string;
  private last = { count: 0, bytes: 0 };

  constructor(
    readonly redis: SharedRedis,
    readonly namespace: string,
    readonly limits: StoreLimits,
  ) {
    this.client = redis.client;
    this.valuePrefix = `${redis.key(namespace, 'v')}:`;
    this.index = redis.key(namespace, 'idx');
    this.sizes = redis.key(namespace, 'size');
  }

  valueKey(id: string): string {
    return this.valuePrefix + id;
  }

  /** Stores a value (throws when Redis fails: callers decide how to degrade). False: too large to keep. */
  async put(id: string, value: Buffer): Promise<boolean> {
    const { ttlSeconds, maxCount, maxBytes } = this.limits;
    // A value larger than the whole store would only evict everything else.
    if (value.byteLength > maxBytes || maxCount === 0) return false;
    const [count, bytes] = (await this.client.eval(
      PUT,
      3,
      this.valueKey(id),
      this.index,
      this.sizes,
      value,
      String(ttlSeconds * 1000),
      String(Date.now()),
      String(maxBytes),
      String(maxCount),
      id,
      this.valuePrefix,
      '1000',
    )) as [number, number];
    this.last = { count, bytes };
    return true;
  }

  /** Values by id, undefined where absent (throws when Redis fails). */
  async getMany(ids: string[]): Promise<(Buffer | undefined)[]> {
    if (!ids.length) return [];
    const values = await this.client.mgetBuffer(...ids.map((id) => this.valueKey(id)));
    return values.map((v) => v ?? undefined);
  }

  async get(id: string): Promise<Buffer | undefined> {
    return (await this.client.getBuffer(this.valueKey(id))) ?? undefined;
  }

  /** The bounds, and the count and bytes as of this replica's last write (or `refresh`). */
  stats(): StoreStats {
    return { ...this.last, maxCount: this.limits.maxCount, maxBytes: this.limits.maxBytes, ttlSeconds: this.limits.ttlSeconds };
  }

  async refresh(): Promise<StoreStats> {
    const [count, bytes] = await Promise.all([this.client.zcard(this.index), this.client.hget(this.sizes, '#bytes')]);
    this.last = { count, bytes: Number(bytes ?? 0) };
    return this.stats();
  }
}
