/**
 * POST /v1/models/:name/effects and its GET chart URL, on tfjs models written at test time into a
 * temporary MODEL_DIR (so not the repository's samples), held to oracles that do not come from our
 * code: a linear model's partial dependence and ALE move exactly by w_i per unit of x_i (its weights
 * are the test's own), ALE is centred to mean 0 over the data, partial dependence is the mean of the
 * ICE curves, and a model whose only interaction is between x0 and x1 names x1 as x0's interacting
 * feature in a dependence chart that parses as SVG. Bad requests get 4xx with stable codes.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { JSDOM } from 'jsdom';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { normal, seededRng } from '../stats/random.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';
import { writeModelFolder } from './helpers/modelFolder.js';

/** Linear model: y_o = sum_i W[i][o] x_i + b_o, two outputs, features on very different scales. */
const W = [
  [2, -1],
  [0.05, 0.01],
  [-3, 0.5],
  [1.5, 4],
];
const B = [1, -2];
const LINEAR_FEATURES = [
  { name: 'x0', type: 'numeric' },
  { name: 'x1', type: 'numeric' },
  { name: 'x2', type: 'integer' },
  { name: 'x3', type: 'binary' },
];

function linearRows(n: number, seed: number): number[][] {
  const rng = seededRng(seed);
  return Array.from({ length: n }, () => [
    Math.round(normal(rng) * 1000) / 1000,
    Math.round((100 + 20 * normal(rng)) * 10) / 10,
    Math.floor(rng() * 6),
    rng() < 0.3 ? 1 : 0,
  ]);
}

/** A random ReLU MLP (4 -> 8 -> 2), weights from a seeded generator. */
function mlpLayers(seed: number) {
  const rng = seededRng(seed);
  const m = (r: number, c: number) => Array.from({ length: r }, () => Array.from({ length: c }, () => normal(rng) * 0.7));
  return [
    { kernel: m(4, 8), bias: Array.from({ length: 8 }, () => normal(rng) * 0.1), activation: 'relu' as const },
    { kernel: m(8, 2), bias: [0, 0], activation: 'linear' as const },
  ];
}

/** f = relu(x0 + x1 - 1) + 0.5 x2: x0 and x1 interact, x2 is additive, x3 unused. */
const INTERACTION_LAYERS = [
  {
    kernel: [
      [1, 0, 0],
      [1, 0, 0],
      [0, 1, -1],
      [0, 0, 0],
    ],
    bias: [-1, 0, 0],
    activation: 'relu' as const,
  },
  { kernel: [[1], [0.5], [-0.5]], bias: [0], activation: 'linear' as const },
];

const uniformRows = (n: number, seed: number) => {
  const rng = seededRng(seed);
  return Array.from({ length: n }, () => Array.from({ length: 4 }, () => Math.round(rng() * 1000) / 1000));
};

function parsesAsSvg(text: string): Document {
  const doc = new new JSDOM('').window.DOMParser().parseFromString(text, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, 'SVG parses as XML');
  assert.equal(doc.documentElement.tagName, 'svg');
  return doc;
}

function expectError(res: request.Response, status: number, code: string, pattern?: RegExp) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error.code, code, JSON.stringify(res.body));
  if (pattern) assert.match(res.body.error.message, pattern);
}

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

