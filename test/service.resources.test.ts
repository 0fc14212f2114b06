/**
 * Bounded resources: the explanation records under DATA_DIR stay under their count and byte caps
 * after many distinct requests and expire after their TTL; finished local job folders are removed
 * after theirs; the fairness bootstrap and PNG rendering run as executor tasks (worker threads in
 * production), not on the event loop; the reference side of attribution drift is explained once
 * per model version and settings.
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import type { Registry } from '../models/served.js';
import { createApp } from '../server/app.js';
import { inlineExecutor, type Executor } from '../service/executor.js';
import { ExplanationRecords } from '../service/records.js';
import type { Task } from '../service/tasks.js';
import { testConfig } from './helpers/config.js';
import { linearModel, served } from './helpers/jsModels.js';
import { parseMetadata } from '../models/metadata.js';

/** An inline executor that counts the tasks it runs, by kind. */
function counting(registry: Registry): Executor & { counts: Record<string, number>; tasks: Task[] } {
  const inner = inlineExecutor(registry);
  const counts: Record<string, number> = {};
  const tasks: Task[] = [];
  return Object.assign(Object.create(inner) as Executor, {
    counts,
    tasks,
    run<T extends Task>(task: T, o?: { signal?: AbortSignal }) {
      counts[task.kind] = (counts[task.kind] ?? 0) + 1;
      tasks.push(task);
      return inner.run(task, o);
    },
  });
}

const bg = { data: Float32Array.from({ length: 200 }, (_, i) => (i * 7919) % 13), n: 100, d: 2 };

function registry(): Registry {
  const labels = Float32Array.from({ length: 100 }, (_, i) => i % 2);
  const metadata = parseMetadata({
    task: 'regression',
    features: [{ name: 'x0' }, { name: 's', type: 'binary' }],
    outputs: [{ name: 'y' }],
    sensitiveFeatures: ['s'],
  });
  const rows = { data: Float32Array.from({ length: 200 }, (_, i) => (i % 2 ? (i >> 1) % 2 : i % 17)), n: 100, d: 2 };
  return {
    models: new Map([
      [
        'lin',
        served('lin', linearModel([1, 2]), {
          background: bg,
          reference: { rows, labels },
          metadata,
          space: { featureNames: ['x0', 's'], outputNames: ['y'] },
        }),
      ],
    ]),
    errors: [],
  };
}

