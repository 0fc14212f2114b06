/**
 * GET /v1/models/{name}/versions/compare against planted changes whose effects are known in closed
 * form: the linear sample (f = w.x + b) with one weight's sign flipped and another tripled, and with
 * every weight doubled. Kernel SHAP on 6 features enumerates every coalition, so attributions are
 * exact Shapley values w_j (x_j - c_j) with the same background centre c for both versions: mean
 * |attribution| scales by |w2_j / w1_j|, the flipped feature's attribution changes sign on every row,
 * and doubling every weight keeps the ranking (NDCG 1). Prediction changes are checked row by row
 * against the weights; a classifier's decision agreement against a brute-force count over the two
 * versions' own predictions. Also: 202 then 200, one computation per pair, charts, and the errors.
 */
import { strict as assert } from 'node:assert';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { ModelWatcher } from '../models/watcher.js';
import { createApp, type App } from '../server/app.js';
import { poolExecutor, type Executor } from '../service/executor.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';
import { linearPredict, linearVersion, linearWeights, perturbedCopy, relabelledCopy, SAMPLES } from './helpers/versions.js';
import { findVersion } from '../models/served.js';

describe('versions compare', function () {
  this.timeout(300_000);
  let dir: string;
  let watcher: ModelWatcher;
  let app: App;
  let pool: Executor;
  let w1: { w: number[]; b: number };
  let w2: { w: number[]; b: number };
  let w3: { w: number[]; b: number };

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    dir = await mkdtemp(path.join(os.tmpdir(), 'compare-'));
    const versions = path.join(dir, 'linear', 'versions');
    await mkdir(versions, { recursive: true });
    await cp(path.join(SAMPLES, 'linear'), path.join(versions, '1'), { recursive: true });
    w1 = await linearWeights(path.join(versions, '1'));
    w2 = await linearVersion(path.join(versions, '2'), (w, b) => ({ w: w.map((x, j) => (j === 0 ? -x : j === 3 ? 3 * x : x)), b: b + 0.5 }));
    w3 = await linearVersion(path.join(versions, '3'), (w, b) => ({ w: w.map((x) => 2 * x), b: 2 * b }));
    // penguins: a classifier; version 2 has every weight perturbed by up to 60% (some decisions change).
    await mkdir(path.join(dir, 'penguins', 'versions'), { recursive: true });
    await cp(path.join(SAMPLES, 'penguins'), path.join(dir, 'penguins', 'versions', '1'), { recursive: true });
    await perturbedCopy('penguins', path.join(dir, 'penguins', 'versions', '2'), 0.6, 7);
    // credit: sensitive features, so fairness before and after; again the same weights.
    await mkdir(path.join(dir, 'credit', 'versions'), { recursive: true });
    await cp(path.join(SAMPLES, 'credit'), path.join(dir, 'credit', 'versions', '1'), { recursive: true });
    await relabelledCopy('credit', path.join(dir, 'credit', 'versions', '2'), 'relabelled');
    await cp(path.join(SAMPLES, 'cars'), path.join(dir, 'cars'), { recursive: true });
    // renamed: version 2 takes a feature under another name (not comparable on the same rows).
    await mkdir(path.join(dir, 'renamed', 'versions'), { recursive: true });
    await cp(path.join(SAMPLES, 'linear'), path.join(dir, 'renamed', 'versions', '1'), { recursive: true });
    await cp(path.join(SAMPLES, 'linear'), path.join(dir, 'renamed', 'versions', '2'), { recursive: true });
    for (const f of ['metadata.json', 'background.csv', 'reference.csv']) {
      const file = path.join(dir, 'renamed', 'versions', '2', f);
      await writeFile(file, (await readFile(file, 'utf8')).replaceAll('x1_std_normal', 'x1_renamed'));
    }
    watcher = await ModelWatcher.load(dir, { intervalMs: 0, drainMs: 60_000 });
    // Worker threads, as in production: the comparison runs off the event loop, so the first request sees it pending.
    pool = poolExecutor({ modelDir: dir, threads: 1 });
    app = createApp({ registry: watcher.registry, config: testConfig({}), backend: 'wasm', executor: pool });
  });
  after(async () => {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  });

  const compare = (name: string, q: string) => request(app).get(`/v1/models/${name}/versions/compare?${q}`);

  it('answers 202 while computing, then 200 with the comparison; one computation per pair', async () => {
    const first = await compare('linear', 'from=1&to=2');
    assert.equal(first.status, 202, JSON.stringify(first.body));
    assert.equal(first.headers['retry-after'], '2');
    assert.equal(first.body.status, 'pending');
    assert.equal(first.body.from.label, '1');
    const job = app.context.svc.comparisons.get(`linear:${first.body.from.version}:${first.body.to.version}`);
    assert.ok(job);
    await job.promise;
    const done = await compare('linear', 'from=1&to=2');
    assert.equal(done.status, 200);
    const again = await compare('linear', `from=${first.body.from.version}&to=2`);
    assert.equal(again.body.computedAt, done.body.computedAt, 'the same pair (by label or hash) is computed once');
  });

  it('prediction changes equal (w2 - w1).x + (b2 - b1) row by row; the largest are the rows that moved most', async () => {
    const c = (await compare('linear', 'from=1&to=2&wait=true')).body;
    const ref = watcher.registry.models.get('linear')!.reference!.rows;
    const X = Array.from({ length: ref.n }, (_, i) => Array.from(ref.data.subarray(i * ref.d, (i + 1) * ref.d)));
    const diff = linearPredict(X, w2).map((y, i) => y - linearPredict([X[i]], w1)[0]);
    assert.equal(c.data.rows, ref.n);
    assert.equal(c.data.source, 'reference');
    const s = c.predictions.shifts[0];
    const mean = diff.reduce((a, b) => a + b, 0) / diff.length;
    const meanAbs = diff.reduce((a, b) => a + Math.abs(b), 0) / diff.length;
    const scale = Math.max(1, Math.abs(mean));
    assert.ok(Math.abs(s.meanDifference - mean) < 1e-3 * scale, `${s.meanDifference} vs ${mean}`);
    assert.ok(Math.abs(s.meanAbsDifference - meanAbs) < 1e-3 * scale);
    assert.equal(s.histogram.counts.reduce((a: number, b: number) => a + b, 0), ref.n);
    const top = diff
      .map((d, i) => ({ i, d: Math.abs(d) }))
      .sort((a, b) => b.d - a.d)
      .slice(0, 10)
      .map((x) => x.i);
    assert.deepEqual(
      c.predictions.largestChanges.map((r: any) => r.row),
      top,
    );
    assert.equal(c.predictions.agreement, undefined, 'a regression model has no decisions to agree on');
  });

  it('attributions: mean |SHAP| scales by |w2/w1|, the flipped feature changes sign on every row, the others on none', async () => {
    const c = (await compare('linear', 'from=1&to=2&wait=true')).body;
    const a = c.attributions.outputs[0];
    assert.equal(a.rows, Math.min(100, c.data.rows));
    a.features.forEach((f: any, j: number) => {
      const ratio = Math.abs(w2.w[j] / w1.w[j]);
      assert.ok(Math.abs(f.meanAbsTo - ratio * f.meanAbsFrom) <= 1e-3 * Math.max(f.meanAbsTo, 1e-9), `${f.feature}: ${f.meanAbsTo} vs ${ratio} x ${f.meanAbsFrom}`);
      assert.equal(f.rowSignFlipRate, j === 0 ? 1 : 0, f.feature);
    });
    assert.deepEqual(a.signFlips, ['x1_std_normal']);
    // x4 tripled: its rank can only improve.
    assert.ok(a.features[3].rankTo <= a.features[3].rankFrom);
    const same = (await compare('linear', 'from=1&to=3&wait=true')).body.attributions.outputs[0];
    assert.equal(same.ndcg, 1);
    assert.deepEqual(same.signFlips, []);
    for (const f of same.features) {
      assert.equal(f.rankTo, f.rankFrom);
      assert.ok(Math.abs(f.meanAbsTo - 2 * f.meanAbsFrom) <= 1e-3 * Math.max(f.meanAbsTo, 1e-9));
    }
    assert.ok(a.ndcg <= 1 && a.ndcg > 0);
    void w3;
  });

  it('a classifier: decision agreement equals a brute-force count; fairness before and after', async () => {
    const c = (await compare('penguins', 'wait=true')).body;
    assert.equal(c.to.label, '2');
    assert.equal(c.from.label, '1');
    // Brute force: both versions' own predictions on the reference rows, argmax, count.
    const rows = watcher.registry.models.get('penguins')!.reference!.rows;
    const k = 3;
    const argmax = (p: Float32Array, i: number) => [0, 1, 2].reduce((b, j) => (p[i * k + j] > p[i * k + b] ? j : b), 0);
    const p1 = await findVersion(watcher.registry, 'penguins', '1')!.model.model.predict(rows);
    const p2 = await findVersion(watcher.registry, 'penguins', '2')!.model.model.predict(rows);
    const confusion = [0, 1, 2].map(() => [0, 0, 0]);
    for (let i = 0; i < rows.n; i++) confusion[argmax(p1, i)][argmax(p2, i)]++;
    const agreeing = confusion[0][0] + confusion[1][1] + confusion[2][2];
    const ag = c.predictions.agreement;
    assert.equal(ag.rows, rows.n);
    assert.deepEqual(ag.confusion, confusion);
    assert.equal(ag.agreeing, agreeing);
    assert.ok(agreeing < rows.n && agreeing > 0, `the perturbation changes some decisions: ${agreeing} of ${rows.n}`);
    assert.equal(ag.rate, agreeing / rows.n);
    const changed = c.predictions.largestChanges.filter((r: any) => r.fromClass !== r.toClass).length;
    assert.ok(changed > 0, 'the rows that moved most include changed decisions');

    const fr = await compare('credit', 'wait=true');
    assert.equal(fr.status, 200, JSON.stringify(fr.body));
    const f = fr.body;
    assert.ok(f.fairness, JSON.stringify(f.notes));
    assert.deepEqual(f.fairness.sensitiveFeatures, ['sex']);
    assert.ok(f.fairness.metrics.length > 0);
    for (const m of f.fairness.metrics) assert.equal(m.differenceTo, m.differenceFrom, `${m.metric}: same weights, same disparity`);
    const sel = f.fairness.metrics.find((m: any) => m.metric === 'selectionRate' && m.features.join() === 'sex');
    assert.ok(sel && sel.differenceTo > 0.1, JSON.stringify(sel));
  });

  it('charts: a histogram, dumbbells, fairness bars; an HTML report; the model report gets a section', async () => {
    const svg = await compare('linear', 'from=1&to=2&format=svg').buffer(true).parse(asText);
    assert.equal(svg.status, 200);
    assert.match(svg.body, /<svg[^>]*role="img"/);
    assert.equal((svg.body.match(/data-count=/g) ?? []).length, 20);
    const dumb = await compare('linear', 'from=1&to=2&plot=attributions').set('Accept', 'image/svg+xml').buffer(true).parse(asText);
    assert.match(dumb.body, /data-feature="x1_std_normal"[^>]*data-sign-flipped="true"/);
    const fair = await compare('credit', 'plot=fairness&format=svg').buffer(true).parse(asText);
    assert.equal(fair.status, 200);
    const html = await compare('linear', 'from=1&to=2').set('Accept', 'text/html').buffer(true).parse(asText);
    assert.match(html.body, /Rows that changed most/);
    const report = await request(app).get('/v1/models/linear/report').buffer(true).parse(asText);
    assert.equal(report.status, 200);
    assert.match(report.body, /Versions 2 → 3|Versions 3/);
  });

  it('a comparison whose model evaluations exceed MAX_REQUEST_EVALUATIONS is refused before it starts (422 TOO_EXPENSIVE)', async () => {
    const tight = createApp({ registry: watcher.registry, config: testConfig({ MAX_REQUEST_EVALUATIONS: '600000' }), backend: 'wasm', executor: pool });
    const res = await request(tight).get('/v1/models/linear/versions/compare?from=1&to=3');
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'TOO_EXPENSIVE');
    // Both versions on the 500 reference rows, and Kernel SHAP on 100 of them per version: 6 players,
    // all 62 coalitions (below nSamples 1024) x 50 background rows (maxBackground), + 1 each, + 50.
    assert.equal(res.body.error.details.estimate, 2 * 500 + 2 * (100 * (62 * 50 + 1) + 50));
    assert.match(res.body.error.message, /MAX_REQUEST_EVALUATIONS/);
    assert.equal(tight.context.svc.comparisons.size, 0, 'no comparison was started');
  });

  it('errors: unknown version 404; one version, the same twice, different features 409; bad plot, wait, output, topK, a repeated parameter 400', async () => {
    const unknown = await compare('linear', 'from=9');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'VERSION_NOT_FOUND');
    const one = await compare('cars', '');
    assert.equal(one.status, 409);
    assert.equal(one.body.error.code, 'VERSIONS_INCOMPARABLE');
    const same = await compare('linear', 'from=2&to=2');
    assert.equal(same.status, 409);
    const plot = await compare('linear', 'plot=nope');
    assert.equal(plot.status, 400);
    assert.equal(plot.body.error.code, 'BAD_PARAMETER');
    const noFair = await compare('linear', 'from=1&to=2&plot=fairness&format=svg');
    assert.equal(noFair.status, 400);
    assert.match(noFair.body.error.message, /sensitive features/);
    const renamed = await compare('renamed', '');
    assert.equal(renamed.status, 409);
    assert.equal(renamed.body.error.code, 'VERSIONS_INCOMPARABLE');
    assert.match(renamed.body.error.message, /different features/);
    for (const q of ['wait=maybe', 'from=1&from=2', 'from=1&to=2&output=3&wait=true', 'topK=0&wait=true']) {
      const bad = await compare('linear', q);
      assert.equal(bad.status, 400, q);
      assert.equal(bad.body.error.code, 'BAD_PARAMETER', q);
    }
  });
});
