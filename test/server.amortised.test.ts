/**
 * Amortised SHAP over REST, on real tfjs models in a temporary MODEL_DIR: a seeded MLP classifier
 * that is not in the repository (softmax outputs, metadata, background and reference sets) and the
 * linear sample. Training runs as a job on the embedded runner, with small settings so the file runs
 * in a minute or two; the accuracy at the default settings is measured by bench/amortisedBench.ts.
 *   - before training, amortised-shap answers with Kernel SHAP and says so (fallback), or 409 with
 *     fallback "none"; the state is none;
 *   - POST answers 202 with a job (the same job while it runs), GET /v1/jobs/:id shows its progress,
 *     it succeeds with the validated error, and the state becomes ready and servable; GET
 *     /v1/models/:name publishes it;
 *   - explanations: stopReason amortised, approximationError = the validated error, efficiency against
 *     the model's own outputs, the linear closed form, cached, verify, charts, and a job over the
 *     reference set with it;
 *   - a new model version makes it stale and explanations fall back until retrained;
 *   - a training job is cancelled by DELETE /v1/jobs/:id, and one stopped by a restart resumes from its
 *     checkpoints to the very explainer an uninterrupted run stores;
 *   - bad requests get 400 with stable codes.
 * Every JSON answer is also validated against the OpenAPI document.
 */
