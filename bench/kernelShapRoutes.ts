/**
 * The estimator routes measured against the previous default ('balanced', one design shared by the
 * background) at equal budgets, on the 20-64-64-3 ReLU MLP (background 16 rows, exact values by brute
 * force over the 2^20 coalitions):
 *
 * - 'leverage': Leverage SHAP (Musco & Witter 2025): sizes in equal shares, paired draws without replacement.
 * - regression-adjusted (Witter, Liu & Musco 2025, "Regression-adjusted Monte Carlo estimators"): a
 *   surrogate f fitted to the sampled coalition values, whose Shapley values are exact, plus an
 *   estimate of the residual game v - f. The surrogate is boosted depth-5 regression trees on the
 *   coalition indicators (their Shapley values are closed-form: a leaf reached when the players P are
 *   in and N out gives (|P|-1)!|N|!/(|P|+|N|)! of its value to each of P and minus |P|!(|N|-1)!/(|P|+|N|)!
 *   to each of N); the residual is estimated by paired Kernel SHAP on the other half of the units
 *   (cross-fitted both ways). A surrogate whose game has interactions of order <= 2 (a linear or
 *   quadratic model, a first-order Taylor control variate) cannot help: paired Kernel SHAP is exact on
 *   such games already, so the residual estimate would be the same.
 * - 'per-background' (our default): each background row's game with its own coalitions.
 *
 *   npx tsx bench/kernelShapRoutes.ts [--seeds 3] [--instances 2]
 */
import { createSampler, type CoalitionDesign } from '../explainers/coalitions.js';
import { kernelShap } from '../explainers/kernelShap.js';
import { solveShapleyRegression } from '../explainers/kernelShapRegression.js';
import { normal, seededRng } from '../explainers/random.js';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { reluMlp } from './kernelShapModels.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const SEEDS = Number(args.get('seeds') ?? 3);
const INSTANCES = Number(args.get('instances') ?? 2);
const M = 20;
const B = 16;
const N = 1 << M;
const budgets = [512, 2088];

// ------------------------------------------------------------------------------------------------
// Boosted regression trees on 0/1 coalition vectors, squared loss (a few dozen lines: the point is
// the estimator, not the learner).

interface Leaf {
  inP: number[];
  outN: number[];
  value: number;
}

function boostedTrees(Z: Uint8Array[], y: Float64Array, trees = 200, depth = 5, rate = 0.05) {
  const n = y.length;
  const base = y.reduce((a, b) => a + b, 0) / n;
  const r = Float64Array.from(y, (v) => v - base);
  const leaves: Leaf[] = [];
  const fitted: ((z: Uint8Array) => number)[] = [];
  const grow = (idx: number[], level: number, inP: number[], outN: number[]): ((z: Uint8Array) => number) => {
    let sum = 0;
    for (const i of idx) sum += r[i];
    const leafValue = (rate * sum) / idx.length;
    let best = -1;
    let bestGain = 1e-12;
    if (level < depth && idx.length >= 10) {
      for (let j = 0; j < M; j++) {
        let s1 = 0;
        let n1 = 0;
        for (const i of idx)
          if (Z[i][j]) {
            s1 += r[i];
            n1++;
          }
        const n0 = idx.length - n1;
        if (n1 < 5 || n0 < 5) continue;
        const gain = (s1 * s1) / n1 + (sum - s1) ** 2 / n0 - (sum * sum) / idx.length;
        if (gain > bestGain) {
          bestGain = gain;
          best = j;
        }
      }
    }
    if (best < 0) {
      leaves.push({ inP, outN, value: leafValue });
      return () => leafValue;
    }
    const one = grow(idx.filter((i) => Z[i][best]), level + 1, [...inP, best], outN);
    const zero = grow(idx.filter((i) => !Z[i][best]), level + 1, inP, [...outN, best]);
    return (z) => (z[best] ? one(z) : zero(z));
  };
  for (let t = 0; t < trees; t++) {
    const tree = grow(Array.from({ length: n }, (_, i) => i), 0, [], []);
    fitted.push(tree);
    for (let i = 0; i < n; i++) r[i] -= tree(Z[i]);
  }
  return { predict: (z: Uint8Array) => base + fitted.reduce((s, f) => s + f(z), 0), leaves };
}

