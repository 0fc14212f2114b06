/**
 * Every served instance says why it stopped (stopReason), and the cache keeps every answer except
 * one cut short by its deadline: a Kernel SHAP result that spent its whole requested budget is the
 * complete answer to that request, so a repeat is a cache hit. tolerance 0 (spend the whole budget)
 * is accepted over HTTP.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { stopReasonOf } from '../service/stopReason.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

describe('stopReason and the cache', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let app: ReturnType<typeof createApp>;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
  });

  function referenceRows(name: string, n: number, from = 0): number[][] {
    const ref = repo.models.get(name)!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((from + i) * ref.d, (from + i + 1) * ref.d)));
  }

  const explain = (body: object) => request(app).post('/v1/models/credit/explain').send(body);

  it('accepts tolerance 0 (spend the whole budget): stopReason budget, and a repeat is a cache hit', async () => {
    const body = { instances: referenceRows('credit', 3, 10), parameters: { nSamples: 100, tolerance: 0, seed: 3 } };
    const first = await explain(body);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.headers['x-cache'], 'MISS');
    for (const inst of first.body.explanations) {
      assert.equal(inst.stopReason, 'budget');
      assert.equal(inst.converged, false);
    }
    const second = await explain(body);
    assert.equal(second.status, 200);
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.body.cached, true);
    assert.deepEqual(second.body.explanations, first.body.explanations);
  });

  it('an explicit budget that stops before the tolerance is cached like a converged one', async () => {
    // 64 coalitions for 12 players: well short of the default tolerance on most rows.
    const body = { instances: referenceRows('credit', 8, 20), parameters: { nSamples: 64, seed: 1 } };
    const first = await explain(body);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const reasons = first.body.explanations.map((e: { stopReason: string }) => e.stopReason);
    assert.ok(reasons.includes('budget'), `some row should have spent its budget: ${reasons}`);
    for (const inst of first.body.explanations) assert.equal(inst.converged, inst.stopReason !== 'budget');
    const second = await explain(body);
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.body.cached, true);
  });

  it('a result cut short by its deadline says so and is not cached', async () => {
    // 4000 of the 4094 coalitions of 12 players: sampled in rounds, and the deadline passes in the first.
    const body = { instances: referenceRows('credit', 1, 40), parameters: { nSamples: 4000, deadlineMs: 1, seed: 2 } };
    const first = await explain(body);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.explanations[0].stopReason, 'deadline');
    assert.equal(first.body.explanations[0].converged, false);
    const second = await explain(body);
    assert.equal(second.headers['x-cache'], 'MISS');
    assert.equal(second.body.cached, false);
  });

  it('exact enumeration and integration say exact; the GET chart URL and permalinks carry stopReason too', async () => {
    // cars: 7 players (origin is one group), 2^7 - 2 coalitions fit the default budget: enumerated.
    const shap = await request(app).post('/v1/models/cars/explain').send({ instances: referenceRows('cars', 2) });
    assert.equal(shap.status, 200, JSON.stringify(shap.body));
    assert.deepEqual(shap.body.explanations.map((e: { stopReason: string }) => e.stopReason), ['exact', 'exact']);
    const ig = await request(app)
      .post('/v1/models/cars/explain')
      .send({ instances: referenceRows('cars', 1), method: 'integrated-gradients' });
    assert.equal(ig.body.explanations[0].stopReason, 'exact');
    const perm = await request(app).get(`/v1/explanations/${shap.body.id}.json`);
    assert.equal(perm.status, 200);
    assert.equal(perm.body.explanations[0].stopReason, 'exact');
  });

  it('derives the reason the explainer left unset: exact, tolerance, deadline, budget; an explainer-set one wins', () => {
    const inst = (converged: boolean, extra: object = {}) => ({ outputs: [], converged, modelEvaluations: 1, computeMs: 0, ...extra });
    const e = {
      method: 'kernel-shap' as const,
      // Each instance's own facts decide (explainers put them there); a call-wide list is not read.
      explanations: [
        inst(true, { diagnostics: { exact: true } }),
        inst(true, { diagnostics: { exact: false } }),
        inst(false),
        inst(false),
        inst(false, { stopReason: 'budget' as const }),
        inst(true),
      ],
      diagnostics: { instances: [{}, {}, {}, {}, {}, { exact: true }] },
    };
    const past = Date.now() - 1;
    assert.equal(stopReasonOf(e, 0, undefined), 'exact');
    assert.equal(stopReasonOf(e, 1, undefined), 'tolerance');
    assert.equal(stopReasonOf(e, 2, past), 'deadline');
    assert.equal(stopReasonOf(e, 3, Date.now() + 60_000), 'budget');
    assert.equal(stopReasonOf(e, 3, undefined), 'budget');
    assert.equal(stopReasonOf(e, 4, past), 'budget');
    assert.equal(stopReasonOf(e, 5, undefined), 'tolerance');
  });
});
