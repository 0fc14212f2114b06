/**
 * The explain, importance and predict endpoints on the real sample models, held to oracles: the
 * linear model's closed form, efficiency and completeness, the response shape of docs/api.md, and the
 * cache's promises (per instance, single flight, keyed by model version).
 */
import { strict as assert } from 'node:assert';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

describe('server: explain on the sample models', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let app: ReturnType<typeof createApp>;
  let linear: { w: number[]; b: number };

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    const meta = JSON.parse(await readFile(path.join(SAMPLES, 'linear', 'model.json'), 'utf8'));
    // The oracle reads the weights straight from the files, not through our runtime.
    const bin = await readFile(path.join(SAMPLES, 'linear', 'weights.bin'));
    const specs = meta.weightsManifest[0].weights as { name: string; shape: number[] }[];
    const f = new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4);
    const kernelSize = specs[0].shape.reduce((a, b) => a * b, 1);
    linear = { w: Array.from(f.subarray(0, kernelSize)), b: f[kernelSize] };
  });

  function backgroundMean(name: string): number[] {
    const bg = repo.models.get(name)!.background!;
    const mean = new Array(bg.d).fill(0);
    for (let i = 0; i < bg.n; i++) for (let j = 0; j < bg.d; j++) mean[j] += bg.data[i * bg.d + j] / bg.n;
    return mean;
  }

  function referenceRows(name: string, n: number): number[][] {
    const ref = repo.models.get(name)!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray(i * ref.d, (i + 1) * ref.d)));
  }

  it('kernel-shap on the linear model equals w_i (x_i - mean_i), in the documented response shape', async () => {
    const rows = referenceRows('linear', 3);
    const res = await request(app).post('/v1/models/linear/explain').send({ instances: rows, method: 'kernel-shap' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.model, { name: 'linear', version: repo.models.get('linear')!.version });
    assert.equal(res.body.method, 'kernel-shap');
    assert.equal(res.body.cached, false);
    const mean = backgroundMean('linear');
    const names = repo.models.get('linear')!.space.featureNames;
    res.body.explanations.forEach((e: any, i: number) => {
      assert.equal(typeof e.converged, 'boolean');
      assert.ok(e.modelEvaluations > 0 && e.computeMs >= 0);
      const o = e.outputs[0];
      assert.equal(o.output, 'y');
      assert.equal(o.outputIndex, 0);
      assert.deepEqual(
        o.attributions.map((a: any) => a.feature),
        names,
      );
      o.attributions.forEach((a: any, j: number) => {
        const expected = linear.w[j] * (rows[i][j] - mean[j]);
        assert.ok(
          Math.abs(a.attribution - expected) < 1e-4 * Math.max(1, Math.abs(expected)),
          `${a.feature}: ${a.attribution} vs ${expected}`,
        );
        assert.ok(Math.abs(a.value - rows[i][j]) <= 1e-6 * Math.max(1, Math.abs(rows[i][j])));
      });
    });
  });

  it("integrated-gradients on the linear model equals (x - x') w for a given baseline", async () => {
    const rows = referenceRows('linear', 2);
    const baseline = [[0, 400, 0, 5, 1, 2]];
    const res = await request(app)
      .post('/v1/models/linear/explain')
      .send({ instances: rows, method: 'integrated-gradients', parameters: { baseline, method: 'riemann-left', steps: 7 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    res.body.explanations.forEach((e: any, i: number) =>
      e.outputs[0].attributions.forEach((a: any, j: number) => {
        const expected = (rows[i][j] - baseline[0][j]) * linear.w[j];
        assert.ok(
          Math.abs(a.attribution - expected) < 1e-4 * Math.max(1, Math.abs(expected)),
          `${a.feature}: ${a.attribution} vs ${expected}`,
        );
      }),
    );
  });

  for (const name of ['credit', 'penguins', 'cars', 'linear']) {
    it(`${name}: kernel-shap is efficient and IG complete, for every output`, async () => {
      const rows = referenceRows(name, 2);
      const shap = await request(app)
        .post(`/v1/models/${name}/explain`)
        .send({ instances: rows, method: 'kernel-shap', parameters: { link: 'identity' } });
      assert.equal(shap.status, 200, JSON.stringify(shap.body));
      for (const e of shap.body.explanations)
        for (const o of e.outputs) {
          const sum = o.attributions.reduce((s: number, a: any) => s + a.attribution, 0);
          const gap = o.instanceOutputValue - o.baselineOutputValue;
          assert.ok(Math.abs(sum - gap) < 1e-4 * Math.max(1, Math.abs(gap)), `${name} ${o.output}: sum ${sum} vs ${gap}`);
        }
      const ig = await request(app).post(`/v1/models/${name}/explain`).send({ instances: rows, method: 'integrated-gradients' });
      assert.equal(ig.status, 200, JSON.stringify(ig.body));
      for (const e of ig.body.explanations) {
        assert.equal(e.converged, true);
        for (const o of e.outputs) {
          const sum = o.attributions.reduce((s: number, a: any) => s + a.attribution, 0);
          const gap = o.instanceOutputValue - o.baselineOutputValue;
          assert.ok(
            Math.abs(sum - gap - o.approximationError) < 1e-5 * Math.max(1, Math.abs(gap)),
            'approximationError is the completeness delta',
          );
          assert.ok(
            Math.abs(o.approximationError) <= 0.01 * Math.abs(gap) + 1e-5 * Math.max(1, Math.abs(o.instanceOutputValue)),
            `${name} ${o.output}: delta ${o.approximationError} vs gap ${gap}`,
          );
        }
      }
    });
  }

  it('kernel-shap with the logit link is efficient in log-odds', async () => {
    const rows = referenceRows('credit', 1);
    const res = await request(app)
      .post('/v1/models/credit/explain')
      .send({ instances: rows, parameters: { link: 'logit' } });
    const o = res.body.explanations[0].outputs[0];
    const p = (await request(app).post('/v1/models/credit/predict').send({ instances: rows })).body.predictions[0][0];
    assert.ok(Math.abs(o.instanceOutputValue - Math.log(p / (1 - p))) < 1e-4);
    const sum = o.attributions.reduce((s: number, a: any) => s + a.attribution, 0);
    assert.ok(Math.abs(sum - (o.instanceOutputValue - o.baselineOutputValue)) < 1e-4);
  });

  it('shapes: IG attributions have the image shape and fall on the object', async () => {
    const masks = JSON.parse(await readFile(path.join(SAMPLES, 'shapes', 'masks.json'), 'utf8'));
    const ref = repo.models.get('shapes')!.reference!;
    const list: number[][] = Array.isArray(masks) ? masks : masks.masks;
    const i = 0;
    const row = Array.from(ref.rows.data.subarray(i * ref.rows.d, (i + 1) * ref.rows.d));
    const image = Array.from({ length: 16 }, (_, r) => Array.from({ length: 16 }, (_, c) => [row[r * 16 + c]]));
    const label = ref.labels[i];
    const res = await request(app)
      .post('/v1/models/shapes/explain')
      .send({ instances: [image], method: 'integrated-gradients', outputs: [label], parameters: { baseline: 'zeros' } });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
    assert.deepEqual(res.body.inputShape, [16, 16, 1]);
    const attr = res.body.explanations[0].outputs[0].attributions.map((a: any) => a.attribution);
    assert.equal(attr.length, 256);
    const mask = (list[i] as unknown as number[]).flat(3) as number[];
    let on = 0,
      total = 0;
    attr.forEach((a: number, j: number) => {
      total += Math.abs(a);
      if (mask[j]) on += Math.abs(a);
    });
    assert.ok(on / total > 0.6, `share of |attribution| on the object: ${on / total}`);
  });

  it('importance on the credit reference set puts the documented drivers first and the no-effect feature near 0', async () => {
    const res = await request(app).post('/v1/models/credit/importance').send({ repeats: 5, seed: 1, metric: 'log_loss' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const imp = new Map<string, number>(res.body.importances.map((f: any) => [f.feature, f.mean]));
    const ranked = [...imp.entries()].sort((a, b) => b[1] - a[1]).map(([k]) => k);
    assert.deepEqual(new Set(ranked.slice(0, 3)), new Set(['income', 'debt_ratio', 'late_payments']));
    const strongest = imp.get(ranked[0])!;
    assert.ok(Math.abs(imp.get('application_weekday')!) < 0.05 * strongest, `application_weekday ${imp.get('application_weekday')}`);
  });

  it('caches per instance: 9 seen + 1 new computes 1, and identical concurrent requests compute once', async () => {
    const a = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    const rows = referenceRows('credit', 10);
    const first = await request(a)
      .post('/v1/models/credit/explain')
      .send({ instances: rows.slice(0, 9) });
    assert.equal(first.headers['x-cache'], 'MISS');
    const misses = a.context.svc.cache.misses;
    const second = await request(a).post('/v1/models/credit/explain').send({ instances: rows });
    assert.equal(second.headers['x-cache'], 'PARTIAL');
    assert.equal(a.context.svc.cache.misses - misses, 1);
    assert.deepEqual(second.body.explanations.slice(0, 9), first.body.explanations);
    const third = await request(a).post('/v1/models/credit/explain').send({ instances: rows });
    assert.equal(third.headers['x-cache'], 'HIT');
    assert.equal(third.body.cached, true);

    const fresh = referenceRows('credit', 20).slice(10, 12);
    const before = a.context.svc.cache.misses;
    const same = await Promise.all(
      Array.from({ length: 4 }, () => request(a).post('/v1/models/credit/explain').send({ instances: fresh })),
    );
    assert.equal(a.context.svc.cache.misses - before, 2);
    for (const r of same) assert.deepEqual(r.body.explanations, same[0].body.explanations);
  });

  it('a new model version never serves an old answer', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'repo-'));
    await cp(path.join(SAMPLES, 'linear'), path.join(dir, 'linear'), { recursive: true });
    const r1 = await loadModelRepository(dir);
    const a = createApp({ registry: r1, config: testConfig({}), backend: 'wasm' });
    const body = { instances: referenceRows('linear', 1) };
    const v1 = await request(a).post('/v1/models/linear/explain').send(body);
    // Same weights, new metadata description: a new content version.
    const metaPath = path.join(dir, 'linear', 'metadata.json');
    const meta = JSON.parse(await readFile(metaPath, 'utf8'));
    meta.description = `${meta.description} (v2)`;
    await writeFile(metaPath, JSON.stringify(meta));
    const r2 = await loadModelRepository(dir);
    a.context.svc.registry.models = r2.models;
    const v2 = await request(a).post('/v1/models/linear/explain').send(body);
    assert.notEqual(v1.body.model.version, v2.body.model.version);
    assert.equal(v2.headers['x-cache'], 'MISS');
  });

  it('same seed, same bytes; a deadline that cuts the sampling short returns the best estimates, converged false', async () => {
    const rows = referenceRows('credit', 2);
    const a1 = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    const a2 = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    const body = { instances: rows, parameters: { nSamples: 300, seed: 7 } };
    const x = await request(a1).post('/v1/models/credit/explain').send(body);
    const y = await request(a2).post('/v1/models/credit/explain').send(body);
    assert.deepEqual(
      x.body.explanations.map((e: any) => e.outputs),
      y.body.explanations.map((e: any) => e.outputs),
    );
    // 12 players (housing is one group): 4000 < 2^12 - 2 coalitions, so this is sampled: 40 rows x
    // 4000 coalitions x 100 background rows, 16 million model rows, far more than 40 ms holds; even the
    // first group of 4 rows (1.6 million) takes ~0.3 s at the fused kernel's ~5 M rows/s (with 150 ms
    // and 3000 coalitions it finished on a quiet machine). Kernel SHAP checks its deadline between model
    // calls and returns every row's best estimate so far (any prefix of a design is a design; a row not
    // reached gets the equal split), marked.
    const late = await request(a1)
      .post('/v1/models/credit/explain')
      .send({ instances: referenceRows('credit', 40), parameters: { nSamples: 4000, deadlineMs: 40, tolerance: 1e-6 } });
    assert.equal(late.status, 200, JSON.stringify(late.body).slice(0, 300));
    assert.ok(late.body.explanations.every((e: any) => e.converged === false && e.stopReason === 'deadline'));
    for (const e of late.body.explanations) {
      const o = e.outputs[0];
      const sum = o.attributions.reduce((s: number, a: any) => s + a.attribution, 0);
      assert.ok(Math.abs(sum - (o.instanceOutputValue - o.baselineOutputValue)) < 1e-4, 'efficiency holds for the best estimate so far');
    }
  });

  it('tensor count stays flat over many explain, predict and importance requests', async () => {
    const tf = await import('@tensorflow/tfjs');
    const a = createApp({ registry: repo, config: testConfig({ CACHE_MAX_BYTES: '1' }), backend: 'wasm' });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      const rows = referenceRows('cars', 3).map((r) => r.map((v, j) => (j === 0 ? v + i : v)));
      for (const method of ['kernel-shap', 'integrated-gradients'])
        assert.equal(
          (
            await request(a)
              .post('/v1/models/cars/explain')
              .send({ instances: rows, method, parameters: method === 'kernel-shap' ? { nSamples: 100 } : {} })
          ).status,
          200,
        );
      assert.equal((await request(a).post('/v1/models/cars/predict').send({ instances: rows })).status, 200);
    }
    assert.equal((await request(a).post('/v1/models/cars/importance').send({ repeats: 2 })).status, 200);
    assert.equal(tf.memory().numTensors, before);
  });

  it('GET /v1/models lists every sample with its version', async () => {
    const res = await request(app).get('/v1/models');
    assert.deepEqual(res.body.models.map((m: any) => m.name).sort(), ['cars', 'credit', 'linear', 'penguins', 'shapes', 'text']);
    for (const m of res.body.models) assert.match(m.version, /^[0-9a-f]{16}$/);
  });

  it('/metrics exposes latency histograms per route and per model and method, and the backend', async () => {
    const text = (await request(app).get('/metrics')).text;
    assert.match(text, /http_request_duration_seconds_bucket\{[^}]*route="\/v1\/models\/:name\/explain"/);
    assert.match(text, /explanation_duration_seconds_bucket\{[^}]*model="credit",method="kernel-shap"/);
    assert.match(text, /tfjs_backend_info\{backend="wasm"\} 1/);
    assert.match(text, /explanation_cache_hit_ratio/);
  });

  it('/openapi.json describes the explain request from the same schemas', async () => {
    const doc = (await request(app).get('/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    const ref = doc.paths['/v1/models/{name}/explain'].post.requestBody.content['application/json'].schema.$ref as string;
    const body = doc.components.schemas[ref.split('/').pop()!];
    // One variant per method, discriminated on `method`, each with the method's own parameters.
    const variants = body.oneOf as { properties: Record<string, { const?: string; enum?: string[] }> }[];
    const methods = variants.map((v) => v.properties.method.const ?? v.properties.method.enum?.[0]);
    assert.deepEqual(
      [...methods].sort((x, y) => String(x).localeCompare(String(y))),
      ['amortised-shap', 'expected-gradients', 'grad-cam', 'integrated-gradients', 'kernel-shap', 'occlusion', 'partition-shap', 'smoothgrad', 'xrai'],
    );
    for (const v of variants) assert.ok(v.properties.instances);
    assert.ok(JSON.stringify(variants[methods.indexOf('kernel-shap')]).includes('nSamples'));
    assert.ok(JSON.stringify(variants[methods.indexOf('integrated-gradients')]).includes('gauss-legendre'));
  });
});
