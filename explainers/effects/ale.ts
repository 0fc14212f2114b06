/**
 * Accumulated local effects (Apley & Zhu 2020, "Visualizing the effects of predictor variables in
 * black box supervised learning models", JRSS-B).
 *
 * Numeric features (first order), as alibi's ale_num and R's ALEPlot:
 * - Bin edges z_0 < ... < z_K at the k/K quantiles of the feature (distinct values when there are at
 *   most K + 1 of them; caller-given edges are made valid as alibi does, see grid.ts). A row with
 *   z_{k-1} < x <= z_k is in bin k; x = z_0 goes to bin 1.
 * - Each row's local effect: link(f(row with x = z_k)) - link(f(row with x = z_{k-1})), 2 model rows per
 *   data row, sent as one predict call. Its mean per bin, accumulated from z_0, is the uncentred
 *   effect at the edges; it is centred by subtracting ale0 = sum_k n_k (A_{k-1} + A_k) / 2 / n (ALEPlot
 *   and iml's per-bin approximation of the mean effect, which alibi uses too).
 * - Standard errors: the local effects of one bin have a sample standard deviation s_k; the effect at
 *   edge k has stderr sqrt(sum_{j<=k} s_j^2 / n_j) (bins hold different rows, so independent; the
 *   centring constant is treated as known). lower/upper = value -/+ 1.96 stderr.
 * Categorical and one-hot features: categories are ordered (categoryOrder.ts), and the local effect
 * between neighbours k and k+1 is the mean over the rows of category k moved up to k+1
 * (f(up) - f(x)) and the rows of category k+1 moved down to k (f(x) - f(down)), as ALEPlot's and iml's
 * categorical ALE; accumulated and centred on the category frequencies.
 * Two numeric features (second order): per cell, the mean of each row's second difference
 * f(z1_k, z2_l) - f(z1_{k-1}, z2_l) - f(z1_k, z2_{l-1}) + f(z1_{k-1}, z2_{l-1}) (4 model rows per data row),
 * empty cells taking their nearest non-empty cell's value, accumulated over both axes; then both
 * features' first-order effects contained in it are removed and the result centred (ALEPlot's
 * ALE.2D): what is left is the pure interaction.
 */
import { ExplainerInputError, type Model, type Rows } from '../types.js';
import { createEvaluator, evaluateRows } from './evaluate.js';
import { categoryLabels, checkData, checkOutputs, featureCatalogue, featureValues, resolveFeature, setFeature, type EffectFeature } from './features.js';
import { aleEdges, binOf, observedCategories, userAleEdges } from './grid.js';
import { orderBySimilarity } from './categoryOrder.js';
import { optional, type EffectOptions } from './partialDependence.js';
import type { Ale2dEffect, AleEffect } from './types.js';

export interface AleOptions extends EffectOptions {
  /** Numeric features: quantile bins. Default 20 (iml's grid.size). */
  bins?: number;
  /** Numeric features: bin edges to use instead of quantiles (made valid as alibi does). */
  grid?: unknown[];
  /** Categorical features: order categories by similarity (default) or by their value. */
  categoryOrder?: 'similarity' | 'value';
}

export interface Ale2dOptions extends EffectOptions {
  /** Quantile bins per feature. Default 10 (10 x 10 cells). */
  bins?: number;
  grid?: unknown[];
  grid2?: unknown[];
}

const Z95 = 1.959963984540054;
const DEFAULT_BINS = 20;
const DEFAULT_BINS_2D = 10;
const MAX_BINS = 1000;

