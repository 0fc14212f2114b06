/**
 * Amortised training jobs on Redis: a real redis-server started here and a real worker process
 * (`tsx jobs/worker.ts`) with its own DATA_DIR, as on another machine. The API queues the training
 * job, the worker builds the explainer, reports progress through Redis and publishes the stored files;
 * the API (whose DATA_DIR the worker never touched) then serves amortised-shap from its copy, and a
 * job explaining rows with it runs on a worker that has to copy it from Redis too. DELETE cancels a training
 * job the worker is running.
 *
 * Without redis-server the suite is skipped with a message, except in CI (CI set), where it fails.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { redisServerBinary, startDevRedis, type DevRedis } from '../jobs/devRedis.js';
import { RedisJobRunner } from '../jobs/redis.js';
import type { JobView } from '../jobs/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

describe('amortised training jobs on Redis: a BullMQ worker with its own DATA_DIR', function () {
  this.timeout(300_000);
  let server: DevRedis | undefined;
  let runner: RedisJobRunner;
  let app: App;
  let tmp: string;
  let worker: { child: ChildProcess; log: string; exited: Promise<void> } | undefined;
  const prefix = `test-am-${process.pid}`;
  const queueName = `test-am-chunks-${process.pid}`;

  const poll = async (id: string, until: (j: JobView) => boolean, ms = 240_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const res = await request(app).get(`/v1/jobs/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      if (until(res.body)) return res.body as JobView;
      if (Date.now() > end) throw new Error(`timed out; job is ${JSON.stringify(res.body)}\n${worker?.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async function () {
    const bin = redisServerBinary();
    if (!bin) {
      if (process.env.CI) throw new Error('redis-server is not installed, and CI is set: install it (apt-get install redis-server)');
      console.warn('    skipping the Redis amortised tests: redis-server is not installed (apt-get install redis-server)');
      this.skip();
    }
    server = await startDevRedis(bin);
    await selectBackend(process.env.TFJS_BACKEND);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-redis-'));
    await cp(path.join(SAMPLES, 'linear'), path.join(tmp, 'models', 'linear'), { recursive: true });
    const registry = await loadModelRepository(path.join(tmp, 'models'));
    runner = new RedisJobRunner({ url: server.url, prefix, queueName, ttlSeconds: 3600, attempts: 1, pollMs: 50 });
    await runner.start();
    app = createApp({ registry, config: testConfig({ DATA_DIR: path.join(tmp, 'api-data') }), backend: 'wasm', jobRunner: runner });
    const child = spawn(process.execPath, ['--import', 'tsx', 'jobs/worker.ts'], {
      env: {
        ...process.env,
        REDIS_URL: server.url,
        JOBS_PREFIX: prefix,
        JOBS_QUEUE: queueName,
        WORKER_THREADS: '1',
        MODEL_DIR: path.join(tmp, 'models'),
        DATA_DIR: path.join(tmp, 'worker-data'),
        LOG_LEVEL: 'debug',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const w = { child, log: '', exited: new Promise<void>((resolve) => child.on('exit', () => resolve())) };
    worker = w;
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        w.log += d;
        if (w.log.includes('worker ready')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready:\n${w.log}`)));
    });
  });

  after(async () => {
    if (worker && worker.child.exitCode === null) {
      worker.child.kill('SIGTERM');
      const t = setTimeout(() => worker!.child.kill('SIGKILL'), 5000);
      await worker.exited;
      clearTimeout(t);
    }
    await runner?.stop();
    await server?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('trains on the worker (progress through Redis); the API serves the explainer from its own copy; a job explains with it on the worker', async () => {
    const sub = await request(app)
      .post('/v1/models/linear/amortised')
      .send({ parameters: { syntheticRows: 100, coalitionsPerRow: 32, hidden: [8], maxEpochs: 120, patience: 120, heldOutRows: 10 } });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const same = await request(app).post('/v1/models/linear/amortised').send({});
    assert.equal(same.body.id, sub.body.id, 'the job queued or running for this version');
    const training = await poll(sub.body.id, (j) => j.progress?.phase === 'training' || j.status !== 'queued' && j.status !== 'running');
    assert.ok(training.progress, 'the worker reported progress through Redis');
    const done = await poll(sub.body.id, (j) => j.status !== 'queued' && j.status !== 'running');
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.ok(done.result!.id);
    // The API's DATA_DIR held nothing: the explainer arrives from Redis when first needed.
    assert.deepEqual(await readdir(path.join(tmp, 'api-data')).catch(() => []), []);
    const state = await request(app).get('/v1/models/linear/amortised');
    assert.equal(state.body.state, 'ready');
    assert.equal(state.body.explainer.id, done.result!.id);
    const rows = Array.from({ length: 3 }, (_, i) => [1 + i, 2, 3, 4, 5, 6].map((v) => v * 0.5));
    const e = await request(app).post('/v1/models/linear/explain').send({ instances: rows, method: 'amortised-shap' });
    assert.equal(e.status, 200, JSON.stringify(e.body));
    assert.equal(e.body.method, 'amortised-shap', JSON.stringify(e.body.fallback));
    // A job with it, on a worker whose DATA_DIR lost the explainer (as another machine's would lack
    // it): the worker copies it from Redis and explains with the same numbers.
    await rm(path.join(tmp, 'worker-data', 'amortised'), { recursive: true, force: true });
    const job = await request(app).post('/v1/jobs').send({ model: 'linear', method: 'amortised-shap', instances: rows });
    assert.equal(job.status, 202, JSON.stringify(job.body));
    assert.equal((await poll(job.body.id, (j) => j.status === 'succeeded' || j.status === 'failed')).status, 'succeeded');
    const lines = ((await request(app).get(`/v1/jobs/${job.body.id}/results`).buffer(true).parse(asText)).body as string).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.outputs[0].attributions.map((a: { attribution: number }) => a.attribution)),
      e.body.explanations.map((x: { outputs: { attributions: { attribution: number }[] }[] }) => x.outputs[0].attributions.map((a) => a.attribution)),
    );
  });

  it('DELETE /v1/jobs/:id cancels a training job the worker is running', async () => {
    const sub = await request(app)
      .post('/v1/models/linear/amortised')
      .send({ force: true, parameters: { syntheticRows: 100, coalitionsPerRow: 32, hidden: [8], maxEpochs: 5000, patience: 500, seed: 9 } });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    await poll(sub.body.id, (j) => j.progress?.phase === 'training');
    const del = await request(app).delete(`/v1/jobs/${sub.body.id}`);
    assert.equal(del.body.status, 'cancelled');
    // The worker notices within its poll and stops; the job stays cancelled, and the worker takes new work.
    const t0 = Date.now();
    while (!worker!.log.includes('"result":"job no longer running"') && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
    assert.ok(worker!.log.includes('job no longer running'), worker!.log.slice(-2000));
    assert.equal((await request(app).get(`/v1/jobs/${sub.body.id}`)).body.status, 'cancelled');
  });
});
