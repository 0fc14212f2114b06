/**
 * Drift: PSI, KS and Clarify's NDCG on hand-computed examples; the credit reference set shifted on
 * three chosen features is flagged on exactly those, an unshifted resample and two independent
 * halves on none; the live window, the Prometheus gauges, content negotiation and caller errors.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import client from 'prom-client';
import { attributionNdcg, driftReport } from '../monitoring/drift/index.js';
import { kolmogorovSurvival, ksTwoSample } from '../stats/ks.js';
import { binCounts, binsFor, populationStabilityIndex, psiFromCounts } from '../stats/psi.js';
import { randomInt, seededRng } from '../stats/random.js';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';
import { clearLive, liveWindow, MIN_LIVE_ROWS, recordLive } from '../service/live.js';
import type { Registry } from '../models/served.js';

const close = (a: number | null | undefined, b: number, tol = 1e-9) => {
  assert.ok(a !== null && a !== undefined && Math.abs(a - b) <= tol, `${a} != ${b}`);
};

function appWith(registry: Registry) {
  const app = createApp({ registry, config: testConfig({ BODY_LIMIT: '20mb' }), backend: 'test' });
  return { app, metrics: app.context.metrics!.registry };
}

const toArrays = (rows: Rows) => Array.from({ length: rows.n }, (_, i) => Array.from(rows.data.subarray(i * rows.d, (i + 1) * rows.d)));

describe('drift: statistics on hand-computed examples', () => {
  it('PSI of two categories: shares 0.5/0.5 -> 0.25/0.75', () => {
    // (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5) = 0.25 ln 2 + 0.25 ln 1.5 = 0.173287 + 0.101366
    close(psiFromCounts([50, 50], [25, 75]), 0.25 * Math.LN2 + 0.25 * Math.log(1.5), 1e-12);
    const r = populationStabilityIndex([0, 0, 1, 1], [0, 1, 1, 1], { type: 'binary' });
    close(r.psi, 0.25 * Math.LN2 + 0.25 * Math.log(1.5), 1e-12);
  });

  it('PSI: a value the reference never took lands in "other", whose empty reference share becomes eps = 1e-4', () => {
    // Reference 0 0 1 1; current 0 1 2 2: shares (0.5, 0.5, eps) vs (0.25, 0.25, 0.5):
    // 2 x (0.25 - 0.5) ln(0.5) + (0.5 - 1e-4) ln(0.5 / 1e-4) = 2 x 0.173287 + 0.4999 x 8.517193 = 4.604319.
    const r = populationStabilityIndex([0, 0, 1, 1], [0, 1, 2, 2], { type: 'categorical' });
    close(r.psi, 4.604319, 1e-6);
    assert.deepEqual(Array.from(r.current), [1, 1, 2]);
  });

  it('PSI on quantile bins: reference 1..10 in 2 bins (edge at the median 5.5), current shifted by 3', () => {
    // Bins (-inf, 5.5], (5.5, inf): reference 5/5, current 4..13 -> {4, 5} and 8 others: 0.2 / 0.8.
    // (0.2 - 0.5) ln(0.4) + (0.8 - 0.5) ln(1.6) = 0.274887 + 0.141001 = 0.415888.
    const ref = Array.from({ length: 10 }, (_, i) => i + 1);
    const r = populationStabilityIndex(
      ref,
      ref.map((v) => v + 3),
      { bins: 2, type: 'numeric' },
    );
    assert.deepEqual(r.spec, { kind: 'quantile', edges: [5.5] });
    close(r.psi, -0.3 * Math.log(0.4) + 0.3 * Math.log(1.6), 1e-12);
  });

  it('bins: right-closed quantile bins, categories for few integers, quantiles for many', () => {
    assert.deepEqual(Array.from(binCounts([1, 2, 0.5, 1.0001], { kind: 'quantile', edges: [1] })), [2, 2]);
    assert.deepEqual(binsFor([0, 1, 2, 3, 1, 0], 10), { kind: 'categorical', categories: [0, 1, 2, 3] });
    assert.equal(
      binsFor(
        Array.from({ length: 50 }, (_, i) => i),
        10,
      ).kind,
      'quantile',
    );
    assert.equal(binsFor([0.5, 1.5, 0.5], 10).kind, 'quantile'); // not integers
    assert.equal(binsFor([0, 1, 2], 10, 'numeric').kind, 'quantile');
  });

  it('KS statistic with ties and the asymptotic p-value', () => {
    // a = 1 2 3 4, b = 3 4 5 6: ECDFs at 1..6: (.25, 0) (.5, 0) (.75, .25) (1, .5) (1, .75) (1, 1) -> D = 0.5.
    // en = 4 x 4 / 8 = 2, lambda = sqrt(2) x 0.5 = 0.70711;
    // Q = 2 (e^-1 - e^-4 + e^-9 - e^-16) = 2 (0.3678794 - 0.0183156 + 0.0001234 - 0.0000001) = 0.6993742.
    const r = ksTwoSample([1, 2, 3, 4], [3, 4, 5, 6]);
    close(r.statistic, 0.5, 1e-15);
    close(r.pValue, 0.6993742, 2e-7);
    // Ties: a = 0 0 1 1, b = 0 1 1 1 -> at 0: 0.5 vs 0.25, at 1: 1 vs 1 -> D = 0.25.
    close(ksTwoSample([0, 0, 1, 1], [0, 1, 1, 1]).statistic, 0.25, 1e-15);
    // D = 0.5 with n = m = 20: lambda = sqrt(10) x 0.5 = 1.58114; Q = 2 (e^-5 - e^-20) = 0.0134759.
    close(kolmogorovSurvival(Math.sqrt(10) * 0.5), 2 * (Math.exp(-5) - Math.exp(-20)), 1e-9);
    close(kolmogorovSurvival(0), 1, 0);
    // The two series agree where the implementation switches between them (lambda = 1.18).
    close(kolmogorovSurvival(1.1799999), kolmogorovSurvival(1.18), 1e-6);
  });

  it("NDCG of attribution rankings: SageMaker Clarify's college admission example", () => {
    // Reference SAT 0.70, GPA 0.50, rank 0.05; live SAT 0.10, GPA 0.20, rank 0.70 -> live order rank, GPA, SAT.
    // DCG = 0.05/log2 2 + 0.50/log2 3 + 0.70/log2 4 = 0.05 + 0.3154649 + 0.35 = 0.7154649
    // iDCG = 0.70/log2 2 + 0.50/log2 3 + 0.05/log2 4 = 0.70 + 0.3154649 + 0.025 = 1.0404649 -> 0.6876395.
    close(attributionNdcg([0.7, 0.5, 0.05], [0.1, 0.2, 0.7]), 0.7154649 / 1.0404649, 1e-7);
    close(attributionNdcg([0.7, 0.5, 0.05], [0.9, 0.3, 0.01]), 1, 1e-15);
  });

  it('the report: Bonferroni over features, statuses, labels and performance', () => {
    const ref: Rows = { data: Float32Array.from({ length: 400 }, (_, i) => (i % 2 ? i % 7 : (i * 37) % 101)), n: 200, d: 2 };
    const cur: Rows = { data: ref.data.map((v, i) => (i % 2 ? v : v + 30)), n: 200, d: 2 };
    const r = driftReport({
      reference: ref,
      current: cur,
      featureNames: ['a', 'b'],
      outputNames: ['y'],
      referencePredictions: Float32Array.from({ length: 200 }, (_, i) => (i % 10) / 10),
      currentPredictions: Float32Array.from({ length: 200 }, (_, i) => (i % 10) / 10),
      referenceLabels: Array.from({ length: 200 }, (_, i) => Number(i % 10 > 4)),
      currentLabels: Array.from({ length: 200 }, (_, i) => Number(i % 10 > 5)),
      task: 'binary-classification',
    });
    assert.deepEqual(r.summary.drifted, ['a']);
    const a = r.features[0];
    close(a.ks.pValueAdjusted, Math.min(1, 2 * a.ks.pValue), 1e-15);
    assert.equal(r.features[1].status, 'ok');
    assert.equal(r.predictions[0].psi, 0);
    // Accuracy at > 0.5: reference predicts 1 for i % 10 >= 6, labels 1 for > 4: wrong at 5 only -> 0.9;
    // current labels 1 for > 5: always right -> 1.
    close(r.performance!.reference, 0.9, 1e-12);
    close(r.performance!.current, 1, 1e-12);
    assert.equal(r.labels!.kind, 'categorical');
  });
});

describe('drift: the live window', () => {
  it('keeps the last rows in order, bounded by its capacity, per model version', () => {
    const m = { name: 'm', version: 'v1' };
    const rows = (from: number, n: number): Rows => ({
      data: Float32Array.from({ length: 2 * n }, (_, i) => from + Math.floor(i / 2)),
      n,
      d: 2,
    });
    recordLive(m, rows(0, 3), 5);
    recordLive(m, rows(3, 4), 5);
    let w = liveWindow(m)!;
    assert.equal(w.rows.n, 5);
    assert.deepEqual(Array.from(w.rows.data.filter((_, i) => i % 2 === 0)), [2, 3, 4, 5, 6]);
    assert.equal(w.totalSeen, 7);
    recordLive(m, rows(100, 12), 5); // larger than the window: its last 5 rows stay
    w = liveWindow(m)!;
    assert.deepEqual(Array.from(w.rows.data.filter((_, i) => i % 2 === 0)), [107, 108, 109, 110, 111]);
    const v2 = { name: 'm', version: 'v2' };
    assert.equal(liveWindow(v2), undefined);
    clearLive(m);
    assert.equal(liveWindow(m), undefined);
  });
});

describe('drift endpoint', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let app: express.Express;
  let metrics: client.Registry;
  let names: string[];
  let reference: Rows;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(path.resolve('samples/models'));
    ({ app, metrics } = appWith(repo));
    const credit = repo.models.get('credit')!;
    names = credit.space.featureNames;
    reference = credit.reference!.rows;
  });

  /**
   * The shift: income x 1.25 (a 22% log shift, half the log-income sd of 0.45), debt_ratio + 0.075
   * (half its sd of 0.15) and late_payments + 1 (every applicant one more late payment). Every
   * other column, including savings (generated from income), is left as it is.
   */
  function shifted(): Rows {
    const data = reference.data.slice();
    const d = reference.d;
    for (let i = 0; i < reference.n; i++) {
      data[i * d + names.indexOf('income')] *= 1.25;
      data[i * d + names.indexOf('debt_ratio')] += 0.075;
      data[i * d + names.indexOf('late_payments')] += 1;
    }
    return { data, n: reference.n, d };
  }

  function resample(seed: number): Rows {
    const rng = seededRng(seed);
    const d = reference.d;
    const data = new Float32Array(reference.n * d);
    for (let i = 0; i < reference.n; i++) {
      const j = randomInt(rng, reference.n);
      data.set(reference.data.subarray(j * d, (j + 1) * d), i * d);
    }
    return { data, n: reference.n, d };
  }

  it('a shifted copy of the reference set is flagged on exactly the three shifted features', async () => {
    const res = await request(app)
      .post('/v1/models/credit/drift')
      .send({ current: toArrays(shifted()), attributions: false });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.summary.drifted, ['income', 'debt_ratio', 'late_payments']);
    assert.deepEqual(
      res.body.features.filter((f: { drifted: boolean }) => f.drifted).map((f: { feature: string }) => f.feature),
      ['income', 'debt_ratio', 'late_payments'],
    );
    for (const f of res.body.features) {
      if (f.drifted) assert.ok(f.ks.significant, `${f.feature}: KS should be significant`);
      else assert.equal(f.psi, 0, `${f.feature} is unchanged`);
    }
    assert.equal(res.body.reference.source, 'reference');
    assert.equal(res.body.reference.rows, 1000);
    assert.equal(res.body.predictions[0].feature, 'approved');
    assert.ok(res.body.flags.some((f: { kind: string; feature: string }) => f.kind === 'feature-drift' && f.feature === 'income'));
  });

  it('an unshifted resample of the reference set, and two independent halves, are not flagged', async () => {
    const res = await request(app)
      .post('/v1/models/credit/drift')
      .send({ current: toArrays(resample(11)), attributions: false });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.summary.drifted, []);
    assert.deepEqual(res.body.summary.warned, []);
    assert.equal(res.body.summary.predictionDrift, false);
    const all = toArrays(reference);
    const credit = repo.models.get('credit')!;
    const halves = await request(app)
      .post('/v1/models/credit/drift')
      .send({
        reference: all.slice(0, 500),
        referenceLabels: Array.from(credit.reference!.labels.subarray(0, 500)),
        current: all.slice(500),
        currentLabels: Array.from(credit.reference!.labels.subarray(500)),
        attributions: false,
      });
    assert.equal(halves.status, 200, JSON.stringify(halves.body));
    assert.deepEqual(halves.body.summary.drifted, []);
    assert.equal(halves.body.reference.source, 'request');
    assert.equal(halves.body.labels.drifted, false);
    assert.equal(halves.body.performance.metric, 'accuracy');
  });

  it('attribution drift: mean |attribution| on both sides and the NDCG of the rankings', async () => {
    const res = await request(app)
      .post('/v1/models/credit/drift')
      .send({ current: toArrays(resample(5)), attributions: { sampleSize: 60, nSamples: 64, maxBackground: 20 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const a = res.body.attributions[0];
    assert.equal(a.output, 'approved');
    assert.equal(a.referenceRows, 60);
    assert.ok(a.ndcg > 0.9 && a.ndcg <= 1, `ndcg ${a.ndcg}`);
    assert.equal(a.flagged, false);
    assert.equal(res.body.summary.attributionDrift, false);
    assert.ok(a.features.some((f: { feature: string }) => f.feature === 'housing'));
    const text = await metrics.metrics();
    assert.match(text, /model_attribution_ndcg\{model="credit",output="approved",source="request"\} 0\.9\d*/);
  });

  it('sets the Prometheus gauges for every feature', async () => {
    await request(app)
      .post('/v1/models/credit/drift')
      .send({ current: toArrays(shifted()), attributions: false })
      .expect(200);
    const text = await metrics.metrics();
    const psi = text.match(/model_feature_psi\{model="credit",feature="income",source="request"\} ([0-9.e-]+)/);
    assert.ok(psi && Number(psi[1]) > 0.1, text.slice(0, 300));
    assert.match(text, /model_feature_drifted\{model="credit",feature="income",source="request"\} 1/);
    assert.match(text, /model_feature_drifted\{model="credit",feature="age",source="request"\} 0/);
    assert.match(text, /model_drifted_features\{model="credit",source="request"\} 3/);
  });

  it('GET drift/live: refuses a near-empty window, then reports on the recorded rows', async () => {
    const credit = repo.models.get('credit')!;
    clearLive(credit);
    let res = await request(app).get('/v1/models/credit/drift/live');
    // 400 until server/errors.ts lists NO_LIVE_DATA (proposed status 409).
    assert.ok([400, 409].includes(res.status), String(res.status));
    assert.equal(res.body.error.code, 'NO_LIVE_DATA');
    assert.equal(res.body.error.details.minimum, MIN_LIVE_ROWS);
    const s = shifted();
    recordLive(credit, { data: s.data.slice(0, 300 * s.d), n: 300, d: s.d });
    res = await request(app).get('/v1/models/credit/drift/live?attributions=false');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.current.source, 'live');
    assert.equal(res.body.current.rows, 300);
    assert.equal(res.body.current.totalSeen, 300);
    assert.deepEqual(res.body.summary.drifted, ['income', 'debt_ratio', 'late_payments']);
    const text = await metrics.metrics();
    assert.match(text, /model_feature_drifted\{model="credit",feature="debt_ratio",source="live"\} 1/);
    clearLive(credit);
  });

  it('content negotiation: PSI chart with thresholds, attribution chart, HTML report', async () => {
    const body = { current: toArrays(shifted()), attributions: { sampleSize: 30, nSamples: 64, maxBackground: 10 } };
    const svg = await request(app).post('/v1/models/credit/drift').set('Accept', 'image/svg+xml').buffer(true).parse(asText).send(body);
    assert.equal(svg.status, 200);
    assert.match(svg.body, /data-feature="income" data-psi="[0-9.]+" data-status="alert"/);
    assert.match(svg.body, /alert 0\.25/);
    assert.match(svg.body, /warn 0\.1/);
    const attr = await request(app)
      .post('/v1/models/credit/drift?plot=attributions')
      .set('Accept', 'image/svg+xml')
      .buffer(true)
      .parse(asText)
      .send(body);
    assert.equal(attr.status, 200);
    assert.match(attr.body, /NDCG/);
    assert.match(attr.body, /data-label="reference"/);
    const html = await request(app).post('/v1/models/credit/drift').set('Accept', 'text/html').send(body);
    assert.equal(html.status, 200);
    assert.match(html.text, /<h2>Drift summary<\/h2>/);
    assert.match(html.text, /Attribution drift: approved/);
  });

  it('errors: rows of the wrong width, labels of the wrong length, an unknown plot, labels without reference rows', async () => {
    const post = (body: object, q = '') => request(app).post(`/v1/models/credit/drift${q}`).send(body);
    let r = await post({ current: [[1, 2, 3]] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'BAD_INSTANCE');
    const rows = toArrays(reference).slice(0, 10);
    r = await post({ current: rows, currentLabels: [1, 0], attributions: false });
    assert.equal(r.body.error.code, 'BAD_LABELS');
    r = await post({ current: rows, referenceLabels: [1], attributions: false });
    assert.equal(r.body.error.code, 'BAD_LABELS');
    r = await post({ current: rows }, '?plot=pie');
    assert.equal(r.body.error.code, 'BAD_PARAMETER');
    r = await post({});
    assert.equal(r.body.error.code, 'INVALID_REQUEST');
    r = await post({ current: rows, bins: 1 });
    assert.equal(r.body.error.code, 'INVALID_REQUEST');
  });
});
