/**
 * Accuracy per model evaluation of Kernel SHAP, against exact Shapley values computed here by brute
 * force (every one of the 2^M coalitions through the model, then the Shapley formula; nothing from
 * explainers/ but the function under test).
 *
 * 1. A seeded 20-64-64-3 ReLU MLP with a softmax output (tfjs, wasm backend), background of 50 rows, 4
 *    rows explained x seeds: max and mean |error| at 256 ... 4096 coalitions for our default sampler,
 *    our previous default ('balanced', one design shared by the background rows) and shap's
 *    KernelExplainer scheme re-implemented (coalitions.ts 'shap': its size enumeration, its weighted
 *    draws with replacement, its weights and its constrained least squares; without shap's default
 *    l1_reg feature selection, which for M > 10 keeps only 10 features and can only add error), and
 *    the budget our default needs to match shap's error at 2088 coalitions (shap's 'auto' for M = 20).
 *    The exact values (2^20 x 50 model rows per row explained) are cached in the OS temp folder.
 * 2. Smaller games written in JS (pairwise interactions, a tanh MLP; M = 14-16), every sampler.
 *
 *   npx tsx bench/kernelShapAccuracy.ts [--seeds 10] [--instances 4] [--budgets 256,512,1024,2088,4096]
 *                                       [--samplers per-background,balanced,shap] [--small 0] [--tolerance 0.01]
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { kernelShap, type KernelShapSampler } from '../explainers/kernelShap.js';
import { seededRng, normal } from '../explainers/random.js';
import type { Model, Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { reluMlp } from './kernelShapModels.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const SEEDS = Number(args.get('seeds') ?? 10);
const INSTANCES = Number(args.get('instances') ?? 4);
const BUDGETS = (args.get('budgets') ?? '256,512,1024,2088,4096').split(',').map(Number);
const SAMPLERS = (args.get('samplers')?.split(',') ?? ['per-background', 'balanced', 'shap']) as KernelShapSampler[];
const SMALL = args.get('small') !== '0';
/** Tolerance of the explains (0: the whole budget; the default 0.01 stops early, the budget a cap). */
const TOLERANCE = Number(args.get('tolerance') ?? 0);
const N_BACKGROUND = 50;
const M = 20;

const fmtE = (v: number) => v.toExponential(2);

/** Mean of per-run max |error| and mean |error| over features and outputs, and the share within 2 stderr. */
interface Cell {
  max: number[];
  mean: number[];
  /** Σ error² over every value. */
  sq: number;
  within2: number;
  values: number;
  evaluations: number;
}

function newCell(): Cell {
  return { max: [], mean: [], sq: 0, within2: 0, values: 0, evaluations: 0 };
}

const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(v.length, 1);

/** Exact interventional Shapley values of every output: v(S) = mean_b f(x_S, b), all 2^M coalitions, then the formula. */
async function exactShapley(model: Model, x: Float32Array, bg: Rows): Promise<Float64Array[]> {
  const d = bg.d;
  const nOut = model.nOutputs;
  const N = 1 << d;
  const v = new Float64Array(N * nOut);
  const chunk = 1 << 15;
  const rows = new Float32Array(chunk * d);
  for (let b = 0; b < bg.n; b++) {
    for (let s0 = 0; s0 < N; s0 += chunk) {
      for (let r = 0; r < chunk; r++) {
        const S = s0 + r;
        for (let j = 0; j < d; j++) rows[r * d + j] = (S >> j) & 1 ? x[j] : bg.data[b * d + j];
      }
      const out = await model.predict({ data: rows, n: chunk, d });
      for (let i = 0; i < chunk * nOut; i++) v[s0 * nOut + i] += out[i] / bg.n;
    }
  }
  const weight = new Float64Array(d); // s! (d-s-1)! / d!
  for (let s = 0; s < d; s++) {
    let w = 1 / d;
    for (let t = 1; t <= s; t++) w *= t / (d - t);
    weight[s] = w;
  }
  const size = new Uint8Array(N);
  for (let S = 1; S < N; S++) size[S] = size[S >> 1] + (S & 1);
  return Array.from({ length: nOut }, (_, o) => {
    const phi = new Float64Array(d);
    for (let S = 0; S < N; S++) {
      const w = weight[size[S]];
      const vs = v[S * nOut + o];
      for (let i = 0; i < d; i++) if (!((S >> i) & 1)) phi[i] += w * (v[(S | (1 << i)) * nOut + o] - vs);
    }
    return phi;
  });
}

