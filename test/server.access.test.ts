/**
 * Access control that cannot be forgotten: a key scoped to model "a" gets 403 FORBIDDEN on every
 * route of the route table that declares a model, with the model "b" put wherever the route takes
 * its model from (the path, a job's body, a job, a stored explanation, a chart URL to sign). The
 * routes are read from the app itself, so a new route is covered the moment it exists. Listings
 * (models, jobs) show only what is in scope.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import { createApp, type App } from '../server/app.js';
import { inlineExecutor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';
import { linearModel, served } from './helpers/jsModels.js';

const ADMIN = 'admin-key-0001';
const SCOPED = 'scoped-key-0002';

describe('server: access control on every model route', function () {
  this.timeout(60_000);
  let app: App;
  let runner: LocalJobRunner;
  let tmp: string;
  const ids: { job?: string; jobA?: string; explanation?: string } = {};

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'access-'));
    const bg = { data: new Float32Array([0, 0, 1, 1, 2, 0, 0, 2]), n: 4, d: 2 };
    const reference = { rows: bg, labels: new Float32Array([0, 1, 1, 0]) };
    const models = new Map([
      ['a', served('a', linearModel([1, 2]), { background: bg, reference })],
      ['b', served('b', linearModel([3, 4]), { background: bg, reference })],
    ]);
    const registry = { models, errors: [] };
    runner = new LocalJobRunner({ dir: tmp, executor: inlineExecutor(registry), sync: false });
    await runner.start();
    app = createApp({ registry, config: testConfig({ API_KEYS: `${ADMIN},${SCOPED}:a` }), backend: 'js', jobRunner: runner });
    const admin = (r: request.Test) => r.set('X-API-Key', ADMIN);
    const e = await admin(request(app).post('/v1/models/b/explain')).send({ instances: [[1, 2]] });
    assert.equal(e.status, 200);
    ids.explanation = e.body.id;
    const j = await admin(request(app).post('/v1/jobs')).send({ model: 'b', instances: [[1, 2]] });
    assert.equal(j.status, 202);
    ids.job = j.body.id;
    const ja = await request(app)
      .post('/v1/jobs')
      .set('X-API-Key', SCOPED)
      .send({ model: 'a', instances: [[1, 2]] });
    assert.equal(ja.status, 202);
    ids.jobA = ja.body.id;
    await runner.waitFor(ids.job!);
    await runner.waitFor(ids.jobA!);
  });
  after(async () => {
    await runner.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  /** The request a route gets, about model `model` (and its job / explanation). */
  function call(method: string, p: string, model: 'a' | 'b') {
    const id = p.startsWith('/v1/jobs/') ? (model === 'b' ? ids.job : ids.jobA) : ids.explanation;
    const url = p.replace('{name}', model).replace('{ext}', 'json').replace('{id}', id!);
    const r = (request(app) as unknown as Record<string, (u: string) => request.Test>)[method](url);
    if (p === '/v1/jobs') return r.send({ model, instances: [[1, 2]] });
    if (p === '/v1/signed-urls') return r.send({ path: `/v1/models/${model}/explain.svg?x0=1&x1=2` });
    if (method === 'post') return r.send(p.endsWith('/drift') ? { current: [[1, 2]] } : { instances: [[1, 2]] });
    return r;
  }

  it('every route declares where its model comes from; the model-less ones are exactly these', () => {
    const none = app.routeTable.filter((r) => r.access.from === 'none').map((r) => `${r.method.toUpperCase()} ${r.path}`);
    assert.deepEqual(none.sort(), [
      'GET /docs',
      'GET /healthz',
      'GET /metrics',
      'GET /openapi.json',
      'GET /readyz',
      'GET /v1/jobs',
      'GET /v1/models',
    ]);
    for (const r of app.routeTable) if (r.path.includes('{name}')) assert.equal(r.access.from, 'path', r.path);
  });

  it('an out-of-scope key gets 403 FORBIDDEN on every route with a model, jobs included', async () => {
    const routes = app.routeTable.filter((r) => r.access.from !== 'none');
    assert.ok(routes.length >= 15, `${routes.length} routes`);
    for (const r of routes) {
      const res = await call(r.method, r.path, 'b').set('X-API-Key', SCOPED);
      assert.equal(res.status, 403, `${r.method.toUpperCase()} ${r.path}: ${res.status} ${JSON.stringify(res.body)}`);
      // Image URLs answer errors as pictures (the 403 is their status).
      if (!/\.(svg|png)$/.test(r.path)) assert.equal(res.body.error.code, 'FORBIDDEN', r.path);
    }
  });

  it('the same key is let through on its own model (so the 403s are about scope, not the request)', async () => {
    for (const r of app.routeTable.filter((x) => x.access.from === 'path' || x.access.from === 'body')) {
      const res = await call(r.method, r.path, 'a').set('X-API-Key', SCOPED);
      assert.notEqual(res.status, 403, `${r.method.toUpperCase()} ${r.path}`);
      assert.notEqual(res.status, 401, `${r.method.toUpperCase()} ${r.path}`);
    }
    assert.equal((await request(app).get(`/v1/jobs/${ids.jobA}`).set('X-API-Key', SCOPED)).status, 200);
  });

  it('GET /v1/jobs and GET /v1/models list only what is in scope', async () => {
    const scoped = (await request(app).get('/v1/jobs').set('X-API-Key', SCOPED)).body.jobs as { id: string; model: string }[];
    assert.ok(scoped.some((j) => j.id === ids.jobA));
    assert.ok(!scoped.some((j) => j.id === ids.job));
    assert.deepEqual([...new Set(scoped.map((j) => j.model))], ['a']);
    const all = (await request(app).get('/v1/jobs').set('X-API-Key', ADMIN)).body.jobs as { id: string }[];
    assert.ok(all.some((j) => j.id === ids.job) && all.some((j) => j.id === ids.jobA));
    const models = await request(app).get('/v1/models').set('X-API-Key', SCOPED);
    assert.deepEqual(
      models.body.models.map((m: { name: string }) => m.name),
      ['a'],
    );
  });

  it('a job records the scope of the key that submitted it', async () => {
    const owner = await runner.owner(ids.jobA!);
    assert.deepEqual(owner?.models, ['a']);
    assert.match(owner?.key ?? '', /^[0-9a-f]{12}$/);
    assert.deepEqual((await runner.owner(ids.job!))!.models, null);
  });
});