describe('server: global effects over REST on models in a temporary MODEL_DIR', function () {
  this.timeout(120_000);
  let dir: string;
  let repo: ModelRepository;
  let app: App;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    dir = await mkdtemp(path.join(os.tmpdir(), 'effects-models-'));
    const rows = linearRows(500, 7);
    await writeModelFolder(dir, 'lin', {
      layers: [{ kernel: W, bias: B, activation: 'linear' }],
      metadata: { task: 'regression', features: LINEAR_FEATURES, outputs: [{ name: 'u' }, { name: 'v' }] },
      rows,
      labels: rows.map(() => 0),
    });
    const features = ['x0', 'x1', 'x2', 'x3'].map((name) => ({ name, type: 'numeric' }));
    await writeModelFolder(dir, 'mlp', {
      layers: mlpLayers(3),
      metadata: { task: 'regression', features, outputs: [{ name: 'p' }, { name: 'q' }] },
      rows: uniformRows(300, 11),
      labels: Array(300).fill(0),
    });
    await writeModelFolder(dir, 'hinge', {
      layers: INTERACTION_LAYERS,
      metadata: { task: 'regression', features, outputs: [{ name: 'f' }] },
      rows: uniformRows(300, 13),
      labels: Array(300).fill(0),
    });
    repo = await loadModelRepository(dir);
    assert.deepEqual(repo.errors, []);
    app = createApp({ registry: repo, config: testConfig({ MODEL_DIR: dir }), backend: 'wasm' });
  });
  after(async () => {
    for (const m of repo?.models.values() ?? []) m.model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('partial dependence of the linear model moves by w_i per unit of x_i, per output, in the documented shape', async () => {
    const res = await request(app)
      .post('/v1/models/lin/effects')
      .send({ kind: 'pd', features: ['x0', 'x1', 'x2', 'x3'] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.model, { name: 'lin', version: repo.models.get('lin')!.version });
    assert.equal(res.body.kind, 'pd');
    assert.equal(res.body.cached, false);
    assert.equal(res.body.rows, 500);
    assert.equal(res.body.effects.length, 8);
    for (const e of res.body.effects) {
      for (const key of ['feature', 'output', 'grid', 'values']) assert.ok(key in e, `${key} missing`);
      const i = LINEAR_FEATURES.findIndex((f) => f.name === e.feature);
      const w = W[i][e.outputIndex];
      assert.equal(e.output, ['u', 'v'][e.outputIndex]);
      assert.equal(e.grid.length, e.values.length);
      assert.ok(e.grid.length >= 2);
      e.grid.forEach((z: number, k: number) =>
        close(
          e.values[k] - e.values[0],
          w * (z - e.grid[0]),
          1e-4 * (1 + Math.abs(w * (z - e.grid[0]))),
          `${e.feature}/${e.output} at ${z}`,
        ),
      );
    }
    // x3 is binary: evaluated at its two categories.
    assert.deepEqual(res.body.effects.find((e: { feature: string }) => e.feature === 'x3').grid, [0, 1]);
  });

  it('ALE of the linear model is w_i (x - c), centred to mean 0 over the data', async () => {
    const res = await request(app)
      .post('/v1/models/lin/effects')
      .send({ kind: 'ale', features: ['x0', 'x1', 'x2'], outputs: ['v'] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.effects.length, 3);
    for (const e of res.body.effects) {
      assert.equal(e.output, 'v');
      const w = W[LINEAR_FEATURES.findIndex((f) => f.name === e.feature)][1];
      e.grid.forEach((z: number, k: number) =>
        close(e.values[k] - e.values[0], w * (z - e.grid[0]), 1e-4 * (1 + Math.abs(w * (z - e.grid[0]))), `${e.feature} at ${z}`),
      );
      // Centred: the mean effect over the rows (per bin, at its midpoint) is 0.
      const n = e.counts.reduce((a: number, c: number) => a + c, 0);
      assert.equal(n, 500);
      const mean = e.counts.reduce((a: number, c: number, k: number) => a + (c * (e.values[k] + e.values[k + 1])) / 2, 0) / n;
      close(mean, 0, 1e-4, `${e.feature} centring`);
      assert.equal(e.intervals.length, e.counts.length);
    }
  });

  it('partial dependence equals the mean of the ICE curves (a ReLU MLP, rows sent in the request)', async () => {
    const data = uniformRows(120, 21);
    const body = { features: ['x0', 'x3'], data, outputs: 'all', parameters: { resolution: 12 } };
    const ice = await request(app)
      .post('/v1/models/mlp/effects')
      .send({ ...body, kind: 'ice' });
    const pd = await request(app)
      .post('/v1/models/mlp/effects')
      .send({ ...body, kind: 'pd' });
    assert.equal(ice.status, 200, JSON.stringify(ice.body));
    assert.equal(pd.status, 200, JSON.stringify(pd.body));
    assert.equal(ice.body.effects.length, 4);
    for (const [q, e] of ice.body.effects.entries()) {
      const p = pd.body.effects[q];
      assert.equal(p.feature, e.feature);
      assert.equal(p.output, e.output);
      assert.deepEqual(p.grid, e.grid);
      assert.equal(e.curves.length, 120);
      e.grid.forEach((_: number, k: number) => {
        const mean = e.curves.reduce((a: number, c: number[]) => a + c[k], 0) / e.curves.length;
        close(p.values[k], mean, 1e-5 * (1 + Math.abs(mean)), `${e.feature}/${e.output} at ${k}`);
        close(e.values[k], mean, 1e-5 * (1 + Math.abs(mean)), `ice mean ${k}`);
      });
      assert.deepEqual(e.rowIndices, [...Array(120).keys()]);
    }
    // Each curve is its row's prediction with the feature moved to the grid point (checked through /predict).
    const e = ice.body.effects[1];
    const moved = [5, 77].flatMap((i) => e.grid.map((z: number) => data[i].map((v, j) => (j === 0 ? z : v))));
    const predicted = await request(app).post('/v1/models/mlp/predict').send({ instances: moved });
    assert.equal(e.feature, 'x0');
    [5, 77].forEach((i, r) =>
      e.grid.forEach((_: number, k: number) =>
        close(e.curves[i][k], predicted.body.predictions[r * e.grid.length + k][e.outputIndex], 1e-5, `row ${i} at ${k}`),
      ),
    );
    const centred = await request(app)
      .post('/v1/models/mlp/effects')
      .send({ ...body, kind: 'ice', parameters: { resolution: 12, centered: true } });
    assert.equal(centred.status, 200);
    for (const e of centred.body.effects) for (const c of e.curves) assert.equal(c[0], 0);
  });

  it('the dependence chart is valid SVG and names x1 as the feature x0 interacts with', async () => {
    const res = await request(app)
      .post('/v1/models/hinge/effects')
      .send({ kind: 'dependence', features: ['x0', 'x2'], parameters: { maxRows: 150, seed: 2 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const [x0, x2] = res.body.effects;
    assert.equal(x0.interaction.feature, 'x1');
    assert.equal(x0.interactionScores[0].feature, 'x1');
    assert.equal(x0.points.values.length, 150);
    assert.ok(['x0', 'x1', 'x3'].includes(x2.interaction.feature));
    const svg = await request(app)
      .post('/v1/models/hinge/effects')
      .set('Accept', 'image/svg+xml')
      .send({ kind: 'dependence', features: ['x0', 'x2'], parameters: { maxRows: 150, seed: 2 } })
      .buffer(true)
      .parse(asText);
    assert.equal(svg.status, 200);
    assert.equal(svg.headers['x-cache'], 'HIT');
    const doc = parsesAsSvg(svg.body as string);
    assert.ok(
      [...doc.querySelectorAll('text')].some((t) => t.textContent === 'x1'),
      'the legend names x1',
    );
    // The GET chart URL draws the same chart.
    const get = await request(app)
      .get('/v1/models/hinge/effects.svg?feature=x0&kind=dependence&maxRows=150&seed=2')
      .buffer(true)
      .parse(asText);
    assert.equal(get.status, 200, String(get.body).slice(0, 300));
    assert.equal(get.body, svg.body);
    assert.match(String(get.headers['cache-control']), /max-age=/);
  });

  it('answers PNG, HTML and every GET extension; a second identical request is a cache hit', async () => {
    const body = { kind: 'ale', features: ['x0', ['x0', 'x1']], outputs: [0] };
    const png = await request(app).post('/v1/models/lin/effects?format=png').send(body);
    assert.equal(png.status, 200);
    assert.deepEqual([...png.body.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.equal(png.headers['x-cache'], 'MISS');
    const html = await request(app).post('/v1/models/lin/effects').set('Accept', 'text/html').send(body).buffer(true).parse(asText);
    assert.equal(html.status, 200);
    assert.equal(html.headers['x-cache'], 'HIT');
    assert.match(html.body as string, /Accumulated local effects of x0 × x1: u/);
    const heat = await request(app).post('/v1/models/lin/effects?format=svg&effect=1').send(body).buffer(true).parse(asText);
    parsesAsSvg(heat.body as string);
    const json = await request(app).get('/v1/models/lin/effects.json?feature=x1&kind=pd&outputs=v&resolution=5');
    assert.equal(json.status, 200);
    assert.equal(json.body.effects.length, 1);
    assert.equal(json.body.effects[0].grid.length, 5);
    const again = await request(app).get('/v1/models/lin/effects.json?feature=x1&kind=pd&outputs=v&resolution=5');
    assert.equal(again.body.cached, true);
    assert.deepEqual({ ...again.body, cached: false }, json.body);
    const other = await request(app).get('/v1/models/lin/effects.json?feature=x1&kind=pd&outputs=v&resolution=6');
    assert.equal(other.body.cached, false);
    const page = await request(app).get('/v1/models/lin/effects.html?feature=x2&feature2=x0').buffer(true).parse(asText);
    assert.equal(page.status, 200);
    assert.match(page.body as string, /Partial dependence of x2 × x0/);
  });

  it('rejects unknown features, empty data, bad outputs and parameters, and huge grids with 4xx', async () => {
    const post = (body: object) => request(app).post('/v1/models/lin/effects').send(body);
    expectError(await post({ kind: 'pd', features: ['x9'] }), 400, 'UNKNOWN_FEATURE', /x9.*x0, x1, x2, x3/);
    expectError(await post({ kind: 'pd', features: ['x0'], data: [] }), 400, 'EMPTY_DATA');
    expectError(await post({ kind: 'pd', features: [] }), 400, 'INVALID_REQUEST', /features/);
    expectError(await post({ kind: 'pdp', features: ['x0'] }), 400, 'INVALID_REQUEST', /kind/);
    expectError(await post({ kind: 'pd', features: ['x0'], data: [[1, 2, 3]] }), 400, 'BAD_INSTANCE', /data\[0\]/);
    expectError(await post({ kind: 'pd', features: ['x0'], outputs: ['w'] }), 400, 'UNKNOWN_OUTPUT', /u, v/);
    expectError(await post({ kind: 'pd', features: ['x0'], parameters: { bins: 5 } }), 400, 'BAD_PARAMETER', /bins/);
    expectError(await post({ kind: 'pd', features: ['x0'], parameters: { resolution: 'many' } }), 400, 'BAD_PARAMETER', /resolution/);
    expectError(await post({ kind: 'ice', features: [['x0', 'x1']] }), 400, 'BAD_FEATURE', /2-D/);
    expectError(await post({ kind: 'pd', features: ['x0'], grid: { x1: [1, 2] } }), 400, 'BAD_GRID', /x1/);
    // Huge grids: a resolution, a grid list, and a request whose cost is over the model-row limit.
    expectError(await post({ kind: 'pd', features: ['x0'], parameters: { resolution: 5000 } }), 400, 'GRID_TOO_LARGE', /256/);
    expectError(
      await post({ kind: 'pd', features: ['x0'], grid: { x0: Array.from({ length: 300 }, (_, i) => i) } }),
      400,
      'GRID_TOO_LARGE',
    );
    expectError(
      await post({ kind: 'pd', features: [['x0', 'x1']], parameters: { resolution: 256 }, data: linearRows(400, 1) }),
      400,
      'GRID_TOO_LARGE',
      /model rows/,
    );
    const svg = await request(app).get('/v1/models/lin/effects.svg?feature=nope').buffer(true).parse(asText);
    assert.equal(svg.status, 400);
    assert.equal(svg.type, 'image/svg+xml');
    parsesAsSvg(svg.body as string);
    expectError(await request(app).get('/v1/models/lin/effects.json'), 400, 'BAD_FEATURE', /feature is required/);
    expectError(await request(app).get('/v1/models/lin/effects.json?feature=x0&colour=red'), 400, 'BAD_PARAMETER', /"colour"/);
    expectError(await request(app).get('/v1/models/lin/effects.json?feature=x0&kind=pdp'), 400, 'BAD_PARAMETER', /kind/);
    expectError(
      await request(app)
        .post('/v1/models/lin/effects?format=svg&effect=3')
        .send({ kind: 'pd', features: ['x0'] }),
      400,
      'BAD_PARAMETER',
      /effect=3/,
    );
  });
});