/** Exact values from the cache when this exact setup was computed before. */
async function cachedExact(key: string, compute: () => Promise<Float64Array[]>): Promise<Float64Array[]> {
  const dir = path.join(os.tmpdir(), 'tfjs-explainer-bench');
  const file = path.join(dir, `shapley-${createHash('sha256').update(key).digest('hex').slice(0, 24)}.json`);
  try {
    return (JSON.parse(await readFile(file, 'utf8')) as number[][]).map((a) => Float64Array.from(a));
  } catch {
    const phi = await compute();
    await mkdir(dir, { recursive: true });
    await writeFile(file, JSON.stringify(phi.map((a) => Array.from(a))));
    return phi;
  }
}

async function measure(
  model: Model,
  x: Float32Array,
  bg: Rows,
  exact: Float64Array[],
  budget: number,
  sampler: KernelShapSampler,
  seed: number,
  cell: Cell,
): Promise<void> {
  const d = bg.d;
  const space = { featureNames: Array.from({ length: d }, (_, i) => `x${i}`), outputNames: Array.from({ length: model.nOutputs }, (_, o) => `y${o}`) };
  const e = await kernelShap(model, { data: x, n: 1, d }, { space, background: bg, nSamples: budget, seed, sampler, tolerance: TOLERANCE });
  const inst = e.explanations[0];
  let max = 0;
  let sum = 0;
  inst.outputs.forEach((o, oi) =>
    o.attributions.forEach((a, j) => {
      const err = Math.abs(a.attribution - exact[oi][j]);
      max = Math.max(max, err);
      sum += err;
      cell.sq += err * err;
      cell.values++;
      if (err <= 2 * (a.stderr ?? 0)) cell.within2++;
    }),
  );
  cell.max.push(max);
  cell.mean.push(sum / (d * inst.outputs.length));
  cell.evaluations += inst.modelEvaluations;
}