import { strict as assert } from 'node:assert';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import type { JobView } from '../jobs/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { disposeAmortised } from '../service/amortised/source.js';
import { inlineExecutor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';
import { writeHeldOutMlp } from './helpers/heldOutMlp.js';
import { asText } from './helpers/browser.js';

const SAMPLES = path.resolve('samples/models');
/** Small, fast training settings (the defaults train for minutes). */
const SMALL = { syntheticRows: 100, coalitionsPerRow: 32, hidden: [16], maxEpochs: 25, patience: 5, batchSize: 32, heldOutRows: 10 };

describe('server: amortised SHAP (training jobs, serving, fallback)', function () {
  this.timeout(600_000);
  let tmp: string;
  let modelDir: string;
  let dataDir: string;
  let repo: ModelRepository;
  let runner: LocalJobRunner;
  let app: App;
  let validate: (pointer: string, value: unknown) => string | undefined;

  const build = async (jobsDir = path.join(tmp, 'jobs')) => {
    repo = await loadModelRepository(modelDir);
    runner = new LocalJobRunner({ dir: jobsDir, executor: inlineExecutor(repo), sync: false });
    await runner.start();
    app = createApp({ registry: repo, config: testConfig({ DATA_DIR: dataDir }), backend: 'wasm', jobRunner: runner });
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addFormat('binary', true);
    ajv.addSchema({ ...(app.openapi as object), $id: 'openapi' });
    validate = (pointer, value) => {
      const v = ajv.getSchema(`openapi#${pointer}`);
      if (!v) return `no schema at ${pointer}`;
      return v(value) ? undefined : ajv.errorsText(v.errors, { separator: '\n' });
    };
  };
  /** The answer, checked against the OpenAPI document's schema for its route, status and JSON. */
  const checked = (res: request.Response, route: string, method = 'get') => {
    const esc = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
    const problem = validate(`/paths/${esc(route)}/${method}/responses/${res.status}/content/application~1json/schema`, res.body);
    assert.equal(problem, undefined, `${method} ${route} ${res.status}: ${problem}`);
    return res;
  };
  const rows = (name: string, from: number, n: number) => {
    const ref = repo.models.get(name)!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((from + i) * ref.d, (from + i + 1) * ref.d)));
  };
  const state = async (name: string) => checked(await request(app).get(`/v1/models/${name}/amortised`), '/v1/models/{name}/amortised').body;
  const explain = (name: string, body: object) => request(app).post(`/v1/models/${name}/explain`).send(body);
  const train = async (name: string, body: object) => {
    const res = await request(app).post(`/v1/models/${name}/amortised`).send(body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    checked(res, '/v1/models/{name}/amortised', 'post');
    return res.body as JobView;
  };

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-rest-'));
    modelDir = path.join(tmp, 'models');
    dataDir = path.join(tmp, 'data');
    await writeHeldOutMlp(modelDir, 'mlp', { seed: 11, features: 8, hidden: [16], rows: 300, epochs: 10 });
    await cp(path.join(SAMPLES, 'linear'), path.join(modelDir, 'linear'), { recursive: true });
    await cp(path.join(SAMPLES, 'shapes'), path.join(modelDir, 'shapes'), { recursive: true });
    await build();
  });
  after(async () => {
    await runner?.stop();
    disposeAmortised();
    await rm(tmp, { recursive: true, force: true });
  });

  it('before training: state none, and amortised-shap falls back to Kernel SHAP and says so (or 409 without fallback)', async () => {
    const s = await state('mlp');
    assert.equal(s.state, 'none');
    assert.equal(s.servable, false);
    assert.match(s.reason, /POST \/v1\/models\/mlp\/amortised/);
    const res = checked(await explain('mlp', { instances: rows('mlp', 0, 2), method: 'amortised-shap', parameters: { seed: 3 } }), '/v1/models/{name}/explain', 'post');
    assert.equal(res.status, 200);
    assert.equal(res.body.method, 'kernel-shap');
    assert.equal(res.body.fallback.requested, 'amortised-shap');
    assert.equal(res.body.fallback.reason, 'not-trained');
    assert.match(res.body.fallback.message, /answered by kernel-shap/);
    // The same numbers as asking Kernel SHAP with that seed directly.
    const ks = await explain('mlp', { instances: rows('mlp', 0, 2), method: 'kernel-shap', parameters: { seed: 3 } });
    assert.deepEqual(res.body.explanations.map((e: { outputs: unknown }) => e.outputs), ks.body.explanations.map((e: { outputs: unknown }) => e.outputs));
    const strict = await explain('mlp', { instances: rows('mlp', 0, 1), method: 'amortised-shap', parameters: { fallback: 'none' } });
    assert.equal(strict.status, 409);
    assert.equal(strict.body.error.code, 'AMORTISED_NOT_READY');
    const detail = checked(await request(app).get('/v1/models/mlp'), '/v1/models/{name}');
    assert.deepEqual(detail.body.amortised, { state: 'none', servable: false, threshold: 0.05, maxRatio: 3 });
    assert.ok(detail.body.methods.includes('amortised-shap'));
  });

  it('bad training requests get 400 with a stable code', async () => {
    const bad = async (name: string, body: unknown, code: string, pattern: RegExp) => {
      const res = await request(app).post(`/v1/models/${name}/amortised`).send(body as object);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, code);
      assert.match(res.body.error.message, pattern);
      checked(res, '/v1/models/{name}/amortised', 'post');
    };
    await bad('mlp', { parameters: { hidden: [0] } }, 'BAD_PARAMETER', /parameters\.hidden\.0/);
    await bad('mlp', { parameters: { epochs: 3 } }, 'BAD_PARAMETER', /epochs/);
    await bad('mlp', { parameters: { heldOutRows: 299 } }, 'BAD_PARAMETER', /heldOutRows must be at most 298/);
    await bad('mlp', { parameters: { sampler: 'uniform' } }, 'BAD_PARAMETER', /sampler/);
    await bad('mlp', { parameters: { synthesis: 'smote' } }, 'BAD_PARAMETER', /synthesis/);
    for (const ensemble of [0, 9, 1.5, '2']) await bad('mlp', { parameters: { ensemble } }, 'BAD_PARAMETER', /parameters\.ensemble/);
    for (const probeBudgetMs of [-1, 10_001, '1', null]) await bad('mlp', { parameters: { probeBudgetMs } }, 'BAD_PARAMETER', /parameters\.probeBudgetMs/);
    await bad('mlp', { parameters: { ensemble: 8, hidden: [1024, 1024] } }, 'BAD_PARAMETER', /ensemble 8 of hidden \[1024, 1024\] makes a merged network with 67,108,864 hidden-to-hidden weights/);
    await bad('mlp', { retrain: true }, 'INVALID_REQUEST', /retrain/);
    await bad('shapes', {}, 'METHOD_NOT_SUPPORTED', /tabular/);
    const res = await explain('mlp', { instances: rows('mlp', 0, 1), method: 'amortised-shap', parameters: { verify: 'yes' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'BAD_PARAMETER');
    // The training route's body limit is its own (64 KB): a larger body is 413 before it is parsed.
    const big = await request(app).post('/v1/models/mlp/amortised').send({ parameters: {}, padding: 'x'.repeat(80 * 1024) });
    assert.equal(big.status, 413, JSON.stringify(big.body));
    assert.equal(big.body.error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('trains as a job (202, progress, the same job while it runs) and serves once validated', async () => {
    const job = await train('mlp', { parameters: SMALL });
    assert.equal(job.method, 'amortised-training');
    const again = await train('mlp', { parameters: SMALL });
    assert.equal(again.id, job.id, 'a job already running for this version is answered again');
    let sawProgress = false;
    for (;;) {
      const j = checked(await request(app).get(`/v1/jobs/${job.id}`), '/v1/jobs/{id}').body as JobView;
      if (j.progress && j.progress.phase !== 'queued' && j.status === 'running') sawProgress = true;
      if (j.status !== 'queued' && j.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const done = checked(await request(app).get(`/v1/jobs/${job.id}`), '/v1/jobs/{id}').body as JobView;
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.ok(sawProgress, 'progress was visible while the job ran');
    assert.equal(done.progress!.phase, 'done');
    assert.equal(done.result!.validation.reference, 'exact');
    const s = await state('mlp');
    assert.equal(s.state, 'ready');
    assert.equal(s.explainer.id, done.result!.id);
    assert.equal(s.explainer.validation.rows, 10);
    assert.equal(s.explainer.players, 8);
    assert.ok(s.explainer.training.epochs >= 1);
    const v = s.explainer.validation;
    assert.equal(s.servable, v.amortised.meanRelative <= 0.05 || (v.ratioToShapKernelExplainer !== undefined && v.ratioToShapKernelExplainer <= 3));
    const detail = checked(await request(app).get('/v1/models/mlp'), '/v1/models/{name}');
    assert.equal(detail.body.amortised.state, 'ready');
    assert.equal(detail.body.amortised.validation.meanAbs, s.explainer.validation.amortised.meanAbs);
    // Stored: POST again answers 200 with the state instead of training again.
    const stored = await request(app).post('/v1/models/mlp/amortised').send({ parameters: SMALL });
    assert.equal(stored.status, 200);
    checked(stored, '/v1/models/{name}/amortised', 'post');
    assert.equal(stored.body.state, 'ready');
    const report = await request(app).get('/v1/models/mlp/report').buffer(true).parse(asText);
    assert.equal(report.status, 200);
    assert.match(report.body as string, /Amortised SHAP/);
    assert.match(report.body as string, /on 10 held-out reference rows/);
    // Results, summary and report of a training job say what it is rather than "not ready".
    const summary = await request(app).get(`/v1/jobs/${job.id}/summary.svg`).buffer(true).parse(asText);
    assert.equal(summary.status, 400);
    assert.match(summary.body as string, /trains the amortised explainer/);
  });

  it('amortised-shap answers in Kernel SHAP terms: stopReason amortised, the validated error, exact efficiency, cached, verify, charts', async () => {
    const s = await state('mlp');
    // The threshold is a deployment setting: this small explainer is served whatever its error here.
    if (!s.servable) {
      app = createApp({ registry: repo, config: testConfig({ DATA_DIR: dataDir, AMORTISED_THRESHOLD: '1' }), backend: 'wasm', jobRunner: runner });
    }
    const instances = rows('mlp', 0, 5);
    const res = checked(await explain('mlp', { instances, method: 'amortised-shap' }), '/v1/models/{name}/explain', 'post');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.method, 'amortised-shap');
    assert.equal(res.body.fallback, undefined);
    assert.equal(res.headers['x-cache'], 'MISS');
    const m = repo.models.get('mlp')!;
    const fx = await m.model.predict({ data: Float32Array.from(instances.flat()), n: 5, d: 8 });
    const fb = await m.model.predict(m.background!);
    const K = m.model.nOutputs;
    res.body.explanations.forEach((inst: { stopReason: string; converged: boolean; outputs: { outputIndex: number; instanceOutputValue: number; baselineOutputValue: number; approximationError: number; attributions: { attribution: number }[] }[] }, i: number) => {
      assert.equal(inst.stopReason, 'amortised');
      assert.equal(inst.converged, true);
      for (const o of inst.outputs) {
        assert.equal(o.approximationError, s.explainer.validation.amortisedPerOutput[o.outputIndex].meanAbs);
        assert.equal(o.instanceOutputValue, fx[i * K + o.outputIndex]);
        let mean = 0;
        for (let b = 0; b < m.background!.n; b++) mean += fb[b * K + o.outputIndex] / m.background!.n;
        assert.ok(Math.abs(o.baselineOutputValue - mean) < 1e-9);
        const sum = o.attributions.reduce((a, x) => a + x.attribution, 0);
        assert.ok(Math.abs(sum - (o.instanceOutputValue - o.baselineOutputValue)) < 1e-9, `efficiency: ${sum}`);
      }
    });
    const again = await explain('mlp', { instances, method: 'amortised-shap' });
    assert.equal(again.headers['x-cache'], 'HIT');
    assert.deepEqual(again.body.explanations, res.body.explanations);
    const verified = await explain('mlp', { instances: instances.slice(0, 1), method: 'amortised-shap', outputs: 'all', parameters: { verify: true } });
    const v = verified.body.explanations[0].diagnostics.verify;
    assert.equal(v.method, 'kernel-shap');
    assert.equal(v.outputs.length, 3);
    assert.ok(v.outputs[0].maxAbsDifference >= 0);
    const svg = await request(app).post('/v1/models/mlp/explain').set('Accept', 'image/svg+xml').send({ instances: instances.slice(0, 1), method: 'amortised-shap' }).buffer(true).parse(asText);
    assert.equal(svg.status, 200);
    assert.match(svg.body as string, /E\[f\(X\)\]/);
    const url = await request(app).get('/v1/models/mlp/explain.json?method=amortised-shap&f0=1');
    assert.equal(url.status, 200, JSON.stringify(url.body));
    assert.equal(url.body.method, 'amortised-shap');
  });

  it('above the threshold (and the ratio off) it is not served: Kernel SHAP answers, saying why', async () => {
    const strict = createApp({ registry: repo, config: testConfig({ DATA_DIR: dataDir, AMORTISED_THRESHOLD: '0', AMORTISED_MAX_RATIO: '0' }), backend: 'wasm', jobRunner: runner });
    const s = checked(await request(strict).get('/v1/models/mlp/amortised'), '/v1/models/{name}/amortised').body;
    assert.equal(s.state, 'ready');
    assert.equal(s.servable, false);
    assert.equal(s.threshold, 0);
    assert.equal(s.maxRatio, 0);
    assert.match(s.reason, /above the threshold of 0\.00% \(AMORTISED_THRESHOLD\)/);
    const res = await request(strict).post('/v1/models/mlp/explain').send({ instances: rows('mlp', 0, 1), method: 'amortised-shap' });
    assert.equal(res.status, 200);
    assert.equal(res.body.method, 'kernel-shap');
    assert.equal(res.body.fallback.reason, 'above-threshold');
    // A bad AMORTISED_MAX_RATIO is refused when the config is read.
    assert.throws(() => testConfig({ AMORTISED_MAX_RATIO: '-1' }), /AMORTISED_MAX_RATIO/);
  });

  it('a job over the reference set runs with it, one forward pass per chunk', async () => {
    const res = await request(app).post('/v1/jobs').send({ model: 'mlp', method: 'amortised-shap', dataset: 'reference' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const done = await runner.waitFor(res.body.id, 120_000);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.rowsDone, 300);
    const lines = ((await request(app).get(`/v1/jobs/${res.body.id}/results`).buffer(true).parse(asText)).body as string).trim().split('\n');
    assert.equal(lines.length, 300);
    for (const l of lines.slice(0, 20)) assert.equal(JSON.parse(l).stopReason, 'amortised');
    assert.equal((await request(app).get(`/v1/jobs/${res.body.id}/summary.svg`)).status, 200);
  });

  it('linear sample over REST: the closed form w_i (x_i - mean_i) on unseen rows', async () => {
    const job = await train('linear', { parameters: { syntheticRows: 200, hidden: [16], maxEpochs: 80, patience: 10, batchSize: 32, heldOutRows: 20 } });
    const done = await runner.waitFor(job.id, 300_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const m = repo.models.get('linear')!;
    const w = (m.metadata!.notes as { w: number[] }).w;
    const bg = m.background!;
    const d = bg.d;
    const mean = Array.from({ length: d }, (_, c) => Array.from({ length: bg.n }, (_, b) => bg.data[b * d + c]).reduce((a, x) => a + x, 0) / bg.n);
    const instances = rows('linear', 450, 20);
    const res = await explain('linear', { instances, method: 'amortised-shap' });
    assert.equal(res.body.method, 'amortised-shap', JSON.stringify(res.body.fallback));
    res.body.explanations.forEach((inst: { outputs: { attributions: { attribution: number }[] }[] }, i: number) => {
      const truth = w.map((wc, c) => wc * (instances[i][c] - mean[c]));
      const range = Math.max(...truth) - Math.min(...truth);
      inst.outputs[0].attributions.forEach((a, c) => assert.ok(Math.abs(a.attribution - truth[c]) < 0.01 * range, `row ${i} feature ${c}: ${a.attribution} vs ${truth[c]}`));
    });
  });

  it('a new model version makes the explainer stale: explanations fall back until it is retrained', async () => {
    const trainedId = (await state('mlp')).explainer.id;
    const meta = path.join(modelDir, 'mlp', 'metadata.json');
    const original = await readFile(meta, 'utf8');
    await writeFile(meta, JSON.stringify({ ...JSON.parse(original), description: 'retrained (new version)' }));
    await runner.stop();
    await build();
    const s = await state('mlp');
    assert.equal(s.state, 'stale');
    assert.equal(s.servable, false);
    assert.equal(s.otherVersions.length, 1);
    const res = checked(await explain('mlp', { instances: rows('mlp', 0, 1), method: 'amortised-shap' }), '/v1/models/{name}/explain', 'post');
    assert.equal(res.body.method, 'kernel-shap');
    assert.equal(res.body.fallback.reason, 'stale');
    assert.equal((await request(app).get('/v1/models/mlp')).body.amortised.state, 'stale');
    // Retrained for the new version: served again, by a new explainer.
    const job = await train('mlp', { parameters: SMALL });
    assert.equal((await runner.waitFor(job.id, 300_000)).status, 'succeeded');
    const after = await state('mlp');
    assert.equal(after.state, 'ready');
    assert.notEqual(after.explainer.id, trainedId);
  });

  it('DELETE /v1/jobs/:id cancels a training job; one stopped by a restart resumes to the same explainer', async () => {
    const long = { ...SMALL, maxEpochs: 5000, patience: 500, seed: 2 };
    const job = await train('mlp', { parameters: long, force: true });
    for (;;) {
      const j = (await request(app).get(`/v1/jobs/${job.id}`)).body as JobView;
      if (j.progress?.phase === 'training') break;
      assert.ok(j.status === 'queued' || j.status === 'running', JSON.stringify(j));
      await new Promise((r) => setTimeout(r, 50));
    }
    const cancelled = checked(await request(app).delete(`/v1/jobs/${job.id}`), '/v1/jobs/{id}', 'delete');
    assert.equal(cancelled.body.status, 'cancelled');
    assert.equal((await state('mlp')).job.status, 'cancelled');

    // Uninterrupted, with a second runner's folder and data (the same model version).
    const settings = { ...SMALL, seed: 4, maxEpochs: 150, patience: 150 };
    const straight = await train('mlp', { parameters: settings, force: true });
    assert.equal((await runner.waitFor(straight.id, 300_000)).status, 'succeeded');
    const straightId = (await state('mlp')).explainer.id;
    // The same again, stopped by a restart of the service while training, then resumed.
    const resumed = await train('mlp', { parameters: settings, force: true });
    for (;;) {
      const j = (await request(app).get(`/v1/jobs/${resumed.id}`)).body as JobView;
      if (j.progress?.phase === 'training' && (j.progress.epoch ?? 0) >= 3) break;
      assert.notEqual(j.status, 'succeeded', 'the job ended before the restart');
      await new Promise((r) => setTimeout(r, 20));
    }
    await runner.stop();
    assert.equal((await runner.get(resumed.id))!.status, 'running', 'a stopped job stays running, to resume');
    await build();
    const end = await runner.waitFor(resumed.id, 300_000);
    assert.equal(end.status, 'succeeded', JSON.stringify(end.error));
    assert.equal(end.result!.id, straightId, 'the resumed run stored the same explainer as the uninterrupted one');
    assert.ok((await state('mlp')).explainer.training.resumedFromEpoch >= 3, 'it resumed from its checkpoint, not from scratch');
  });

  it('parameters.ensemble: 2 trains two networks and stores them as one, its hidden widths doubled', async () => {
    const job = await train('mlp', { parameters: { ...SMALL, ensemble: 2 }, force: true });
    const members = new Set<number>();
    for (;;) {
      const j = checked(await request(app).get(`/v1/jobs/${job.id}`), '/v1/jobs/{id}').body as JobView;
      if (j.progress?.phase === 'training') {
        assert.equal(j.progress.members, 2);
        members.add(j.progress.member!);
      }
      if (j.status !== 'queued' && j.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const done = checked(await request(app).get(`/v1/jobs/${job.id}`), '/v1/jobs/{id}').body as JobView;
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const s = await state('mlp');
    assert.equal(s.explainer.id, done.result!.id);
    assert.deepEqual(s.explainer.network.hidden, [32]);
    assert.deepEqual(s.explainer.hyperparameters.hidden, [16]);
    assert.equal(s.explainer.hyperparameters.ensemble, 2);
    assert.equal(s.explainer.training.ensemble, 2);
    assert.equal(s.explainer.training.members.length, 2);
    assert.ok(s.explainer.training.ensembleValidationLoss > 0);
    for (const m of members) assert.ok(m === 0 || m === 1, `member ${m}`);
    // Served (whatever its error: the threshold is a deployment setting) through the unchanged loader.
    const lenient = createApp({ registry: repo, config: testConfig({ DATA_DIR: dataDir, AMORTISED_THRESHOLD: '1' }), backend: 'wasm', jobRunner: runner });
    const res = checked(
      await request(lenient).post('/v1/models/mlp/explain').send({ instances: rows('mlp', 0, 2), method: 'amortised-shap', parameters: { fallback: 'none' } }),
      '/v1/models/{name}/explain',
      'post',
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.method, 'amortised-shap');
  });
});
