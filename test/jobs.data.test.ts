/**
 * Counterfactuals and effects as batch jobs on the embedded runner, through /v1/jobs: one record per
 * input row in index order (bad rows as error records), each counterfactual record equal to the answer
 * POST /counterfactuals gives for that row alone, and an effects job's partial dependence (the mean of
 * its rows' ICE curves over several chunks) equal to POST /effects on the same rows and grids.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { JSDOM } from 'jsdom';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { inlineExecutor } from '../service/executor.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

function parsesAsSvg(text: string): Document {
  const doc = new new JSDOM('').window.DOMParser().parseFromString(text, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, 'SVG parses as XML');
  return doc;
}

describe('jobs: counterfactuals and effects over many rows', function () {
  this.timeout(300_000);
  let repo: ModelRepository;
  let runner: LocalJobRunner;
  let app: App;
  let tmp: string;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'data-jobs-'));
    runner = new LocalJobRunner({ dir: tmp, executor: inlineExecutor(repo), sync: false });
    await runner.start();
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', jobRunner: runner });
  });
  after(async () => {
    await runner.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  const refRows = (from: number, n: number) => {
    const ref = repo.models.get('credit')!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((from + i) * ref.d, (from + i + 1) * ref.d)));
  };
  const results = async (id: string) => {
    const res = await request(app).get(`/v1/jobs/${id}/results`).buffer(true).parse(asText);
    assert.equal(res.status, 200);
    return (res.body as string)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  };
  const stable = (e: { computeMs?: number }) => ({ ...e, computeMs: 0 });

  it('a counterfactuals job: one record per row, each the answer POST /counterfactuals gives for that row', async () => {
    const preds = (
      await request(app)
        .post('/v1/models/credit/predict')
        .send({ instances: refRows(0, 60) })
    ).body.predictions;
    const rejected = refRows(0, 60)
      .filter((_, i) => preds[i][0] < 0.5)
      .slice(0, 10);
    const instances: unknown[] = [...rejected];
    instances.splice(4, 0, [1, 2, 3]);
    const parameters = { k: 2, seed: 5, desired: { class: 'approved' }, immutable: ['sex'] };
    const sub = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', method: 'counterfactuals', parameters, instances, chunkSize: 4 });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    assert.equal(sub.body.method, 'counterfactuals');
    assert.equal(sub.body.chunkSize, 4);
    const job = await runner.waitFor(sub.body.id, 240_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    assert.equal(job.rowsDone, 11);
    assert.equal(job.rowsFailed, 1);
    const lines = await results(sub.body.id);
    assert.deepEqual(
      lines.map((l) => l.index),
      [...Array(11).keys()],
    );
    assert.equal(lines[4].error.code, 'BAD_INSTANCE');
    const { desired, ...rest } = parameters;
    for (const [q, line] of lines.entries()) {
      if (q === 4) continue;
      const alone = await request(app)
        .post('/v1/models/credit/counterfactuals')
        .send({ instances: [instances[q]], desired, parameters: { ...rest, deadlineMs: 120_000 } });
      assert.equal(alone.status, 200);
      const { index: _i, ...record } = line;
      assert.deepEqual(stable(record), stable(alone.body.explanations[0]), `row ${q}`);
      assert.ok(record.found);
      for (const c of record.counterfactuals) assert.ok(!c.changes.some((ch: { feature: string }) => ch.feature === 'sex'));
    }
    const svg = await request(app).get(`/v1/jobs/${sub.body.id}/summary.svg`).buffer(true).parse(asText);
    assert.equal(svg.status, 200);
    parsesAsSvg(svg.body as string);
    const html = await request(app).get(`/v1/jobs/${sub.body.id}/report.html`).buffer(true).parse(asText);
    assert.equal(html.status, 200);
    assert.match(html.body as string, /10 rows: 10 with a valid counterfactual/);
    const wrong = await request(app).get(`/v1/jobs/${sub.body.id}/effects.json`);
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error.code, 'METHOD_NOT_SUPPORTED');
  });

  it("an effects job's partial dependence (mean of its rows' ICE curves, over chunks) equals POST /effects on the same rows", async () => {
    const sub = await request(app)
      .post('/v1/jobs')
      .send({
        model: 'credit',
        method: 'effects',
        dataset: 'reference',
        parameters: { features: ['income', 'housing', 'late_payments'], resolution: 12 },
        chunkSize: 150,
      });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const grids = sub.body.parameters.grids as Record<string, number[]>;
    assert.equal(grids.income.length, 12);
    assert.deepEqual(grids.housing, [0, 1, 2]);
    const job = await runner.waitFor(sub.body.id, 240_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job));
    const n = repo.models.get('credit')!.reference!.rows.n;
    assert.equal(job.rowsDone, n);
    const lines = await results(sub.body.id);
    assert.equal(lines.length, n);
    assert.equal(lines[0].effects.length, 3);
    assert.equal(lines[0].effects[0].values.length, 12);
    const agg = await request(app).get(`/v1/jobs/${sub.body.id}/effects.json`);
    assert.equal(agg.status, 200, JSON.stringify(agg.body));
    assert.equal(agg.body.rows, n);
    assert.equal(agg.body.link, 'logit');
    const direct = await request(app)
      .post('/v1/models/credit/effects')
      .send({ kind: 'pd', features: ['income', 'housing', 'late_payments'], data: refRows(0, n), grid: grids });
    assert.equal(direct.status, 200, JSON.stringify(direct.body));
    assert.equal(agg.body.effects.length, direct.body.effects.length);
    agg.body.effects.forEach((e: { feature: string; grid: number[]; values: number[]; categories?: string[] }, q: number) => {
      const d = direct.body.effects[q];
      assert.equal(e.feature, d.feature);
      assert.deepEqual(e.grid, d.grid);
      assert.deepEqual(e.categories, d.categories);
      e.values.forEach((v, k) =>
        assert.ok(Math.abs(v - d.values[k]) <= 1e-9 * (1 + Math.abs(v)), `${e.feature} at ${k}: ${v} vs ${d.values[k]}`),
      );
    });
    const svg = await request(app).get(`/v1/jobs/${sub.body.id}/effects.svg?effect=1`).buffer(true).parse(asText);
    parsesAsSvg(svg.body as string);
    const png = await request(app).get(`/v1/jobs/${sub.body.id}/effects.png`);
    assert.deepEqual([...png.body.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    const summary = await request(app).get(`/v1/jobs/${sub.body.id}/summary.svg`).buffer(true).parse(asText);
    parsesAsSvg(summary.body as string);
    const html = await request(app).get(`/v1/jobs/${sub.body.id}/report.html`).buffer(true).parse(asText);
    assert.match(html.body as string, /Partial dependence of housing: approved/);
  });

  it('refuses bad job parameters with 4xx', async () => {
    const post = (body: object) =>
      request(app)
        .post('/v1/jobs')
        .send({ model: 'credit', instances: refRows(0, 3), ...body });
    const cases: [object, string, RegExp][] = [
      [{ method: 'effects', parameters: {} }, 'BAD_PARAMETER', /features/],
      [{ method: 'effects', parameters: { features: ['salary'] } }, 'UNKNOWN_FEATURE', /salary/],
      [{ method: 'effects', parameters: { features: ['income'], kind: 'ale' } }, 'BAD_PARAMETER', /kind/],
      [{ method: 'effects', parameters: { features: ['income'], resolution: 5000 } }, 'GRID_TOO_LARGE', /256/],
      [{ method: 'effects', parameters: { features: ['income'], grid: { age: [30] } } }, 'BAD_GRID', /age/],
      [{ method: 'effects', parameters: { features: ['income'] }, instances: [[1, 2]] }, 'EMPTY_DATA', /none of its instances/],
      [{ method: 'counterfactuals', outputs: [0] }, 'BAD_PARAMETER', /desired/],
      [{ method: 'counterfactuals', parameters: { deadlineMs: 10 } }, 'BAD_PARAMETER', /deadlineMs/],
      [{ method: 'counterfactuals', parameters: { desired: { class: 'maybe' } } }, 'BAD_DESIRED', /rejected, approved/],
    ];
    for (const [body, code, message] of cases) {
      const res = await post(body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code, JSON.stringify(res.body));
      assert.match(res.body.error.message, message);
    }
  });
});
