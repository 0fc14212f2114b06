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
});
