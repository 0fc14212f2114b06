/**
 * How threads hold amortised explainers (service/amortised/source.ts): loaded once per model version
 * and explainer, shared by concurrent requests, disposed (tensors freed) when a request asks for a new
 * version or a retrained explainer once the requests using the old one are done; and a worker-thread
 * pool serves amortised-shap with the same numbers as the main thread.
 */
import { strict as assert } from 'node:assert';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { buildAmortised } from '../service/amortised/build.js';
import { disposeAmortised, leaseAmortised, loadedAmortised } from '../service/amortised/source.js';
import { amortisedDir, readAmortisedInfo, saveAmortised } from '../service/amortised/store.js';
import { poolExecutor } from '../service/executor.js';
import { readTrainingProgress } from '../service/amortised/task.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

describe('amortised SHAP: explainers held per thread', function () {
  this.timeout(300_000);
  let tmp: string;
  let repo: ModelRepository;
  let dataDir: string;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    disposeAmortised(); // what other suites of this process left loaded
    tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-serving-'));
    dataDir = path.join(tmp, 'data');
    await cp(path.join(SAMPLES, 'linear'), path.join(tmp, 'models', 'linear'), { recursive: true });
    repo = await loadModelRepository(path.join(tmp, 'models'));
    const m = repo.models.get('linear')!;
    const built = await buildAmortised(m.model, {
      space: m.space,
      background: m.background!,
      modelName: 'linear',
      modelVersion: m.version,
      reference: m.reference!.rows,
      dir: amortisedDir(dataDir, 'linear', m.version),
      syntheticRows: 0,
      hidden: [8],
      maxEpochs: 5,
      coalitionsPerRow: 16,
    });
    built.explainer.dispose();
  });
  after(async () => {
    disposeAmortised();
    await rm(tmp, { recursive: true, force: true });
  });

  it('loads once per version and explainer, and disposes the old one (after its last user) when asked for another', async () => {
    const m = repo.models.get('linear')!;
    const dir = amortisedDir(dataDir, 'linear', m.version);
    const info = (await readAmortisedInfo(dir))!;
    const id = info.explainer.id;
    const before = tf.memory().numTensors;
    const a = await leaseAmortised(dir, 'linear', m.version, id);
    const b = await leaseAmortised(dir, 'linear', m.version, id);
    assert.equal(a.explainer, b.explainer, 'one load for both requests');
    assert.deepEqual(loadedAmortised().filter((x) => x.model === 'linear'), [{ model: 'linear', version: m.version, id }]);
    const held = tf.memory().numTensors;
    assert.ok(held > before, 'the network is in memory');

    // Another explainer for the same model (as after retraining, or for a new version's folder).
    const other = amortisedDir(dataDir, 'linear', 'v2');
    await saveAmortised(other, a.explainer, { hyperparameters: info.explainer.hyperparameters, training: info.training!, validation: info.validation! });
    // The copy was saved for model version m.version: asking for it as version v2 is refused.
    await assert.rejects(leaseAmortised(other, 'linear', 'v2', id), (e: { code?: string }) => e.code === 'AMORTISED_STALE');
    // The first explainer was retired by that request (another version means the old one is done
    // with), but it stays in memory while requests still use it.
    a.release();
    assert.ok(tf.memory().numTensors >= held);
    // A retrained explainer (another id) for the same version: the old one is retired, and freed when b is released.
    const c = leaseAmortised(dir, 'linear', m.version, 'another-id');
    await assert.rejects(c, (e: { code?: string }) => e.code === 'AMORTISED_NOT_READY');
    assert.ok(tf.memory().numTensors >= held, 'still held by its last user');
    b.release();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(tf.memory().numTensors, before, 'disposed once its last user released it');
    await assert.rejects(b.explainer.network.estimate(new Float32Array(b.explainer.network.spec.inputs), 1), /disposed/);
    // Asked for again: loaded again, once.
    const d = await leaseAmortised(dir, 'linear', m.version, id);
    assert.notEqual(d.explainer, a.explainer);
    d.release();
    disposeAmortised();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(tf.memory().numTensors, before);
  });

  it('a worker-thread pool serves amortised-shap with the same numbers as the main thread', async () => {
    const config = testConfig({ DATA_DIR: dataDir, AMORTISED_THRESHOLD: '1', MODEL_DIR: path.join(tmp, 'models') });
    const inline = createApp({ registry: repo, config, backend: 'wasm' });
    const pool = poolExecutor({ modelDir: path.join(tmp, 'models'), backend: 'wasm', threads: 1, preload: true });
    try {
      const threaded = createApp({ registry: repo, config, backend: 'wasm', executor: pool });
      const instances = Array.from({ length: 4 }, (_, i) => Array.from(repo.models.get('linear')!.reference!.rows.data.slice(i * 6, (i + 1) * 6)));
      const a = await request(inline).post('/v1/models/linear/explain').send({ instances, method: 'amortised-shap' });
      const b = await request(threaded).post('/v1/models/linear/explain').send({ instances, method: 'amortised-shap' });
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(b.status, 200, JSON.stringify(b.body));
      assert.equal(b.body.method, 'amortised-shap');
      const strip = (body: { explanations: { outputs: unknown }[] }) => body.explanations.map((e) => e.outputs);
      assert.deepEqual(strip(b.body), strip(a.body));
    } finally {
      await pool.close();
    }
  });

  it('admission control: the estimate is the model rows a request sends (upper bound with verify); above the budget 422 TOO_EXPENSIVE', async () => {
    const m = repo.models.get('linear')!;
    const info = (await readAmortisedInfo(amortisedDir(dataDir, 'linear', m.version)))!;
    const M = info.explainer.game.players.length;
    const R = info.explainer.probes ? (info.explainer.game.probeRows?.n ?? 1) : 0;
    const bg = info.explainer.game.background.n;
    const instances = Array.from({ length: 3 }, (_, i) => Array.from(m.reference!.rows.data.slice((10 + i) * 6, (11 + i) * 6)));
    // Count what reaches the model (the registry's own model: the inline app calls it).
    let sent = 0;
    const predict = m.model.predict.bind(m.model);
    m.model.predict = (rows) => {
      sent += rows.n;
      return predict(rows);
    };
    // Rows the model forms itself (Model.maskedRows: the probes, Kernel SHAP's masked rows) count too.
    const maskedRows = m.model.maskedRows?.bind(m.model);
    if (maskedRows) {
      m.model.maskedRows = async (background) => {
        const evaluator = await maskedRows(background);
        return (
          evaluator && {
            mode: evaluator.mode,
            predict: (spec, k0, row0, n, out, at) => {
              sent += n;
              return evaluator.predict(spec, k0, row0, n, out, at);
            },
          }
        );
      };
    }
    try {
      const own = 3 * (1 + 2 * M * R) + bg + R;
      const app = createApp({ registry: repo, config: testConfig({ DATA_DIR: dataDir, AMORTISED_THRESHOLD: '1' }), backend: 'wasm' });
      const res = await request(app).post('/v1/models/linear/explain').send({ instances, method: 'amortised-shap' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.method, 'amortised-shap');
      assert.equal(sent, own, 'the rows, their probes, the background and the probe rows');
      sent = 0;
      const verified = await request(app).post('/v1/models/linear/explain').send({ instances, method: 'amortised-shap', parameters: { verify: true } });
      assert.equal(verified.status, 200, JSON.stringify(verified.body));
      assert.ok(sent > own, `verify runs Kernel SHAP too (${sent} rows)`);
      const ks = 3 * (Math.min(2 * M + 2048, 2 ** M - 2) * bg + 1) + bg;
      assert.ok(sent <= own + ks, `${sent} rows sent, estimated at most ${own + ks}`);
      sent = 0;
      const tight = createApp({ registry: repo, config: testConfig({ DATA_DIR: dataDir, AMORTISED_THRESHOLD: '1', MAX_REQUEST_EVALUATIONS: String(own - 1) }), backend: 'wasm' });
      const refused = await request(tight).post('/v1/models/linear/explain').send({ instances: instances.map((r) => r.map((v) => v + 1)), method: 'amortised-shap' });
      assert.equal(refused.status, 422, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'TOO_EXPENSIVE');
      assert.equal(sent, 0, 'refused before any model call');
      // ... and admitted at exactly its rows: the estimate is not padded.
      const exact = createApp({ registry: repo, config: testConfig({ DATA_DIR: dataDir, AMORTISED_THRESHOLD: '1', MAX_REQUEST_EVALUATIONS: String(own) }), backend: 'wasm' });
      const admitted = await request(exact).post('/v1/models/linear/explain').send({ instances: instances.map((r) => r.map((v) => v + 1)), method: 'amortised-shap' });
      assert.equal(admitted.status, 200, JSON.stringify(admitted.body));
      assert.equal(sent, own);
    } finally {
      m.model.predict = predict;
      if (maskedRows) m.model.maskedRows = maskedRows;
    }
  });

  it('a training task on a worker thread stops when cancelled (the training loop sees the flag), and the thread serves on', async () => {
    const m = repo.models.get('linear')!;
    const pool = poolExecutor({ modelDir: path.join(tmp, 'models'), backend: 'wasm', threads: 1, preload: true });
    const dir = path.join(tmp, 'cancelled', 'linear', m.version);
    try {
      const controller = new AbortController();
      const parameters = { syntheticRows: 0, hidden: [8], coalitionsPerRow: 16, maxEpochs: 100_000, patience: 100_000 };
      const run = pool.run({ kind: 'amortised-train', model: 'linear', version: m.version, dir, parameters }, { signal: controller.signal });
      const settled = run.then(
        () => 'finished',
        (e: unknown) => (e as { code?: string }).code ?? String(e),
      );
      for (;;) {
        const p = await readTrainingProgress(dir);
        if (p?.phase === 'training' && (p.epoch ?? 0) >= 2) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      controller.abort();
      assert.equal(await settled, 'CANCELLED');
      // No model call happens while training: the loop itself must stop, or its epochs keep coming.
      await new Promise((r) => setTimeout(r, 300));
      const at = (await readTrainingProgress(dir))?.epoch;
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await readTrainingProgress(dir))?.epoch, at, 'training went on after the cancellation');
      const out = await pool.run({ kind: 'predict', model: 'linear', version: m.version, rows: { data: m.reference!.rows.data.slice(0, 6), n: 1, d: 6 } });
      assert.equal(out.length, 1);
    } finally {
      await pool.close();
    }
  });
});