const factorial = (k: number): number => (k <= 1 ? 1 : k * factorial(k - 1));

/** Exact Shapley values of the trees' game. */
function treeShapley(leaves: Leaf[]): Float64Array {
  const phi = new Float64Array(M);
  for (const { inP, outN, value } of leaves) {
    const P = new Set(inP);
    const Nn = new Set(outN);
    if ([...P].some((i) => Nn.has(i)) || P.size + Nn.size === 0) continue;
    const a = P.size;
    const b = Nn.size;
    for (const i of P) phi[i] += (value * factorial(a - 1) * factorial(b)) / factorial(a + b);
    for (const j of Nn) phi[j] -= (value * factorial(a) * factorial(b - 1)) / factorial(a + b);
  }
  return phi;
}

/** The units of one parity, as a design of their own (strata counts and weights from those units). */
function halfDesign(d: CoalitionDesign, parity: number): { design: CoalitionDesign; from: number[] } {
  const masks: Uint8Array[] = [];
  const from: number[] = [];
  const unitStratum: number[] = [];
  const unitFirst: number[] = [];
  const unitSecond: number[] = [];
  const strata = d.strata.map((s) => ({ ...s, drawn: 0 }));
  for (let u = 0; u < d.unitStratum.length; u++) {
    if (u % 2 !== parity) continue;
    const h = d.unitStratum[u];
    strata[h].drawn++;
    unitStratum.push(h);
    unitFirst.push(masks.length);
    masks.push(d.masks[d.unitFirst[u]]);
    from.push(d.unitFirst[u]);
    if (d.unitSecond[u] >= 0) {
      unitSecond.push(masks.length);
      masks.push(d.masks[d.unitSecond[u]]);
      from.push(d.unitSecond[u]);
    } else unitSecond.push(-1);
  }
  strata.forEach((s, h) => (s.coalitionWeight = s.drawn > 0 ? (d.strata[h].coalitionWeight * d.strata[h].drawn) / s.drawn : 0));
  return { design: { M, masks, unitStratum, unitFirst, unitSecond, strata }, from };
}

const bits = (m: Uint8Array) => {
  let S = 0;
  for (let j = 0; j < M; j++) if (m[j]) S |= 1 << j;
  return S;
};

function shapleyOfTable(v: Float64Array): Float64Array {
  const w = new Float64Array(M);
  for (let s = 0; s < M; s++) {
    let c = 1 / M;
    for (let t = 1; t <= s; t++) c *= t / (M - t);
    w[s] = c;
  }
  const size = new Uint8Array(N);
  for (let S = 1; S < N; S++) size[S] = size[S >> 1] + (S & 1);
  const phi = new Float64Array(M);
  for (let S = 0; S < N; S++) for (let i = 0; i < M; i++) if (!((S >> i) & 1)) phi[i] += w[size[S]] * (v[S | (1 << i)] - v[S]);
  return phi;
}

