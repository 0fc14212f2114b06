/**
 * Bounded work through the whole service (HTTP in, the executor, the guarded model, explainers):
 *
 * - Deadlines: on a model that takes 20 ms per call (a real sleep) and counts its calls, explain,
 *   fairness, drift and importance stop at the deadline (the request's, or the server's DEADLINE_MS
 *   when it gives none): a best estimate marked `stopReason: "deadline"` where one exists, else 503
 *   DEADLINE_EXCEEDED; and no more model calls than fit before the hard deadline (a 20 ms call per
 *   call started before it), and none after the answer. Counts, not wall time.
 * - Admission control: requests whose estimated model evaluations exceed MAX_REQUEST_EVALUATIONS get
 *   422 TOO_EXPENSIVE naming the estimate, the limit and POST /v1/jobs, without a single model call;
 *   the budget is configurable (0: off) and jobs are not held to it.
 * - Cancellation: a client that disconnects mid-explanation stops the work at the next model call,
 *   counted in /metrics.
 * - The same for global effects, counterfactuals and the recourse burden: deadlines (503 for effects,
 *   which never answer part of their features; what was found, marked deadline, for counterfactuals),
 *   their own estimates, and cancellation.
 */
import { strict as assert } from 'node:assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type { Model, Rows } from '../explainers/types.js';
import { LocalJobRunner } from '../jobs/runner.js';
import { parseMetadata } from '../models/metadata.js';
import { createApp } from '../server/app.js';
import { graceMs } from '../service/bounds.js';
import { inlineExecutor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';
import { served } from './helpers/jsModels.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const D = 12;
const CALL_MS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A logistic model over 12 features that sleeps CALL_MS per call and counts calls; `onCall` sees each. */
function slowModel(onCall: (calls: number) => void = () => undefined) {
  const w = Array.from({ length: D }, (_, j) => ((j % 5) - 2) / 4);
  const state = { calls: 0 };
  const f = (x: Float32Array, i: number) => {
    let z = -0.2;
    for (let j = 0; j < D; j++) z += w[j] * x[i * D + j];
    return 1 / (1 + Math.exp(-z));
  };
  const model: Model = {
    nFeatures: D,
    nOutputs: 1,
    async predict(rows: Rows) {
      state.calls++;
      onCall(state.calls);
      await sleep(CALL_MS);
      return Float32Array.from({ length: rows.n }, (_, i) => f(rows.data, i));
    },
    async inputGradients(rows: Rows) {
      state.calls++;
      onCall(state.calls);
      await sleep(CALL_MS);
      const g = new Float32Array(rows.n * D);
      for (let i = 0; i < rows.n; i++) {
        const p = f(rows.data, i);
        for (let j = 0; j < D; j++) g[i * D + j] = p * (1 - p) * w[j];
      }
      return g;
    },
  };
  return { model, state };
}

function table(n: number, seed: number): Rows {
  const data = new Float32Array(n * D);
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) data[i * D + j] = j === 0 ? (rnd() < 0.5 ? 0 : 1) : Math.round(rnd() * 100) / 10;
  return { data, n, d: D };
}

function servedSlow(onCall?: (calls: number) => void) {
  const { model, state } = slowModel(onCall);
  const names = Array.from({ length: D }, (_, j) => (j === 0 ? 'group' : `x${j}`));
  const reference = table(2000, 7);
  const labels = Float32Array.from({ length: reference.n }, (_, i) => (reference.data[i * D + 3] > 5 ? 1 : 0));
  const m = served('slow', model, {
    space: { featureNames: names, outputNames: ['p'] },
    metadata: parseMetadata({
      task: 'binary-classification',
      features: names.map((name, j) => ({ name, ...(j === 0 ? { type: 'binary' } : {}) })),
      outputs: [{ name: 'p' }],
      sensitiveFeatures: ['group'],
    }),
    background: table(50, 3),
    reference: { rows: reference, labels },
  });
  return { m, state };
}

const rowsJson = (r: Rows, n = r.n) => Array.from({ length: n }, (_, i) => Array.from(r.data.subarray(i * D, (i + 1) * D)));

/** Calls that can start before the hard deadline (deadline + its margin) when each takes CALL_MS, plus the one in flight. */
const maxCalls = (deadlineMs: number) => Math.floor((deadlineMs + graceMs(deadlineMs)) / CALL_MS) + 1;

function appFor(env: Record<string, string> = {}, onCall?: (calls: number) => void) {
  const { m, state } = servedSlow(onCall);
  const app = createApp({ registry: { models: new Map([['slow', m]]), errors: [] }, config: testConfig(env), backend: 'js' });
  return { app, state, m };
}

