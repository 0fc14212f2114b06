/**
 * The compute functions behind POST /v1/models/:name/counterfactuals and the recourse part of the
 * fairness report (service/counterfactuals.ts), on the sample models through a Service with the inline
 * executor: the request schema's defaults and limits, names resolved (classes, outputs, groups), the
 * documented response shape, and errors.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { ExplainerInputError, type Rows } from '../explainers/types.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import type { Budget } from '../service/bounds.js';
import { createService, type Service } from '../service/context.js';
import { computeCounterfactuals, computeRecourse } from '../service/counterfactuals.js';
import { ServiceError } from '../service/errors.js';
import { recourseSettingsSchema } from '../service/schemas/counterfactuals.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'samples', 'models');
const firstRows = (rows: Rows, idx: number[]): Rows => {
  const data = new Float32Array(idx.length * rows.d);
  idx.forEach((r, i) => data.set(rows.data.subarray(r * rows.d, (r + 1) * rows.d), i * rows.d));
  return { data, n: idx.length, d: rows.d };
};
const isCode = (code: string, message?: RegExp) => (e: unknown) =>
  (e instanceof ExplainerInputError || e instanceof ServiceError) && e.code === code && (!message || message.test(e.message));

describe('service: counterfactuals', function () {
  this.timeout(300_000);
  let credit: LoadedModel;
  let cars: LoadedModel;
  let svc: Service;
  let schema: Service['schemas']['counterfactuals'];
  before(async () => {
    if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
    await tf.ready();
    credit = await loadModelFolder('credit', join(SAMPLES, 'credit'));
    cars = await loadModelFolder('cars', join(SAMPLES, 'cars'));
    const models = new Map<string, LoadedModel>([
      ['credit', credit],
      ['cars', cars],
    ]);
    svc = createService({ registry: { models, errors: [] }, config: testConfig({ MAX_INSTANCES: '100', MAX_DEADLINE_MS: '60000' }) });
    schema = svc.schemas.counterfactuals;
  });
  after(() => {
    credit.model.dispose();
    cars.model.dispose();
  });

  it('validates the body: defaults, limits, unknown fields', () => {
    const ok = schema.parse({ instances: [[1]] });
    assert.deepEqual(ok.parameters, { k: 3, seed: 0, maxEvaluations: 5000, minPlausibility: 0.01, neighbours: 5, useGradients: true });
    assert.equal(schema.safeParse({ instances: [[1]], parameters: { k: 21 } }).success, false);
    assert.equal(schema.safeParse({ instances: [[1]], parameters: { deadlineMs: 70_000 } }).success, false);
    assert.equal(schema.safeParse({ instances: [[1]], parameters: { nSamples: 10 } }).success, false);
    assert.equal(schema.safeParse({ instances: [] }).success, false);
    assert.equal(schema.safeParse({ instances: [[1]], desired: { range: [1, null] } }).success, true);
    assert.equal(schema.safeParse({ instances: [[1]], desired: { class: 1, range: [1, 2] } }).success, false);
  });

  it('answers per instance {found, counterfactuals: [{values, changes, distance, sparsity, plausibility, valid, prediction}]}', async () => {
    const ref = credit.reference!.rows;
    const p = await credit.model.predict(ref);
    const rejected = [...Array(ref.n).keys()].filter((i) => p[i] < 0.5).slice(0, 4);
    const body = schema.parse({
      instances: rejected.map(() => []),
      desired: { class: 'approved' },
      parameters: { k: 2, seed: 5, immutable: ['housing', 'part_time'] },
    });
    const res = await computeCounterfactuals(svc, credit, {
      ...body,
      instances: rejected.map((i) => Array.from(ref.data.subarray(i * ref.d, (i + 1) * ref.d))),
    });
    const json = JSON.parse(JSON.stringify(res));
    assert.deepEqual(json.model, { name: 'credit', version: credit.version });
    assert.equal(json.explanations.length, 4);
    for (const r of json.explanations) {
      assert.equal(r.found, true);
      assert.deepEqual(r.desired, { class: 1 });
      assert.ok(r.counterfactuals.length >= 1 && r.counterfactuals.length <= 2);
      for (const c of r.counterfactuals) {
        for (const key of ['values', 'changes', 'distance', 'sparsity', 'plausibility', 'valid', 'prediction'])
          assert.ok(key in c, `${key} missing`);
        assert.equal(c.values.length, 14);
        assert.ok(c.valid && c.prediction[0] >= 0.5);
        for (const ch of c.changes) {
          assert.ok(!['housing_rent', 'housing_own', 'housing_mortgage', 'part_time', 'sex'].includes(ch.feature), `${ch.feature} changed`);
          assert.deepEqual(Object.keys(ch).slice(0, 3), ['feature', 'from', 'to']);
        }
      }
    }
    assert.ok(json.scales.find((s: { feature: string }) => s.feature === 'housing').mutable === false);
  });

  it('takes a range with an open end on a regression output named by name', async () => {
    const ref = cars.reference!.rows;
    const p = await cars.model.predict(ref);
    const thirsty = [...Array(ref.n).keys()].filter((i) => p[i] < 18).slice(0, 2);
    const rows = firstRows(ref, thirsty);
    const instances = thirsty.map((_, i) => Array.from(rows.data.subarray(i * rows.d, (i + 1) * rows.d)));
    const body = schema.parse({ instances, desired: { range: [24, null], output: 'mpg' }, parameters: { k: 1 } });
    const res = JSON.parse(JSON.stringify(await computeCounterfactuals(svc, cars, body)));
    for (const r of res.explanations) {
      assert.deepEqual(r.desired, { range: [24, null], output: 0 });
      assert.equal(r.found, true);
      assert.ok(r.counterfactuals[0].prediction[0] >= 24);
    }
  });

  it('turns bad names into 4xx-mappable errors', async () => {
    const x = Array.from(credit.reference!.rows.data.subarray(0, 14));
    const carRow = Array.from(cars.reference!.rows.data.subarray(0, cars.reference!.rows.d));
    const base = schema.parse({ instances: [x] });
    await assert.rejects(
      computeCounterfactuals(svc, credit, { ...base, desired: { class: 'maybe' } }),
      isCode('BAD_DESIRED', /rejected, approved/),
    );
    await assert.rejects(
      computeCounterfactuals(svc, cars, { ...base, instances: [carRow], desired: { range: [1, 2], output: 'kpl' } }),
      isCode('BAD_DESIRED', /mpg/),
    );
    await assert.rejects(
      computeCounterfactuals(svc, credit, { ...base, parameters: { ...base.parameters, immutable: ['salary'] } }),
      isCode('UNKNOWN_FEATURE', /salary/),
    );
    await assert.rejects(computeCounterfactuals(svc, cars, { ...base, instances: [carRow] }), isCode('DESIRED_REQUIRED'));
    const bare = { ...credit, reference: undefined, background: undefined };
    await assert.rejects(computeCounterfactuals(svc, bare, base), isCode('NO_REFERENCE_DATA', /reference or background/));
  });

  it('recourse burden by the declared sensitive feature, groups named from the metadata categories', async () => {
    const settings = recourseSettingsSchema.parse({ bootstrap: { n: 200 }, seed: 1, maxEvaluations: 5000 });
    const now = Date.now();
    const far: Budget = { started: now, deadline: now + 600_000, hard: now + 620_000 };
    const [r] = await computeRecourse(svc, credit, ['sex'], settings, far);
    assert.equal(r.feature, 'sex');
    assert.deepEqual(
      r.groups.map((g) => g.label),
      ['sex=male', 'sex=female'],
    );
    assert.ok(r.groups[1].meanCost.value! > r.groups[0].meanCost.value!);
    await assert.rejects(computeRecourse(svc, credit, ['colour'], settings, far), isCode('UNKNOWN_FEATURE'));
    const [housing] = await computeRecourse(
      svc,
      credit,
      ['housing'],
      recourseSettingsSchema.parse({ bootstrap: { n: 0 } }),
      far,
      firstRows(credit.reference!.rows, [...Array(200).keys()]),
    );
    assert.deepEqual(
      housing.groups.map((g) => g.label),
      ['housing=rent', 'housing=own', 'housing=mortgage'],
    );
  });
});
