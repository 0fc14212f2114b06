/**
 * What Kernel SHAP costs beyond its model calls, on the 20-64-64-3 ReLU MLP (tfjs, wasm) with a
 * background of 50 rows:
 *
 * 1. Overhead: CPU time of an explain / CPU time inside its own model calls, per budget (medians); and
 *    the fastest explain against the fastest raw predict of the same number of rows in one call (wall).
 *    On a shared machine CPU time is the steadier figure; wall-clock minima are given as well.
 * 2. Rows per request: CPU time per explained row at 1, 10 and 100 rows per call (default options:
 *    nSamples 'auto', tolerance 0.01), against one call per row.
 * 3. Designs: the CPU time a call saves when its design is cached (built once per seed and player count).
 * 4. A deadline: 1000 rows x nSamples 100000 (a request that would run for minutes) with 1 s and 0.3 s.
 * 5. The (M-1)-sized regression: the hand-written Cholesky against ml-matrix's.
 *
 *   npx tsx bench/kernelShapSpeed.ts [--reps 9] [--quick 1]
 */
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { kernelShap, type KernelShapSampler } from '../explainers/kernelShap.js';
import { createSampler } from '../explainers/coalitions.js';
import { designPlan } from '../explainers/kernelShapPlan.js';
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

async function rawPredict(rows: number): Promise<{ wall: number; cpu: number }> {
  const data = new Float32Array(rows * M);
  for (let i = 0; i < data.length; i++) data[i] = bg.data[i % bg.data.length];
  const t = performance.now();
  const c = cpuMs();
  await model.predict({ data, n: rows, d: M });
  return { wall: performance.now() - t, cpu: cpuMs() - c };
}

/** A model that counts its rows and the CPU time spent inside predict. */
function timed(inner: Model): Model & { rows: number; cpu: number; calls: number } {
  const m = {
    nFeatures: inner.nFeatures,
    nOutputs: inner.nOutputs,
    rows: 0,
    cpu: 0,
    calls: 0,
    async predict(r: Rows) {
      const c = cpuMs();
      const out = await inner.predict(r);
      m.cpu += cpuMs() - c;
      m.rows += r.n;
      m.calls++;
      return out;
    },
  };
  return m;
}

const median = (v: number[]) => v.slice().sort((a, b) => a - b)[v.length >> 1];

console.log(`## Kernel SHAP overhead (20-64-64-3 MLP, background ${B}, one row per call, tolerance 0, ${REPS} calls each)\n`);
console.log('"ratio" = CPU time of the whole explain / CPU time spent inside its model calls (medians over the calls; on a shared');
console.log('machine CPU time is the steadier measure); "vs raw" = fastest explain / fastest raw predict of the same number of rows in one call.\n');
console.log('| sampler | coalitions | model rows | explain CPU ms | in model calls | ratio | explain ms (min) | raw predict ms (min) | vs raw |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const sampler of ['per-background', 'balanced'] as KernelShapSampler[]) {
  for (const budget of QUICK ? [256, 2088] : [256, 512, 1024, 2088, 4096]) {
    const total: number[] = [];
    const inModel: number[] = [];
    const wall: number[] = [];
    const raw: number[] = [];
    let rows = 0;
    for (let rep = 0; rep <= REPS; rep++) {
      const m = timed(model);
      const x = rowsOf(1);
      const t = performance.now();
      const c = cpuMs();
      await kernelShap(m, x, { space, background: bg, nSamples: budget, sampler, tolerance: 0 });
      const cpu = cpuMs() - c;
      const w = performance.now() - t;
      const r = await rawPredict(m.rows);
      rows = m.rows;
      if (rep === 0) continue; // warm-up
      total.push(cpu);
      inModel.push(m.cpu);
      wall.push(w);
      raw.push(r.wall);
    }
    console.log(
      `| ${sampler} | ${budget} | ${rows.toLocaleString('en-US')} | ${fmt(median(total))} | ${fmt(median(inModel))} | ${fmt(median(total) / median(inModel), 2)} | ` +
        `${fmt(min(wall))} | ${fmt(min(raw))} | ${fmt(min(wall) / min(raw), 2)} |`,
    );
  }
}

console.log(`\n## Rows per request (nSamples auto, tolerance 0.01, default sampler): CPU time per explained row, medians\n`);
console.log('| instances per call | CPU ms per row | rows/s (CPU) | vs one call per row | model calls per call | model rows per row | ratio to its model calls |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
let single = 0;
for (const n of QUICK ? [1, 10] : [1, 10, 100]) {
  const perRow: number[] = [];
  const ratio: number[] = [];
  let calls = 0;
  let rows = 0;
  const reps = n === 100 ? 3 : Math.max(3, REPS >> 1);
  for (let rep = 0; rep <= reps; rep++) {
    const m = timed(model);
    const x = rowsOf(n);
    const c = cpuMs();
    await kernelShap(m, x, { space, background: bg });
    const cpu = cpuMs() - c;
    if (rep === 0) continue;
    perRow.push(cpu / n);
    ratio.push(cpu / m.cpu);
    calls = m.calls;
    rows = m.rows / n;
  }
  const ms = median(perRow);
  if (n === 1) single = ms;
  console.log(
    `| ${n} | ${fmt(ms, 2)} | ${fmt(1000 / ms, 1)} | ${fmt(single / ms, 2)}x | ${calls} | ${Math.round(rows).toLocaleString('en-US')} | ${fmt(median(ratio), 2)} |`,
  );
}

console.log('\n## Designs: what a call saves when its design is cached (a seed and player count seen before)\n');
{
  // A design for M = 20 grown to 2088 coalitions and factorised, as a call with a new seed builds it.
  const build: number[] = [];
  for (let rep = 0; rep < 20; rep++) {
    const c = cpuMs();
    const plan = designPlan('balanced', M, 2088, 5_000_000 + rep);
    plan.snapshot(plan.unitsFor(2088), 8);
    build.push(cpuMs() - c);
  }
  const m = timed(model);
  await kernelShap(m, rowsOf(1), { space, background: bg, tolerance: 0, seed: 1 });
  console.log(
    `building and factorising a design (M = 20, 2088 coalitions): ${fmt(median(build), 2)} ms CPU; ` +
      `an explain at that budget spends ${fmt(m.cpu)} ms CPU in its model calls.`,
  );
}

console.log('\n## Deadline: 1000 rows x nSamples 100000 with a deadline (default options otherwise)\n');
console.log('| deadline ms | sampler | elapsed ms | elapsed / deadline | rows with an estimate | model calls |');
console.log('| ---: | --- | ---: | ---: | ---: | ---: |');
{
  const many = rowsOf(1000);
  for (const ms of QUICK ? [1000] : [1000, 300]) {
    for (const sampler of ['per-background', 'balanced'] as KernelShapSampler[]) {
      let calls = 0;
      const m: Model = { nFeatures: M, nOutputs: 3, predict: (r: Rows) => ((calls += 1), model.predict(r)) };
      const t = performance.now();
      const e = await kernelShap(m, many, { space, background: bg, nSamples: 100_000, deadline: Date.now() + ms, sampler });
      const wall = performance.now() - t;
      const estimated = e.explanations.filter((x) => (x.diagnostics?.coalitions as number) > 0).length;
      console.log(`| ${ms} | ${sampler} | ${fmt(wall, 0)} | ${fmt(wall / ms, 2)} | ${estimated} | ${calls} |`);
    }
  }
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
