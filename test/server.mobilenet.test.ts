/**
 * A real pretrained image model over REST: the Keras MobileNetV2 that the nsfwjs package (MIT) ships,
 * served from a plain model folder with no metadata (helpers/mobilenet.ts), as a new user would.
 * Integrated Gradients and SmoothGrad answer 200 with finite attributions for every one of the
 * 150,528 input values, IG complete within its reported gap; Grad-CAM finds its layer without
 * metadata; an image of the wrong size is a 400. Budgets are small (8 path points, 2 noisy copies):
 * a gradient of this model costs about a second per image on wasm.
 */
import { strict as assert } from 'node:assert';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { testConfig } from './helpers/config.js';
import { mobileNetFolder } from './helpers/mobilenet.js';

describe('server: a real pretrained MobileNetV2 (nsfwjs) over REST', function () {
  this.timeout(600_000);
  let repo: ModelRepository;
  let app: App;
  let dir: string;
  const d = 224 * 224 * 3;
  /** A synthetic 224x224 RGB image in [0, 1] (no photos needed): colour gradients and a bright disc. */
  const image: number[][][] = Array.from({ length: 224 }, (_, y) =>
    Array.from({ length: 224 }, (_, x) => {
      const disc = (y - 90) ** 2 + (x - 130) ** 2 < 40 ** 2;
      return [disc ? 250 : x, disc ? 200 : y, disc ? 40 : 128].map((v) => Math.round((v / 255) * 1e4) / 1e4);
    }),
  );
  /** A lower-contrast copy: a short path from it, which 8 Gauss-Legendre points integrate closely. */
  const baseline = image.map((r) => r.map((p) => p.map((v) => Math.round((0.8 * v + 0.1) * 1e4) / 1e4)));
  let predicted: number;

  before(async () => {
    await selectBackend('wasm');
    // A temporary MODEL_DIR holding the package's model as the folder "mobilenet", loaded as the server loads it.
    dir = await mkdtemp(path.join(os.tmpdir(), 'model-dir-'));
    await cp(await mobileNetFolder(), path.join(dir, 'mobilenet'), { recursive: true });
    repo = await loadModelRepository(dir);
    assert.deepEqual(repo.errors, []);
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
  });
  after(async () => {
    for (const m of repo?.models.values() ?? []) m.model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('predicts, and lists its methods: gradients and layer access work on wasm', async () => {
    const res = await request(app).post('/v1/models/mobilenet/predict').send({ instances: [image] });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    const p = res.body.predictions[0] as number[];
    assert.equal(p.length, 5);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    predicted = p.indexOf(Math.max(...p));
    const desc = await request(app).get('/v1/models/mobilenet');
    assert.deepEqual(desc.body.inputShape, [224, 224, 3]);
    assert.ok(['integrated-gradients', 'smoothgrad', 'grad-cam'].every((m) => desc.body.methods.includes(m)), desc.body.methods.join(', '));
  });

  it('integrated-gradients answers 200: 150,528 finite attributions, complete within the reported gap (< 5% of f(x) - f(baseline))', async () => {
    const res = await request(app)
      .post('/v1/models/mobilenet/explain')
      .send({ instances: [image], method: 'integrated-gradients', outputs: [predicted], parameters: { steps: 8, method: 'gauss-legendre', baseline: [baseline] } });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    assert.deepEqual(res.body.inputShape, [224, 224, 3]);
    const out = res.body.explanations[0].outputs[0];
    assert.equal(out.outputIndex, predicted);
    assert.equal(out.attributions.length, d);
    const a = out.attributions.map((x: { attribution: number }) => x.attribution) as number[];
    assert.ok(a.every(Number.isFinite));
    assert.ok(a.some((v) => v !== 0));
    const sum = a.reduce((s, v) => s + v, 0);
    const delta = out.instanceOutputValue - out.baselineOutputValue;
    assert.ok(Math.abs(sum - delta - out.approximationError) < 1e-4, 'the reported gap is sum(attributions) - (f(x) - f(baseline))');
    // measured 2.1% at 8 points (test/models.graph.test.ts)
    assert.ok(Math.abs(out.approximationError) <= 0.05 * Math.abs(delta), `gap ${out.approximationError} of ${delta}`);
  });

  it('smoothgrad answers 200: 150,528 finite attributions with finite standard errors', async () => {
    const res = await request(app)
      .post('/v1/models/mobilenet/explain')
      .send({ instances: [image], method: 'smoothgrad', outputs: [predicted], parameters: { samples: 2, seed: 3 } });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    const out = res.body.explanations[0].outputs[0];
    assert.equal(out.attributions.length, d);
    assert.ok(out.attributions.every((x: { attribution: number; stderr: number }) => Number.isFinite(x.attribution) && Number.isFinite(x.stderr)));
    assert.equal(res.body.explanations[0].diagnostics.samples, 2);
  });

  it('grad-cam finds the last 7x7 feature map without metadata; an image of the wrong size is a 400', async () => {
    const res = await request(app).post('/v1/models/mobilenet/explain').send({ instances: [image], method: 'grad-cam', outputs: [predicted] });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    const inst = res.body.explanations[0];
    assert.deepEqual(inst.diagnostics.mapShape, [7, 7]);
    assert.equal(inst.outputs[0].attributions.length, d);
    assert.ok(inst.outputs[0].attributions.every((x: { attribution: number }) => Number.isFinite(x.attribution) && x.attribution >= 0));
    const small = image.slice(0, 100).map((r) => r.slice(0, 100));
    const bad = await request(app).post('/v1/models/mobilenet/explain').send({ instances: [small], method: 'integrated-gradients' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'BAD_INSTANCE');
    assert.match(bad.body.error.message, /expected an array of length 224 \(input shape \[224, 224, 3\]\), got length 100/);
  });
});
