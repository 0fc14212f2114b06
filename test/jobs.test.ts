/**
 * Batch jobs in process: per-row determinism whatever the chunk, the engine's bad-row handling, the
 * crash-safe results file, and the /v1/jobs API on the embedded runner (including a restart).
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm, appendFile, readFile, unlink, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';
import type { Registry } from '../models/served.js';
import { inlineExecutor, type Executor } from '../service/executor.js';
import { ExplainerInputError, type InstanceExplanation, type Rows } from '../explainers/types.js';
import { chunked, explainChunk, runChunks } from '../jobs/engine.js';
import { checkpointPath, readRecords, ResultFile } from '../jobs/resultFile.js';
import { createJobRunner, LocalJobRunner } from '../jobs/runner.js';
import { buildSpec, taskFor } from '../jobs/spec.js';
import { poolExecutor } from '../service/executor.js';
import type { Item, JobView, ResultRecord } from '../jobs/types.js';
import { itemFromJson } from '../jobs/rows.js';

const SAMPLES = path.resolve('samples/models');

/** A record without its timing, which is the one field that legitimately differs between runs. */
function stable(r: ResultRecord): unknown {
  const { computeMs: _t, ...rest } = r as ResultRecord & { computeMs?: number };
  return rest;
}

function byIndex(records: ResultRecord[]): Map<number, ResultRecord> {
  const m = new Map<number, ResultRecord>();
  for (const r of records) {
    assert.ok(!m.has(r.index), `index ${r.index} appears twice`);
    m.set(r.index, r);
  }
  return m;
}

