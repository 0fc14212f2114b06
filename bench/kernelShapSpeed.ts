/**
 * What Kernel SHAP costs beyond its model calls, on the 20-64-64-3 ReLU MLP (the TfjsModel the service
 * runs: its fused Dense kernel by default, tfjs ops with PREDICT_KERNEL=tfjs; tfjs backend wasm) with a
 * background of 50 rows. All times are CPU time of this process
 * (process.cpuUsage), which on a shared machine is steadier than the wall clock; every ratio is of two
 * figures measured in the same run, in alternating phases so that load drifts hit both sides alike.
 *
 * 1. Overhead: CPU time of an explain / CPU time of raw predict on as many rows (one call each, same
 *    TfjsModel, the fused kernel on rows built beforehand), one row per request, per budget (tolerance 0:
 *    the whole budget in one round) and with the defaults (nSamples 'auto', tolerance 0.01: two rounds),
 *    for the three ways the masked rows are evaluated, alternating in the same run: built by the
 *    explainer and sent to predict (the previous path, KERNEL_SHAP_MASKING=off), built inside the
 *    kernel ('rows', predict's bits) and summed from the changed columns in the kernel's first layer
 *    ('first-layer', the default). Also each against the CPU inside its own model calls.
 * 2. Rows per request: the same 100 rows explained 1, 10 or 100 per request (defaults): CPU time per
 *    row, rows/s, and against one request per row; the explainer-built path and the default.
 * 3. Designs: the CPU time a call saves when its design is cached (built once per seed and player count).
 * 4. A deadline: 1000 rows x nSamples 100000 (a request that would run for minutes) with 1 s and 0.3 s:
 *    wall time against the deadline, and how long finishing took after the last model call.
 * 5. The (M-1)-sized regression: the hand-written Cholesky against ml-matrix's.
 * 6. Rows per request through the REST API (bench/kernelShapRest.ts): a real server on a held-out
 *    20-64-64-3 MLP, 1, 10 or 100 rows per POST .../explain, wall time per row, with masking off and on.
 *
 *   npx tsx bench/kernelShapSpeed.ts [--reps 8] [--blocks 3] [--quick 1]
 */
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { kernelShap, type KernelShapOptions, type KernelShapSampler } from '../explainers/kernelShap.js';
import { createSampler } from '../explainers/coalitions.js';
import { designPlan } from '../explainers/kernelShapPlan.js';
import { solveShapleyRegression } from '../explainers/kernelShapRegression.js';
import { seededRng, normal } from '../explainers/random.js';
import type { MaskedRowsEvaluator, Model, Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { reluMlp } from './kernelShapModels.js';
import { kernelShapRest } from './kernelShapRest.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const QUICK = args.get('quick') === '1' || process.env.BENCH_QUICK === '1';
const REPS = Number(args.get('reps') ?? (QUICK ? 4 : 8));
const BLOCKS = Number(args.get('blocks') ?? (QUICK ? 2 : 4));
const M = 20;
const B = 50;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const fmt = (v: number, digits = 1) => v.toFixed(digits);
const median = (v: number[]) => {
  const s = v.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** The lower quartile: other jobs on a shared machine only ever add time, so it is nearer the undisturbed cost. */
const quartile = (v: number[]) => v.slice().sort((a, b) => a - b)[Math.floor((v.length - 1) / 4)];

await selectBackend('wasm');
// The default (masked rows summed in the kernel's first layer), rows built in the kernel, and the same
// default model with its masked rows hidden: the explainer builds them and calls predict.
const model = await reluMlp(5);
const rowsModel = await reluMlp(5, 20, { masking: 'rows' });
const jsModel: Model = { nFeatures: model.nFeatures, nOutputs: model.nOutputs, predict: (r) => model.predict(r) };
const VARIANTS: { name: string; model: Model }[] = [
  { name: 'explainer-built rows (before)', model: jsModel },
  { name: "in-kernel rows ('rows')", model: rowsModel },
  { name: "in-kernel first layer ('first-layer', default)", model },
];
const rng = seededRng(77);
const bg: Rows = { n: B, d: M, data: Float32Array.from({ length: B * M }, () => normal(rng)) };
const space = { featureNames: Array.from({ length: M }, (_, i) => `x${i}`), outputNames: ['y0', 'y1', 'y2'] };
const rowsOf = (n: number): Rows => ({ n, d: M, data: Float32Array.from({ length: n * M }, () => normal(rng) * 1.5) });

/** Rows for raw predict (background rows repeated: a Dense net costs the same whatever the values). */
let rawRows = new Float32Array(0);
async function rawPredictCpu(rows: number): Promise<number> {
  if (rawRows.length < rows * M) {
    rawRows = new Float32Array(rows * M);
    for (let i = 0; i < rawRows.length; i++) rawRows[i] = bg.data[i % bg.data.length];
  }
  const c = cpuMs();
  await model.predict({ data: rawRows.subarray(0, rows * M), n: rows, d: M });
  return cpuMs() - c;
}

/** The model, counting its rows and calls and the CPU time spent inside predict and its masked rows. */
function timed(inner: Model): Model & { rows: number; cpu: number; calls: number } {
  const m: Model & { rows: number; cpu: number; calls: number } = {
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
  if (inner.maskedRows) {
    const masked = inner.maskedRows.bind(inner);
    m.maskedRows = async (bg: Rows) => {
      const ev = await masked(bg);
      if (!ev) return null;
      return {
        mode: ev.mode,
        async predict(...a: Parameters<MaskedRowsEvaluator['predict']>) {
          const c = cpuMs();
          await ev.predict(...a);
          m.cpu += cpuMs() - c;
          m.rows += a[3];
          m.calls++;
        },
      };
    };
  }
  return m;
}

interface Cost {
  /** Per variant, per request, per model row it evaluated (µs): CPU of the explain, and inside its own model calls. */
  explain: number[][];
  own: number[][];
  /** Raw predict of as many rows as each request evaluated (µs per row). */
  raw: number[];
  /** Per variant, per pass over all the requests: explain CPU (ms). */
  passMs: number[][];
  rows: number;
  calls: number;
}

/**
 * Requests (each a Rows of instances) explained one after another by each variant in turn, then raw
 * predict of as many rows as each evaluated (one call each), in alternating phases (each side pays for
 * its own garbage collection, and load drifts hit all), after a warm-up pass; `passes` times. Costs are
 * per model row, compared as medians over the requests.
 */
async function cost(requests: Rows[], options: KernelShapOptions, variants: Model[], passes = BLOCKS): Promise<Cost> {
  const out: Cost = { explain: variants.map(() => []), own: variants.map(() => []), raw: [], passMs: variants.map(() => []), rows: 0, calls: 0 };
  for (const v of variants) for (const x of requests.slice(0, 2)) await kernelShap(v, x, options); // warm-up: JIT, designs
  let rows = 0;
  let calls = 0;
  for (let pass = 0; pass < passes; pass++) {
    let evaluated: number[] = [];
    for (const [vi, v] of variants.entries()) {
      let passMs = 0;
      evaluated = [];
      for (const x of requests) {
        const m = timed(v);
        const c = cpuMs();
        await kernelShap(m, x, options);
        const explain = cpuMs() - c;
        out.explain[vi].push((1000 * explain) / m.rows);
        out.own[vi].push((1000 * m.cpu) / m.rows);
        evaluated.push(m.rows);
        if (vi === variants.length - 1) {
          rows += m.rows;
          calls += m.calls;
        }
        passMs += explain;
      }
      out.passMs[vi].push(passMs);
    }
    for (const r of evaluated) out.raw.push((1000 * (await rawPredictCpu(r))) / r);
  }
  out.rows = rows / (passes * requests.length);
  out.calls = calls / (passes * requests.length);
  return out;
}

// Warm-up before anything is timed: the JIT compiles the hot loops after some thousand iterations.
for (let i = 0; i < 30; i++) await kernelShap(model, rowsOf(1), { space, background: bg, seed: 1000 + (i % 3) });

console.log(`## Kernel SHAP overhead (20-64-64-3 MLP, TfjsModel predicting by ${model.predictMethod} (PREDICT_KERNEL), tfjs backend wasm, background ${B}, one row per request)\n`);
console.log(
  `CPU time per model row evaluated, over ${REPS} rows explained one per request, ${BLOCKS} times each, the three ways of evaluating ` +
    'the masked rows alternating with each other and with raw predict (TfjsModel.predict, one call, of rows built beforehand) of as ' +
    'many rows as each explain evaluated. "vs raw" = explain / raw predict, from the medians (and lower quartiles: other jobs only ' +
    'add time); "own" = explain / the CPU inside its own model calls (medians). The in-kernel paths never build the rows, so they ' +
    'can cost less than raw predict of built rows.\n',
);
console.log(
  '| sampler | coalitions | rounds | model rows | raw predict µs per row | ' +
    VARIANTS.map((v) => `${v.name}: µs per row, vs raw (LQ), own`).join(' | ') +
    ' |',
);
console.log(`| --- | --- | ---: | ---: | ---: | ${VARIANTS.map(() => '---:').join(' | ')} |`);
{
  const xs = Array.from({ length: REPS }, () => rowsOf(1));
  const budgets: (number | 'auto')[] = QUICK ? ['auto', 256, 2088] : ['auto', 256, 512, 1024, 2088, 4096];
  const samplers: KernelShapSampler[] = QUICK ? ['per-background'] : ['per-background', 'balanced'];
  for (const sampler of samplers) {
    for (const budget of budgets) {
      const options: KernelShapOptions = { space, background: bg, sampler, ...(budget === 'auto' ? {} : { nSamples: budget, tolerance: 0 }) };
      const rounds = (await kernelShap(model, xs[0], options)).explanations[0].diagnostics!.rounds as number;
      const c = await cost(xs, options, VARIANTS.map((v) => v.model));
      const label = budget === 'auto' ? 'defaults (auto, tolerance 0.01)' : String(budget);
      const r = median(c.raw);
      const cells = VARIANTS.map((_, vi) => {
        const e = median(c.explain[vi]);
        return `${fmt(e, 3)}, **${fmt(e / r, 2)}** (${fmt(quartile(c.explain[vi]) / quartile(c.raw), 2)}), ${fmt(e / median(c.own[vi]), 2)}`;
      });
      console.log(`| ${sampler} | ${label} | ${rounds} | ${Math.round(c.rows).toLocaleString('en-US')} | ${fmt(r, 3)} | ${cells.join(' | ')} |`);
    }
  }
}

console.log('\n## Rows per request (defaults: nSamples auto, tolerance 0.01): the same 100 rows, 1, 10 or 100 per request\n');
console.log(
  'CPU time per explained row: a pass explains all 100 rows, medians over the passes; the explainer-built path and the default ' +
    'alternate in each pass. "vs raw" = explain / raw predict per model row (medians over the requests).\n',
);
console.log('| path | rows per request | requests | CPU ms per row | rows/s (CPU) | vs 1 per request | model rows per row | vs raw |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
{
  const N = 100;
  const all = rowsOf(N);
  const paths = [VARIANTS[0], VARIANTS[2]];
  const single: number[] = [];
  const lines: string[][] = paths.map(() => []);
  for (const per of [1, 10, 100]) {
    const requests = Array.from({ length: N / per }, (_, i) => ({ n: per, d: M, data: all.data.subarray(i * per * M, (i + 1) * per * M) }));
    const c = await cost(requests, { space, background: bg }, paths.map((p) => p.model), per === 100 ? 2 * BLOCKS : BLOCKS);
    paths.forEach((p, vi) => {
      const ms = median(c.passMs[vi]) / N;
      if (per === 1) single[vi] = ms;
      lines[vi].push(
        `| ${p.name} | ${per} | ${N / per} | ${fmt(ms, 2)} | ${fmt(1000 / ms, 1)} | ${fmt(single[vi] / ms, 2)}x | ${Math.round(c.rows / per).toLocaleString('en-US')} | ` +
          `${fmt(median(c.explain[vi]) / median(c.raw), 2)} |`,
      );
    });
  }
  for (const l of lines.flat()) console.log(l);
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

console.log('\n## Deadline: 1000 rows x nSamples 100000 (default options otherwise), wall clock\n');
console.log('| deadline ms | sampler | runs | elapsed / deadline (median, max) | finishing after the last model call, ms (max) | rows with an estimate | model calls (masked-row pieces) |');
console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: |');
{
  const many = rowsOf(1000);
  const runs = QUICK ? 2 : 4;
  for (const ms of QUICK ? [1000] : [1000, 300]) {
    for (const sampler of ['per-background', 'balanced'] as KernelShapSampler[]) {
      const ratio: number[] = [];
      const finishing: number[] = [];
      let calls = 0;
      let estimated = 0;
      for (let run = 0; run < runs; run++) {
        let lastReturn = 0;
        calls = 0;
        const m: Model = {
          nFeatures: M,
          nOutputs: 3,
          predict: async (r: Rows) => {
            calls++;
            const out = await model.predict(r);
            lastReturn = performance.now();
            return out;
          },
          maskedRows: async (b: Rows) => {
            const ev = await model.maskedRows(b);
            return (
              ev && {
                mode: ev.mode,
                predict: async (...a: Parameters<MaskedRowsEvaluator['predict']>) => {
                  calls++;
                  await ev.predict(...a);
                  lastReturn = performance.now();
                },
              }
            );
          },
        };
        const t = performance.now();
        const e = await kernelShap(m, many, { space, background: bg, nSamples: 100_000, deadline: Date.now() + ms, sampler });
        const end = performance.now();
        ratio.push((end - t) / ms);
        finishing.push(end - lastReturn);
        estimated = e.explanations.filter((x) => (x.diagnostics?.coalitions as number) > 0).length;
      }
      console.log(
        `| ${ms} | ${sampler} | ${runs} | ${fmt(median(ratio), 2)}, ${fmt(Math.max(...ratio), 2)} | ${fmt(Math.max(...finishing), 0)} | ${estimated} | ${calls} |`,
      );
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
rowsModel.dispose();

console.log('\n## Rows per request through the REST API and in process (held-out MLP, defaults)\n');
await kernelShapRest({ quick: QUICK });