function checkBins(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_BINS) {
    throw new ExplainerInputError('BAD_PARAMETER', `bins must be an integer from 1 to ${MAX_BINS}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function numericEdges(f: EffectFeature, values: Float64Array, bins: number, grid: unknown[] | undefined): number[] {
  if (grid === undefined) return aleEdges(values, bins);
  if (!Array.isArray(grid) || grid.length === 0 || !grid.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new ExplainerInputError('BAD_GRID', `the ALE grid for "${f.name}" must be a non-empty list of finite numbers (bin edges)`, { feature: f.name });
  }
  if (grid.length > MAX_BINS + 1) {
    throw new ExplainerInputError('GRID_TOO_LARGE', `the ALE grid for "${f.name}" has ${grid.length} edges; at most ${MAX_BINS + 1} are allowed`, { feature: f.name });
  }
  return userAleEdges(values, grid as number[]);
}

/** Mean and sample variance (ddof 1; 0 for a single value) per group. */
function groupStats(groups: number, groupOf: (j: number) => number, value: (j: number) => number, count: number) {
  const n = new Float64Array(groups);
  const mean = new Float64Array(groups);
  const m2 = new Float64Array(groups);
  for (let j = 0; j < count; j++) {
    const g = groupOf(j);
    const x = value(j);
    // Welford: stable for the small differences of nearly flat effects.
    n[g]++;
    const delta = x - mean[g];
    mean[g] += delta / n[g];
    m2[g] += delta * (x - mean[g]);
  }
  const variance = Float64Array.from(m2, (v, g) => (n[g] > 1 ? v / (n[g] - 1) : 0));
  return { n, mean, variance };
}

/** Accumulates step means from 0, centres with `weights` at the points, and attaches the band. */
function accumulate(step: { n: Float64Array; mean: Float64Array; variance: Float64Array }, centre: (acc: number[]) => number) {
  const K = step.mean.length;
  const acc = [0];
  const varAcc = [0];
  for (let k = 0; k < K; k++) {
    acc.push(acc[k] + step.mean[k]);
    varAcc.push(varAcc[k] + (step.n[k] > 0 ? step.variance[k] / step.n[k] : 0));
  }
  const offset = centre(acc);
  const values = acc.map((a) => a - offset);
  const stderr = varAcc.map(Math.sqrt);
  return {
    values,
    stderr,
    lower: values.map((v, k) => v - Z95 * stderr[k]),
    upper: values.map((v, k) => v + Z95 * stderr[k]),
    confidence: 0.95,
    offset,
  };
}

export async function accumulatedLocalEffects(model: Model, data: Rows, feature: string, options: AleOptions): Promise<AleEffect[]> {
  checkData(model, data);
  const outputs = checkOutputs(model, options.outputs);
  const catalogue = featureCatalogue(options.space, model.nFeatures, options);
  const f = resolveFeature(catalogue, feature);
  const values = featureValues(f, data);
  const common = (o: number) => ({
    kind: 'ale' as const,
    feature: f.name,
    featureKind: f.kind,
    output: options.space.outputNames?.[o] ?? `y${o}`,
    outputIndex: o,
    link: options.link ?? 'identity',
    rows: data.n,
  });
  const { n } = data;
  const ev = createEvaluator(model, { ...options, outputs });
  const m = outputs.length;

  if (f.kind === 'numeric') {
    if (options.categoryOrder !== undefined) {
      throw new ExplainerInputError('BAD_PARAMETER', `categoryOrder applies to categorical features; "${f.name}" is numeric`);
    }
    const edges = numericEdges(f, values, checkBins(options.bins ?? DEFAULT_BINS), options.grid);
    if (edges.length < 2) {
      // A constant feature has no local effect to accumulate (alibi returns 0 at the value too).
      return outputs.map((o) => ({ ...common(o), grid: edges, values: [0], counts: [n], intervals: [], stderr: [0], lower: [0], upper: [0], confidence: 0.95, offset: 0, modelEvaluations: 0 }));
    }
    const bin = Int32Array.from(values, (x) => binOf(edges, x));
    const out = await evaluateRows(ev, 2 * n, data, (r) => r % n, (r, buffer, at) => setFeature(f, buffer, at, edges[bin[r % n] + (r < n ? 0 : 1)]));
    const K = edges.length - 1;
    return outputs.map((o, oi) => {
      const step = groupStats(K, (i) => bin[i], (i) => out[(n + i) * m + oi] - out[i * m + oi], n);
      const counts = Array.from(step.n);
      // ale0: each bin's rows sit, on average, at the midpoint of the effect across the bin.
      const band = accumulate(step, (acc) => counts.reduce((s, c, k) => s + (c * (acc[k] + acc[k + 1])) / 2, 0) / n);
      return {
        ...common(o),
        grid: edges,
        ...band,
        counts,
        intervals: counts.map((_, k) => [edges[k], edges[k + 1]] as [number, number]),
        modelEvaluations: ev.counter.rows,
      };
    });
  }

  // Categorical / one-hot.
  if (options.grid !== undefined) {
    throw new ExplainerInputError('BAD_GRID', `ALE of the categorical feature "${f.name}" runs over the categories in the data: leave out grid`);
  }
  const natural = observedCategories(f, values);
  const orderMode = options.categoryOrder ?? 'similarity';
  if (orderMode !== 'similarity' && orderMode !== 'value') {
    throw new ExplainerInputError('BAD_PARAMETER', `categoryOrder must be 'similarity' or 'value', got ${JSON.stringify(orderMode)}`);
  }
  const order = orderMode === 'similarity' ? orderBySimilarity(f, natural, values, data, catalogue) : natural;
  const K = order.length;
  const position = new Map(order.map((c, k) => [c, k]));
  const pos = Int32Array.from(values, (v) => position.get(v)!);
  const counts = Array.from({ length: K }, () => 0);
  for (const p of pos) counts[p]++;
  if (K < 2) {
    return outputs.map((o) => ({
      ...common(o),
      grid: order,
      ...optional('categories', categoryLabels(f, order)),
      values: [0],
      counts,
      stderr: [0],
      lower: [0],
      upper: [0],
      confidence: 0.95,
      offset: 0,
      categoryOrder: orderMode,
      modelEvaluations: 0,
    }));
  }
  // Model rows: every row as it is, moved up (if not last), moved down (if not first).
  const jobs: { i: number; to: number }[] = [];
  for (let i = 0; i < n; i++) jobs.push({ i, to: pos[i] });
  for (let i = 0; i < n; i++) if (pos[i] < K - 1) jobs.push({ i, to: pos[i] + 1 });
  for (let i = 0; i < n; i++) if (pos[i] > 0) jobs.push({ i, to: pos[i] - 1 });
  const out = await evaluateRows(ev, jobs.length, data, (r) => jobs[r].i, (r, buffer, at) => setFeature(f, buffer, at, order[jobs[r].to]));
  return outputs.map((o, oi) => {
    // Contribution j (from job n + j): an up move adds to step pos, a down move to step pos - 1.
    const moves = jobs.length - n;
    const stepOf = (j: number) => {
      const { i, to } = jobs[n + j];
      return to > pos[i] ? pos[i] : pos[i] - 1;
    };
    const delta = (j: number) => {
      const { i, to } = jobs[n + j];
      const moved = out[(n + j) * m + oi];
      const own = out[i * m + oi];
      return to > pos[i] ? moved - own : own - moved;
    };
    const step = groupStats(K - 1, stepOf, delta, moves);
    const band = accumulate(step, (acc) => counts.reduce((s, c, k) => s + c * acc[k], 0) / n);
    return {
      ...common(o),
      grid: order,
      ...optional('categories', categoryLabels(f, order)),
      ...band,
      counts,
      categoryOrder: orderMode,
      modelEvaluations: ev.counter.rows,
    };
  });
}

export async function accumulatedLocalEffects2d(model: Model, data: Rows, features: [string, string], options: Ale2dOptions): Promise<Ale2dEffect[]> {
  checkData(model, data);
  const outputs = checkOutputs(model, options.outputs);
  const catalogue = featureCatalogue(options.space, model.nFeatures, options);
  const f1 = resolveFeature(catalogue, features[0]);
  const f2 = resolveFeature(catalogue, features[1]);
  if (f1 === f2) throw new ExplainerInputError('BAD_FEATURE', `a 2-D effect needs two different features, got "${f1.name}" twice`);
  for (const f of [f1, f2]) {
    if (f.kind !== 'numeric') {
      throw new ExplainerInputError('BAD_FEATURE', `2-D ALE needs two numeric features; "${f.name}" is ${f.kind}: use 2-D partial dependence for it`, { feature: f.name });
    }
  }
  const bins = checkBins(options.bins ?? DEFAULT_BINS_2D);
  const x1 = featureValues(f1, data);
  const x2 = featureValues(f2, data);
  const z1 = numericEdges(f1, x1, bins, options.grid);
  const z2 = numericEdges(f2, x2, bins, options.grid2);
  for (const [f, z] of [[f1, z1], [f2, z2]] as const) {
    if (z.length < 2) throw new ExplainerInputError('BAD_FEATURE', `"${f.name}" takes a single value in the data: it has no ALE`, { feature: f.name });
  }
  const K1 = z1.length - 1;
  const K2 = z2.length - 1;
  const b1 = Int32Array.from(x1, (x) => binOf(z1, x));
  const b2 = Int32Array.from(x2, (x) => binOf(z2, x));
  const { n } = data;
  const ev = createEvaluator(model, { ...options, outputs });
  // Corner c of row i is model row c * n + i: c bit 0 = upper edge of f1, bit 1 = upper edge of f2.
  const out = await evaluateRows(ev, 4 * n, data, (r) => r % n, (r, buffer, at) => {
    const c = Math.floor(r / n);
    const i = r - c * n;
    setFeature(f1, buffer, at, z1[b1[i] + (c & 1)]);
    setFeature(f2, buffer, at, z2[b2[i] + (c >> 1)]);
  });
  const m = outputs.length;
  const N = Array.from({ length: K1 }, () => new Array<number>(K2).fill(0));
  for (let i = 0; i < n; i++) N[b1[i]][b2[i]]++;
  const filled = nearestFilled(N);

  return outputs.map((o, oi) => {
    const at = (c: number, i: number) => out[(c * n + i) * m + oi];
    const sum = Array.from({ length: K1 }, () => new Array<number>(K2).fill(0));
    for (let i = 0; i < n; i++) sum[b1[i]][b2[i]] += at(3, i) - at(1, i) - at(2, i) + at(0, i);
    const delta = filled.map((row) => row.map(([k, l]) => sum[k][l] / N[k][l]));
    // F: (K1 + 1) x (K2 + 1), cumulative over both axes from 0 on the first row and column.
    const F = Array.from({ length: K1 + 1 }, () => new Array<number>(K2 + 1).fill(0));
    for (let k = 1; k <= K1; k++) for (let l = 1; l <= K2; l++) F[k][l] = F[k - 1][l] + F[k][l - 1] - F[k - 1][l - 1] + delta[k - 1][l - 1];
    // The first-order effect of f1 inside F: the count-weighted mean over f2 of F's differences along f1.
    const main1 = [0];
    for (let k = 0; k < K1; k++) {
      let s = 0;
      let w = 0;
      for (let l = 0; l < K2; l++) {
        s += (N[k][l] * (F[k + 1][l] - F[k][l] + (F[k + 1][l + 1] - F[k][l + 1]))) / 2;
        w += N[k][l];
      }
      main1.push(main1[k] + s / w);
    }
    const main2 = [0];
    for (let l = 0; l < K2; l++) {
      let s = 0;
      let w = 0;
      for (let k = 0; k < K1; k++) {
        s += (N[k][l] * (F[k][l + 1] - F[k][l] + (F[k + 1][l + 1] - F[k + 1][l]))) / 2;
        w += N[k][l];
      }
      main2.push(main2[l] + s / w);
    }
    const G = F.map((row, k) => row.map((v, l) => v - main1[k] - main2[l]));
    let centre = 0;
    for (let k = 0; k < K1; k++) for (let l = 0; l < K2; l++) centre += (N[k][l] * (G[k][l] + G[k][l + 1] + G[k + 1][l] + G[k + 1][l + 1])) / 4;
    centre /= n;
    return {
      kind: 'ale' as const,
      feature: f1.name,
      featureKind: f1.kind,
      feature2: f2.name,
      featureKind2: f2.kind,
      output: options.space.outputNames?.[o] ?? `y${o}`,
      outputIndex: o,
      link: options.link ?? 'identity',
      grid: z1,
      grid2: z2,
      values: G.map((row) => row.map((v) => v - centre)),
      counts: N,
      rows: n,
      modelEvaluations: ev.counter.rows,
    };
  });
}

/**
 * For every cell, the cell whose mean local effect it takes: itself when it holds rows, else the
 * nearest cell that does (distance between bin indices scaled by the bins per axis; ALEPlot does the
 * same on bin centres).
 */
function nearestFilled(N: number[][]): [number, number][][] {
  const K1 = N.length;
  const K2 = N[0].length;
  const full: [number, number][] = [];
  for (let k = 0; k < K1; k++) for (let l = 0; l < K2; l++) if (N[k][l] > 0) full.push([k, l]);
  return N.map((row, k) =>
    row.map((c, l) => {
      if (c > 0) return [k, l] as [number, number];
      let best = full[0];
      let bestD = Infinity;
      for (const [a, b] of full) {
        const dist = ((a - k) / K1) ** 2 + ((b - l) / K2) ** 2;
        if (dist < bestD) {
          bestD = dist;
          best = [a, b];
        }
      }
      return best;
    }),
  );
}
