/**
 * Text: the tokenizer contract, the text sample (planted trigger words), and token attributions
 * (Integrated Gradients in the embedding space, Partition and Kernel SHAP over tokens) held to the
 * planted truth and to completeness / efficiency.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tokenIntegratedGradients, tokenShap } from '../explainers/text/tokenAttributions.js';
import { ExplainerInputError } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { encodeTexts, parseTokenizer, splitTokens } from '../models/tokenizer.js';

const TEXT = path.resolve('samples/models/text');
const isCode = (code: string) => (e: unknown) => e instanceof ExplainerInputError && e.code === code;

interface Sentence {
  text: string;
  label: number;
  trigger: string;
  triggerPosition: number;
}

describe('text: tokenizer', () => {
  const tok = parseTokenizer({ maxLength: 5, vocabulary: ['[PAD]', '[UNK]', '[MASK]', 'good', 'film', "isn't", '!'] });

  it('lower-cases, splits words and punctuation, maps unknown words to [UNK], cuts and pads', () => {
    assert.deepEqual(splitTokens(tok, "A GOOD film, isn't it!"), ['a', 'good', 'film', ',', "isn't", 'it', '!']);
    const e = encodeTexts(tok, ['Good film!', "a good film isn't it !"]);
    assert.deepEqual(Array.from(e.rows.data.subarray(0, 5)), [3, 4, 6, 0, 0]);
    assert.deepEqual(Array.from(e.rows.data.subarray(5, 10)), [1, 3, 4, 5, 1]);
    assert.deepEqual(e.tokens[1], ['a', 'good', 'film', "isn't", 'it']);
    assert.deepEqual(e.truncated, [0, 1]);
  });

  it('empty text, non-strings and bad tokenizer files are refused with clear errors', () => {
    assert.throws(() => encodeTexts(tok, ['   ']), isCode('EMPTY_TEXT'));
    assert.throws(() => encodeTexts(tok, [42]), isCode('BAD_INSTANCES'));
    assert.throws(() => encodeTexts(tok, []), isCode('BAD_INSTANCES'));
    assert.throws(() => parseTokenizer({ maxLength: 3, vocabulary: ['a', 'b', 'c'] }), /pad token "\[PAD\]" is not in the vocabulary/);
    assert.throws(() => parseTokenizer({ maxLength: 0, vocabulary: ['[PAD]', '[UNK]', '[MASK]'] }), /maxLength/);
  });
});

describe('text: token attributions on the text sample', function () {
  this.timeout(300_000);
  let loaded: LoadedModel;
  let held: Sentence[];

  before(async () => {
    await selectBackend('wasm');
    loaded = await loadModelFolder('text', TEXT);
    held = (JSON.parse(await readFile(path.join(TEXT, 'sentences.json'), 'utf8')) as { sentences: Sentence[] }).sentences.slice(0, 60);
  });
  after(() => loaded?.model.dispose());

  it('expected.json: the texts tokenize to the rows the build wrote, and the model reproduces its predictions', async () => {
    const expected = JSON.parse(await readFile(path.join(TEXT, 'expected.json'), 'utf8')) as { texts: string[]; rows: number[][]; predictions: number[][] };
    const enc = encodeTexts(loaded.tokenizer!, expected.texts);
    assert.deepEqual(Array.from(enc.rows.data), expected.rows.flat());
    const out = await loaded.model.predict(enc.rows);
    expected.predictions.forEach((p, i) => p.forEach((v, j) => assert.ok(Math.abs(out[i * 2 + j] - v) <= 1e-6, `row ${i} output ${j}`)));
  });

  it('loads with its tokenizer and classifies the held-out sentences', async () => {
    assert.equal(loaded.tokenizer?.maxLength, 12);
    const enc = encodeTexts(loaded.tokenizer!, held.map((s) => s.text));
    const p = await loaded.model.predict(enc.rows);
    held.forEach((s, i) => assert.equal(p[2 * i + 1] > 0.5 ? 1 : 0, s.label, s.text));
  });

  it('Integrated Gradients on the embedding layer: complete, the planted trigger ranks first, tokens listed in order with positions', async () => {
    const enc = encodeTexts(loaded.tokenizer!, held.map((s) => s.text));
    const before = tf.memory().numTensors;
    // Each sentence explained for its own class: one call per class.
    for (const label of [0, 1]) {
      const idx = held.map((s, i) => (s.label === label ? i : -1)).filter((i) => i >= 0);
      const rows = { data: Float32Array.from(idx.flatMap((i) => Array.from(enc.rows.data.subarray(i * 12, (i + 1) * 12)))), n: idx.length, d: 12 };
      const e = await tokenIntegratedGradients(loaded.model, rows, { space: loaded.space, outputs: [label], tokens: idx.map((i) => enc.tokens[i]), baselineId: loaded.tokenizer!.padId });
      idx.forEach((i, k) => {
        const out = e.explanations[k].outputs[0];
        assert.deepEqual(out.attributions.map((a) => a.feature), enc.tokens[i]);
        assert.deepEqual(out.attributions.map((a) => a.position), enc.tokens[i].map((_, p) => p));
        const delta = out.instanceOutputValue - out.baselineOutputValue;
        assert.ok(Math.abs(out.approximationError) <= 1e-3 * Math.max(1, Math.abs(delta)), `completeness gap ${out.approximationError}`);
        const best = out.attributions.reduce((b, x) => (x.attribution > b.attribution ? x : b));
        assert.equal(best.feature, held[i].trigger, held[i].text);
        assert.equal(best.position, held[i].triggerPosition);
      });
    }
    assert.equal(tf.memory().numTensors, before);
    await assert.rejects(
      tokenIntegratedGradients(loaded.model, { data: enc.rows.data.subarray(0, 12), n: 1, d: 12 }, { space: loaded.space, tokens: [enc.tokens[0]], baselineId: 0, layer: 'embeddings_typo' }),
      isCode('UNKNOWN_LAYER'),
    );
  });

  for (const algorithm of ['partition', 'kernel'] as const) {
    it(`${algorithm} SHAP over tokens with the [MASK] token: the trigger ranks first and the values add up`, async () => {
      const enc = encodeTexts(loaded.tokenizer!, held.map((s) => s.text));
      let first = 0;
      for (const label of [0, 1]) {
        const idx = held.map((s, i) => (s.label === label ? i : -1)).filter((i) => i >= 0);
        const rows = { data: Float32Array.from(idx.flatMap((i) => Array.from(enc.rows.data.subarray(i * 12, (i + 1) * 12)))), n: idx.length, d: 12 };
        const e = await tokenShap(loaded.model, rows, { space: loaded.space, outputs: [label], tokens: idx.map((i) => enc.tokens[i]), maskId: loaded.tokenizer!.maskId, algorithm, seed: 1 });
        idx.forEach((i, k) => {
          const out = e.explanations[k].outputs[0];
          const sum = out.attributions.reduce((s, a) => s + a.attribution, 0);
          assert.ok(Math.abs(sum - (out.instanceOutputValue - out.baselineOutputValue)) < 1e-5, 'efficiency');
          assert.equal(held[i].label, label);
          const best = out.attributions.reduce((b, x) => (x.attribution > b.attribution ? x : b));
          if (best.position === held[i].triggerPosition && best.feature === held[i].trigger) first++;
        });
      }
      assert.equal(first, held.length, `trigger first in ${first} of ${held.length}`);
    });
  }
});
