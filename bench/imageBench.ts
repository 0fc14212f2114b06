/**
 * Image and text explainers: milliseconds per explained instance for each method, and the same as a
 * ratio to one raw predict of as many rows as the method sent to the model (predict and gradient rows
 * together; a gradient row costs ~2-4 predict rows), measured in the same run. On the shapes (16x16) and text samples always; on a
 * real MobileNetV2 at 224x224 (nsfwjs, a devDependency) with BENCH_MOBILENET=1 (~10 min on 2 cores):
 * images/s for predict, s/image per method, IG's completeness gap against its step count, and the
 * input gradient on wasm (graph.ts) against tf.grad on the cpu backend (BENCH_MOBILENET_CPU=1, ~1 min).
 *
 * `npx tsx bench/imageBench.ts` runs it alone; bench/index.ts runs it too.
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { expectedGradients, gradCam, occlusion, smoothGrad, superpixelShap, xrai } from '../explainers/image/index.js';
import { integratedGradients } from '../explainers/integratedGradients.js';
import { tokenIntegratedGradients, tokenShap } from '../explainers/text/index.js';
import type { Explanation, Model, Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { encodeTexts } from '../models/tokenizer.js';
import { mobileNetFolder } from '../test/helpers/mobilenet.js';

const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

interface MethodCase {
  name: string;
  /** Whether the method needs gradients (for the reader; the baseline is always a raw predict). */
  gradient: boolean;
  run: (x: Rows, o: number) => Promise<Explanation>;
}

function rowsOf(src: Rows, k: number): Rows {
  const data = new Float32Array(k * src.d);
  for (let i = 0; i < k; i++) data.set(src.data.subarray((i % src.n) * src.d, ((i % src.n) + 1) * src.d), i * src.d);
  return { data, n: k, d: src.d };
}

