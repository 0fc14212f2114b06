/**
 * The replicas' shared state on a real redis-server, component by component in one process (the
 * process-level tests are in scale.replicas.test.ts): the bounded store keeps its count, byte and
 * TTL bounds; two caches with their own connections share level two and compute once between them;
 * a lock whose holder vanished is taken over after its expiry; a result that is not cacheable is
 * not shared; with Redis stopped every call still answers (level one, local single flight) and
 * after a restart sharing resumes; records and live windows written by one service are read by
 * another with a different DATA_DIR. With the service's own rules: the explanation cache shares
 * everything but deadline-cut results (an unconverged "budget" answer is shared); live windows count
 * POST predict and explain on every app, never chart URLs or permalinks; global effects have a shared
 * level two and compute once across apps.
 *
 * Without redis-server the suite is skipped with a message, except in CI (CI set), where it fails.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { InstanceExplanation } from '../explainers/types.js';
import { redisServerBinary, startDevRedis, type DevRedis } from '../jobs/devRedis.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { ExplanationCache } from '../service/cache.js';
import { decodeValue, encodeValue } from '../service/cache/codec.js';
import { SharedCacheLevel } from '../service/cache/shared.js';
import { RedisStore } from '../service/cache/store.js';
import { createService, type Service } from '../service/context.js';
import { SharedRedis } from '../service/redis.js';
import { isCacheable } from '../service/stopReason.js';
import request from 'supertest';
import { createApp, type App } from '../server/app.js';
import { testConfig } from './helpers/config.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fake(tag: number): InstanceExplanation {
  return { outputs: [], converged: true, modelEvaluations: tag, computeMs: 1 };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('shared state on Redis (one process)', function () {
  this.timeout(120_000);
  let server: DevRedis | undefined;
  const opened: SharedRedis[] = [];
  const prefix = `scale-${process.pid}`;

  const shared = () => {
    const s = new SharedRedis({ url: server!.url, prefix });
    opened.push(s);
    return s;
  };
  const level = (s: SharedRedis, o: Partial<ConstructorParameters<typeof SharedCacheLevel>[1]> = {}) =>
    new SharedCacheLevel(s, { ttlSeconds: 60, maxBytes: 1e6, maxCount: 1000, lockMs: 1000, pollMs: 50, maxWaitMs: 10_000, ...o });

  before(async function () {
    const bin = redisServerBinary();
    if (!bin) {
      if (process.env.CI) throw new Error('redis-server is not installed, and CI is set: install it (apt-get install redis-server)');
      console.warn('    skipping the shared-state tests: redis-server is not installed (apt-get install redis-server)');
      this.skip();
    }
    server = await startDevRedis(bin);
  });
  after(async () => {
    for (const s of opened) await s.close();
    await server?.stop();
  });

  it('the bounded store keeps at most maxCount entries and maxBytes bytes, oldest first, and expires entries', async () => {
    const s = shared();
    await until('connected', () => s.up);
    const store = new RedisStore(s, 'bounds', { ttlSeconds: 0, maxCount: 5, maxBytes: 1e6 });
    for (let i = 0; i < 8; i++) await store.put(`k${i}`, Buffer.alloc(10 + i, i));
    const got = await store.getMany(Array.from({ length: 8 }, (_, i) => `k${i}`));
    assert.deepEqual(
      got.map((b) => (b ? b.length : null)),
      [null, null, null, 13, 14, 15, 16, 17],
    );
    assert.deepEqual(await store.refresh(), { count: 5, bytes: 13 + 14 + 15 + 16 + 17, maxCount: 5, maxBytes: 1e6, ttlSeconds: 0 });

    const bytes = new RedisStore(s, 'bytes', { ttlSeconds: 0, maxCount: 1000, maxBytes: 100 });
    for (let i = 0; i < 6; i++) await bytes.put(`b${i}`, Buffer.alloc(30));
    const st = await bytes.refresh();
    assert.equal(st.count, 3);
    assert.equal(st.bytes, 90);
    assert.equal(await bytes.put('huge', Buffer.alloc(101)), false, 'a value larger than the store is not kept');

    const ttl = new RedisStore(s, 'ttl', { ttlSeconds: 1, maxCount: 1000, maxBytes: 1e6 });
    await ttl.put('old', Buffer.from('x'));
    await sleep(1200);
    assert.equal(await ttl.get('old'), undefined);
    await ttl.put('new', Buffer.from('y'));
    assert.deepEqual(await ttl.refresh(), { count: 1, bytes: 1, maxCount: 1000, maxBytes: 1e6, ttlSeconds: 1 }, 'the expired entry left the index');
  });

  it('values round-trip through the codec, smaller than their JSON', async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    const repo: ModelRepository = await loadModelRepository(path.resolve('samples/models'));
    const svc = createService({ registry: repo, config: testConfig({ WORKERS: '0' }) });
    const m = repo.models.get('credit')!;
    const ref = m.reference!.rows;
    const { explain } = await import('../service/explain.js');
    const { explanation } = await explain(svc, m, { instances: [Array.from(ref.data.subarray(0, ref.d))], method: 'kernel-shap', parameters: {} } as never);
    const inst = explanation.explanations[0];
    const bytes = await encodeValue(inst);
    assert.deepEqual(await decodeValue(bytes), JSON.parse(JSON.stringify(inst)));
    assert.ok(bytes.length < JSON.stringify(inst).length / 2, `${bytes.length} bytes vs ${JSON.stringify(inst).length} of JSON`);
    assert.equal(await decodeValue(Buffer.from('not ours')), undefined);
  });

  it('two caches share level two, and identical concurrent work spread over both computes once', async () => {
    const a = new ExplanationCache(1e6, level(shared()));
    const b = new ExplanationCache(1e6, level(shared()));
    await until('connected', () => a.shared!.redis.up && b.shared!.redis.up);
    let calls = 0;
    const compute = async (idx: number[]) => {
      calls += idx.length;
      await sleep(300);
      return idx.map((i) => fake(100 + i));
    };
    const first = await a.resolve(['one'], compute);
    assert.equal(first.reused, 0);
    const onB = await b.resolve(['one'], compute);
    assert.equal(onB.reused, 1, 'a hit on the other cache');
    assert.deepEqual(onB.results, first.results);
    assert.equal(calls, 1);

    calls = 0;
    const keys = ['x', 'y', 'z'];
    const all = await Promise.all([a, b, a, b, a, b].map((c) => c.resolve(keys, compute)));
    assert.equal(calls, 3, 'each key computed once over both caches');
    for (const r of all) assert.deepEqual(r.results, all[0].results);
    assert.equal(
      all.reduce((s, r) => s + r.reused, 0),
      5 * 3,
    );
    assert.equal(a.misses + b.misses, 1 + 3);
  });

  it('a lock whose holder vanished is taken over after its expiry; a result that is not cacheable is not shared', async () => {
    const s = shared();
    const c = new ExplanationCache(1e6, level(s, { lockMs: 600 }));
    await until('connected', () => s.up);
    // A holder that died: its lock is there, no value will come.
    await s.client.set(`${prefix}:cache:lock:orphan`, 'a process that was killed', 'PX', 600);
    const t0 = Date.now();
    const r = await c.resolve(['orphan'], async (idx) => idx.map(() => fake(7)));
    assert.ok(Date.now() - t0 >= 400, 'it waited for the lock to expire');
    assert.equal(r.reused, 0);
    assert.equal(c.shared!.fallbacks, 1);

    const d = new ExplanationCache(1e6, level(shared(), { lockMs: 600 }));
    let calls = 0;
    const slow = async (idx: number[]) => {
      calls++;
      await sleep(200);
      return idx.map(() => ({ ...fake(8), converged: false }));
    };
    const notCached = (e: InstanceExplanation) => e.converged;
    await Promise.all([c.resolve(['cut-short'], slow, notCached), d.resolve(['cut-short'], slow, notCached)]);
    assert.equal(calls, 2, 'the waiter computed its own: a deadline-cut result is nobody\'s answer');
  });

  it("the service's predicate (isCacheable): a budget-stopped answer is shared, a deadline-cut one is not", async () => {
    const a = new ExplanationCache(1e6, level(shared()));
    const b = new ExplanationCache(1e6, level(shared()));
    await until('connected', () => a.shared!.redis.up && b.shared!.redis.up);
    const answer = (stopReason: 'budget' | 'deadline') => async (idx: number[]) => idx.map(() => ({ ...fake(9), converged: false, stopReason }));
    await a.resolve(['budget-1'], answer('budget'), isCacheable);
    await a.resolve(['deadline-1'], answer('deadline'), isCacheable);
    let calls = 0;
    const count = async (idx: number[]) => {
      calls += idx.length;
      return idx.map(() => fake(10));
    };
    const onB = await b.resolve(['budget-1', 'deadline-1'], count, isCacheable);
    assert.equal(onB.reused, 1);
    assert.equal(onB.results[0].stopReason, 'budget', 'the unconverged budget answer came from level two');
    assert.equal(calls, 1, 'the deadline-cut instance was computed again');
  });

  describe('apps on one Redis (two replicas in one process)', () => {
    let repo: ModelRepository;
    const apps: App[] = [];
    const appOn = (tag: string) => {
      const a = createApp({
        registry: repo,
        config: testConfig({ REDIS_URL: server!.url, REDIS_PREFIX: `${prefix}-${tag}`, WORKERS: '0' }),
        backend: 'wasm',
      });
      apps.push(a);
      return a;
    };
    const svcOf = (a: App): Service => a.context.svc;

    before(async () => {
      await selectBackend(process.env.TFJS_BACKEND);
      repo = await loadModelRepository(path.resolve('samples/models'));
    });
    after(async () => {
      for (const a of apps) await svcOf(a).close();
    });

    it('live windows: POST predict and explain on either app count for both; chart URLs and permalinks never do', async () => {
      const [a, b] = [appOn('live'), appOn('live')];
      await until('connected', () => svcOf(a).shared!.up && svcOf(b).shared!.up);
      // Readiness reports the shared state (it never makes a replica unready: it would serve alone).
      const ready = await request(a).get('/readyz');
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.body.shared, { ready: true });
      const cars = repo.models.get('cars')!;
      const seen = async (x: App) => (await svcOf(x).live.window(cars))?.totalSeen ?? 0;
      const rows = [
        [8, 454, 220, 4354, 9, 1970, 1, 0, 0],
        [4, 97, 88, 2130, 14.5, 1970, 0, 0, 1],
      ];
      assert.equal((await request(a).post('/v1/models/cars/predict').send({ instances: rows })).status, 200);
      const explained = await request(b).post('/v1/models/cars/explain').send({ instances: rows, method: 'integrated-gradients' });
      assert.equal(explained.status, 200);
      await until('both POSTs in the shared window', async () => (await seen(a)) === 4 && (await seen(b)) === 4);
      // Views on either app: the permalink (minted on b, shared records), a chart URL.
      assert.equal((await request(a).get(explained.body.links.json)).status, 200);
      assert.equal((await request(a).get('/v1/models/cars/explain.json?Horsepower=150&method=integrated-gradients')).status, 200);
      assert.equal((await request(b).get('/v1/models/cars/explain.svg?Horsepower=120&method=integrated-gradients')).status, 200);
      await sleep(300);
      assert.deepEqual([await seen(a), await seen(b)], [4, 4], 'views are not traffic, on any replica');
    });

    it('global effects: a result computed on one app is a hit on the other, and concurrent requests compute once', async () => {
      const [a, b] = [appOn('effects'), appOn('effects')];
      await until('connected', () => svcOf(a).shared!.up && svcOf(b).shared!.up);
      const body = { kind: 'pd', features: ['income', 'housing'], parameters: { resolution: 8 } };
      const first = await request(a).post('/v1/models/credit/effects').send(body);
      assert.equal(first.status, 200, JSON.stringify(first.body).slice(0, 300));
      assert.equal(first.headers['x-cache'], 'MISS');
      const onB = await request(b).post('/v1/models/credit/effects').send(body);
      assert.equal(onB.headers['x-cache'], 'HIT');
      assert.deepEqual(onB.body.effects, first.body.effects, 'the same effects, through Redis');
      assert.equal(svcOf(b).effectsCache.misses, 0);

      const other = { kind: 'ale', features: ['income'], parameters: { bins: 6 } };
      const both = await Promise.all([a, b, a, b].map((x) => request(x).post('/v1/models/credit/effects').send(other)));
      assert.deepEqual(
        both.map((r) => r.status),
        [200, 200, 200, 200],
      );
      for (const r of both) assert.deepEqual(r.body.effects, both[0].body.effects);
      assert.equal(svcOf(a).effectsCache.misses + svcOf(b).effectsCache.misses, 1 + 1, 'the first request, then the concurrent four computed once');
    });
  });

  it('with Redis stopped every call answers from this process; after a restart sharing resumes', async () => {
    const a = new ExplanationCache(1e6, level(shared()));
    const b = new ExplanationCache(1e6, level(shared()));
    await until('connected', () => a.shared!.redis.up && b.shared!.redis.up);
    const port = server!.port;
    await server!.stop();
    await until('disconnected', () => !a.shared!.redis.up);
    let calls = 0;
    const compute = async (idx: number[]) => {
      calls += idx.length;
      return idx.map(() => fake(9));
    };
    const t0 = Date.now();
    const down = await a.resolve(['during-outage'], compute);
    assert.equal(down.reused, 0);
    assert.ok(Date.now() - t0 < 1000, 'no waiting on Redis');
    assert.equal((await a.resolve(['during-outage'], compute)).reused, 1, 'level one still works');
    assert.equal((await b.resolve(['during-outage'], compute)).reused, 0, 'not shared while Redis is away');

    server = await startDevRedis(undefined, port);
    await until('reconnected', () => a.shared!.redis.up && b.shared!.redis.up, 20_000);
    await a.resolve(['after-restart'], compute);
    const shared2 = await b.resolve(['after-restart'], compute);
    assert.equal(shared2.reused, 1);
  });

  it('records and live windows written through one service are read through another', async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    const repo = await loadModelRepository(path.resolve('samples/models'));
    const dirs = [await mkdtemp(path.join(os.tmpdir(), 'rec-a-')), await mkdtemp(path.join(os.tmpdir(), 'rec-b-'))];
    const env = (d: string) => testConfig({ REDIS_URL: server!.url, REDIS_PREFIX: `${prefix}-svc`, DATA_DIR: d, LIVE_WINDOW_ROWS: '10', WORKERS: '0' });
    const svcs: Service[] = dirs.map((d) => createService({ registry: repo, config: env(d) }));
    try {
      await until('connected', () => svcs.every((s) => s.shared!.up));
      const m = repo.models.get('linear')!;
      const id = 'ab'.repeat(16);
      await svcs[0].records.put(id, { model: 'linear', version: m.version, body: { instances: [[1, 2, 3, 4, 5, 6]], method: 'kernel-shap', parameters: {} } });
      assert.deepEqual((await svcs[1].records.get(id))?.body.instances, [[1, 2, 3, 4, 5, 6]]);
      assert.equal(await svcs[1].records.get('cd'.repeat(16)), undefined);

      const rowsOf = (from: number, n: number) => ({ data: Float32Array.from({ length: n * 6 }, (_, i) => from + Math.floor(i / 6)), n, d: 6 });
      svcs[0].live.record(m, rowsOf(0, 4));
      await sleep(100);
      svcs[1].live.record(m, rowsOf(4, 4));
      await sleep(100);
      svcs[0].live.record(m, rowsOf(8, 5));
      await until('written', async () => ((await svcs[1].live.window(m))?.totalSeen ?? 0) === 13);
      const w = (await svcs[1].live.window(m))!;
      assert.equal(w.capacity, 10);
      assert.deepEqual(
        Array.from({ length: w.rows.n }, (_, i) => w.rows.data[i * 6]),
        [3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        'the newest 10 rows of both replicas, oldest first',
      );
      const raw = new Redis(server!.url);
      try {
        assert.ok((await raw.xlen(`${prefix}-svc:live:linear:${m.version}`)) <= 13);
      } finally {
        raw.disconnect();
      }
    } finally {
      for (const s of svcs) await s.close();
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  });
});
