/**
 * The worker-thread pool: explanations computed in workers equal the inline ones, the event loop
 * stays free while workers are busy, and a full queue answers 429 with Retry-After.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { testConfig } from './helpers/config.js';
import { poolExecutor } from '../service/executor.js';
import type { Executor } from '../service/executor.js';

const SAMPLES = path.resolve('samples/models');

describe('server: worker pool', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  const pools: Executor[] = [];
  before(async () => {
    const backend = await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    pools.push(poolExecutor({ modelDir: SAMPLES, backend, threads: 1, maxQueue: 1 }));
  });
  after(async () => {
    for (const p of pools) await p.close();
  });

  const rows = (n: number, offset = 0) => {
    const ref = repo.models.get('credit')!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((i + offset) * ref.d, (i + offset + 1) * ref.d)));
  };

  it('computes the same explanations as the main thread, and errors keep their codes', async () => {
    const pooled = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', executor: pools[0] });
    const inline = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    const body = { instances: rows(2), parameters: { nSamples: 500, seed: 3 } };
    const a = await request(pooled).post('/v1/models/credit/explain').send(body);
    const b = await request(inline).post('/v1/models/credit/explain').send(body);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.deepEqual(
      a.body.explanations.map((e: any) => e.outputs),
      b.body.explanations.map((e: any) => e.outputs),
    );
    const p = await request(pooled)
      .post('/v1/models/cars/predict')
      .send({ instances: rows(1).map((r) => r.slice(0, 9)) });
    assert.equal(p.status, 200);
    const bad = await request(pooled)
      .post('/v1/models/credit/explain')
      .send({ instances: rows(1), parameters: { background: [rows(1)[0].map(() => 1)] }, method: 'integrated-gradients' });
    assert.equal(bad.status, 400);
  });

  it('fairness statistics and PNG charts run on the worker thread, with the answers of the main thread', async () => {
    const pooled = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', executor: pools[0] });
    const inline = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    const body = { bootstrap: { n: 25, seed: 4 }, attributions: false };
    const a = await request(pooled).post('/v1/models/credit/fairness').send(body);
    const b = await request(inline).post('/v1/models/credit/fairness').send(body);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.deepEqual(a.body, b.body);
    const png = await request(pooled)
      .post('/v1/models/credit/explain?format=png')
      .send({ instances: rows(1), parameters: { nSamples: 300 } });
    assert.equal(png.status, 200);
    assert.equal(png.type, 'image/png');
    assert.deepEqual([...png.body.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  });

  it('effects, counterfactuals and recourse run on the worker thread, with the answers of the main thread', async () => {
    const pooled = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', executor: pools[0] });
    const inline = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    const strip = (b: { computeMs?: number; effects?: unknown; explanations?: { computeMs: number }[] }) => ({
      ...b,
      computeMs: 0,
      ...(b.explanations ? { explanations: b.explanations.map((e) => ({ ...e, computeMs: 0 })) } : {}),
    });
    const effects = { kind: 'ale', features: ['income', 'housing'], data: rows(200) };
    const a = await request(pooled).post('/v1/models/credit/effects').send(effects);
    const b = await request(inline).post('/v1/models/credit/effects').send(effects);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.deepEqual(strip(a.body), strip(b.body));
    const cf = { instances: rows(3, 5), parameters: { k: 2, deadlineMs: 60_000 } };
    const c = await request(pooled).post('/v1/models/credit/counterfactuals').send(cf);
    const d = await request(inline).post('/v1/models/credit/counterfactuals').send(cf);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    assert.deepEqual(strip(c.body), strip(d.body));
    const fair = { bootstrap: { n: 0 }, attributions: false, recourse: { maxRows: 60, bootstrap: { n: 20 } }, deadlineMs: 60_000 };
    const e = await request(pooled).post('/v1/models/credit/fairness').send(fair);
    const f = await request(inline).post('/v1/models/credit/fairness').send(fair);
    assert.equal(e.status, 200, JSON.stringify(e.body));
    assert.deepEqual(
      e.body.recourse.map((r: { costs: unknown }) => r.costs),
      f.body.recourse.map((r: { costs: unknown }) => r.costs),
    );
    // An error raised inside the worker keeps its code.
    const bad = await request(pooled)
      .post('/v1/models/credit/effects')
      .send({ kind: 'pd', features: ['salary'] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'UNKNOWN_FEATURE');
  });

  it('answers /healthz while the worker is busy, and 429 with Retry-After when the queue is full', async () => {
    const app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', executor: pools[0] });
    // Distinct, expensive requests (20 instances x 4094 exact coalitions x 100 background rows, seconds each):
    // one runs, one waits in the queue, the rest are refused.
    let lastSlowDone = 0;
    const slow = Array.from({ length: 6 }, (_, i) =>
      request(app)
        .post('/v1/models/credit/explain')
        .send({ instances: rows(20, 100 + 20 * i), parameters: { nSamples: 20000, tolerance: 1e-9 } })
        .then((r) => {
          lastSlowDone = Date.now();
          return r;
        }),
    );
    await new Promise((r) => setTimeout(r, 100));
    const health = await request(app).get('/healthz');
    const healthDone = Date.now();
    assert.equal(health.status, 200);
    const done = await Promise.all(slow);
    const statuses = done.map((r) => r.status).sort((x, y) => x - y);
    assert.ok(statuses.includes(200), statuses.join());
    const refused = done.filter((r) => r.status === 429);
    assert.ok(refused.length >= 1, statuses.join());
    for (const r of refused) {
      assert.equal(r.body.error.code, 'OVERLOADED');
      assert.equal(r.headers['retry-after'], '1');
    }
    // Ordering, not timing: the health check came back while an explanation was still running.
    assert.ok(healthDone < lastSlowDone, 'healthz answered before the running explanation finished');
  });
});