async function mlpSection(): Promise<void> {
  await selectBackend('wasm');
  const model = await reluMlp(5);
  const rng = seededRng(1234);
  const bg: Rows = { n: N_BACKGROUND, d: M, data: Float32Array.from({ length: N_BACKGROUND * M }, () => normal(rng)) };
  const xs = Array.from({ length: INSTANCES }, () => Float32Array.from({ length: M }, () => normal(rng) * 1.5));
  const t0 = performance.now();
  const exact: Float64Array[][] = [];
  for (const [i, x] of xs.entries()) {
    const key = JSON.stringify({ v: 1, model: 'relu-mlp-20-64-64-3-softmax', seed: 5, bg: Array.from(bg.data), x: Array.from(x) });
    exact.push(await cachedExact(key, () => exactShapley(model, x, bg)));
    if (i === 0) console.log(`exact Shapley values (2^20 x ${N_BACKGROUND} model rows per row, cached): ${((performance.now() - t0) / 1000).toFixed(1)} s for the first`);
  }
  const cells = new Map<string, Cell>();
  const run = async (budget: number, sampler: KernelShapSampler) => {
    const key = `${budget}/${sampler}`;
    if (cells.has(key)) return cells.get(key)!;
    const cell = newCell();
    for (const [i, x] of xs.entries()) for (let seed = 0; seed < SEEDS; seed++) await measure(model, x, bg, exact[i], budget, sampler, seed, cell);
    cells.set(key, cell);
    return cell;
  };
  for (const budget of BUDGETS) for (const sampler of SAMPLERS) await run(budget, sampler);

  const runs = INSTANCES * SEEDS;
  console.log(
    `\n20-64-64-3 ReLU MLP (softmax), M = 20, background ${N_BACKGROUND} rows, ${INSTANCES} rows x ${SEEDS} seeds; ` +
      'error against exact Shapley values over the 20 features x 3 outputs: mean over runs of the max |error|, and of the mean |error|.\n',
  );
  console.log(`| coalitions | ${SAMPLERS.map((s) => `${s}: max / mean |error|`).join(' | ')} | ${SAMPLERS.filter((s) => s !== 'shap').map((s) => `${s} max vs shap`).join(' | ')} |`);
  console.log(`| ---: | ${SAMPLERS.map(() => '---:').join(' | ')} | ${SAMPLERS.filter((s) => s !== 'shap').map(() => '---:').join(' | ')} |`);
  for (const budget of BUDGETS) {
    const shap = cells.get(`${budget}/shap`);
    const row = SAMPLERS.map((s) => {
      const c = cells.get(`${budget}/${s}`)!;
      return `${fmtE(avg(c.max))} / ${fmtE(avg(c.mean))}`;
    });
    const ratios = SAMPLERS.filter((s) => s !== 'shap').map((s) => (shap ? `${(avg(cells.get(`${budget}/${s}`)!.max) / avg(shap.max)).toFixed(2)}x` : '-'));
    console.log(`| ${budget} | ${row.join(' | ')} | ${ratios.join(' | ')} |`);
  }
  console.log('\nstderr calibration (share of |error| <= 2 stderr) and model evaluations per row:');
  for (const sampler of SAMPLERS) {
    const parts = BUDGETS.map((b) => {
      const c = cells.get(`${b}/${sampler}`)!;
      return `${b}: ${((100 * c.within2) / c.values).toFixed(1)}% (${Math.round(c.evaluations / runs).toLocaleString('en-US')})`;
    });
    console.log(`  ${sampler.padEnd(15)} ${parts.join('  ')}`);
  }

  // The budget our default needs for shap's error at its automatic budget (2M + 2048 = 2088).
  const shap2088 = SAMPLERS.includes('shap') ? avg((await run(2088, 'shap')).max) : NaN;
  const ours = SAMPLERS[0];
  if (Number.isFinite(shap2088) && ours !== 'shap') {
    const grid = [64, 96, 128, 160, 192, 256, 320, 384, 512, 700, 1024, 1536, 2088];
    let below: [number, number] | null = null;
    let above: [number, number] | null = null;
    for (const b of grid) {
      const e = avg((await run(b, ours)).max);
      if (e <= shap2088) {
        below = [b, e];
        break;
      }
      above = [b, e];
    }
    let needed = '> 2088';
    if (below && above) {
      // Log-log interpolation between the two grid budgets that bracket shap's error.
      const t = Math.log(above[1] / shap2088) / Math.log(above[1] / below[1]);
      needed = String(Math.round(Math.exp(Math.log(above[0]) + t * Math.log(below[0] / above[0]))));
    } else if (below) needed = `<= ${below[0]}`;
    console.log(
      `\nshap's error at 2088 coalitions (max |error| ${fmtE(shap2088)}) is reached by ${ours} with ${needed} coalitions ` +
        `(grid ${grid.filter((b) => cells.has(`${b}/${ours}`)).join(', ')}, interpolated log-log).`,
    );
  }
  model.dispose();
}

// ---------------------------------------------------------------------------------------------
// Small games in JS

interface Game {
  name: string;
  d: number;
  f: (row: Float32Array, off: number) => number;
}

function jsModel({ d, f }: Game): Model {
  return {
    nFeatures: d,
    nOutputs: 1,
    async predict(rows: Rows) {
      const out = new Float32Array(rows.n);
      for (let i = 0; i < rows.n; i++) out[i] = f(rows.data, i * d);
      return out;
    },
  };
}

