/**
 * Every route of a model answers for the version the request pins (server/route.ts resolves it once
 * for all of them), on worker threads that find versions by content hash. The oracle for "the pinned
 * version answered" is a service that serves only that version: the pinned answer must equal its
 * answer, and the two versions' answers must differ (so a route that ignored the pin would fail).
 * Versions carry planted differences: the linear model's weights (one flipped, one tripled), the credit
 * model's weights (perturbed), the text model's tokenizer (two words swap ids; the mask token is
 * another) and the image model's metadata gradCamLayer; so what loads with a version folder
 * (tokenizer, metadata) is checked too. Also: effects' partial dependence slopes against the planted
 * weights, the live window per version, a job pinned to a version, 404/400 for bad pins, and the
 * OpenAPI document's ?version= on every pinning route.
 */
import { strict as assert } from 'node:assert';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { poolExecutor, type Executor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';
import { linearVersion, linearWeights, perturbedCopy, SAMPLES } from './helpers/versions.js';

/** The body without what differs between two computations of the same answer (times, cache state). */
function stable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stable);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        // referenceEvaluations: the one-time build of a model's counterfactual reference (0 once built).
        .filter(([k]) => !/(Ms|At)$/.test(k) && k !== 'cached' && k !== 'referenceEvaluations')
        .map(([k, x]) => [k, stable(x)]),
    );
  }
  return v;
}

const LINEAR = ['x1_std_normal', 'x2_hundreds', 'x3_small', 'x4_uniform', 'x5_binary', 'x6_count'];
const CREDIT_ROW = [27, 77300, 0.278, 4, 0, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6];

