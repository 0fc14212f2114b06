/**
 * The committed sample models: each loads from samples/models through the real repository and
 * reproduces the predictions its build script saved.
 */
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';

export const SAMPLES = path.resolve('samples/models');
const NAMES = ['cars', 'credit', 'linear', 'penguins', 'shapes'];

describe('sample models', () => {
  let repo: ModelRepository;
  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
  });

  it('all load, with no errors', () => {
    assert.deepEqual(repo.errors, []);
    // text (token ids, no background or reference set) is checked in test/text.test.ts
    assert.deepEqual([...repo.models.keys()].sort(), [...NAMES, 'text'].sort());
  });

  for (const name of NAMES) {
    it(`${name}: predictions match the build script's to 1e-6`, async () => {
      const m = repo.models.get(name)!;
      const expected = JSON.parse(await readFile(path.join(SAMPLES, name, 'expected.json'), 'utf8')) as { rows: number[][]; predictions: number[][] };
      const d = m.model.nFeatures;
      const data = new Float32Array(expected.rows.length * d);
      expected.rows.forEach((r, i) => data.set(r.flat(3) as number[], i * d));
      const before = tf.memory().numTensors;
      const out = await m.model.predict({ data, n: expected.rows.length, d });
      assert.equal(tf.memory().numTensors, before);
      const k = m.model.nOutputs;
      expected.predictions.forEach((p, i) =>
        p.forEach((v, j) => assert.ok(Math.abs(out[i * k + j] - v) <= 1e-6 * Math.max(1, Math.abs(v)), `${name} row ${i} output ${j}: ${out[i * k + j]} vs ${v}`)),
      );
    });

    it(`${name}: has metadata, a background and a labelled reference set`, () => {
      const m = repo.models.get(name)!;
      assert.ok(m.metadata);
      assert.ok(m.background && m.background.n >= 50 && m.background.d === m.model.nFeatures);
      assert.ok(m.reference && m.reference.rows.n === m.reference.labels.length && m.reference.rows.n >= 50);
      assert.match(m.version, /^[0-9a-f]{16}$/);
    });
  }

  it('credit declares its sensitive attribute, the one-hot group and the documented drivers', () => {
    const m = repo.models.get('credit')!;
    assert.ok(m.space.featureNames.length >= 12);
    assert.deepEqual(m.metadata!.sensitiveFeatures, ['sex']);
    const housing = m.space.groups!.find((g) => g.every((i) => m.space.featureNames[i].startsWith('housing_')));
    assert.equal(housing?.length, 3);
  });
});