/** Waits a few model-call durations and checks that no call was made in the meantime. */
async function noCallsAfter(state: { calls: number }) {
  const at = state.calls;
  await sleep(5 * CALL_MS);
  assert.equal(state.calls, at, 'model calls continued after the answer');
}

describe('bounded work: deadlines, admission control, cancellation', function () {
  this.timeout(120_000);

  describe('deadlines stop work between model calls', () => {
    it('explain: a best estimate marked deadline, or 503; no call past the hard deadline', async () => {
      const { app, state } = appFor();
      const res = await request(app)
        .post('/v1/models/slow/explain')
        .send({ instances: rowsJson(table(100, 11)), parameters: { nSamples: 4000, tolerance: 1e-9, deadlineMs: 300 } });
      if (res.status === 200) assert.ok(res.body.explanations.every((e: any) => e.stopReason === 'deadline' && !e.converged));
      else {
        assert.equal(res.status, 503, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'DEADLINE_EXCEEDED');
      }
      assert.ok(state.calls >= 1 && state.calls <= maxCalls(300), `${state.calls} model calls for a 300 ms deadline`);
      await noCallsAfter(state);
    });

    it("the reviewer's request (100 instances x nSamples 100000, deadlineMs 1000) with the budget off: stopped by the deadline", async () => {
      const { app, state } = appFor({ MAX_REQUEST_EVALUATIONS: '0' });
      const res = await request(app)
        .post('/v1/models/slow/explain')
        .send({ instances: rowsJson(table(100, 13)), parameters: { nSamples: 100000, deadlineMs: 1000 } });
      assert.ok(res.status === 200 || res.status === 503, JSON.stringify(res.body).slice(0, 300));
      if (res.status === 200) assert.ok(res.body.explanations.every((e: any) => e.stopReason === 'deadline'));
      assert.ok(state.calls <= maxCalls(1000), `${state.calls} model calls for a 1000 ms deadline`);
      await noCallsAfter(state);
    });

    it('integrated gradients: stopped the same way', async () => {
      const { app, state } = appFor();
      const res = await request(app)
        .post('/v1/models/slow/explain')
        .send({
          instances: rowsJson(table(200, 17)),
          method: 'integrated-gradients',
          parameters: { steps: 'auto', method: 'gauss-legendre', tolerance: 0, maxSteps: 4096, deadlineMs: 200 },
        });
      if (res.status === 200) assert.ok(res.body.explanations.every((e: any) => e.stopReason === 'deadline'));
      else assert.equal(res.body.error.code, 'DEADLINE_EXCEEDED');
      assert.ok(state.calls <= maxCalls(200), `${state.calls} model calls for a 200 ms deadline`);
      await noCallsAfter(state);
    });

    it('fairness: the group metrics are answered, the attributions stop at the deadline (stopReason deadline)', async () => {
      const { app, state } = appFor();
      const res = await request(app)
        .post('/v1/models/slow/fairness')
        .send({ bootstrap: { n: 20 }, attributions: { sampleSize: 200, nSamples: 4000, maxBackground: 50 }, deadlineMs: 400 });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.stopReason, 'deadline');
      assert.ok(res.body.outcomes[0].breakdowns.length >= 1);
      assert.ok(
        res.body.notes.some((n: string) => /deadline/.test(n)),
        res.body.notes.join(' | '),
      );
      assert.ok(state.calls <= maxCalls(400), `${state.calls} model calls for a 400 ms deadline`);
      await noCallsAfter(state);
    });

    it('drift: attribution drift stops at the deadline (stopReason deadline), input drift is answered', async () => {
      const { app, state } = appFor();
      const res = await request(app)
        .post('/v1/models/slow/drift')
        .send({ current: rowsJson(table(300, 21)), attributions: { sampleSize: 200, nSamples: 4000 }, deadlineMs: 300 });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.stopReason, 'deadline');
      assert.equal(res.body.features.length, D);
      assert.ok(state.calls <= maxCalls(300), `${state.calls} model calls for a 300 ms deadline`);
      await noCallsAfter(state);
    });

    it("importance: 503 at the deadline (no partial importances), and the server's DEADLINE_MS applies when the request gives none", async () => {
      const { app, state } = appFor();
      const res = await request(app).post('/v1/models/slow/importance').send({ repeats: 100, deadlineMs: 100 });
      assert.equal(res.status, 503, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.error.code, 'DEADLINE_EXCEEDED');
      assert.ok(state.calls <= maxCalls(100), `${state.calls} model calls for a 100 ms deadline`);

      const server = appFor({ DEADLINE_MS: '100' });
      const byDefault = await request(server.app).post('/v1/models/slow/importance').send({ repeats: 100 });
      assert.equal(byDefault.status, 503);
      assert.ok(server.state.calls <= maxCalls(100), `${server.state.calls} model calls for DEADLINE_MS=100`);
      await noCallsAfter(server.state);
    });
  });

  describe('admission control: TOO_EXPENSIVE before any model call', () => {
    const check = (res: request.Response, estimate: number) => {
      assert.equal(res.status, 422, JSON.stringify(res.body).slice(0, 400));
      assert.equal(res.body.error.code, 'TOO_EXPENSIVE');
      assert.equal(res.body.error.details.estimate, estimate);
      assert.equal(res.body.error.details.limit, 100_000_000);
      assert.match(res.body.error.message, /100 million model evaluations/);
      assert.match(res.body.error.message, /POST \/v1\/jobs/);
    };

    it('explain: instances x coalitions x background rows', async () => {
      const { app, state } = appFor();
      const res = await request(app)
        .post('/v1/models/slow/explain')
        .send({ instances: rowsJson(table(1000, 5)), parameters: { nSamples: 100000 } });
      // 12 players: min(100000, 2^12 - 2) = 4094 coalitions x 50 background rows (+1) per instance, + 50.
      check(res, 1000 * (4094 * 50 + 1) + 50);
      assert.match(res.body.error.message, /1000 instance\(s\) x 4094 coalitions x 50 background rows/);
      const ig = await request(app)
        .post('/v1/models/slow/explain')
        .send({
          instances: rowsJson(table(1000, 5)),
          method: 'integrated-gradients',
          parameters: { steps: 4096, baseline: rowsJson(table(30, 9)) },
        });
      // Per instance: 30 baseline paths x 4096 points (one gradient pass: one output), + the instance and the 30 baselines predicted.
      check(ig, 1000 * (30 * 4096 + 31));
      assert.equal(state.calls, 0);
    });

    it('fairness, drift and importance: their own estimates', async () => {
      const { app, state } = appFor({ BODY_LIMIT: '50mb' });
      const fairness = await request(app)
        .post('/v1/models/slow/fairness')
        .send({ attributions: { sampleSize: 2000, nSamples: 100000, maxBackground: 50 } });
      check(fairness, 2000 + (2000 * (4094 * 50 + 1) + 50));
      const drift = await request(app)
        .post('/v1/models/slow/drift')
        .send({ current: rowsJson(table(1000, 2)), attributions: { sampleSize: 1000, nSamples: 100000 } });
      check(drift, 3000 + 2 * (1000 * (4094 * 50 + 1) + 50));
      const importance = await request(app)
        .post('/v1/models/slow/importance')
        .send({ data: rowsJson(table(100000, 4)), labels: new Array(100000).fill(1), repeats: 100 });
      check(importance, 100000 * (1 + 100 * 12));
      assert.equal(state.calls, 0);
    });

    it('the budget is configurable (MAX_REQUEST_EVALUATIONS; 0 turns it off); cheap requests pass; jobs are not held to it', async () => {
      const body = { instances: rowsJson(table(3, 5)), parameters: { nSamples: 200 } };
      const tight = appFor({ MAX_REQUEST_EVALUATIONS: '20000' });
      // 3 x (200 x 50 + 1) + 50 = 30053 > 20000.
      const refused = await request(tight.app).post('/v1/models/slow/explain').send(body);
      assert.equal(refused.status, 422);
      assert.equal(refused.body.error.details.estimate, 30053);
      assert.equal(refused.body.error.details.limit, 20000);
      const one = await request(tight.app)
        .post('/v1/models/slow/explain')
        .send({ ...body, instances: body.instances.slice(0, 1) });
      assert.equal(one.status, 200, JSON.stringify(one.body).slice(0, 300));
      const off = appFor({ MAX_REQUEST_EVALUATIONS: '0' });
      assert.equal((await request(off.app).post('/v1/models/slow/explain').send(body)).status, 200);

      const dir = await mkdtemp(path.join(os.tmpdir(), 'bounded-jobs-'));
      try {
        const { m } = servedSlow();
        const registry = { models: new Map([['slow', m]]), errors: [] };
        const runner = new LocalJobRunner({ dir, executor: inlineExecutor(registry), sync: false });
        await runner.start();
        const withJobs = createApp({
          registry,
          config: testConfig({ MAX_REQUEST_EVALUATIONS: '20000' }),
          backend: 'js',
          jobRunner: runner,
        });
        const job = await request(withJobs)
          .post('/v1/jobs')
          .send({ model: 'slow', instances: body.instances, parameters: { nSamples: 200 } });
        assert.equal(job.status, 202, JSON.stringify(job.body));
        const done = await runner.waitFor(job.body.id);
        assert.equal(done.status, 'succeeded');
        await runner.stop();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('cached instances cost nothing: a request refused cold is answered once its instances are cached', async () => {
      // nSamples above 2^12 - 2: exact enumeration (converged, so cached), 4094 x 50 + 1 evaluations per instance.
      const { app } = appFor({ MAX_REQUEST_EVALUATIONS: '300000' });
      const rows = rowsJson(table(3, 8));
      const cold = await request(app)
        .post('/v1/models/slow/explain')
        .send({ instances: rows, parameters: { nSamples: 5000 } });
      assert.equal(cold.status, 422);
      for (const r of rows) {
        const one = await request(app)
          .post('/v1/models/slow/explain')
          .send({ instances: [r], parameters: { nSamples: 5000 } });
        assert.equal(one.status, 200);
      }
      const all = await request(app)
        .post('/v1/models/slow/explain')
        .send({ instances: rows, parameters: { nSamples: 5000 } });
      assert.equal(all.status, 200, JSON.stringify(all.body).slice(0, 300));
      assert.equal(all.headers['x-cache'], 'HIT');
    });
  });

  describe('cancellation when the client goes away', () => {
    it('stops the running explanation at its next model call and counts it in /metrics', async () => {
      let client: http.ClientRequest | undefined;
      const K = 3;
      const { app, state } = appFor({}, (calls) => {
        if (calls === K) client?.destroy(); // the client leaves while the model is at its K-th call
      });
      const server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      try {
        const port = (server.address() as AddressInfo).port;
        const body = JSON.stringify({
          instances: rowsJson(table(100, 19)),
          parameters: { nSamples: 4000, tolerance: 1e-9, deadlineMs: 60000 },
        });
        client = http.request({
          port,
          host: '127.0.0.1',
          path: '/v1/models/slow/explain',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
        });
        client.on('error', () => undefined);
        client.end(body);
        // Wait (bounded) for the server to see the disconnect and the task to stop.
        let metrics = '';
        for (let i = 0; i < 200; i++) {
          metrics = (await request(app).get('/metrics')).text;
          if (/worker_tasks_cancelled_total\{kind="explain",stage="running"\} 1/.test(metrics)) break;
          await sleep(25);
        }
        assert.match(metrics, /http_requests_aborted_total 1/);
        assert.match(metrics, /worker_tasks_cancelled_total\{kind="explain",stage="running"\} 1/);
        assert.ok(state.calls <= K + 1, `${state.calls} model calls; the client left at call ${K}`);
        await noCallsAfter(state);
      } finally {
        server.close();
      }
    });
  });
  describe('effects, counterfactuals and recourse: the same bounds', () => {
    it('effects: 503 DEADLINE_EXCEEDED at the deadline (no partial features), calls bounded, none after', async () => {
      const { app, state } = appFor();
      const res = await request(app)
        .post('/v1/models/slow/effects')
        .send({ kind: 'pd', features: ['x1', 'x2', 'x3', 'x4'], parameters: { resolution: 50, deadlineMs: 200 } });
      assert.equal(res.status, 503, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.error.code, 'DEADLINE_EXCEEDED');
      assert.ok(state.calls >= 1 && state.calls <= maxCalls(200), `${state.calls} model calls for a 200 ms deadline`);
      await noCallsAfter(state);
    });

    it('counterfactuals: what was found by the deadline, marked deadline; calls bounded, none after', async () => {
      const { app, state } = appFor();
      // 1 s (the whole search takes about 60 calls, 1.2 s): the guard's slices (1/40 of the time left)
      // stay above this model's 20 ms per call, so the search sees its deadline between its own calls
      // before the hard one.
      const res = await request(app)
        .post('/v1/models/slow/counterfactuals')
        // An outcome the sigmoid never reaches: the search spends what it is given.
        .send({ instances: rowsJson(table(5, 23)), desired: { range: [1.5, null] }, parameters: { maxEvaluations: 1_000_000, deadlineMs: 1000 } });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      assert.ok(
        res.body.explanations.some((e: any) => e.stopReason === 'deadline'),
        JSON.stringify(res.body.explanations.map((e: any) => e.stopReason)),
      );
      assert.ok(state.calls <= maxCalls(1000), `${state.calls} model calls for a 1000 ms deadline`);
      await noCallsAfter(state);
    });

    it('TOO_EXPENSIVE before any model call: effects (grid points x rows; Kernel SHAP per dependence row), counterfactuals, recourse', async () => {
      const { app, state } = appFor({ MAX_REQUEST_EVALUATIONS: '50000' });
      const refused = (res: request.Response, estimate: number) => {
        assert.equal(res.status, 422, JSON.stringify(res.body).slice(0, 400));
        assert.equal(res.body.error.code, 'TOO_EXPENSIVE');
        assert.equal(res.body.error.details.estimate, estimate);
        assert.equal(res.body.error.details.limit, 50000);
      };
      // x1 takes more than 30 distinct values in the 2000 reference rows: a 30-point grid over every row.
      refused(await request(app).post('/v1/models/slow/effects').send({ kind: 'pd', features: ['x1'], parameters: { resolution: 30 } }), 30 * 2000);
      // Dependence: Kernel SHAP on the 200 rows sampled (12 players, nSamples auto: 2 x 12 + 2048 coalitions x 50
      // background rows, + 1 each), + the background.
      refused(await request(app).post('/v1/models/slow/effects').send({ kind: 'dependence', features: ['x1'] }), 200 * (2072 * 50 + 1) + 50);
      // Counterfactuals: a search of up to maxEvaluations per instance (+ the instance), + the 2000 reference rows once.
      refused(
        await request(app)
          .post('/v1/models/slow/counterfactuals')
          .send({ instances: rowsJson(table(10, 29)), desired: { class: 'opposite' }, parameters: { maxEvaluations: 5000 } }),
        10 * 5001 + 2000,
      );
      // Recourse in a fairness report: 1000 rows assessed x (2000 + 1) + the reference, on top of the 2000 rows predicted.
      refused(await request(app).post('/v1/models/slow/fairness').send({ attributions: false, recourse: true }), 2000 + (1000 * 2001 + 2000));
      assert.equal(state.calls, 0);
      // Cheap ones pass: a 10-point PD over 200 rows, one counterfactual search of 100.
      const pd = await request(app)
        .post('/v1/models/slow/effects')
        .send({ kind: 'pd', features: ['x1'], data: rowsJson(table(200, 31)), parameters: { resolution: 10 } });
      assert.equal(pd.status, 200, JSON.stringify(pd.body).slice(0, 300));
      assert.ok(pd.body.modelEvaluations <= 10 * 200, `${pd.body.modelEvaluations} model rows`);
    });

    it('effects and counterfactuals stop when their client leaves', async () => {
      for (const [route, body] of [
        ['effects', { kind: 'ice', features: ['x1', 'x2', 'x3', 'x4', 'x5'], parameters: { resolution: 50, deadlineMs: 60000 } }],
        ['counterfactuals', { instances: rowsJson(table(20, 37)), desired: { class: 'opposite' }, parameters: { maxEvaluations: 100000, deadlineMs: 60000 } }],
      ] as const) {
        let client: http.ClientRequest | undefined;
        const K = 3;
        const { app, state } = appFor({}, (calls) => {
          if (calls === K) client?.destroy();
        });
        const server = app.listen(0, '127.0.0.1');
        await new Promise((r) => server.once('listening', r));
        try {
          const port = (server.address() as AddressInfo).port;
          client = http.request({ port, host: '127.0.0.1', path: `/v1/models/slow/${route}`, method: 'POST', headers: { 'content-type': 'application/json' } });
          client.on('error', () => undefined);
          client.end(JSON.stringify(body));
          const kind = route === 'effects' ? 'effects' : 'counterfactuals';
          let metrics = '';
          for (let i = 0; i < 200; i++) {
            metrics = (await request(app).get('/metrics')).text;
            if (new RegExp(`worker_tasks_cancelled_total\\{kind="${kind}",stage="running"\\} 1`).test(metrics)) break;
            await sleep(25);
          }
          assert.match(metrics, new RegExp(`worker_tasks_cancelled_total\\{kind="${kind}",stage="running"\\} 1`), route);
          assert.ok(state.calls <= K + 1, `${route}: ${state.calls} model calls; the client left at call ${K}`);
          await noCallsAfter(state);
        } finally {
          server.close();
        }
      }
    });
  });
});
