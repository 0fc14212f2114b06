/**
 * The sample models written by `npm run samples` (samples/build.ts): folder contents, valid
 * metadata, CSV shapes, and expected.json reproduced by the saved model.json + weights.bin.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { parseMetadata } from '../models/metadata.js';
import { loadLayersModel } from '../samples/lib/nn.js';

const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'samples', 'models');
const NAMES = ['credit', 'penguins', 'cars', 'shapes', 'linear'];

function readCsv(file: string): { header: string[]; rows: number[][] } {
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  return { header: lines[0].split(','), rows: lines.slice(1).map((l) => l.split(',').map(Number)) };
}

describe('sample models (samples/build.ts)', () => {
  before(async () => {
    if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
    await tf.ready();
  });

  for (const name of NAMES) {
    describe(name, () => {
      const dir = join(ROOT, name);
      const meta = () => parseMetadata(JSON.parse(readFileSync(join(dir, 'metadata.json'), 'utf8')));

      it('has every file, small', () => {
        for (const f of ['model.json', 'weights.bin', 'metadata.json', 'background.csv', 'reference.csv', 'expected.json'])
          assert.ok(existsSync(join(dir, f)), `${name}/${f} missing`);
        const total = ['model.json', 'weights.bin', 'metadata.json', 'background.csv', 'reference.csv', 'expected.json', 'masks.json']
          .filter((f) => existsSync(join(dir, f)))
          .reduce((s, f) => s + statSync(join(dir, f)).size, 0);
        assert.ok(total < 1_000_000, `${name} is ${total} bytes`);
      });

      it('has a layers-model model.json with one weights.bin', () => {
        const m = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
        assert.equal(m.format, 'layers-model');
        assert.deepEqual(m.weightsManifest.map((g: { paths: string[] }) => g.paths), [['weights.bin']]);
        const bytes = m.weightsManifest[0].weights.reduce((s: number, w: { shape: number[] }) => s + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
        assert.equal(statSync(join(dir, 'weights.bin')).size, bytes);
      });

      it('has valid metadata whose files match it', () => {
        const m = meta();
        assert.equal(m.background, 'background.csv');
        assert.equal(m.reference, 'reference.csv');
        const names = m.features ? m.features.map((f) => f.name) : null;
        const bg = readCsv(join(dir, 'background.csv'));
        const ref = readCsv(join(dir, 'reference.csv'));
        assert.equal(bg.rows.length, 100);
        assert.ok(ref.rows.length >= 98 && ref.rows.length <= 1000, `${ref.rows.length} reference rows`);
        if (names) assert.deepEqual(bg.header, names);
        assert.deepEqual(ref.header, [...bg.header, m.label]);
        for (const r of [...bg.rows, ...ref.rows]) assert.ok(r.every(Number.isFinite), 'non-numeric CSV cell');
        if (m.classes && m.task === 'multiclass-classification')
          for (const r of ref.rows) assert.ok(Number.isInteger(r[r.length - 1]) && r[r.length - 1] < m.classes.length);
      });

      it('reproduces expected.json from the saved files', async () => {
        const m = meta();
        const exp = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
        assert.ok(exp.rows.length >= 10 && exp.rows.length <= 20);
        const shape: number[] = m.inputShape ?? [m.features!.length];
        const model = await loadLayersModel(dir);
        const before = tf.memory().numTensors;
        const x = tf.tensor(exp.rows.flat(), [exp.rows.length, ...shape]);
        const y = model.predict(x, { batchSize: 64 }) as tf.Tensor;
        const got = y.arraySync() as number[][];
        tf.dispose([x, y]);
        assert.equal(tf.memory().numTensors, before);
        model.dispose();
        assert.equal(got[0].length, m.outputs.length);
        got.forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - exp.predictions[i][j]) <= 1e-6, `${name} row ${i} output ${j}: ${v} vs ${exp.predictions[i][j]}`)));
      });
    });
  }

  it('credit documents its drivers, bias, proxy and no-effect feature', () => {
    const notes = parseMetadata(JSON.parse(readFileSync(join(ROOT, 'credit', 'metadata.json'), 'utf8'))).notes as Record<string, any>;
    assert.deepEqual(notes.true_drivers.strong, ['income', 'debt_ratio', 'late_payments']);
    assert.equal(notes.true_drivers.planted_bias.feature, 'sex');
    assert.equal(notes.true_drivers.proxy.feature, 'part_time');
    assert.ok(notes.true_drivers.proxy.correlation_with_sex > 0.6 && notes.true_drivers.proxy.correlation_with_sex < 0.8);
    assert.deepEqual(notes.true_drivers.no_effect, ['application_weekday']);
    assert.ok(notes.fairness_facts.model_selection_rate_male - notes.fairness_facts.model_selection_rate_female > 0.1);
  });

  it('shapes has 20 object masks of 16 x 16', () => {
    const masks = JSON.parse(readFileSync(join(ROOT, 'shapes', 'masks.json'), 'utf8'));
    assert.equal(masks.masks.length, 20);
    const ref = readCsv(join(ROOT, 'shapes', 'reference.csv'));
    masks.masks.forEach((m: number[][], i: number) => {
      assert.equal(m.length, 16);
      assert.ok(m.every((r) => r.length === 16 && r.every((v) => v === 0 || v === 1)));
      assert.equal(masks.labels[i], ref.rows[i][256]);
      // object pixels are bright, the rest is low noise
      const flat = m.flat();
      const on = flat.flatMap((v, k) => (v ? [ref.rows[i][k]] : []));
      const off = flat.flatMap((v, k) => (v ? [] : [ref.rows[i][k]]));
      assert.ok(Math.min(...on) > 0.4 && Math.max(...off) < 0.4);
    });
  });

  it('linear stores w and b that are its weights', async () => {
    const notes = parseMetadata(JSON.parse(readFileSync(join(ROOT, 'linear', 'metadata.json'), 'utf8'))).notes as Record<string, any>;
    const model = await loadLayersModel(join(ROOT, 'linear'));
    const [k, b] = model.getWeights().map((t) => Array.from(t.dataSync()));
    model.dispose();
    assert.deepEqual(k, notes.w);
    assert.equal(b[0], notes.b);
  });
});
