/**
 * Live drift counts real traffic only, and small samples flag nothing:
 * - rows of POST predict and POST explain enter the live window; GETs of permalinks (.json, .svg, ...)
 *   and of chart URLs (explain.svg?..., whose rows are partly the background's medians) never do;
 * - a drift report with fewer than MIN_DRIFT_ROWS rows on a side is low-confidence: statistics given,
 *   nothing flagged (two rows used to flag 8 of 9 cars features while KS said p = 1);
 * - PSI's small-sample treatment is additive smoothing of the bin shares, held to a hand computation.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import request from 'supertest';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { driftReport, MIN_DRIFT_ROWS, PSI_SMOOTHING } from '../monitoring/drift/index.js';
import { createApp } from '../server/app.js';
import { clearLive, liveWindow } from '../service/live.js';
import { populationStabilityIndex, smoothedPsiFromCounts } from '../stats/psi.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

describe('live drift: only real traffic, and small samples flag nothing', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let app: ReturnType<typeof createApp>;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
  });

  const seen = (name: string) => liveWindow(repo.models.get(name)!)?.totalSeen ?? 0;
  const carsRows = [
    [8, 454, 220, 4354, 9, 1970, 1, 0, 0],
    [4, 97, 88, 2130, 14.5, 1970, 0, 0, 1],
  ];

  it('POST predict and explain count; GETs of permalinks (every extension) and chart URLs do not', async () => {
    clearLive(repo.models.get('cars')!);
    const predicted = await request(app).post('/v1/models/cars/predict').send({ instances: carsRows });
    assert.equal(predicted.status, 200);
    assert.equal(seen('cars'), 2);
    const explained = await request(app).post('/v1/models/cars/explain').send({ instances: carsRows });
    assert.equal(explained.status, 200);
    assert.equal(seen('cars'), 4);
    for (const ext of ['json', 'svg', 'png', 'html']) {
      const res = await request(app).get(`/v1/explanations/${explained.body.id}.${ext}`);
      assert.equal(res.status, 200, `${ext}: ${res.status}`);
    }
    const chart = await request(app).get('/v1/models/cars/explain.svg?Horsepower=150');
    assert.equal(chart.status, 200);
    const chartJson = await request(app).get('/v1/models/cars/explain.json?Horsepower=150&Year=1975');
    assert.equal(chartJson.status, 200);
    // The chart URL's permalink, viewed again.
    assert.equal((await request(app).get(chartJson.body.links.json)).status, 200);
    assert.equal(seen('cars'), 4, 'views of stored explanations and chart URLs are not traffic');
  });

  it('POST /drift with 2 current rows is low-confidence: statistics given, nothing flagged, a note says why', async () => {
    const res = await request(app).post('/v1/models/cars/drift').send({ current: carsRows, attributions: false });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.summary.lowConfidence, true);
    assert.equal(res.body.summary.minimumRows, MIN_DRIFT_ROWS);
    assert.deepEqual(res.body.summary.drifted, []);
    assert.deepEqual(res.body.summary.warned, []);
    assert.deepEqual(res.body.flags, []);
    assert.ok(res.body.features.every((f: { drifted: boolean; status: string }) => !f.drifted && f.status === 'ok'));
    assert.ok(res.body.features.every((f: { psi: number }) => Number.isFinite(f.psi) && f.psi >= 0));
    assert.ok(res.body.notes.some((n: string) => /low confidence: 2 row\(s\)/.test(n)), JSON.stringify(res.body.notes));
    // The chart says so too.
    const svg = await request(app).post('/v1/models/cars/drift').set('accept', 'image/svg+xml').send({ current: carsRows, attributions: false });
    assert.equal(svg.status, 200);
    assert.match(String(svg.text ?? svg.body), /too few rows to flag drift/i);
  });

  it('the same shift is flagged from MIN_DRIFT_ROWS rows on, and not below', () => {
    const d = 2;
    const rng = (() => {
      let s = 7;
      return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    })();
    const rows = (n: number, shift: number): Rows => ({
      data: Float32Array.from({ length: n * d }, (_, i) => (i % d === 0 ? rng() + shift : rng())),
      n,
      d,
    });
    const reference = rows(1000, 0);
    const report = (n: number) => driftReport({ reference, current: rows(n, 0.6), featureNames: ['a', 'b'], outputNames: [] });
    const small = report(MIN_DRIFT_ROWS - 1);
    assert.equal(small.summary.lowConfidence, true);
    assert.deepEqual(small.summary.drifted, []);
    assert.ok(small.features[0].psi > 0.25, 'the statistic itself still shows the shift');
    const enough = report(MIN_DRIFT_ROWS);
    assert.equal(enough.summary.lowConfidence, false);
    assert.deepEqual(enough.summary.drifted, ['a']);
  });

  it('PSI smoothing: (count + 0.5) / (n + 0.5 B) on both sides, by hand', () => {
    // Reference counts (5, 5), current (0, 2): shares (1/2, 1/2) and (1/6, 5/6).
    const expected = (1 / 6 - 1 / 2) * Math.log(1 / 3) + (5 / 6 - 1 / 2) * Math.log(5 / 3);
    assert.ok(Math.abs(smoothedPsiFromCounts([5, 5], [0, 2], 0.5) - expected) < 1e-12);
    assert.equal(PSI_SMOOTHING, 0.5);
    // Identical samples: 0 at any size; the smoothing's effect shrinks as rows grow.
    assert.equal(smoothedPsiFromCounts([3, 7, 0], [3, 7, 0], 0.5), 0);
    const few = populationStabilityIndex([0, 0, 1, 1], [0, 0], { type: 'binary', smoothing: 0.5 }).psi;
    const many = populationStabilityIndex(
      Array.from({ length: 400 }, (_, i) => i % 2),
      Array.from({ length: 200 }, () => 0),
      { type: 'binary', smoothing: 0.5 },
    ).psi;
    assert.ok(few < many, `${few} < ${many}: two rows are weaker evidence than two hundred`);
  });
});
