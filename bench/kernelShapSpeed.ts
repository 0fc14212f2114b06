/**
 * What Kernel SHAP costs beyond its model calls, on the 20-64-64-3 ReLU MLP (tfjs, wasm) with a
 * background of 50 rows:
 *
 * 1. Overhead: explain time / the time of one raw predict of the same number of rows, per budget. Both
 *    are measured interleaved, many times, and the minimum of each is kept (on a shared machine the
 *    minimum is the run least disturbed by others); CPU time of this process is given too.
 * 2. Rows per request: instances per second at 1, 10 and 100 instances per call (default options:
 *    nSamples 'auto', tolerance 0.01), against one call per instance.
 * 3. Designs: a call whose design is cached (a seed used before) against one that builds it (new seed).
 * 4. The (M-1)-sized regression: the hand-written Cholesky against ml-matrix's.
 *
 *   npx tsx bench/kernelShapSpeed.ts [--reps 9] [--quick 1]
 */
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { kernelShap, type KernelShapSampler } from '../explainers/kernelShap.js';
import { createSampler } from '../explainers/coalitions.js';
import { solveShapleyRegression } from '../explainers/kernelShapRegression.js';
import { seededRng, normal } from '../explainers/random.js';
import type { Model, Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { reluMlp } from './kernelShapModels.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const QUICK = args.get('quick') === '1' || process.env.BENCH_QUICK === '1';
const REPS = Number(args.get('reps') ?? (QUICK ? 5 : 9));
const M = 20;
const B = 50;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const min = (v: number[]) => Math.min(...v);
const fmt = (v: number, digits = 1) => v.toFixed(digits);

await selectBackend('wasm');
const model = await reluMlp(5);
const rng = seededRng(77);
const bg: Rows = { n: B, d: M, data: Float32Array.from({ length: B * M }, () => normal(rng)) };
const space = { featureNames: Array.from({ length: M }, (_, i) => `x${i}`), outputNames: ['y0', 'y1', 'y2'] };
const rowsOf = (n: number): Rows => ({ n, d: M, data: Float32Array.from({ length: n * M }, () => normal(rng) * 1.5) });

/** Counts the rows a call sends to the model. */
function counting(inner: Model): Model & { rows: number } {
  const m = { nFeatures: inner.nFeatures, nOutputs: inner.nOutputs, rows: 0, predict: (r: Rows) => ((m.rows += r.n), inner.predict(r)) };
  return m;
}

async function rawPredict(rows: number): Promise<{ wall: number; cpu: number }> {
  const data = new Float32Array(rows * M);
  for (let i = 0; i < data.length; i++) data[i] = bg.data[i % bg.data.length];
  const t = performance.now();
  const c = cpuMs();
  await model.predict({ data, n: rows, d: M });
  return { wall: performance.now() - t, cpu: cpuMs() - c };
}

console.log(`## Kernel SHAP overhead: explain time / one raw predict of the same rows (20-64-64-3 MLP, background ${B}, one row per call, minimum of ${REPS})\n`);
console.log('| sampler | coalitions | model rows | explain ms | raw predict ms | ratio | CPU ratio |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const sampler of ['per-background', 'balanced'] as KernelShapSampler[]) {
  for (const budget of QUICK ? [256, 2088] : [256, 512, 1024, 2088, 4096]) {
    const ew: number[] = [];
    const ec: number[] = [];
    const rw: number[] = [];
    const rc: number[] = [];
    let rows = 0;
    for (let rep = 0; rep <= REPS; rep++) {
      const m = counting(model);
      const x = rowsOf(1);
      const t = performance.now();
      const c = cpuMs();
      await kernelShap(m, x, { space, background: bg, nSamples: budget, sampler, tolerance: 0 });
      const wall = performance.now() - t;
      const cpu = cpuMs() - c;
      const raw = await rawPredict(m.rows);
      rows = m.rows;
      if (rep === 0) continue; // warm-up
      ew.push(wall);
      ec.push(cpu);
      rw.push(raw.wall);
      rc.push(raw.cpu);
    }
    console.log(
      `| ${sampler} | ${budget} | ${rows.toLocaleString('en-US')} | ${fmt(min(ew))} | ${fmt(min(rw))} | ${fmt(min(ew) / min(rw), 2)} | ${fmt(min(ec) / min(rc), 2)} |`,
    );
  }
}

console.log(`\n## Rows per request: instances per second (nSamples auto, tolerance 0.01, default sampler), minimum time of ${Math.max(3, REPS >> 1)}\n`);
console.log('| instances per call | seconds per call | instances/s | vs one call per instance | model rows per instance |');
console.log('| ---: | ---: | ---: | ---: | ---: |');
let single = 0;
for (const n of QUICK ? [1, 10] : [1, 10, 100]) {
  const times: number[] = [];
  let rows = 0;
  for (let rep = 0; rep <= Math.max(3, REPS >> 1); rep++) {
    const m = counting(model);
    const x = rowsOf(n);
    const t = performance.now();
    await kernelShap(m, x, { space, background: bg });
    if (rep > 0) times.push((performance.now() - t) / 1000);
    rows = m.rows / n;
  }
  const rate = n / min(times);
  if (n === 1) single = rate;
  console.log(`| ${n} | ${fmt(min(times), 3)} | ${fmt(rate, 1)} | ${fmt(rate / single, 2)}x | ${Math.round(rows).toLocaleString('en-US')} |`);
}

console.log('\n## Designs: a call with its design cached (seed used before) vs one that builds it (new seed), nSamples auto, tolerance 0\n');
{
  const warm: number[] = [];
  const cold: number[] = [];
  for (let rep = 0; rep <= REPS; rep++) {
    const x = rowsOf(1);
    let t = performance.now();
    await kernelShap(model, x, { space, background: bg, tolerance: 0, seed: 1 });
    if (rep > 0) warm.push(performance.now() - t);
    t = performance.now();
    await kernelShap(model, x, { space, background: bg, tolerance: 0, seed: 1_000_000 + rep });
    if (rep > 0) cold.push(performance.now() - t);
  }
  console.log(`cached design ${fmt(min(warm))} ms, built in the call ${fmt(min(cold))} ms (${fmt(min(cold) / min(warm), 2)}x)`);
}

console.log('\n## The (M-1)-sized regression: hand-written Cholesky (with stderr) vs ml-matrix Cholesky + one solve per unit\n');
for (const Mp of [16, 32, 64]) {
  const r = seededRng(2);
  const sampler = createSampler('leverage', Mp, 2 * Mp + 2048, r);
  sampler.grow(2 * Mp + 2048);
  const y = Float64Array.from(sampler.design.masks, () => normal(r));
  const reps = QUICK ? 5 : 20;
  let t = cpuMs();
  for (let i = 0; i < reps; i++) solveShapleyRegression(sampler.design, [y], [1]);
  const full = (cpuMs() - t) / reps;
  const p = Mp - 1;
  const A = Matrix.eye(p).mul(Mp);
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) A.set(i, j, A.get(i, j) + 1);
  const units = sampler.design.unitStratum.length;
  const b = Matrix.columnVector(Array.from({ length: p }, () => 1));
  t = cpuMs();
  for (let i = 0; i < reps; i++) {
    const chol = new CholeskyDecomposition(A);
    for (let u = 0; u < units; u++) chol.solve(b);
  }
  const mlm = (cpuMs() - t) / reps;
  console.log(`M=${Mp}: ${sampler.design.masks.length} coalitions, ${units} units: ours ${fmt(full, 2)} ms; ml-matrix Cholesky + ${units} solves alone ${fmt(mlm, 2)} ms`);
}
model.dispose();
