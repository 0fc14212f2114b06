/**
 * Distributed jobs against a real redis-server started here, with real worker processes
 * (`tsx jobs/worker.ts`): two workers give every row once; a worker killed with SIGKILL mid-chunk
 * loses nothing, and the results equal an in-process run with the same seed.
 *
 * Without redis-server the suite is skipped with a message, except in CI (CI set), where it fails.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { Queue } from 'bullmq';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';
import type { Registry } from '../models/served.js';
import { inlineExecutor } from '../service/executor.js';
import { redisServerBinary, startDevRedis, type DevRedis } from '../jobs/devRedis.js';
import { chunked, executorExplain, explainChunk } from '../jobs/engine.js';
import { COMMIT_CHUNK, connect, keys, RedisJobRunner } from '../jobs/redis.js';
import { itemFromJson } from '../jobs/rows.js';
import { buildSpec } from '../jobs/spec.js';
import { isExplainedRecord, type JobView, type ResultRecord } from '../jobs/types.js';

const SAMPLES = path.resolve('samples/models');

function stable(r: ResultRecord): unknown {
  const { computeMs: _t, ...rest } = r as ResultRecord & { computeMs?: number };
  return rest;
}

interface WorkerProc {
  child: ChildProcess;
  log: string;
  ready: Promise<void>;
  exited: Promise<void>;
}

describe('jobs on Redis: BullMQ workers', function () {
  this.timeout(120_000);
  let server: DevRedis | undefined;
  let registry: Registry;
  let app: express.Express;
  let runner: RedisJobRunner;
  const workers: WorkerProc[] = [];
  const prefix = `test-${process.pid}`;
  const queueName = `test-chunks-${process.pid}`;
  const cfg = testConfig({});

  const env = () => ({
    ...process.env,
    REDIS_URL: server!.url,
    JOBS_PREFIX: prefix,
    JOBS_QUEUE: queueName,
    JOBS_LOCK_MS: '2000',
    JOBS_STALLED_MS: '1000',
    WORKER_THREADS: '1',
    MODEL_DIR: SAMPLES,
    LOG_LEVEL: 'debug',
  });

  const startWorkerProcess = (): WorkerProc => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'jobs/worker.ts'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    const w = { child, log: '' } as WorkerProc;
    w.ready = new Promise((resolve, reject) => {
      const onData = (d: Buffer) => {
        w.log += d;
        if (w.log.includes('worker ready')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready:\n${w.log}`)));
    });
    w.ready.catch(() => undefined);
    w.exited = new Promise((resolve) => child.on('exit', () => resolve()));
    workers.push(w);
    return w;
  };
  const committedChunks = (w: WorkerProc) =>
    w.log
      .split('\n')
      .filter((l) => l.includes('"result":"committed"'))
      .map((l) => JSON.parse(l).chunk as number);

  const refRows = (from: number, n: number) => {
    const ref = registry.models.get('credit')!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((from + i) * ref.d, (from + i + 1) * ref.d)));
  };

  /** The same job computed in this process, chunk by chunk on the same grid. */
  const inProcess = async (body: { method?: string; parameters: Record<string, unknown>; instances: unknown[]; chunkSize: number }) => {
    const m = registry.models.get('credit')!;
    const layout = { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space };
    const items = body.instances.map((inst, i) => itemFromJson(inst, layout, i));
    // An effects job's grids come from its good rows.
    const good = items.filter((it) => it.row);
    const rows = { n: good.length, d: m.model.nFeatures, data: new Float32Array(good.length * m.model.nFeatures) };
    good.forEach((it, i) => rows.data.set(it.row!, i * rows.d));
    const spec = buildSpec(cfg, m, body, rows);
    const explain = executorExplain(inlineExecutor(registry), spec);
    const out: ResultRecord[] = [];
    for await (const c of chunked(items, spec.chunkSize)) out.push(...(await explainChunk(c.items, spec.nFeatures, explain)));
    return out;
  };

  const poll = async (id: string, until: (j: JobView) => boolean, ms = 90_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const res = await request(app).get(`/v1/jobs/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      if (until(res.body)) return res.body as JobView;
      if (Date.now() > end)
        throw new Error(`timed out; job is ${JSON.stringify(res.body)}\n${workers.map((w) => w.log.slice(-2000)).join('\n---\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const results = async (id: string): Promise<ResultRecord[]> => {
    const res = await request(app).get(`/v1/jobs/${id}/results`).buffer(true).parse(asText);
    assert.equal(res.status, 200);
    return (res.body as string)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  };

  before(async function () {
    const bin = redisServerBinary();
    if (!bin) {
      if (process.env.CI) throw new Error('redis-server is not installed, and CI is set: install it (apt-get install redis-server)');
      console.warn('    skipping the Redis job tests: redis-server is not installed (apt-get install redis-server)');
      this.skip();
    }
    server = await startDevRedis(bin);
    await selectBackend(process.env.TFJS_BACKEND);
    registry = await loadModelRepository(SAMPLES);
    runner = new RedisJobRunner({ url: server.url, prefix, queueName, ttlSeconds: 3600, attempts: 3, pollMs: 50 });
    await runner.start();
    app = createApp({ registry, config: cfg, backend: 'wasm', jobRunner: runner });
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        w.child.kill('SIGTERM');
        const t = setTimeout(() => w.child.kill('SIGKILL'), 5000);
        await w.exited;
        clearTimeout(t);
      }
    }
  });

  after(async () => {
    await runner?.stop();
    await server?.stop();
  });

  it('commits a chunk once, however often it is committed', async () => {
    const r = connect(server!.url);
    try {
      const k = keys(prefix, 'manual');
      await r.hset(k.job, { status: 'running', nChunks: 2, rowsDone: 0, rowsFailed: 0 });
      const commit = (payload: string) =>
        r.eval(COMMIT_CHUNK, 4, k.job, k.done, k.results, k.errors, '1', payload, '3', '1', 'now', '0', '10', '2', '{"index":1}');
      assert.equal(await commit('first\n'), 1);
      assert.equal(await commit('second\n'), 0);
      assert.equal(await r.hget(k.results, '1'), 'first\n');
      assert.equal(await r.hget(k.job, 'rowsDone'), '3');
      assert.equal(await r.hget(k.job, 'rowsUnconverged'), '2');
      assert.equal(await r.llen(k.errors), 1);
      assert.equal(await r.hget(k.job, 'status'), 'running');
    } finally {
      r.disconnect();
    }
  });

  it('two worker processes: every row exactly once, bad rows reported, values equal to an in-process run', async () => {
    const a = startWorkerProcess();
    const b = startWorkerProcess();
    await Promise.all([a.ready, b.ready]);
    const instances: unknown[] = refRows(0, 96);
    instances[9] = [1, 2];
    instances[50] = { income: 1 };
    const body = { method: 'kernel-shap', parameters: { nSamples: 'auto', seed: 4 }, instances, chunkSize: 6 };
    const sub = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', ...body });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const job = await poll(sub.body.id, (j) => j.status === 'succeeded');
    assert.equal(job.rowsDone, 96);
    assert.equal(job.rowsFailed, 2);
    assert.deepEqual(
      job.errors.map((e) => e.index),
      [9, 50],
    );
    assert.ok(job.ratePerSecond! > 0 && job.finishedAt);
    const got = await results(sub.body.id);
    assert.deepEqual(
      got.map((r) => r.index),
      Array.from({ length: 96 }, (_, i) => i),
    );
    const expected = await inProcess(body);
    assert.deepEqual(got.map(stable), expected.map(stable));
    // Both processes took chunks. A worker logs a commit after Redis has it, so the last log lines may
    // still be on their way through the pipe when the job already reads as succeeded.
    for (let t = 0; t < 100 && committedChunks(a).length + committedChunks(b).length < 16; t++) await new Promise((r) => setTimeout(r, 50));
    const ca = committedChunks(a);
    const cb = committedChunks(b);
    assert.ok(ca.length > 0 && cb.length > 0, `chunks per worker: ${ca.length}, ${cb.length}`);
    assert.equal(ca.length + cb.length, 16);
  });

  it('a worker killed with SIGKILL mid-chunk: another finishes the job, every row once, same values', async () => {
    const a = startWorkerProcess();
    await a.ready;
    const body = { method: 'kernel-shap', parameters: { nSamples: 300, seed: 9 }, instances: refRows(200, 48), chunkSize: 16 };
    const sub = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', ...body });
    assert.equal(sub.status, 202);
    // "running" with nothing committed: the first chunk is in A's hands.
    await poll(sub.body.id, (j) => j.status === 'running');
    await new Promise((r) => setTimeout(r, 150));
    const before = await runner.get(sub.body.id);
    a.child.kill('SIGKILL');
    await a.exited;
    assert.ok(before!.rowsDone < 48, 'killed before the end');
    const b = startWorkerProcess();
    const job = await poll(sub.body.id, (j) => j.status === 'succeeded');
    assert.equal(job.rowsDone, 48);
    const got = await results(sub.body.id);
    assert.deepEqual(
      got.map((r) => r.index),
      Array.from({ length: 48 }, (_, i) => i),
    );
    assert.deepEqual(got.map(stable), (await inProcess(body)).map(stable));
    // Rows short of the tolerance at 300 coalitions are counted once each, the redone chunk included.
    assert.equal(job.rowsUnconverged, got.filter((r) => isExplainedRecord(r) && !r.converged).length);
    // The chunk A was working on was redone by B.
    const redone = committedChunks(b);
    assert.ok(redone.length >= 1 && committedChunks(a).every((c) => !redone.includes(c)));
  });

  it('counterfactuals and effects jobs on a worker process: the values of an in-process run, and the effects aggregate', async () => {
    const a = startWorkerProcess();
    await a.ready;
    const instances: unknown[] = refRows(300, 12);
    instances[3] = [1, 2];
    const cf = { method: 'counterfactuals', parameters: { k: 2, seed: 2 }, instances, chunkSize: 5 };
    const subCf = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', ...cf });
    assert.equal(subCf.status, 202, JSON.stringify(subCf.body));
    const fx = {
      method: 'effects',
      parameters: { features: ['income', 'housing'], resolution: 8 },
      instances: refRows(0, 90),
      chunkSize: 40,
    };
    const subFx = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', ...fx });
    assert.equal(subFx.status, 202, JSON.stringify(subFx.body));
    const jobCf = await poll(subCf.body.id, (j) => j.status === 'succeeded' || j.status === 'failed');
    assert.equal(jobCf.status, 'succeeded', JSON.stringify(jobCf));
    assert.equal(jobCf.rowsFailed, 1);
    assert.deepEqual((await results(subCf.body.id)).map(stable), (await inProcess(cf)).map(stable));
    await poll(subFx.body.id, (j) => j.status === 'succeeded');
    const got = await results(subFx.body.id);
    assert.deepEqual(got, await inProcess(fx));
    const agg = await request(app).get(`/v1/jobs/${subFx.body.id}/effects.json`);
    assert.equal(agg.status, 200, JSON.stringify(agg.body));
    assert.equal(agg.body.rows, 90);
    const mean = (q: number, k: number) =>
      got.reduce((t, r) => t + (r as { effects: { values: number[] }[] }).effects[q].values[k], 0) / 90;
    agg.body.effects.forEach((e: { values: number[] }, q: number) =>
      e.values.forEach((v, k) => assert.ok(Math.abs(v - mean(q, k)) < 1e-12)),
    );
  });

  it('cancels a queued job and drops its chunks from the queue', async () => {
    const sub = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', method: 'integrated-gradients', instances: refRows(0, 40), chunkSize: 10 });
    assert.equal(sub.body.status, 'queued');
    const del = await request(app).delete(`/v1/jobs/${sub.body.id}`);
    assert.equal(del.status, 200);
    assert.equal(del.body.status, 'cancelled');
    const qc = connect(server!.url);
    const q = new Queue(queueName, { connection: qc });
    try {
      const ids = (await q.getJobs(['waiting', 'delayed', 'prioritized'])).map((j) => j.id);
      assert.ok(
        ids.every((id) => !id?.startsWith(sub.body.id)),
        `left on the queue: ${ids}`,
      );
    } finally {
      await q.close();
      qc.disconnect();
    }
    const list = await request(app).get('/v1/jobs');
    assert.ok(list.body.jobs.some((j: JobView) => j.id === sub.body.id && j.status === 'cancelled'));
    assert.equal((await request(app).get('/v1/jobs/nope')).status, 404);
  });
});