describe('service: bounded resources', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'resources-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function dirSize(d: string): Promise<{ files: number; bytes: number }> {
    let bytes = 0;
    const names = await readdir(d);
    for (const n of names) bytes += (await stat(path.join(d, n))).size;
    return { files: names.length, bytes };
  }

  it('DATA_DIR stays under its record cap (count and bytes) after many distinct requests; the newest stay', async () => {
    const app = createApp({
      registry: registry(),
      config: testConfig({ DATA_DIR: dir, RECORDS_MAX_COUNT: '25', RECORDS_MAX_BYTES: '40000' }),
      backend: 'js',
    });
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) {
      // Each with its own background rows: records carry their whole body, so bytes bind too.
      const background = Array.from({ length: 1 + (i % 7) * 10 }, (_, k) => [k, i]);
      const res = await request(app)
        .post('/v1/models/lin/explain')
        .send({ instances: [[i, 1]], parameters: { background, nSamples: 'auto' } });
      assert.equal(res.status, 200);
      ids.push(res.body.id);
    }
    const { files, bytes } = await dirSize(path.join(dir, 'explanations'));
    assert.ok(files <= 25, `${files} records on disk`);
    assert.ok(bytes <= 40000, `${bytes} bytes on disk`);
    assert.ok(files >= 5, `${files} records kept`);
    const stats = app.context.svc.records.stats();
    assert.deepEqual({ count: stats.count, bytes: stats.bytes }, { count: files, bytes });
    // The newest answers by id after a restart (a new app, an empty cache); the oldest are gone.
    const again = createApp({
      registry: registry(),
      config: testConfig({ DATA_DIR: dir, RECORDS_MAX_COUNT: '25', RECORDS_MAX_BYTES: '40000' }),
      backend: 'js',
    });
    assert.equal((await request(again).get(`/v1/explanations/${ids[119]}.json`)).status, 200);
    assert.equal((await request(again).get(`/v1/explanations/${ids[0]}.json`)).status, 404);
  });

  it('records expire after their TTL, on disk too', async () => {
    const records = new ExplanationRecords(dir, { maxCount: 100, maxBytes: 1e6, ttlSeconds: 60 });
    const id = 'a'.repeat(32);
    await records.put(id, { model: 'lin', version: 'v', body: { instances: [[1, 2]], method: 'kernel-shap', parameters: {} } });
    assert.ok(await records.get(id));
    const old = new Date(Date.now() - 120_000);
    await utimes(path.join(dir, `${id}.json`), old, old);
    const restarted = new ExplanationRecords(dir, { maxCount: 100, maxBytes: 1e6, ttlSeconds: 60 });
    assert.equal(await restarted.get(id), undefined);
    assert.equal(existsSync(path.join(dir, `${id}.json`)), false);
  });

  it('finished local job folders are removed after the job TTL', async () => {
    const reg = registry();
    const runner = new LocalJobRunner({ dir, executor: inlineExecutor(reg), sync: false, ttlSeconds: 3600 });
    await runner.start();
    try {
      const { buildSpec } = await import('../jobs/spec.js');
      const spec = buildSpec(testConfig(), reg.models.get('lin')!, { method: 'kernel-shap' });
      const job = await runner.submit(spec, [{ index: 0, row: new Float32Array([1, 1]) }]);
      await runner.waitFor(job.id);
      assert.deepEqual(await runner.collectGarbage(Date.now()), []);
      assert.ok(existsSync(path.join(dir, job.id)));
      assert.deepEqual(await runner.collectGarbage(Date.now() + 3601_000), [job.id]);
      assert.equal(existsSync(path.join(dir, job.id)), false);
      assert.equal(await runner.get(job.id), undefined);
    } finally {
      await runner.stop();
    }
  });

  it('the fairness bootstrap and PNG rendering are executor tasks', async () => {
    const reg = registry();
    const executor = counting(reg);
    const app = createApp({ registry: reg, config: testConfig(), backend: 'js', executor });
    const f = await request(app)
      .post('/v1/models/lin/fairness')
      .send({ bootstrap: { n: 30 }, attributions: false });
    assert.equal(f.status, 200, JSON.stringify(f.body));
    assert.equal(executor.counts['fairness-stats'], 1);
    const png = await request(app)
      .post('/v1/models/lin/explain?format=png')
      .send({ instances: [[1, 1]] });
    assert.equal(png.status, 200);
    assert.equal(png.type, 'image/png');
    assert.equal(executor.counts.png, 1);
  });

  it('the reference side of attribution drift is explained once per model version and settings', async () => {
    const reg = registry();
    const executor = counting(reg);
    const app = createApp({ registry: reg, config: testConfig(), backend: 'js', executor });
    const current = Array.from({ length: 60 }, (_, i) => [i % 11, i % 2]);
    const explained = () => executor.tasks.filter((t) => t.kind === 'explain').length;
    const body = { current, attributions: { sampleSize: 20, nSamples: 64 } };
    assert.equal((await request(app).post('/v1/models/lin/drift').send(body)).status, 200);
    assert.equal(explained(), 2, 'reference and current');
    assert.equal((await request(app).post('/v1/models/lin/drift').send(body)).status, 200);
    assert.equal(explained(), 3, 'the current side only');
    const other = { current, attributions: { sampleSize: 20, nSamples: 64, seed: 5 } };
    assert.equal((await request(app).post('/v1/models/lin/drift').send(other)).status, 200);
    assert.equal(explained(), 5, 'other settings: both sides');
    // A reference in the request is the request's own: never cached.
    const own = { current, reference: current, attributions: { sampleSize: 20, nSamples: 64 } };
    assert.equal((await request(app).post('/v1/models/lin/drift').send(own)).status, 200);
    assert.equal((await request(app).post('/v1/models/lin/drift').send(own)).status, 200);
    assert.equal(explained(), 9);
  });
});
