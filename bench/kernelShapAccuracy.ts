/**
 * Accuracy per model evaluation of the Kernel SHAP coalition samplers, against exact Shapley values
 * computed here by brute force (all 2^M subsets, the Shapley formula; nothing from explainers/ but
 * the function under test). Prints, per model, budget and sampler: the mean squared error over
 * features, instances and seeds, its ratio to shap's sampler, and how honest the reported stderr is.
 *
 *   npx tsx bench/kernelShapAccuracy.ts [--seeds 30] [--instances 4] [--budgets 256,512,1024,2048]
 *                                       [--samplers balanced,leverage,shap] [--baseline shap]
 */
import { kernelShap } from '../explainers/kernelShap.js';
import { SAMPLER_NAMES, type SamplerName } from '../explainers/coalitions.js';
import { seededRng, normal } from '../explainers/random.js';
import type { Model, Rows } from '../explainers/types.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const SEEDS = Number(args.get('seeds') ?? 30);
const INSTANCES = Number(args.get('instances') ?? 4);
const BUDGETS = (args.get('budgets') ?? '256,512,1024,2048').split(',').map(Number);
const SAMPLERS = (args.get('samplers')?.split(',') ?? SAMPLER_NAMES) as SamplerName[];
const BASELINE = (args.get('baseline') ?? 'shap') as SamplerName;
/** MSE ratio to the baseline, per sampler, over every model and budget: summarised at the end. */
const ratios = new Map<SamplerName, number[]>();
const N_BACKGROUND = 16;

interface Bench {
  name: string;
  d: number;
  f: (row: Float32Array, off: number) => number;
}

function jsModel({ d, f }: Bench): Model {
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
function interactions(d: number, seed: number): Bench {
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
function mlp(d: number, seed: number): Bench {
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

/** Exact interventional Shapley values by the Shapley formula over all 2^d subsets. */
function bruteForce(b: Bench, x: Float32Array, bg: Rows): Float64Array {
  const { d, f } = b;
  const row = new Float32Array(d);
  const v = new Float64Array(1 << d);
  for (let S = 0; S < 1 << d; S++) {
    let s = 0;
    for (let k = 0; k < bg.n; k++) {
      for (let j = 0; j < d; j++) row[j] = (S >> j) & 1 ? x[j] : bg.data[k * d + j];
      s += Math.fround(f(row, 0));
    }
    v[S] = s / bg.n;
  }
  const weight = new Float64Array(d); // weight[s] = s! (d-s-1)! / d!
  for (let s = 0; s < d; s++) {
    let w = 1 / d;
    for (let t = 1; t <= s; t++) w *= t / (d - t);
    weight[s] = w;
  }
  const phi = new Float64Array(d);
  for (let S = 0; S < 1 << d; S++) {
    let size = 0;
    for (let j = 0; j < d; j++) size += (S >> j) & 1;
    for (let i = 0; i < d; i++) if (!((S >> i) & 1)) phi[i] += weight[size] * (v[S | (1 << i)] - v[S]);
  }
  return phi;
}

interface Cell {
  sq: number;
  n: number;
  within2: number;
  seSq: number;
  coalitions: number;
  runs: number;
}

async function run(b: Bench) {
  const rng = seededRng(1234);
  const model = jsModel(b);
  const bg: Rows = { n: N_BACKGROUND, d: b.d, data: Float32Array.from({ length: N_BACKGROUND * b.d }, () => normal(rng)) };
  const space = { featureNames: Array.from({ length: b.d }, (_, i) => `x${i}`), outputNames: ['y'] };
  const cells = new Map<string, Cell>();
  let norm = 0;
  for (let inst = 0; inst < INSTANCES; inst++) {
    const x = Float32Array.from({ length: b.d }, () => normal(rng) * 1.5);
    const exact = bruteForce(b, x, bg);
    norm += exact.reduce((s, v) => s + v * v, 0) / b.d / INSTANCES;
    for (const budget of BUDGETS) {
      for (const sampler of SAMPLERS) {
        const key = `${budget}/${sampler}`;
        const cell = cells.get(key) ?? { sq: 0, n: 0, within2: 0, seSq: 0, coalitions: 0, runs: 0 };
        cells.set(key, cell);
        for (let seed = 0; seed < SEEDS; seed++) {
          const ex = await kernelShap(model, { data: x, n: 1, d: b.d }, {
            space,
            background: bg,
            nSamples: budget,
            seed,
            sampler,
            tolerance: 0,
          });
          const e = ex.explanations[0];
          e.outputs[0].attributions.forEach((a, i) => {
            const err = a.attribution - exact[i];
            cell.sq += err * err;
            cell.n++;
            cell.seSq += (a.stderr ?? 0) ** 2;
            if (Math.abs(err) <= 2 * (a.stderr ?? 0)) cell.within2++;
          });
          cell.coalitions += (e.modelEvaluations - 1 - bg.n) / bg.n;
          cell.runs++;
        }
      }
    }
  }
  console.log(`\n${b.name}: ${INSTANCES} instances x ${SEEDS} seeds, background ${N_BACKGROUND} rows, mean φ² = ${norm.toExponential(2)}`);
  console.log(`budget  sampler    coalitions        MSE  vs ${BASELINE.padEnd(8)} |err|<=2se   mean se²/MSE`);
  for (const budget of BUDGETS) {
    const base = cells.get(`${budget}/${BASELINE}`);
    for (const sampler of SAMPLERS) {
      const c = cells.get(`${budget}/${sampler}`)!;
      const mse = c.sq / c.n;
      const r = base ? mse / (base.sq / base.n) : NaN;
      const ratio = base ? r.toFixed(3) : '-';
      if (base) ratios.set(sampler, [...(ratios.get(sampler) ?? []), r]);
      console.log(
        `${String(budget).padStart(6)}  ${sampler.padEnd(9)} ${(c.coalitions / c.runs).toFixed(0).padStart(11)} ${mse
          .toExponential(3)
          .padStart(10)} ${ratio.padStart(9)} ${((100 * c.within2) / c.n).toFixed(1).padStart(11)}% ${(c.seSq / c.n / mse)
          .toFixed(2)
          .padStart(14)}`,
      );
    }
  }
}

const t0 = performance.now();
for (const b of [interactions(14, 7), mlp(14, 11), interactions(16, 3)]) await run(b);
console.log(`\nMSE relative to ${BASELINE}, over all models and budgets: geometric mean [min, max]`);
for (const [sampler, r] of ratios) {
  const gm = Math.exp(r.reduce((s, v) => s + Math.log(v), 0) / r.length);
  console.log(`  ${sampler.padEnd(9)} ${gm.toFixed(3)}  [${Math.min(...r).toFixed(3)}, ${Math.max(...r).toFixed(3)}]`);
}
console.log(`\n${((performance.now() - t0) / 1000).toFixed(1)} s`);
