/**
 * Streamed job inputs: POST /v1/jobs with a CSV or NDJSON body (gzip allowed) is parsed as it
 * arrives into the job's input file, with the job's settings in the query. The results equal those of
 * the same rows posted as JSON; bad rows become error lines; the caps (JOBS_MAX_INSTANCES rows,
 * JOBS_UPLOAD_LIMIT bytes) refuse an upload without leaving a job behind; the model in the query is
 * access-checked like the body's.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { inlineExecutor } from '../service/executor.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

describe('jobs: streamed CSV and NDJSON uploads', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let dir: string;
  let runner: LocalJobRunner;
  const apps: App[] = [];
  const appWith = (env: Record<string, string> = {}) => {
    const app = createApp({ registry: repo, config: testConfig(env), backend: 'wasm', jobRunner: runner });
    apps.push(app);
    return app;
  };

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    dir = await mkdtemp(path.join(os.tmpdir(), 'upload-jobs-'));
    runner = new LocalJobRunner({ dir, executor: inlineExecutor(repo), sync: false });
    await runner.start();
  });
  after(async () => {
    await runner?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const rows = (from: number, n: number) => {
    const ref = repo.models.get('credit')!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((from + i) * ref.d, (from + i + 1) * ref.d)));
  };
  const features = () => repo.models.get('credit')!.space.featureNames;
  const results = async (app: App, id: string) => {
    await runner.waitFor(id);
    const res = await request(app).get(`/v1/jobs/${id}/results`).buffer(true).parse(asText);
    return (res.body as string)
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const { computeMs: _t, line: _l, label: _b, ...rest } = JSON.parse(l);
        return rest;
      });
  };

  it('a CSV upload (columns in any order, a label column, a bad row) gives the results of the same rows as JSON', async () => {
    const app = appWith();
    const data = rows(0, 12);
    const names = features();
    const order = names.map((_, j) => j).reverse();
    const lines = [['label', ...order.map((j) => names[j])].join(','), ...data.map((r, i) => [i % 2, ...order.map((j) => r[j])].join(','))];
    lines[4] = lines[4].replace(/,[^,]*$/, ',not-a-number'); // row 3 (line 5) is bad
    const up = await request(app)
      .post('/v1/jobs?model=credit&nSamples=300&seed=3&chunkSize=5')
      .set('Content-Type', 'text/csv; charset=utf-8')
      .send(lines.join('\r\n') + '\r\n');
    assert.equal(up.status, 202, JSON.stringify(up.body));
    assert.equal(up.body.rowsTotal, 12);
    assert.equal(up.headers.location, `/v1/jobs/${up.body.id}`);
    const json = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', instances: data, parameters: { nSamples: 300, seed: 3 }, chunkSize: 5 });
    const a = await results(app, up.body.id);
    const b = await results(app, json.body.id);
    assert.equal(a[3].error.code, 'BAD_INSTANCE');
    assert.match(a[3].error.message, /line 5/);
    assert.deepEqual(
      a.filter((_, i) => i !== 3),
      b.filter((_, i) => i !== 3),
    );
  });

  it('an NDJSON upload, gzip-compressed, with rows as arrays or objects', async () => {
    const app = appWith();
    const data = rows(20, 6);
    const names = features();
    const ndjson = data.map((r, i) => JSON.stringify(i % 2 ? Object.fromEntries(names.map((n, j) => [n, r[j]])) : r)).join('\n');
    const up = await request(app)
      .post('/v1/jobs?model=credit&method=integrated-gradients&outputs=approved')
      .set('Content-Type', 'application/x-ndjson')
      .set('Content-Encoding', 'gzip')
      .serialize((x) => x as string)
      .send(gzipSync(ndjson) as unknown as string);
    assert.equal(up.status, 202, JSON.stringify(up.body));
    assert.equal(up.body.method, 'integrated-gradients');
    const json = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', method: 'integrated-gradients', outputs: ['approved'], instances: data });
    assert.deepEqual(await results(app, up.body.id), await results(app, json.body.id));
  });

  it('caps refuse an upload without leaving a job behind; bad settings and an empty upload are 4xx', async () => {
    const before = (await readdir(dir)).length;
    const names = features();
    const csv = (n: number) => [names.join(','), ...rows(0, n).map((r) => r.join(','))].join('\n');
    const tooMany = await request(appWith({ JOBS_MAX_INSTANCES: '5' }))
      .post('/v1/jobs?model=credit')
      .set('Content-Type', 'text/csv')
      .send(csv(8));
    assert.equal(tooMany.status, 400, JSON.stringify(tooMany.body));
    assert.equal(tooMany.body.error.code, 'LIMIT_EXCEEDED');
    const tooBig = await request(appWith({ JOBS_UPLOAD_LIMIT: '2kb' }))
      .post('/v1/jobs?model=credit')
      .set('Content-Type', 'text/csv')
      .send(csv(100));
    assert.equal(tooBig.status, 413, JSON.stringify(tooBig.body));
    assert.equal(tooBig.body.error.code, 'PAYLOAD_TOO_LARGE');
    const app = appWith();
    const empty = await request(app)
      .post('/v1/jobs?model=credit')
      .set('Content-Type', 'text/csv')
      .send(names.join(',') + '\n');
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.code, 'BAD_DATA');
    const missing = await request(app).post('/v1/jobs?model=credit').set('Content-Type', 'text/csv').send('income,age\n1,2\n');
    assert.equal(missing.body.error.code, 'MISSING_FEATURE');
    const noModel = await request(app).post('/v1/jobs').set('Content-Type', 'text/csv').send(csv(2));
    assert.equal(noModel.status, 400);
    assert.match(noModel.body.error.message, /model/);
    const unknown = await request(app).post('/v1/jobs?model=nope').set('Content-Type', 'text/csv').send(csv(2));
    assert.equal(unknown.status, 404);
    const badParam = await request(app).post('/v1/jobs?model=credit&nSamples=lots').set('Content-Type', 'text/csv').send(csv(2));
    assert.equal(badParam.status, 400);
    // Uploads take explain methods; counterfactuals and effects jobs take their rows as JSON.
    for (const method of ['counterfactuals', 'effects']) {
      const data = await request(app).post(`/v1/jobs?model=credit&method=${method}`).set('Content-Type', 'text/csv').send(csv(2));
      assert.equal(data.status, 400, JSON.stringify(data.body));
      assert.equal(data.body.error.code, 'BAD_PARAMETER');
      assert.match(data.body.error.message, new RegExp(`a ${method} job takes its rows as JSON`));
    }
    const version = await request(app).post('/v1/jobs?model=credit&version=nope').set('Content-Type', 'text/csv').send(csv(2));
    assert.equal(version.status, 404, JSON.stringify(version.body));
    assert.equal(version.body.error.code, 'VERSION_NOT_FOUND');
    const badGzip = await request(app)
      .post('/v1/jobs?model=credit')
      .set('Content-Type', 'text/csv')
      .set('Content-Encoding', 'gzip')
      .send('not gzip at all');
    assert.equal(badGzip.status, 400);
    assert.equal(badGzip.body.error.code, 'BAD_ENCODING');
    assert.equal((await readdir(dir)).length, before, 'no job folder was left behind');
  });

  it("the query's model is checked against the key's scope", async () => {
    const app = createApp({
      registry: repo,
      config: testConfig({ API_KEYS: 'penguins-only-key:penguins' }),
      backend: 'wasm',
      jobRunner: runner,
    });
    const res = await request(app)
      .post('/v1/jobs?model=credit')
      .set('X-API-Key', 'penguins-only-key')
      .set('Content-Type', 'text/csv')
      .send(features().join(',') + '\n' + rows(0, 1)[0].join(',') + '\n');
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'FORBIDDEN');
  });
});
