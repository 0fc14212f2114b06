/**
 * The API replicas' shared state on Redis (REDIS_URL): one command connection and, on first use, one
 * subscriber connection per process. Everything built on it degrades instead of failing: commands
 * fail fast while Redis is unreachable (no offline queue, a short command timeout), the callers
 * treat a failure as "not shared right now" (level-one cache only, local single flight, local
 * records and live window), and ioredis reconnects on its own, so the replica recovers without a
 * restart.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface SharedRedisOptions {
  url: string;
  /** Key prefix of everything the replicas share (REDIS_PREFIX, default "tfjs-explainer"). */
  prefix: string;
  /** A command that takes longer fails (and the caller degrades); default 1000 ms. */
  commandTimeoutMs?: number;
  logger?: Pick<Logger, 'warn' | 'info'>;
}

/** Failures per operation kind, for /metrics. */
export type SharedOp = 'cache-get' | 'cache-set' | 'lock' | 'wait' | 'records' | 'live' | 'publish' | 'compare';

export class SharedRedis {
  readonly client: Redis;
  readonly prefix: string;
  /** This process, in lock values and published messages. */
  readonly id = randomUUID();
  readonly errors = new Map<SharedOp, number>();
  private subscriber: Redis | undefined;
  private readonly handlers = new Map<string, Set<(message: string) => void>>();
  private lastWarning = 0;
  private closed = false;

  constructor(private readonly o: SharedRedisOptions) {
    this.prefix = o.prefix;
    this.client = new Redis(o.url, {
      // Fail fast while disconnected: a request must not wait for Redis to come back.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: o.commandTimeoutMs ?? 1000,
      connectTimeout: 2000,
      // Reconnect forever, at most every 2 s.
      retryStrategy: (times) => Math.min(100 * times, 2000),
    });
    this.client.on('error', (e: Error) => this.warn('connection', e));
    this.client.on('ready', () => o.logger?.info({ redis: redactUrl(o.url) }, 'shared state on Redis: connected'));
  }

  /** Connected and ready for commands. */
  get up(): boolean {
    return this.client.status === 'ready';
  }

  key(...parts: string[]): string {
    return [this.prefix, ...parts].join(':');
  }

  /** Counts a failed shared operation and logs it (at most every 10 s). */
  failed(op: SharedOp, e: unknown): void {
    this.errors.set(op, (this.errors.get(op) ?? 0) + 1);
    this.warn(op, e);
  }

  private warn(what: string, e: unknown): void {
    if (this.closed) return;
    const now = Date.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.o.logger?.warn(
      { op: what, err: e instanceof Error ? e.message : String(e) },
      'shared state on Redis unavailable: serving from this replica alone until it is back',
    );
  }

  /** Calls `handler` with each message published on `channel` (a key made with `key()`). */
  subscribe(channel: string, handler: (message: string) => void): void {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      // Not awaited: while Redis is away the subscription waits for the reconnection, requests do not.
      this.sub()
        .subscribe(channel)
        .catch((e: unknown) => this.warn('subscribe', e));
    }
    set.add(handler);
  }

  unsubscribe(channel: string, handler: (message: string) => void): void {
    this.handlers.get(channel)?.delete(handler);
  }

  private sub(): Redis {
    if (!this.subscriber) {
      // Subscriber mode needs its own connection; ioredis resubscribes after a reconnect.
      this.subscriber = new Redis(this.o.url, {
        maxRetriesPerRequest: null,
        connectTimeout: 2000,
        retryStrategy: (times) => Math.min(100 * times, 2000),
      });
      this.subscriber.on('error', (e: Error) => this.warn('subscriber', e));
      this.subscriber.on('message', (channel: string, message: string) => {
        for (const h of this.handlers.get(channel) ?? []) h(message);
      });
    }
    return this.subscriber;
  }

  /** Publishes; a failure is counted, never thrown. */
  async publish(channel: string, message: string): Promise<void> {
    try {
      await this.client.publish(channel, message);
    } catch (e) {
      this.failed('publish', e);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client.disconnect();
    this.subscriber?.disconnect();
  }
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable REDIS_URL)';
  }
}
