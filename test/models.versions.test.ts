/**
 * Models and versions without a restart (models/watcher.ts), in one process: a version folder
 * dropped into `<model>/versions/` is served after a scan and becomes the default, older versions
 * stay pinnable, a corrupt version is reported and never replaces a good one, a removed version
 * drains (pinned requests and permalinks still answer) and is then retired (410), a changed model
 * folder without versions/ gets a new version, and a new model folder is served. Predictions are
 * checked against the planted weights (f(x) = w.x + b of the linear sample), so "which version
 * answered" is a fact about numbers, not about labels. Worker threads find pinned versions too.
 */
import { strict as assert } from 'node:assert';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { ModelWatcher } from '../models/watcher.js';
import { createApp, type App } from '../server/app.js';
import { poolExecutor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';
import { linearPredict, linearVersion, linearWeights, publish, SAMPLES } from './helpers/versions.js';

const TOL = 1e-3;

function close(a: number[], b: number[], tol = TOL): boolean {
  return a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol * Math.max(1, Math.abs(b[i])));
}

describe('models: versions without a restart', function () {
  this.timeout(120_000);
  let dir: string;
  let watcher: ModelWatcher;
  let app: App;
  let v1: { w: number[]; b: number };
  let v2: { w: number[]; b: number };
  let v1hash: string;
  const rows = [
    [0.5, 480, 0.011, 2.5, 1, 3],
    [-1.2, 610, 0.009, 7.5, 0, 1],
    [2, 350, 0.012, 0.1, 1, 6],
  ];

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    dir = await mkdtemp(path.join(os.tmpdir(), 'versions-'));
    await mkdir(path.join(dir, 'linear', 'versions'), { recursive: true });
    await cp(path.join(SAMPLES, 'linear'), path.join(dir, 'linear', 'versions', '1'), { recursive: true });
    v1 = await linearWeights(path.join(dir, 'linear', 'versions', '1'));
    watcher = await ModelWatcher.load(dir, { intervalMs: 0, drainMs: 60_000 });
    app = createApp({ registry: watcher.registry, config: testConfig({}), backend: 'wasm' });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const predict = async (query = '', body: Record<string, unknown> = {}) =>
    request(app)
      .post(`/v1/models/linear/predict${query}`)
      .send({ instances: rows, ...body });

  it('serves versions/<label>/ folders; a new label is picked up by a scan and becomes the default', async () => {
    const before = await predict();
    assert.equal(before.status, 200);
    assert.ok(close(before.body.predictions.flat(), linearPredict(rows, v1)), JSON.stringify(before.body));
    // Publish version 2 (one weight's sign flipped, another tripled) atomically.
    const prepared = path.join(dir, 'linear', 'versions', '.incoming-2');
    v2 = await linearVersion(prepared, (w, b) => ({ w: w.map((x, j) => (j === 0 ? -x : j === 3 ? 3 * x : x)), b: b + 1 }));
    await publish(prepared, path.join(dir, 'linear', 'versions', '2'));
    const change = await watcher.scan();
    assert.deepEqual(
      change.added.map((a) => a.label),
      ['2'],
    );
    const after = await predict();
    assert.ok(close(after.body.predictions.flat(), linearPredict(rows, v2)), JSON.stringify(after.body));
    assert.notEqual(after.body.model.version, before.body.model.version);

    const detail = await request(app).get('/v1/models/linear');
    assert.equal(detail.status, 200);
    assert.deepEqual(
      detail.body.versions.map((v: any) => [v.label, v.state, v.default]),
      [
        ['2', 'serving', true],
        ['1', 'serving', false],
      ],
    );
    assert.equal(detail.body.version, after.body.model.version);
    assert.equal(detail.body.versionLabel, '2');
  });

  it('requests pin a version by label or hash, in the body or the query; unknown versions are 404', async () => {
    const byLabel = await predict('', { version: '1' });
    assert.ok(close(byLabel.body.predictions.flat(), linearPredict(rows, v1)));
    const hash = byLabel.body.model.version;
    v1hash = hash;
    const byQuery = await predict(`?version=${hash}`);
    assert.ok(close(byQuery.body.predictions.flat(), linearPredict(rows, v1)));
    assert.equal(byQuery.body.model.version, hash);

    // IG on a linear model: attribution_j = w_j (x_j - baseline_j), the baseline from the background
    // both versions share: so v2 / v1 per feature is w2_j / w1_j (-1 for the flipped weight, 3 for the tripled).
    const ig = { instances: rows.slice(0, 1), method: 'integrated-gradients' };
    const old = await request(app).post('/v1/models/linear/explain?version=1').send(ig);
    const now = await request(app).post('/v1/models/linear/explain').send(ig);
    assert.equal(old.status, 200, JSON.stringify(old.body));
    assert.equal(old.body.model.version, hash);
    const a1 = old.body.explanations[0].outputs[0].attributions.map((x: any) => x.attribution);
    const a2 = now.body.explanations[0].outputs[0].attributions.map((x: any) => x.attribution);
    a1.forEach((x: number, j: number) => {
      if (Math.abs(x) > 1e-6) assert.ok(Math.abs(a2[j] / x - v2.w[j] / v1.w[j]) < 1e-3, `feature ${j}: ${a2[j]} / ${x}`);
    });
    const chart = await request(app).get(`/v1/models/linear/explain.json?x1_std_normal=0.5&version=1`);
    assert.equal(chart.status, 200);
    assert.equal(chart.body.model.version, hash);

    const unknown = await predict('', { version: '7' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'VERSION_NOT_FOUND');
    assert.match(unknown.body.error.message, /served versions: 2, 1/);
    const disagree = await predict('?version=1', { version: '2' });
    assert.equal(disagree.status, 400);
    assert.equal(disagree.body.error.code, 'BAD_PARAMETER');
  });

  it('a corrupt new version is reported and never replaces the good one', async () => {
    const bad = path.join(dir, 'linear', 'versions', '3');
    await cp(path.join(SAMPLES, 'linear'), bad, { recursive: true });
    await writeFile(path.join(bad, 'weights.bin'), Buffer.alloc(5)); // truncated weights
    const change = await watcher.scan();
    assert.deepEqual(change.added, []);
    const list = await request(app).get('/v1/models');
    const err = list.body.loadErrors.find((e: any) => e.name === 'linear');
    assert.equal(err?.version, '3', JSON.stringify(list.body.loadErrors));
    assert.match(err.message, /weights/);
    const still = await predict();
    assert.ok(close(still.body.predictions.flat(), linearPredict(rows, v2)));
    await rm(bad, { recursive: true });
    await watcher.scan();
  });

  it('a removed version drains (pinned requests and permalinks answer), then retires (410)', async () => {
    const minted = await request(app).post('/v1/models/linear/explain').send({ instances: rows.slice(0, 1), method: 'integrated-gradients', version: '1' });
    assert.equal(minted.status, 200);
    const link = minted.body.links.json;
    const hash = minted.body.model.version;
    // The folder goes; the version is loaded here, so it drains.
    await rm(path.join(dir, 'linear', 'versions', '1'), { recursive: true });
    const change = await watcher.scan();
    assert.deepEqual(
      change.draining.map((d) => d.label),
      ['1'],
    );
    const listed = (await request(app).get('/v1/models/linear')).body.versions;
    assert.equal(listed.find((v: any) => v.label === '1')?.state, 'draining');
    assert.ok(listed.find((v: any) => v.label === '1')?.retiresAt);
    assert.equal((await request(app).get(link)).status, 200);
    assert.ok(close((await predict('', { version: hash })).body.predictions.flat(), linearPredict(rows, v1)));
    // The drain ends: the next scan retires it.
    (watcher.o as { drainMs: number }).drainMs = 0;
    for (const v of watcher.registry.versions!.get('linear')!) if (v.state === 'draining') v.retiresAt = Date.now() - 1;
    const retired = await watcher.scan();
    assert.deepEqual(
      retired.retired.map((r) => r.label),
      ['1'],
    );
    const gone = await request(app).get(link);
    assert.equal(gone.status, 410);
    assert.equal(gone.body.error.code, 'MODEL_VERSION_GONE');
    const pinned = await predict('', { version: hash });
    assert.equal(pinned.status, 410);
    assert.equal(pinned.body.error.code, 'MODEL_VERSION_GONE');
    (watcher.o as { drainMs: number }).drainMs = 60_000;
  });

  it('a new model folder is served after a scan; a folder without versions/ changed in place gets a new version', async () => {
    assert.equal((await request(app).get('/v1/models/cars')).status, 404);
    await cp(path.join(SAMPLES, 'cars'), path.join(dir, '.cars-incoming'), { recursive: true });
    await publish(path.join(dir, '.cars-incoming'), path.join(dir, 'cars'));
    const change = await watcher.scan();
    assert.deepEqual(
      change.added.map((a) => a.name),
      ['cars'],
    );
    const first = await request(app).get('/v1/models/cars');
    assert.equal(first.status, 200);
    const meta = path.join(dir, 'cars', 'metadata.json');
    const m = JSON.parse(await (await import('node:fs/promises')).readFile(meta, 'utf8'));
    m.description = 'retrained';
    await writeFile(meta, JSON.stringify(m));
    await watcher.scan();
    const second = (await request(app).get('/v1/models/cars')).body;
    assert.notEqual(second.version, first.body.version);
    assert.deepEqual(
      second.versions.map((v: any) => [v.version, v.state]),
      [
        [second.version, 'serving'],
        [first.body.version, 'draining'],
      ],
    );
  });

  it('worker threads serve every pinned version and refuse one that is gone', async () => {
    const pool = poolExecutor({ modelDir: dir, threads: 1, preload: false });
    try {
      const served = watcher.registry.versions!.get('linear')!;
      const current = served.find((v) => v.label === '2')!;
      const data = Float32Array.from(rows.flat());
      const out = await pool.run({ kind: 'predict', model: 'linear', version: current.version, rows: { data, n: 3, d: 6 } });
      assert.ok(close(Array.from(out), linearPredict(rows, v2)));
      // Version 4 appears; the thread finds it by content hash without a restart.
      const prepared = path.join(dir, 'linear', 'versions', '.4');
      const v4 = await linearVersion(prepared, (w, b) => ({ w: w.map((x) => 2 * x), b: 2 * b }));
      await publish(prepared, path.join(dir, 'linear', 'versions', '4'));
      await watcher.scan();
      const v4hash = watcher.registry.models.get('linear')!.version;
      const out4 = await pool.run({ kind: 'predict', model: 'linear', version: v4hash, rows: { data, n: 3, d: 6 } });
      assert.ok(close(Array.from(out4), linearPredict(rows, v4)));
      // Version 1's folder is gone (retired above) and this thread never loaded it.
      await assert.rejects(
        pool.run({ kind: 'predict', model: 'linear', version: v1hash, rows: { data, n: 3, d: 6 } }),
        (e: any) => e.code === 'MODEL_VERSION_GONE' && /versions there: 4 \(.*2 \(/.test(e.message),
      );
    } finally {
      await pool.close();
    }
  });
});
