/**
 * Rows that stopped before converging are counted wherever a batch is reported: the job's status
 * (rowsUnconverged), its summary report, and a Prometheus counter for explain requests. (The CLI's
 * last line is checked in test/cli.test.ts.)
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import { SummaryCollector, renderSummary } from '../jobs/summary.js';
import { isExplainedRecord, type ResultRecord } from '../jobs/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { inlineExecutor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

describe('unconverged rows are counted: job status, job summary, /metrics', function () {
  this.timeout(180_000);
  let repo: ModelRepository;
  let app: ReturnType<typeof createApp>;
  let runner: LocalJobRunner;
  let dir: string;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    dir = await mkdtemp(path.join(os.tmpdir(), 'jobs-unconverged-'));
    runner = new LocalJobRunner({ dir, executor: inlineExecutor(repo) });
    await runner.start();
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', jobRunner: runner });
  });
  after(async () => {
    await runner.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const rows = (n: number) => {
    const ref = repo.models.get('credit')!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray(i * ref.d, (i + 1) * ref.d)));
  };

  it('job status rowsUnconverged equals the records that say converged false; the summary says so', async () => {
    const instances: unknown[] = rows(30);
    instances[4] = [1, 2, 3];
    const sub = await request(app)
      .post('/v1/jobs')
      .send({ model: 'credit', method: 'kernel-shap', parameters: { nSamples: 40, seed: 2 }, instances, chunkSize: 7 });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    assert.equal(sub.body.rowsUnconverged, 0);
    await runner.waitFor(sub.body.id);
    const job = await request(app).get(`/v1/jobs/${sub.body.id}`);
    const lines = (await request(app).get(`/v1/jobs/${sub.body.id}/results`).buffer(true).parse((res, done) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c));
      res.on('end', () => done(null, t));
    })).body as string;
    const records = lines.trim().split('\n').map((l) => JSON.parse(l) as ResultRecord);
    const unconverged = records.filter((r) => isExplainedRecord(r) && !r.converged).length;
    assert.ok(unconverged > 0, '40 coalitions for 12 players leave rows short of the tolerance');
    assert.equal(job.body.status, 'succeeded');
    assert.equal(job.body.rowsFailed, 1);
    assert.equal(job.body.rowsUnconverged, unconverged);
    const html = await request(app).get(`/v1/jobs/${sub.body.id}/report.html`);
    assert.match(html.text, new RegExp(`Rows stopped before converging</t[dh]><td[^>]*>${unconverged} \\(budget ${unconverged}\\)`));
  });

  it('the summary counts rows by stop reason', () => {
    const c = new SummaryCollector();
    const rec = (index: number, converged: boolean, stopReason: 'tolerance' | 'budget' | 'deadline' | 'exact'): ResultRecord => ({
      index,
      outputs: [{ output: 'y', outputIndex: 0, baselineOutputValue: 0, instanceOutputValue: 1, attributions: [{ feature: 'a', value: 1, attribution: 1 }], approximationError: 0 }],
      converged,
      stopReason,
      modelEvaluations: 1,
      computeMs: 0,
    });
    c.add(rec(0, true, 'exact'));
    c.add(rec(1, false, 'budget'));
    c.add(rec(2, false, 'budget'));
    c.add(rec(3, false, 'deadline'));
    assert.equal(c.notConverged, 3);
    const html = renderSummary(c, { model: 'm', version: 'v', method: 'kernel-shap' }).get('report.html')!;
    assert.match(html, /3 \(budget 2, deadline 1\): their error estimate had not met the tolerance/);
    assert.match(html, /exact 1, budget 2, deadline 1/);
  });

  it('a Prometheus counter counts unconverged explanations by stop reason', async () => {
    const res = await request(app).post('/v1/models/credit/explain').send({ instances: rows(12), parameters: { nSamples: 40, seed: 9 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const budget = res.body.explanations.filter((e: { stopReason: string }) => e.stopReason === 'budget').length;
    assert.ok(budget > 0);
    const text = (await request(app).get('/metrics')).text;
    const m = text.match(/explanation_unconverged_total\{model="credit",method="kernel-shap",stop_reason="budget"\} (\d+)/);
    assert.ok(m, text.split('\n').filter((l) => l.includes('unconverged')).join('\n'));
    assert.equal(Number(m[1]), budget);
  });
});