await selectBackend('wasm');
const model = await reluMlp(5);
const rng = seededRng(4321);
const bg: Rows = { n: B, d: M, data: Float32Array.from({ length: B * M }, () => normal(rng)) };
const space = { featureNames: Array.from({ length: M }, (_, i) => `x${i}`), outputNames: ['y0', 'y1', 'y2'] };
const errors = new Map<string, number[]>();
const record = (key: string, phi: ArrayLike<number>, exact: Float64Array) => {
  let max = 0;
  for (let j = 0; j < M; j++) max = Math.max(max, Math.abs(phi[j] - exact[j]));
  errors.set(key, [...(errors.get(key) ?? []), max]);
};
const t0 = performance.now();
for (let inst = 0; inst < INSTANCES; inst++) {
  const x = Float32Array.from({ length: M }, () => normal(rng) * 1.5);
  // v(S) for every coalition and output: the mean over the background of f(x on S, background elsewhere).
  const table = new Float64Array(N * 3);
  const chunk = 1 << 15;
  const rows = new Float32Array(chunk * M);
  for (let b = 0; b < B; b++) {
    for (let s0 = 0; s0 < N; s0 += chunk) {
      for (let r = 0; r < chunk; r++) for (let j = 0; j < M; j++) rows[r * M + j] = ((s0 + r) >> j) & 1 ? x[j] : bg.data[b * M + j];
      const out = await model.predict({ data: rows, n: chunk, d: M });
      for (let i = 0; i < chunk * 3; i++) table[s0 * 3 + i] += out[i] / B;
    }
  }
  for (let o = 0; o < 3; o++) {
    const v = Float64Array.from({ length: N }, (_, S) => table[S * 3 + o]);
    const exact = shapleyOfTable(v);
    const full = new Uint8Array(M).fill(1);
    const empty = new Uint8Array(M);
    const delta = v[N - 1] - v[0];
    for (const budget of budgets) {
      for (let seed = 0; seed < SEEDS; seed++) {
        for (const name of ['balanced', 'leverage'] as const) {
          const s = createSampler(name, M, budget, seededRng(seed));
          s.grow(budget);
          const y = Float64Array.from(s.design.masks, (m) => v[bits(m)] - v[0]);
          record(`${budget} ${name}`, solveShapleyRegression(s.design, [y], [delta]).fits[0].phi, exact);
        }
        // Regression-adjusted: trees fitted on half the units, paired Kernel SHAP on the residual of the other half, both ways.
        const s = createSampler('balanced', M, budget, seededRng(seed));
        s.grow(budget);
        const y = Float64Array.from(s.design.masks, (m) => v[bits(m)] - v[0]);
        const adjusted = new Float64Array(M);
        for (const h of [0, 1]) {
          const fit = halfDesign(s.design, h);
          const other = halfDesign(s.design, 1 - h);
          const trees = boostedTrees(fit.design.masks, Float64Array.from(fit.from, (k) => y[k]));
          const f0 = trees.predict(empty);
          const residual = Float64Array.from(other.from, (k) => y[k] - (trees.predict(s.design.masks[k]) - f0));
          const rest = solveShapleyRegression(other.design, [residual], [delta - (trees.predict(full) - f0)]).fits[0].phi;
          const surrogate = treeShapley(trees.leaves);
          for (let j = 0; j < M; j++) adjusted[j] += (surrogate[j] + rest[j]) / 2;
        }
        record(`${budget} regression-adjusted (trees)`, adjusted, exact);
      }
    }
    for (const budget of budgets) {
      for (let seed = 0; seed < SEEDS; seed++) {
        if (o > 0) continue; // one call explains all three outputs
        const e = await kernelShap(model, { data: x, n: 1, d: M }, { space, background: bg, nSamples: budget, seed, tolerance: 0 });
        e.explanations[0].outputs.forEach((out, oi) => {
          const v2 = Float64Array.from({ length: N }, (_, S) => table[S * 3 + oi]);
          record(`${budget} per-background`, out.attributions.map((a) => a.attribution), oi === 0 ? exact : shapleyOfTable(v2));
        });
      }
    }
  }
}
console.log(`Routes on the 20-64-64-3 ReLU MLP, background ${B} rows, ${INSTANCES} rows x 3 outputs x ${SEEDS} seeds: mean max |error| over the 20 features, relative to 'balanced'.\n`);
console.log('| route | ' + budgets.map((b) => `${b} coalitions`).join(' | ') + ' |');
console.log('| --- | ' + budgets.map(() => '---:').join(' | ') + ' |');
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
for (const route of ['balanced', 'leverage', 'regression-adjusted (trees)', 'per-background']) {
  const cells = budgets.map((b) => {
    const e = mean(errors.get(`${b} ${route}`)!);
    return `${e.toExponential(2)} (${(e / mean(errors.get(`${b} balanced`)!)).toFixed(2)}x)`;
  });
  console.log(`| ${route} | ${cells.join(' | ')} |`);
}
console.log(`\n${((performance.now() - t0) / 1000).toFixed(1)} s`);
model.dispose();
