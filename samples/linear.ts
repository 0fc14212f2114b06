/**
 * `linear`: y = w.x + b as a single Dense(1) layer, fitted by least squares on synthetic data with
 * features on very different scales. Its exact Shapley values are w_i (x_i - mean_i).
 */
import { join } from 'node:path';
import { writeModelFolder } from './lib/folder.js';
import { r4, regressionMetrics } from './lib/metrics.js';
import { denseStack, predict } from './lib/nn.js';
import * as tf from '@tensorflow/tfjs';
import { bernoulli, gaussian, mulberry32, poisson, round, shuffledIndices, uniform } from './lib/rng.js';
import type { SampleSummary } from './lib/folder.js';

const FEATURES = [
  { name: 'x1_std_normal', type: 'numeric', description: 'N(0, 1), 3 decimals' },
  { name: 'x2_hundreds', type: 'numeric', description: 'N(500, 100^2), 1 decimal' },
  { name: 'x3_small', type: 'numeric', description: 'N(0.01, 0.002^2), 5 decimals' },
  { name: 'x4_uniform', type: 'numeric', description: 'Uniform(0, 10), 3 decimals' },
  { name: 'x5_binary', type: 'binary', description: 'Bernoulli(0.3)' },
  { name: 'x6_count', type: 'integer', description: 'Poisson(3)' },
];
/** True coefficients of the data-generating process. */
const TRUE_W = [2, -0.03, 400, 0.5, 3, -1];
const TRUE_B = 5;
const NOISE_SD = 0.5;

function generate(n: number, seed: number): { x: number[][]; y: number[] } {
  const rng = mulberry32(seed);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = [
      round(gaussian(rng), 3),
      round(500 + 100 * gaussian(rng), 1),
      round(0.01 + 0.002 * gaussian(rng), 5),
      round(uniform(rng, 0, 10), 3),
      bernoulli(rng, 0.3),
      poisson(rng, 3),
    ];
    x.push(row);
    y.push(round(TRUE_B + row.reduce((s, v, j) => s + TRUE_W[j] * v, 0) + NOISE_SD * gaussian(rng), 3));
  }
  return { x, y };
}

/** Solves A z = r by Gaussian elimination with partial pivoting (A is small and dense). */
function solve(a: number[][], r: number[]): number[] {
  const n = r.length;
  const m = a.map((row, i) => [...row, r[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(m[i][c]) > Math.abs(m[p][c])) p = i;
    [m[c], m[p]] = [m[p], m[c]];
    for (let i = c + 1; i < n; i++) {
      const f = m[i][c] / m[c][c];
      for (let j = c; j <= n; j++) m[i][j] -= f * m[c][j];
    }
  }
  const z = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = m[i][n];
    for (let j = i + 1; j < n; j++) s -= m[i][j] * z[j];
    z[i] = s / m[i][i];
  }
  return z;
}

/** Ordinary least squares with intercept, on centred and scaled columns for conditioning. */
function leastSquares(x: number[][], y: number[]): { w: number[]; b: number } {
  const d = x[0].length;
  const n = x.length;
  const mean = Array.from({ length: d }, (_, j) => x.reduce((s, r) => s + r[j], 0) / n);
  const sd = Array.from({ length: d }, (_, j) => Math.sqrt(x.reduce((s, r) => s + (r[j] - mean[j]) ** 2, 0) / n));
  const ym = y.reduce((s, v) => s + v, 0) / n;
  const z = x.map((r) => r.map((v, j) => (v - mean[j]) / sd[j]));
  const a = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => z.reduce((s, r) => s + r[i] * r[j], 0)));
  const rhs = Array.from({ length: d }, (_, i) => z.reduce((s, r, k) => s + r[i] * (y[k] - ym), 0));
  const beta = solve(a, rhs);
  const w = beta.map((v, j) => v / sd[j]);
  return { w, b: ym - w.reduce((s, v, j) => s + v * mean[j], 0) };
}

export async function buildLinear(root: string): Promise<SampleSummary> {
  const trainSet = generate(1000, 6061);
  const refSet = generate(500, 6062);
  const fit = leastSquares(trainSet.x, trainSet.y);
  const model = denseStack('linear', FEATURES.length, [{ units: 1, activation: 'linear' }], 601);
  const kernel = tf.tensor2d(fit.w, [FEATURES.length, 1]);
  const bias = tf.tensor1d([fit.b]);
  model.setWeights([kernel, bias]);
  kernel.dispose();
  bias.dispose();
  // The weights as stored (float32), which define the model's exact Shapley values.
  const [storedW, storedB] = model.getWeights().map((t) => Array.from(t.dataSync()));

  const bgIdx = shuffledIndices(mulberry32(67), trainSet.x.length).slice(0, 100).sort((a, b) => a - b);
  const background = bgIdx.map((i) => trainSet.x[i]);
  const bgMean = FEATURES.map((_, j) => background.reduce((s, r) => s + r[j], 0) / background.length);
  const m = regressionMetrics(predict(model, refSet.x).map((r) => r[0]), refSet.y);
  const metrics = { r2: r4(m.r2), rmse: r4(m.rmse), mae: r4(m.mae) };

  const metadata = {
    description: 'Linear regression y = w.x + b (one Dense(1) layer) on synthetic data with features on very different scales. Exact Shapley values are known.',
    task: 'regression',
    features: FEATURES,
    outputs: [{ name: 'y', description: 'w.x + b' }],
    sensitiveFeatures: [],
    background: 'background.csv',
    reference: 'reference.csv',
    label: 'y',
    link: 'identity',
    notes: {
      data_generating_process:
        'y = 5 + 2*x1_std_normal - 0.03*x2_hundreds + 400*x3_small + 0.5*x4_uniform + 3*x5_binary - 1*x6_count + N(0, 0.5^2), rounded to 3 decimals; ' +
        'features drawn independently as described per feature (mulberry32 seeds 6061 for the 1000 training rows, 6062 for the 500 reference rows).',
      true_w: TRUE_W,
      true_b: TRUE_B,
      noise_sd: NOISE_SD,
      fitted_by: 'ordinary least squares (float64) on the 1000 training rows; stored as float32',
      w: storedW,
      b: storedB[0],
      background_means: bgMean,
      shapley_closed_form:
        'phi_i(x) = w_i * (x_i - mean_i), mean over the background rows (background_means); sum_i phi_i = f(x) - mean over background of f. Integrated Gradients from baseline x0 gives w_i * (x_i - x0_i) exactly.',
      split: { train_rows: 1000, reference_rows: 500, background_rows: 100, how: 'reference.csv is an independent held-out draw; background = 100 random training rows' },
      heldout_metrics: metrics,
    },
  };

  const reloaded = await writeModelFolder({
    dir: join(root, 'linear'),
    model,
    metadata,
    header: FEATURES.map((f) => f.name),
    background,
    reference: { rows: refSet.x, labels: refSet.y, labelName: 'y' },
    expectedRows: refSet.x.slice(0, 12),
  });
  [model, reloaded].forEach((m) => m.dispose());
  return { name: 'linear', metrics: { r2: metrics.r2, rmse: metrics.rmse } };
}