/** Median of 5 raw predicts of `rows` rows in one call. */
async function rawMs(model: Model, x: Rows, rows: number): Promise<number> {
  const r = rowsOf(x, Math.max(1, Math.round(rows)));
  await model.predict(r);
  const times: number[] = [];
  for (let k = 0; k < 5; k++) {
    const t0 = performance.now();
    await model.predict(r);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[2];
}

async function table(title: string, model: Model, images: Rows, outputs: number[], cases: MethodCase[]): Promise<void> {
  console.log(`\n### ${title}\n`);
  console.log('| method | needs gradients | ms / instance | model rows / instance | one raw predict of those rows, ms | ratio |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const c of cases) {
    let ms = 0;
    let rows = 0;
    for (let i = 0; i < images.n; i++) {
      const x = { data: images.data.subarray(i * images.d, (i + 1) * images.d), n: 1, d: images.d };
      const t0 = performance.now();
      const e = await c.run(x, outputs[i]);
      ms += performance.now() - t0;
      rows += e.explanations[0].modelEvaluations;
    }
    ms /= images.n;
    rows /= images.n;
    const raw = await rawMs(model, images, rows);
    console.log(`| ${c.name} | ${c.gradient ? 'yes' : 'no'} | ${fmt(ms)} | ${Math.round(rows)} | ${fmt(raw)} | ${fmt(ms / raw, 2)} |`);
  }
}

export async function imageBench(opts: { quick?: boolean } = {}): Promise<void> {
  const n = opts.quick ? 4 : 10;
  const shapes = await loadModelFolder('shapes', 'samples/models/shapes');
  const ref = shapes.reference!;
  const images: Rows = { data: ref.rows.data.slice(0, n * ref.rows.d), n, d: ref.rows.d };
  const labels = Array.from(ref.labels.subarray(0, n));
  const m = shapes.model;
  const space = shapes.space;
  const bg = shapes.background!;
  await table(`shapes (16x16x1), ${n} images, explaining the true class`, m, images, labels, [
    { name: 'integrated-gradients (auto)', gradient: true, run: (x, o) => integratedGradients(m, x, { space, outputs: [o] }) },
    { name: 'smoothgrad (gradient, 32 samples)', gradient: true, run: (x, o) => smoothGrad(m, x, { space, outputs: [o] }) },
    { name: 'smoothgrad (IG 32 steps, 8 samples)', gradient: true, run: (x, o) => smoothGrad(m, x, { space, outputs: [o], base: 'integrated-gradients', samples: 8, integratedGradients: { steps: 32 } }) },
    { name: 'expected-gradients (64 samples)', gradient: true, run: (x, o) => expectedGradients(m, x, { space, outputs: [o], background: bg }) },
    { name: 'grad-cam', gradient: true, run: (x, o) => gradCam(m, x, { space, outputs: [o] }) },
    { name: 'occlusion (2x2, stride 1)', gradient: false, run: (x, o) => occlusion(m, x, { space, outputs: [o], window: [2, 2], strides: [1, 1] }) },
    { name: 'partition-shap (32 superpixels, 500 evals)', gradient: false, run: (x, o) => superpixelShap(m, x, { space, outputs: [o], segments: 32 }) },
    { name: 'kernel-shap (32 superpixels)', gradient: false, run: (x, o) => superpixelShap(m, x, { space, outputs: [o], segments: 32, algorithm: 'kernel' }) },
    { name: 'xrai (IG 2 baselines + 4 SLIC scales)', gradient: true, run: (x, o) => xrai(m, x, { space, outputs: [o] }) },
  ]);
  m.dispose();

  const text = await loadModelFolder('text', 'samples/models/text');
  const tok = text.tokenizer!;
  const sentences = ['we watched the film yesterday and it was wonderful', 'the plot was long and the ending was awful', 'a brilliant cast with the music of the first part'];
  const enc = encodeTexts(tok, sentences);
  console.log(`\n### text sample (12 token ids), ${sentences.length} sentences\n`);
  console.log('| method | ms / sentence | model rows / sentence |');
  console.log('| --- | ---: | ---: |');
  for (const [name, run] of [
    ['integrated-gradients on the embedding (64 points)', () => tokenIntegratedGradients(text.model, enc.rows, { space: text.space, outputs: [1], tokens: enc.tokens, baselineId: tok.padId })],
    ['partition-shap over tokens', () => tokenShap(text.model, enc.rows, { space: text.space, outputs: [1], tokens: enc.tokens, maskId: tok.maskId })],
    ['kernel-shap over tokens', () => tokenShap(text.model, enc.rows, { space: text.space, outputs: [1], tokens: enc.tokens, maskId: tok.maskId, algorithm: 'kernel' })],
  ] as const) {
    const t0 = performance.now();
    const e = await run();
    const ms = (performance.now() - t0) / sentences.length;
    console.log(`| ${name} | ${fmt(ms, 2)} | ${Math.round(e.explanations.reduce((s, x) => s + x.modelEvaluations, 0) / sentences.length)} |`);
  }
  text.model.dispose();

  if (process.env.BENCH_MOBILENET === '1') await mobileNetBench();
}

/** A synthetic 224x224 RGB image (no photos): colour ramps and a bright disc. */
function syntheticImage(shift: number): Float32Array {
  const px = new Float32Array(224 * 224 * 3);
  for (let y = 0; y < 224; y++)
    for (let x = 0; x < 224; x++) {
      const disc = (y - 90 - shift) ** 2 + (x - 130 + shift) ** 2 < 1600;
      px[(y * 224 + x) * 3] = (disc ? 250 : x) / 255;
      px[(y * 224 + x) * 3 + 1] = (disc ? 200 : y) / 255;
      px[(y * 224 + x) * 3 + 2] = (disc ? 40 : 128) / 255;
    }
  return px;
}

async function mobileNetBench(): Promise<void> {
  const lm: LoadedModel = await loadModelFolder('mobilenet_v2', await mobileNetFolder());
  const m = lm.model;
  const space = lm.space;
  const d = m.nFeatures;
  const x: Rows = { data: syntheticImage(0), n: 1, d };
  console.log('\n### MobileNetV2 224x224x3 (nsfwjs package, no metadata), wasm\n');
  for (const batch of [1, 8]) {
    const r = rowsOf(x, batch);
    await m.predict(r);
    const t0 = performance.now();
    await m.predict(r);
    console.log(`- predict, batch ${batch}: ${fmt((batch * 1000) / (performance.now() - t0), 2)} images/s`);
  }
  await m.inputGradients(x, 2);
  let t0 = performance.now();
  await m.inputGradients(rowsOf(x, 4), 2);
  const gradMs = (performance.now() - t0) / 4;
  console.log(`- input gradient (graph.ts on wasm): ${fmt(gradMs / 1000, 2)} s/image (batch 4)`);
  if (process.env.BENCH_MOBILENET_CPU === '1') {
    await tf.setBackend('cpu');
    t0 = performance.now();
    const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.slice((m.model as tf.LayersModel).apply(tf.reshape(t, [1, 224, 224, 3]), { training: false }) as tf.Tensor, [0, 2], [-1, 1])))(tf.tensor2d(x.data, [1, d])));
    g.dispose();
    const cpuMs = performance.now() - t0;
    await selectBackend('wasm');
    console.log(`- the alternative, tf.grad over the model on the cpu backend: ${fmt(cpuMs / 1000, 1)} s/image (${fmt(cpuMs / gradMs, 0)}x the wasm graph pass)`);
  }
  console.log('\n| method | s / image | model rows / image |\n| --- | ---: | ---: |');
  const cases: [string, () => Promise<Explanation>][] = [
    ['smoothgrad (gradient, 8 samples)', () => smoothGrad(m, x, { space, outputs: [2], samples: 8 })],
    ['integrated-gradients (32 points, black baseline)', () => integratedGradients(m, x, { space, outputs: [2], steps: 32, method: 'gauss-legendre' })],
    ['expected-gradients (16 samples, 4 random backgrounds)', () => expectedGradients(m, x, { space, outputs: [2], samples: 16, background: { data: Float32Array.from({ length: 4 * d }, (_, k) => ((k * 2654435761) % 1000) / 1000), n: 4, d } })],
    ['grad-cam (last 7x7 map)', () => gradCam(m, x, { space, outputs: [2] })],
    ['occlusion (28x28 window, stride 28)', () => occlusion(m, x, { space, outputs: [2], window: [28, 28], strides: [28, 28] })],
    ['partition-shap (50 superpixels, 200 evals, blur)', () => superpixelShap(m, x, { space, outputs: [2], maxEvaluations: 200 })],
  ];
  for (const [name, run] of cases) {
    t0 = performance.now();
    const e = await run();
    console.log(`| ${name} | ${fmt((performance.now() - t0) / 1000, 1)} | ${e.explanations[0].modelEvaluations} |`);
  }
  console.log('\nIG completeness gap from the black baseline vs points (Gauss-Legendre), output 2:\n');
  console.log('| points | sum(phi) - (f(x) - f(0)) | relative | s |\n| ---: | ---: | ---: | ---: |');
  for (const steps of [16, 64, 256]) {
    t0 = performance.now();
    const e = await integratedGradients(m, x, { space, outputs: [2], steps, method: 'gauss-legendre' });
    const o = e.explanations[0].outputs[0];
    console.log(`| ${steps} | ${fmt(o.approximationError, 4)} | ${fmt(Math.abs(o.approximationError / (o.instanceOutputValue - o.baselineOutputValue)), 3)} | ${fmt((performance.now() - t0) / 1000, 0)} |`);
  }
  m.dispose();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await selectBackend(process.env.TFJS_BACKEND ?? 'wasm');
  console.log('## Image and text explainers');
  await imageBench({ quick: process.env.BENCH_QUICK === '1' });
}