describe('jobs: engine, results file and embedded runner', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let registry: Registry;
  let tmp: string;
  const cfg = testConfig({});
  const sch = cfg;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    registry = repo;
    tmp = await mkdtemp(path.join(os.tmpdir(), 'jobs-test-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  const credit = () => registry.models.get('credit')!;
  const refRow = (i: number) => {
    const ref = credit().reference!.rows;
    return Array.from(ref.data.subarray(i * ref.d, (i + 1) * ref.d));
  };
  const rowsOf = (idx: number[]): Rows => {
    const d = credit().model.nFeatures;
    const data = new Float32Array(idx.length * d);
    idx.forEach((i, k) => data.set(refRow(i), k * d));
    return { data, n: idx.length, d };
  };

  it('gives a row the same explanation whatever chunk it lands in (kernel-shap and IG)', async () => {
    const exec = inlineExecutor(registry);
    for (const [method, parameters] of [
      ['kernel-shap', { nSamples: 150, seed: 7 }],
      ['integrated-gradients', {}],
    ] as const) {
      const spec = buildSpec(sch, credit(), { method, parameters });
      const run = async (idx: number[]) => (await exec.run(taskFor(spec, rowsOf(idx)))).explanations;
      const big = await run([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      const alone = await run([8]);
      const other = await run([40, 8, 41, 42]);
      const strip = (e: InstanceExplanation) => JSON.stringify(e.outputs);
      assert.equal(strip(alone[0]), strip(big[5]), `${method}: alone vs chunk of 10`);
      assert.equal(strip(other[1]), strip(big[5]), `${method}: other neighbours`);
    }
  });

  it('reports bad rows with their index and line and keeps going; a row the explainer rejects fails alone', async () => {
    const layout = { nFeatures: 3, inputShape: [3], space: { featureNames: ['a', 'b', 'c'], outputNames: ['y'] } };
    const items: Item[] = [
      itemFromJson([1, 2, 3], layout, 0, 1),
      itemFromJson([1, 2], layout, 1, 2),
      itemFromJson([1, 'x', 3], layout, 2, 3),
      itemFromJson({ a: 1, b: 2, c: 999 }, layout, 3, 4),
      itemFromJson({ a: 1, b: 2 }, layout, 4, 5),
      itemFromJson([4, 5, 6], layout, 5, 6),
    ];
    assert.match(items[1].error!.message, /^line 2: expected 3 values/);
    assert.match(items[2].error!.message, /^line 3, column 1/);
    assert.equal(items[4].error!.code, 'MISSING_FEATURE');
    const calls: number[] = [];
    const explain = async (rows: Rows): Promise<InstanceExplanation[]> => {
      calls.push(rows.n);
      const out: InstanceExplanation[] = [];
      for (let i = 0; i < rows.n; i++) {
        if (rows.data[i * 3 + 2] === 999) throw new ExplainerInputError('BAD_PARAMETER', 'row with 999');
        out.push({ outputs: [], converged: true, modelEvaluations: rows.data[i * 3], computeMs: 0 });
      }
      return out;
    };
    const recs = await explainChunk(items, 3, explain);
    assert.deepEqual(
      recs.map((r) => r.index),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      recs.map((r) => ('error' in r ? r.error.code : 'ok')),
      ['ok', 'BAD_INSTANCE', 'BAD_INSTANCE', 'BAD_PARAMETER', 'MISSING_FEATURE', 'ok'],
    );
    assert.equal((recs[5] as { modelEvaluations: number }).modelEvaluations, 4);
    assert.deepEqual(calls, [3, 1, 1, 1]); // one chunk call, then row by row
    // A failure that is not about rows fails the chunk.
    await assert.rejects(
      explainChunk(items.slice(0, 1), 3, async () => {
        throw new Error('thread died');
      }),
      /thread died/,
    );
  });

  it('commits chunks in order on a fixed grid even when later chunks finish first', async () => {
    const items = Array.from({ length: 23 }, (_, i): Item => ({ index: i + 2, row: new Float32Array([i]) }));
    const committed: number[][] = [];
    await runChunks({
      chunks: chunked(items, 5),
      process: async (c) => {
        await new Promise((r) => setTimeout(r, 30 - c.chunk * 5)); // later chunks are faster
        return c.items.map((it) => ({ index: it.index, outputs: [], converged: true, modelEvaluations: 0, computeMs: 0 }));
      },
      commit: async (_c, recs) => void committed.push(recs.map((r) => r.index)),
      inFlight: 3,
    });
    // Starting at index 2, the first chunk is the partial grid cell [0, 5).
    assert.deepEqual(committed[0], [2, 3, 4]);
    assert.deepEqual(
      committed.flat(),
      Array.from({ length: 23 }, (_, i) => i + 2),
    );
    assert.ok(committed.slice(1, -1).every((c) => c.length === 5 && c[0] % 5 === 0));
  });

  it('results file: cuts off what a crash left past the checkpoint, refuses other settings, and falls back without a checkpoint', async () => {
    const file = path.join(tmp, 'r.ndjson');
    const rec = (i: number): ResultRecord => ({ index: i, line: i + 2, outputs: [], converged: true, modelEvaluations: i, computeMs: 1 });
    let f = await ResultFile.open({ path: file, format: 'ndjson', fingerprint: 'A', resume: false });
    await f.append([rec(0), rec(1)], 2);
    await f.append([rec(2), { index: 3, error: { code: 'BAD_INSTANCE', message: 'x' } }], 4);
    await f.close();
    const good = (await stat(file)).size;
    // A chunk written but not committed, its last line torn.
    await appendFile(file, JSON.stringify(rec(4)) + '\n' + JSON.stringify(rec(5)).slice(0, 20));
    await assert.rejects(ResultFile.open({ path: file, format: 'ndjson', fingerprint: 'A', resume: false }), /--resume/);
    await assert.rejects(ResultFile.open({ path: file, format: 'ndjson', fingerprint: 'B', resume: true }), /other settings/);
    f = await ResultFile.open({ path: file, format: 'ndjson', fingerprint: 'A', resume: true });
    assert.equal((await stat(file)).size, good);
    assert.equal(f.checkpoint.nextIndex, 4);
    assert.equal(f.checkpoint.rowsFailed, 1);
    await f.append([rec(4)], 6);
    await f.close();
    const all: ResultRecord[] = [];
    for await (const r of readRecords(file, 'ndjson')) all.push(r);
    assert.deepEqual(
      all.map((r) => r.index),
      [0, 1, 2, 3, 4],
    );

    // Without a checkpoint: the torn line goes, work continues after the last complete record.
    await unlink(checkpointPath(file));
    await appendFile(file, JSON.stringify(rec(5)).slice(0, 10));
    f = await ResultFile.open({ path: file, format: 'ndjson', fingerprint: 'A', resume: true });
    assert.equal(f.opened, 'resumed-without-checkpoint');
    assert.equal(f.checkpoint.nextIndex, 5);
    assert.equal(f.checkpoint.rowsDone, 5);
    await f.close();
    assert.ok((await readFile(file, 'utf8')).endsWith('}\n'));
  });

  it('picks the runner from the environment: embedded by default, Redis with REDIS_URL', async () => {
    const exec = inlineExecutor(registry);
    assert.equal((await createJobRunner({ executor: exec, env: { JOBS_DIR: path.join(tmp, 'env') } })).kind, 'local');
    assert.equal((await createJobRunner({ executor: exec, env: { REDIS_URL: 'redis://127.0.0.1:1' } })).kind, 'redis');
  });

  describe('API on the embedded runner', () => {
    let pool: Executor;
    const runners: LocalJobRunner[] = [];
    let app: express.Express;
    let runner: LocalJobRunner;
    let dir: string;

    const makeApp = (r: LocalJobRunner) => {
      return createApp({ registry, config: cfg, backend: 'wasm', executor: pool, jobRunner: r });
    };
    const newRunner = async (opts: Partial<ConstructorParameters<typeof LocalJobRunner>[0]> = {}) => {
      const r = new LocalJobRunner({ dir, executor: pool, ...opts });
      runners.push(r);
      await r.start();
      return r;
    };
    const poll = async (a: express.Express, id: string, until: (j: JobView) => boolean, ms = 60_000) => {
      const end = Date.now() + ms;
      for (;;) {
        const res = await request(a).get(`/v1/jobs/${id}`);
        assert.equal(res.status, 200);
        if (until(res.body)) return res.body as JobView;
        if (Date.now() > end) throw new Error(`timed out; job is ${JSON.stringify(res.body)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const results = async (a: express.Express, id: string, follow = false): Promise<ResultRecord[]> => {
      const res = await request(a)
        .get(`/v1/jobs/${id}/results${follow ? '?follow=true' : ''}`)
        .buffer(true)
        .parse(asText);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'], /application\/x-ndjson/);
      return (res.body as string)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    };

    before(async () => {
      pool = poolExecutor({ modelDir: SAMPLES, threads: 2 });
      dir = path.join(tmp, 'jobs');
      runner = await newRunner();
      app = makeApp(runner);
    });
    after(async () => {
      for (const r of runners) await r.stop();
      await pool.close();
    });

    it('runs a job with bad instances: every index once, errors per row, values equal to POST /explain', async () => {
      const instances: unknown[] = Array.from({ length: 40 }, (_, i) => refRow(i));
      instances[5] = [1, 2, 3];
      instances[17] = { age: 30 };
      instances[30] = refRow(30).map((v, j) => (j === 2 ? 'NaN' : v));
      const params = { nSamples: 150, seed: 11 };
      const sub = await request(app)
        .post('/v1/jobs')
        .send({ model: 'credit', method: 'kernel-shap', parameters: params, instances, chunkSize: 16 });
      assert.equal(sub.status, 202, JSON.stringify(sub.body));
      assert.match(sub.headers.location, new RegExp(`/v1/jobs/${sub.body.id}$`));
      assert.ok(['queued', 'running'].includes(sub.body.status));
      // Following the results streams the whole job as it is produced.
      const followed = await results(app, sub.body.id, true);
      const job = await poll(app, sub.body.id, (j) => j.status === 'succeeded');
      assert.equal(job.rowsTotal, 40);
      assert.equal(job.rowsDone, 40);
      assert.equal(job.rowsFailed, 3);
      assert.deepEqual(
        job.errors.map((e) => e.index),
        [5, 17, 30],
      );
      assert.equal(job.etaSeconds, 0);
      assert.ok(job.startedAt && job.finishedAt && job.createdAt);
      const recs = await results(app, sub.body.id);
      assert.deepEqual(
        recs.map((r) => r.index),
        Array.from({ length: 40 }, (_, i) => i),
      );
      assert.deepEqual(followed.map(stable), recs.map(stable));
      assert.match((recs[5] as { error: { message: string } }).error.message, /instances\[5\]: expected 14 values/);
      assert.equal((recs[17] as { error: { code: string } }).error.code, 'MISSING_FEATURE');

      const direct = createApp({ registry, config: cfg, backend: 'wasm' });
      const good = [0, 1, 16, 39];
      const ex = await request(direct)
        .post('/v1/models/credit/explain')
        .send({ instances: good.map(refRow), parameters: { ...params, deadlineMs: 120_000 } });
      assert.equal(ex.status, 200);
      good.forEach((i, k) => assert.deepEqual((recs[i] as InstanceExplanation).outputs, ex.body.explanations[k].outputs));

      const svg = await request(app).get(`/v1/jobs/${sub.body.id}/summary.svg`).buffer(true).parse(asText);
      assert.equal(svg.status, 200);
      assert.match(svg.headers['content-type'], /image\/svg\+xml/);
      assert.match(svg.body as string, /<svg[^>]*>[\s\S]*over 37 explanations/);
      const html = await request(app).get(`/v1/jobs/${sub.body.id}/report.html`);
      assert.equal(html.status, 200);
      assert.match(html.text, /Rows that failed \(3\)/);
      const list = await request(app).get('/v1/jobs');
      assert.ok(list.body.jobs.some((j: JobView) => j.id === sub.body.id));
    });

    it('explains the reference set with integrated gradients, labels kept', async () => {
      const sub = await request(app).post('/v1/jobs').send({ model: 'credit', method: 'integrated-gradients', dataset: 'reference' });
      assert.equal(sub.status, 202, JSON.stringify(sub.body));
      const job = await poll(app, sub.body.id, (j) => j.status === 'succeeded');
      assert.equal(job.rowsDone, credit().reference!.rows.n);
      assert.equal(job.rowsFailed, 0);
      const recs = await results(app, sub.body.id);
      assert.equal(recs.length, job.rowsTotal);
      assert.ok(recs.every((r, i) => r.index === i && r.label !== undefined));
    });

    it('answers errors with stable codes', async () => {
      const nf = await request(app).get('/v1/jobs/nope');
      assert.equal(nf.status, 404);
      assert.ok(['JOB_NOT_FOUND', 'NOT_FOUND'].includes(nf.body.error.code));
      assert.equal((await request(app).delete('/v1/jobs/nope')).status, 404);
      assert.equal((await request(app).get('/v1/jobs/nope/results')).status, 404);
      const both = await request(app)
        .post('/v1/jobs')
        .send({ model: 'credit', instances: [refRow(0)], dataset: 'reference' });
      assert.equal(both.status, 400);
      const model = await request(app)
        .post('/v1/jobs')
        .send({ model: 'nope', instances: [refRow(0)] });
      assert.equal(model.body.error.code, 'MODEL_NOT_FOUND');
      const method = await request(app)
        .post('/v1/jobs')
        .send({ model: 'credit', method: 'lime', instances: [refRow(0)] });
      assert.equal(method.body.error.code, 'UNKNOWN_METHOD');
      const param = await request(app)
        .post('/v1/jobs')
        .send({ model: 'credit', parameters: { nSamples: -1 }, instances: [refRow(0)] });
      assert.equal(param.body.error.code, 'BAD_PARAMETER');
      const extra = await request(app)
        .post('/v1/jobs')
        .send({ model: 'credit', instances: [refRow(0)], surprise: 1 });
      assert.equal(extra.body.error.code, 'INVALID_REQUEST');
    });

    it('cancels a running job and keeps the rows done so far', async () => {
      const instances = Array.from({ length: 400 }, (_, i) => refRow(i));
      const sub = await request(app)
        .post('/v1/jobs')
        .send({ model: 'credit', parameters: { nSamples: 'auto', seed: 1 }, instances, chunkSize: 8 });
      await poll(app, sub.body.id, (j) => j.rowsDone > 0);
      const del = await request(app).delete(`/v1/jobs/${sub.body.id}`);
      assert.equal(del.status, 200);
      assert.equal(del.body.status, 'cancelled');
      const recs = await results(app, sub.body.id, true); // follow ends at once on a cancelled job
      assert.ok(recs.length > 0 && recs.length < 400);
      assert.deepEqual(
        recs.map((r) => r.index),
        Array.from({ length: recs.length }, (_, i) => i),
      );
      const again = await request(app).delete(`/v1/jobs/${sub.body.id}`);
      assert.equal(again.body.status, 'cancelled');
    });

    it('survives a restart: an unfinished job resumes and its results equal an uninterrupted run', async () => {
      const instances = Array.from({ length: 96 }, (_, i) => refRow(i + 100));
      const body = { model: 'credit', parameters: { nSamples: 120, seed: 5 }, instances, chunkSize: 8 };
      // Reference: the same job, uninterrupted.
      const ref = await request(app).post('/v1/jobs').send(body);
      await poll(app, ref.body.id, (j) => j.status === 'succeeded');
      const expected = await results(app, ref.body.id);

      const sub = await request(app).post('/v1/jobs').send(body);
      await poll(app, sub.body.id, (j) => j.rowsDone >= 16);
      await runner.stop(); // the process going away (no cancel)
      const mid = await runner.get(sub.body.id);
      assert.equal(mid!.status, 'running');
      assert.ok(mid!.rowsDone < 96, 'stopped before the end');

      runner = await newRunner();
      app = makeApp(runner);
      const job = await poll(app, sub.body.id, (j) => j.status === 'succeeded');
      assert.equal(job.rowsDone, 96);
      const got = await results(app, sub.body.id);
      const g = byIndex(got);
      assert.equal(g.size, 96);
      assert.deepEqual(got.map(stable), expected.map(stable));
    });
  });
});