const sigmoid = (t: number) => 1 / (1 + Math.exp(-t));

/** Linear terms, pairwise products, a max, a three-way product, all inside and outside a sigmoid. */
function interactions(d: number, seed: number): Game {
  const rng = seededRng(seed);
  const w = Array.from({ length: d }, () => normal(rng));
  const pairs = Array.from({ length: d }, () => [Math.floor(rng() * d), Math.floor(rng() * d), normal(rng)] as const);
  return {
    name: `interactions M=${d}`,
    d,
    f(r, o) {
      let s = 0;
      for (let j = 0; j < d; j++) s += w[j] * r[o + j];
      for (const [a, b, c] of pairs) s += c * r[o + a] * r[o + b];
      return 2 * sigmoid(s) + Math.max(r[o], r[o + 1], r[o + 2]) + r[o + 3] * r[o + 4] * r[o + 5];
    },
  };
}

/** A random d-32-1 tanh network. */
function tanhMlp(d: number, seed: number): Game {
  const rng = seededRng(seed);
  const H = 32;
  const W1 = Array.from({ length: H * d }, () => normal(rng) / Math.sqrt(d));
  const b1 = Array.from({ length: H }, () => normal(rng) * 0.5);
  const W2 = Array.from({ length: H }, () => normal(rng) / Math.sqrt(H));
  return {
    name: `tanh MLP M=${d}`,
    d,
    f(r, o) {
      let y = 0;
      for (let h = 0; h < H; h++) {
        let s = b1[h];
        for (let j = 0; j < d; j++) s += W1[h * d + j] * r[o + j];
        y += W2[h] * Math.tanh(2 * s);
      }
      return y;
    },
  };
}

async function smallSection(): Promise<void> {
  const samplers: KernelShapSampler[] = ['per-background', 'balanced', 'leverage', 'shap'];
  const budgets = [256, 1024, 2048];
  const bgRows = 16;
  console.log(`\nSmaller games (JS), background ${bgRows} rows, ${INSTANCES} rows x ${SEEDS} seeds: mean squared error relative to shap's scheme at equal budgets.\n`);
  console.log(`| game | ${samplers.filter((s) => s !== 'shap').map((s) => `${s}, budgets ${budgets.join(' / ')}`).join(' | ')} |`);
  console.log(`| --- | ${samplers.filter((s) => s !== 'shap').map(() => '---').join(' | ')} |`);
  for (const game of [interactions(14, 7), tanhMlp(14, 11), interactions(16, 3)]) {
    const rng = seededRng(1234);
    const model = jsModel(game);
    const bg: Rows = { n: bgRows, d: game.d, data: Float32Array.from({ length: bgRows * game.d }, () => normal(rng)) };
    const mse = new Map<string, number>();
    for (let i = 0; i < INSTANCES; i++) {
      const x = Float32Array.from({ length: game.d }, () => normal(rng) * 1.5);
      const exact = await exactShapley(model, x, bg);
      for (const budget of budgets) {
        for (const sampler of samplers) {
          const cell = newCell();
          for (let seed = 0; seed < SEEDS; seed++) await measure(model, x, bg, exact, budget, sampler, seed, cell);
          const key = `${budget}/${sampler}`;
          mse.set(key, (mse.get(key) ?? 0) + cell.sq / cell.values);
        }
      }
    }
    const cols = samplers
      .filter((s) => s !== 'shap')
      .map((s) => budgets.map((b) => (mse.get(`${b}/${s}`)! / mse.get(`${b}/shap`)!).toFixed(2)).join(' / '));
    console.log(`| ${game.name} | ${cols.join(' | ')} |`);
  }
}

const t0 = performance.now();
await mlpSection();
if (SMALL) await smallSection();
console.log(`\n${((performance.now() - t0) / 1000).toFixed(1)} s`);
