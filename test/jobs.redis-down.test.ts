/**
 * Redis mode with Redis gone, against a real redis-server this test stops and starts again on the
 * same port: the job endpoints answer 503 QUEUE_UNAVAILABLE at once (they used to hang), /readyz
 * says not ready, and once Redis is back the same app and runner take and finish jobs without a
 * restart. Also: a CSV upload streamed into the Redis queue gives the same results as the JSON
 * submission of the same rows.
 *
 * Without redis-server the suite is skipped with a message, except in CI (CI set), where it fails.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { pino } from 'pino';
import request from 'supertest';
import { redisServerBinary, startDevRedis, type DevRedis } from '../jobs/devRedis.js';
import { RedisJobRunner } from '../jobs/redis.js';
import { startWorker, workerSettings, type RunningWorker } from '../jobs/worker.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import type { Registry } from '../models/served.js';
import { createApp, type App } from '../server/app.js';
import { inlineExecutor } from '../service/executor.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('jobs on Redis: Redis down and back', function () {
  this.timeout(120_000);
  let bin: string | undefined;
  let redis: DevRedis | undefined;
  let registry: Registry;
  let runner: RedisJobRunner;
  let app: App;
  let worker: RunningWorker | undefined;
  const prefix = `down-${process.pid}`;
  const queueName = `down-chunks-${process.pid}`;

  before(async function () {
    bin = redisServerBinary();
    if (!bin) {
      if (process.env.CI) throw new Error('redis-server is not installed, and CI is set: install it (apt-get install redis-server)');
      console.warn('    skipping the Redis-down tests: redis-server is not installed (apt-get install redis-server)');
      this.skip();
    }
    redis = await startDevRedis(bin);
    await selectBackend(process.env.TFJS_BACKEND);
    registry = await loadModelRepository(SAMPLES);
    runner = new RedisJobRunner({ url: redis.url, prefix, queueName, ttlSeconds: 3600, attempts: 3, pollMs: 50 });
    await runner.start();
    app = createApp({ registry, config: testConfig({}), backend: 'wasm', jobRunner: runner });
  });

  after(async () => {
    await worker?.close();
    await runner?.stop();
    await redis?.stop();
  });

  const rows = (from: number, n: number) => {
    const ref = registry.models.get('credit')!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((from + i) * ref.d, (from + i + 1) * ref.d)));
  };
  const startInProcessWorker = async () => {
    worker ??= await startWorker({
      ...workerSettings({ REDIS_URL: redis!.url, JOBS_PREFIX: prefix, JOBS_QUEUE: queueName, MODEL_DIR: SAMPLES }),
      logger: pino({ level: 'silent' }),
      executor: inlineExecutor(registry),
    });
  };
  const waitDone = async (id: string) => {
    for (let i = 0; i < 1200; i++) {
      const res = await request(app).get(`/v1/jobs/${id}`);
      if (res.status === 200 && res.body.status === 'succeeded') return res.body;
      assert.ok(res.status === 200 && !['failed', 'cancelled'].includes(res.body.status), JSON.stringify(res.body));
      await sleep(50);
    }
    assert.fail(`job ${id} did not finish`);
  };
  const results = async (id: string) => {
    const res = await request(app).get(`/v1/jobs/${id}/results`).buffer(true).parse(asText);
    assert.equal(res.status, 200);
    return (res.body as string)
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const { computeMs: _t, ...rest } = JSON.parse(l);
        return rest;
      });
  };

  it('while Redis is down: 503 QUEUE_UNAVAILABLE at once and /readyz not ready; after it is back: jobs again, without a restart', async () => {
    assert.equal((await request(app).get('/readyz')).status, 200);
    const body = { model: 'credit', instances: rows(0, 4), parameters: { nSamples: 200 } };
    const before = await request(app).post('/v1/jobs').send(body);
    assert.equal(before.status, 202, JSON.stringify(before.body));

    await redis!.stop();
    for (const [method, p] of [
      ['post', '/v1/jobs'],
      ['get', '/v1/jobs'],
      ['get', `/v1/jobs/${before.body.id}`],
      ['get', `/v1/jobs/${before.body.id}/results`],
      ['delete', `/v1/jobs/${before.body.id}`],
    ] as const) {
      const req = method === 'post' ? request(app).post(p).send(body) : request(app)[method](p);
      const res = await req.timeout(10_000);
      assert.equal(res.status, 503, `${method} ${p}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'QUEUE_UNAVAILABLE');
      assert.match(res.body.error.message, /retry/);
    }
    const notReady = await request(app).get('/readyz');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.body.ready, false);
    assert.equal(notReady.body.queue.ready, false);
    // The rest of the service is unaffected.
    assert.equal(
      (
        await request(app)
          .post('/v1/models/credit/predict')
          .send({ instances: rows(0, 1) })
      ).status,
      200,
    );

    redis = await startDevRedis(bin, redis!.port);
    for (let i = 0; i < 200 && (await request(app).get('/readyz')).status !== 200; i++) await sleep(100);
    assert.equal((await request(app).get('/readyz')).status, 200);
    await startInProcessWorker();
    const after = await request(app).post('/v1/jobs').send(body);
    assert.equal(after.status, 202, JSON.stringify(after.body));
    const done = await waitDone(after.body.id);
    assert.equal(done.rowsDone, 4);
  });

  it('a CSV upload is streamed into the queue and gives the results of the same rows posted as JSON', async () => {
    await startInProcessWorker();
    const m = registry.models.get('credit')!;
    const data = rows(10, 30);
    const csv = [m.space.featureNames.join(','), ...data.map((r) => r.join(',')), ''].join('\n');
    const upload = await request(app)
      .post('/v1/jobs?model=credit&method=kernel-shap&nSamples=300&seed=2&chunkSize=7')
      .set('Content-Type', 'text/csv')
      .send(csv);
    assert.equal(upload.status, 202, JSON.stringify(upload.body));
    assert.equal(upload.body.rowsTotal, 30);
    const posted = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', instances: data, parameters: { nSamples: 300, seed: 2 }, chunkSize: 7 });
    assert.equal(posted.status, 202);
    await waitDone(upload.body.id);
    await waitDone(posted.body.id);
    const a = await results(upload.body.id);
    const b = await results(posted.body.id);
    assert.equal(a.length, 30);
    // The upload's rows know their CSV line (2..31); otherwise the records are the same.
    assert.deepEqual(
      a.map((r) => r.line),
      Array.from({ length: 30 }, (_, i) => i + 2),
    );
    assert.deepEqual(
      a.map(({ line: _l, ...r }) => r),
      b,
    );
  });
});