describe('versions: every route of a model answers for the pinned version', function () {
  this.timeout(300_000);
  let dir: string;
  let app: App;
  let executor: Executor;
  let runner: LocalJobRunner;
  /** Services that serve only version 1, only version 2 (inline): the oracles. */
  const only: Record<'1' | '2', App> = {} as Record<'1' | '2', App>;
  const hash: Record<string, Record<'1' | '2', string>> = {};
  let w: Record<'1' | '2', { w: number[]; b: number }>;
  let vocab2: string[];

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    dir = await mkdtemp(path.join(os.tmpdir(), 'versions-routes-'));
    const v = (name: string, label: string) => path.join(dir, 'repo', name, 'versions', label);
    for (const name of ['linear', 'credit', 'text', 'shapes']) await mkdir(path.join(dir, 'repo', name, 'versions'), { recursive: true });
    await cp(path.join(SAMPLES, 'linear'), v('linear', '1'), { recursive: true });
    await linearVersion(v('linear', '2'), (ws, b) => ({ w: ws.map((x, j) => (j === 0 ? -x : j === 3 ? 3 * x : x)), b: b + 1 }));
    w = { '1': await linearWeights(v('linear', '1')), '2': await linearWeights(v('linear', '2')) };
    await cp(path.join(SAMPLES, 'credit'), v('credit', '1'), { recursive: true });
    await perturbedCopy('credit', v('credit', '2'), 0.4, 7);
    // Text version 2: "superb" and "film" swap ids, and token masking uses [UNK] instead of [MASK].
    await cp(path.join(SAMPLES, 'text'), v('text', '1'), { recursive: true });
    await cp(path.join(SAMPLES, 'text'), v('text', '2'), { recursive: true });
    const tok = JSON.parse(await readFile(path.join(v('text', '2'), 'tokenizer.json'), 'utf8'));
    const [i, j] = [tok.vocabulary.indexOf('superb'), tok.vocabulary.indexOf('film')];
    assert.ok(i > 0 && j > 0);
    [tok.vocabulary[i], tok.vocabulary[j]] = [tok.vocabulary[j], tok.vocabulary[i]];
    tok.mask = '[UNK]';
    vocab2 = tok.vocabulary;
    await writeFile(path.join(v('text', '2'), 'tokenizer.json'), JSON.stringify(tok));
    // Image version 2: Grad-CAM's default layer from metadata (the sample takes the last feature map, conv_2).
    await cp(path.join(SAMPLES, 'shapes'), v('shapes', '1'), { recursive: true });
    await cp(path.join(SAMPLES, 'shapes'), v('shapes', '2'), { recursive: true });
    const meta = JSON.parse(await readFile(path.join(v('shapes', '2'), 'metadata.json'), 'utf8'));
    await writeFile(path.join(v('shapes', '2'), 'metadata.json'), JSON.stringify({ ...meta, gradCamLayer: 'conv_1' }));
    // The oracles: each version alone, as a plain model folder (the same files, so the same content hash).
    for (const label of ['1', '2'] as const) {
      for (const name of ['linear', 'credit', 'text', 'shapes']) await cp(v(name, label), path.join(dir, `only-${label}`, name), { recursive: true });
      const repo = await loadModelRepository(path.join(dir, `only-${label}`));
      assert.deepEqual(repo.errors, []);
      for (const [name, m] of repo.models) (hash[name] ??= {} as Record<'1' | '2', string>)[label] = m.version;
      only[label] = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    }
    const repo = await loadModelRepository(path.join(dir, 'repo'));
    assert.deepEqual(repo.errors, []);
    for (const name of ['linear', 'credit', 'text', 'shapes']) assert.equal(repo.models.get(name)!.version, hash[name]['2'], `${name}: 2 is the default`);
    // Worker threads, as the server runs them: every version preloaded per thread.
    executor = poolExecutor({ modelDir: path.join(dir, 'repo'), threads: 1, preload: true });
    runner = new LocalJobRunner({ dir: path.join(dir, 'jobs'), executor, sync: false });
    await runner.start();
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', executor, jobRunner: runner });
  });
  after(async () => {
    await runner?.stop();
    await executor?.close();
    await rm(dir, { recursive: true, force: true });
  });

  type Call = { method: 'get' | 'post'; url: string; body?: Record<string, unknown> };
  const send = (a: App, c: Call) => (c.method === 'get' ? request(a).get(c.url) : request(a).post(c.url).send(c.body ?? {}));

  /** Pinned on the two-version service (by `pin`) vs the one-version oracle; the versions' answers differ. */
  async function samePinned(label: '1' | '2', pinned: Call, plain: Call, differs = true): Promise<any> {
    const got = await send(app, pinned);
    assert.equal(got.status, 200, `${pinned.url}: ${JSON.stringify(got.body).slice(0, 400)}`);
    const want = await send(only[label], plain);
    assert.equal(want.status, 200, JSON.stringify(want.body).slice(0, 400));
    assert.deepEqual(stable(got.body), stable(want.body), `${pinned.url} pinned to ${label}`);
    if (differs) {
      const other = await send(only[label === '1' ? '2' : '1'], plain);
      assert.equal(other.status, 200);
      assert.notDeepEqual(stable(other.body), stable(want.body), `${plain.url}: the two versions answer alike, so this check could not fail`);
    }
    return got.body;
  }

  it('effects (POST and the chart URL): the pinned version, with partial dependence slopes equal to its weights', async () => {
    const body = { kind: 'pd', features: LINEAR, parameters: { resolution: 5 } };
    for (const label of ['1', '2'] as const) {
      const got = await samePinned(
        label,
        { method: 'post', url: '/v1/models/linear/effects', body: { ...body, version: label } },
        { method: 'post', url: '/v1/models/linear/effects', body },
      );
      assert.equal(got.model.version, hash.linear[label]);
      // f linear: PD_j(z) = w_j z + const, so the slope between grid points is w_j of that version.
      got.effects.forEach((e: { grid: number[]; values: number[] }, j: number) => {
        const k = e.grid.length - 1;
        const slope = (e.values[k] - e.values[0]) / (e.grid[k] - e.grid[0]);
        assert.ok(Math.abs(slope - w[label].w[j]) <= 1e-3 * Math.max(1, Math.abs(w[label].w[j])), `${LINEAR[j]} v${label}: ${slope} vs ${w[label].w[j]}`);
      });
    }
    await samePinned(
      '1',
      { method: 'get', url: `/v1/models/linear/effects.json?feature=x1_std_normal&version=${hash.linear['1']}` },
      { method: 'get', url: '/v1/models/linear/effects.json?feature=x1_std_normal' },
    );
  });

  it('counterfactuals (POST and the chart URL), importance, fairness and drift: the pinned version', async () => {
    const cf = { instances: [CREDIT_ROW], parameters: { k: 1, maxEvaluations: 400 } };
    const found = await samePinned(
      '1',
      { method: 'post', url: '/v1/models/credit/counterfactuals?version=1', body: cf },
      { method: 'post', url: '/v1/models/credit/counterfactuals', body: cf },
    );
    assert.equal(found.model.version, hash.credit['1']);
    await samePinned(
      '2',
      { method: 'get', url: '/v1/models/credit/counterfactuals.json?income=30000&debt_ratio=0.6&late_payments=3&k=1&version=2' },
      { method: 'get', url: '/v1/models/credit/counterfactuals.json?income=30000&debt_ratio=0.6&late_payments=3&k=1' },
    );
    const importance = { repeats: 2, seed: 3 };
    await samePinned(
      '1',
      { method: 'post', url: '/v1/models/credit/importance', body: { ...importance, version: '1' } },
      { method: 'post', url: '/v1/models/credit/importance', body: importance },
    );
    const fairness = { bootstrap: { n: 0 }, attributions: false };
    await samePinned(
      '1',
      { method: 'post', url: `/v1/models/credit/fairness?version=${hash.credit['1']}`, body: fairness },
      { method: 'post', url: '/v1/models/credit/fairness', body: fairness },
    );
    const ref = (await readFile(path.join(SAMPLES, 'credit', 'reference.csv'), 'utf8')).trim().split('\n').slice(1, 81);
    const current = ref.map((l) => l.split(',').slice(0, 14).map(Number));
    const drift = { current, attributions: false };
    await samePinned(
      '1',
      { method: 'post', url: '/v1/models/credit/drift', body: { ...drift, version: '1' } },
      { method: 'post', url: '/v1/models/credit/drift', body: drift },
    );
  });

  it('text explain: the version folder brings its tokenizer (ids of the words, the mask token on the worker thread)', async () => {
    const body = { instances: ['a superb film'], method: 'partition-shap', outputs: [1] };
    for (const label of ['1', '2'] as const) {
      const got = await samePinned(
        label,
        { method: 'post', url: '/v1/models/text/explain', body: { ...body, version: label } },
        { method: 'post', url: '/v1/models/text/explain', body },
      );
      const byWord = Object.fromEntries(got.explanations[0].outputs[0].attributions.map((a: { feature: string; value: number }) => [a.feature, a.value]));
      if (label === '2') assert.equal(byWord.superb, vocab2.indexOf('superb'));
      else assert.notEqual(byWord.superb, vocab2.indexOf('superb'));
    }
    await samePinned(
      '1',
      { method: 'get', url: '/v1/models/text/explain.json?text=a%20superb%20film&method=partition-shap&outputs=1&version=1' },
      { method: 'get', url: '/v1/models/text/explain.json?text=a%20superb%20film&method=partition-shap&outputs=1' },
    );
  });

  it("image explain: the version folder brings its metadata (Grad-CAM's default layer)", async () => {
    const ref = (await readFile(path.join(SAMPLES, 'shapes', 'reference.csv'), 'utf8')).trim().split('\n')[1].split(',').map(Number);
    const image = Array.from({ length: 16 }, (_, y) => Array.from({ length: 16 }, (_, x) => [ref[y * 16 + x]]));
    const body = { instances: [image], method: 'grad-cam', outputs: [0] };
    const layers: Record<string, string> = {};
    for (const label of ['1', '2'] as const) {
      const got = await samePinned(
        label,
        { method: 'post', url: `/v1/models/shapes/explain?version=${label}`, body },
        { method: 'post', url: '/v1/models/shapes/explain', body },
      );
      layers[label] = got.explanations[0].diagnostics.layer;
    }
    assert.deepEqual(layers, { '1': 'conv_2', '2': 'conv_1' });
  });

  it('live drift: each version has its own window, of POST traffic only', async () => {
    const ref = (await readFile(path.join(SAMPLES, 'credit', 'reference.csv'), 'utf8')).trim().split('\n').slice(1, 61);
    const rows = ref.map((l) => l.split(',').slice(0, 14).map(Number));
    const predicted = await request(app).post('/v1/models/credit/predict').send({ instances: rows, version: '1' });
    assert.equal(predicted.status, 200);
    // A chart URL of version 1 is a view, not traffic.
    assert.equal((await request(app).get('/v1/models/credit/explain.json?income=30000&nSamples=64&version=1')).status, 200);
    const v1 = await request(app).get('/v1/models/credit/drift/live?attributions=false&version=1');
    assert.equal(v1.status, 200, JSON.stringify(v1.body).slice(0, 300));
    assert.equal(v1.body.model.version, hash.credit['1']);
    assert.equal(v1.body.current.totalSeen, 60);
    const v2 = await request(app).get('/v1/models/credit/drift/live?attributions=false');
    assert.equal(v2.status, 409);
    assert.equal(v2.body.error.code, 'NO_LIVE_DATA');
  });

  it('a job pinned to a version runs that version (worker threads find it by content hash)', async () => {
    const rows = [
      [0.5, 480, 0.011, 2.5, 1, 3],
      [-1.2, 610, 0.009, 7.5, 0, 1],
    ];
    const submitted = await request(app).post('/v1/jobs').send({ model: 'linear', version: '1', method: 'integrated-gradients', instances: rows });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    await runner.waitFor(submitted.body.id);
    const job = await request(app).get(`/v1/jobs/${submitted.body.id}`);
    assert.equal(job.body.status, 'succeeded', JSON.stringify(job.body));
    assert.equal(job.body.version, hash.linear['1']);
    const lines = (await request(app).get(`/v1/jobs/${submitted.body.id}/results`)).text.trim().split('\n').map((l) => JSON.parse(l));
    const want = await request(only['1']).post('/v1/models/linear/explain').send({ instances: rows, method: 'integrated-gradients' });
    lines.forEach((line: any, i: number) => {
      const got = line.outputs[0].attributions.map((a: { attribution: number }) => a.attribution);
      const exp = want.body.explanations[i].outputs[0].attributions.map((a: { attribution: number }) => a.attribution);
      got.forEach((x: number, j: number) => assert.ok(Math.abs(x - exp[j]) <= 1e-6 * Math.max(1, Math.abs(exp[j])), `row ${i} feature ${j}`));
    });
  });

  it('an unknown version is 404 on every route, a malformed one 400; versions/compare names its own', async () => {
    for (const [what, res] of [
      ['effects', await request(app).post('/v1/models/linear/effects').send({ kind: 'pd', features: ['x1_std_normal'], version: 'nine' })],
      ['counterfactuals chart', await request(app).get('/v1/models/credit/counterfactuals.json?income=30000&version=nine')],
      ['fairness', await request(app).post('/v1/models/credit/fairness?version=nine').send({})],
      ['drift/live', await request(app).get('/v1/models/credit/drift/live?version=nine')],
      ['report', await request(app).get('/v1/models/credit/report?version=nine')],
      ['job', await request(app).post('/v1/jobs').send({ model: 'linear', version: 'nine', instances: [[1, 2, 3, 4, 5, 6]] })],
    ] as const) {
      assert.equal(res.status, 404, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'VERSION_NOT_FOUND', what);
      assert.match(res.body.error.message, /served versions: 2, 1/, what);
    }
    const typed = await request(app).post('/v1/models/linear/effects').send({ kind: 'pd', features: ['x1_std_normal'], version: 2 });
    assert.equal(typed.status, 400);
    assert.match(JSON.stringify(typed.body.error), /version/);
    const twice = await request(app).post('/v1/models/credit/drift?version=1').send({ current: [CREDIT_ROW], version: '2' });
    assert.equal(twice.status, 400);
    assert.equal(twice.body.error.code, 'BAD_PARAMETER');
    // versions/compare names its versions with from and to; ?version= is not a pin there (from answers).
    const compare = await request(app).get('/v1/models/linear/versions/compare?version=nine&from=nine');
    assert.equal(compare.status, 404);
    assert.match(compare.body.error.message, /^from: model "linear" has no version "nine"/);
  });

  it('the OpenAPI document lists ?version= and 410 on every route that pins, and only there', () => {
    const doc = app.openapi as unknown as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; responses: Record<string, unknown> }>> };
    const pinning: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const has = (op.parameters ?? []).some((x) => x.in === 'query' && x.name === 'version');
        const expected = (p.startsWith('/v1/models/{name}') && !p.endsWith('/versions/compare')) || (p === '/v1/jobs' && method === 'post');
        assert.equal(has, expected, `${method} ${p}`);
        if (has) {
          assert.ok(op.responses['410'], `${method} ${p}: 410`);
          pinning.push(`${method} ${p}`);
        }
      }
    }
    assert.ok(pinning.length >= 15, pinning.join(', '));
  });
});
