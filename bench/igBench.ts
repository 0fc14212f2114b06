/**
 * Integrated Gradients latency and quality per configuration, for any `Model`.
 * `npx tsx bench/igBench.ts` runs it on a plain-JS 20-64-64-1 ReLU network; the lead points
 * `benchIG` at real tfjs models.
 */
import { pathToFileURL } from 'node:url';
import { integratedGradients, type IntegratedGradientsOptions } from '../explainers/integratedGradients.js';
import { normal, seededRng } from '../explainers/random.js';
import type { FeatureSpace, Model, Rows } from '../explainers/types.js';
import { plainMlp } from './igPlainMlp.js';

export interface IGBenchConfig {
  label: string;
  options: Omit<IntegratedGradientsOptions, 'space'>;
}

export interface IGBenchResult {
  label: string;
  /** Latency of one single-instance explanation, in ms. */
  p50Ms: number;
  p95Ms: number;
  /** Wall time per instance when all instances go in one call. */
  batchedMsPerInstance: number;
  /** Mean gradient rows per instance (path points x outputs x baselines). */
  gradientRowsPerInstance: number;
  /** Largest |completeness delta| / |f(x) - f(x')| over instances and outputs. */
  worstRelativeDelta: number;
  convergedShare: number;
}

export function defaultIGConfigs(model: Model): IGBenchConfig[] {
  const configs: IGBenchConfig[] = [
    { label: 'gauss-legendre 32', options: { method: 'gauss-legendre', steps: 32 } },
    { label: 'gauss-legendre 128', options: { method: 'gauss-legendre', steps: 128 } },
    { label: 'riemann-trapezoid 128', options: { method: 'riemann-trapezoid', steps: 128 } },
    { label: 'auto gauss-legendre', options: { method: 'gauss-legendre', steps: 'auto' } },
  ];
  if (model.pathBreakpoints) configs.push({ label: 'auto exact', options: { method: 'exact', steps: 'auto' } });
  return configs;
}

export async function benchIG(
  model: Model,
  instances: Rows,
  options: { configs?: IGBenchConfig[]; space?: FeatureSpace; warmup?: number } = {},
): Promise<IGBenchResult[]> {
  const space = options.space ?? { featureNames: [], outputNames: [] };
  const results: IGBenchResult[] = [];
  const one = (i: number): Rows => ({ data: instances.data.subarray(i * instances.d, (i + 1) * instances.d), n: 1, d: instances.d });
  for (const config of options.configs ?? defaultIGConfigs(model)) {
    const opts = { ...config.options, space };
    for (let w = 0; w < (options.warmup ?? 2); w++) await integratedGradients(model, one(w % instances.n), opts);
    const times: number[] = [];
    let worst = 0;
    let converged = 0;
    let gradientRows = 0;
    for (let i = 0; i < instances.n; i++) {
      const t0 = performance.now();
      const e = await integratedGradients(model, one(i), opts);
      times.push(performance.now() - t0);
      const inst = e.explanations[0];
      if (inst.converged) converged++;
      gradientRows += e.diagnostics?.gradientRows as number;
      for (const out of inst.outputs) {
        const gap = Math.abs(out.instanceOutputValue - out.baselineOutputValue);
        worst = Math.max(worst, Math.abs(out.approximationError) / Math.max(gap, 1e-12));
      }
    }
    const t0 = performance.now();
    await integratedGradients(model, instances, opts);
    const batched = (performance.now() - t0) / instances.n;
    results.push({
      label: config.label,
      p50Ms: percentile(times, 0.5),
      p95Ms: percentile(times, 0.95),
      batchedMsPerInstance: batched,
      gradientRowsPerInstance: gradientRows / instances.n,
      worstRelativeDelta: worst,
      convergedShare: converged / instances.n,
    });
  }
  return results;
}

/** Nearest-rank percentile. */
export function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function randomInstances(n: number, d: number, seed = 7): Rows {
  const rng = seededRng(seed);
  return { data: Float32Array.from({ length: n * d }, () => normal(rng)), n, d };
}

export function formatIG(results: IGBenchResult[]): string {
  const rows = results.map(
    (r) =>
      `${r.label.padEnd(24)} p50 ${r.p50Ms.toFixed(2).padStart(7)} ms  p95 ${r.p95Ms.toFixed(2).padStart(7)} ms  ` +
      `batched ${r.batchedMsPerInstance.toFixed(2).padStart(6)} ms/inst  grad rows ${r.gradientRowsPerInstance.toFixed(0).padStart(5)}  ` +
      `worst |delta|/gap ${r.worstRelativeDelta.toExponential(1)}  converged ${(100 * r.convergedShare).toFixed(0)}%`,
  );
  return rows.join('\n');
}

async function main(): Promise<void> {
  const instances = randomInstances(50, 20);
  for (const sigmoidHead of [false, true]) {
    const model = plainMlp([20, 64, 64, 1], { seed: 3, sigmoidHead });
    console.log(`plain-JS MLP 20-64-64-1, ${sigmoidHead ? 'sigmoid' : 'linear'} head, ${instances.n} instances, zero baseline`);
    console.log(formatIG(await benchIG(model, instances)));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
