/**
 * Permutation importance throughput for any `Model`: rows evaluated per second, against the
 * model's own predict throughput on the same batch sizes, so the overhead of building permuted
 * copies and scoring shows. `npx tsx bench/importanceBench.ts` runs it on a plain-JS MLP.
 */
import { pathToFileURL } from 'node:url';
import { permutationImportance, type PermutationImportanceOptions } from '../explainers/permutationImportance.js';
import { seededRng } from '../explainers/random.js';
import type { Model, Rows } from '../explainers/types.js';
import { percentile, randomInstances } from './igBench.js';
import { plainMlp } from './igPlainMlp.js';

export interface ImportanceBenchResult {
  label: string;
  /** Model rows evaluated per second of permutation importance (baseline + all permuted copies). */
  rowsPerSec: number;
  p50Ms: number;
  p95Ms: number;
  /** Rows per second of bare predict calls of the same size: the ceiling. */
  predictRowsPerSec: number;
  modelEvaluations: number;
}

export async function benchImportance(
  model: Model,
  data: Rows,
  labels: Float32Array,
  options: PermutationImportanceOptions & { label?: string; runs?: number },
): Promise<ImportanceBenchResult> {
  const runs = options.runs ?? 3;
  const times: number[] = [];
  let evaluations = 0;
  await permutationImportance(model, data, labels, options); // warm-up
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const imp = await permutationImportance(model, data, labels, { ...options, seed: (options.seed ?? 0) + r });
    times.push(performance.now() - t0);
    evaluations = imp.modelEvaluations;
  }
  // Bare predict on the same batch shape permutation importance sends: repeats copies of the data.
  const repeats = options.repeats ?? 5;
  const copies = new Float32Array(data.n * data.d * repeats);
  for (let r = 0; r < repeats; r++) copies.set(data.data.subarray(0, data.n * data.d), r * data.n * data.d);
  const t0 = performance.now();
  await model.predict({ data: copies, n: data.n * repeats, d: data.d });
  const predictMs = performance.now() - t0;
  const mean = times.reduce((a, b) => a + b, 0) / runs;
  return {
    label: options.label ?? `${options.metric} x${repeats}`,
    rowsPerSec: (evaluations / mean) * 1000,
    p50Ms: percentile(times, 0.5),
    p95Ms: percentile(times, 0.95),
    predictRowsPerSec: ((data.n * repeats) / predictMs) * 1000,
    modelEvaluations: evaluations,
  };
}

export function formatImportance(r: ImportanceBenchResult): string {
  return (
    `${r.label.padEnd(36)} ${(r.rowsPerSec / 1000).toFixed(1).padStart(7)}k rows/s  p50 ${r.p50Ms.toFixed(0).padStart(6)} ms  ` +
    `p95 ${r.p95Ms.toFixed(0).padStart(6)} ms  (bare predict ${(r.predictRowsPerSec / 1000).toFixed(1)}k rows/s, ${r.modelEvaluations} rows)`
  );
}

async function main(): Promise<void> {
  const n = 1000;
  const data = randomInstances(n, 20, 11);
  const model = plainMlp([20, 64, 64, 1], { seed: 5, sigmoidHead: true });
  const p = await model.predict(data);
  const rng = seededRng(12);
  const labels = Float32Array.from(p, (q) => (rng() < q ? 1 : 0));
  const space = { featureNames: [], outputNames: [] };
  console.log(`plain-JS MLP 20-64-64-1 (sigmoid head), ${n} rows, 20 features`);
  for (const options of [
    { label: 'roc_auc x5', metric: 'roc_auc', repeats: 5 },
    { label: 'roc_auc + log_loss + accuracy x5', metric: 'roc_auc', metrics: ['log_loss', 'accuracy'], repeats: 5 },
    { label: 'accuracy x5, maxSamples 500', metric: 'accuracy', repeats: 5, maxSamples: 500 },
  ] as const) {
    console.log(formatImportance(await benchImportance(model, data, labels, { ...options, metrics: options.metrics ? [...options.metrics] : undefined, space })));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
