/**
 * Expected Gradients (Erion et al. 2021; shap's GradientExplainer, Captum's GradientShap): Integrated
 * Gradients averaged over baselines drawn from a background set, estimated by sampling a baseline b
 * and a path point alpha per sample: phi = mean_k (x - b_k) * grad f(b_k + alpha_k (x - b_k)).
 * In expectation the attributions sum to f(x) - E_b f(b) (completeness over the background); the gap
 * of one estimate is reported with the standard error of the sum, and every attribution carries its
 * own standard error. Alphas are stratified ((k + u_k) / N), which keeps the estimate unbiased.
 * All samples of all instances for one output go to inputGradients in one call (chunked).
 */
import { randomInt, seededRng } from '../random.js';
import { ExplainerInputError, type CommonOptions, type Explanation, type InstanceExplanation, type Model, type Rows } from '../types.js';
import { checkInstances, checkInteger, outputExplanation, resolveOutputs, row } from './common.js';
import { predictChunked, rowsPerCall } from '../rows.js';

export interface ExpectedGradientsOptions extends CommonOptions {
  /** Baselines are drawn (uniformly, with replacement) from these rows. */
  background: Rows;
  /** Samples per instance. Default 64, at most 65536. */
  samples?: number;
  seed?: number;
  maxRowsPerCall?: number;
}

export const EXPECTED_GRADIENTS_DEFAULTS = { samples: 64, seed: 0 };

export async function expectedGradients(model: Model, instances: Rows, options: ExpectedGradientsOptions): Promise<Explanation> {
  const started = performance.now();
  const d = model.nFeatures;
  checkInstances(instances, d);
  if (!options.background) throw new ExplainerInputError('BAD_BACKGROUND', 'expected-gradients needs background rows to draw baselines from');
  checkInstances(options.background, d, 'background');
  if (!model.inputGradients)
    throw new ExplainerInputError('METHOD_NOT_SUPPORTED', 'expected-gradients needs input gradients, which this model does not provide; use partition-shap or kernel-shap');
  const samples = checkInteger('samples', options.samples ?? EXPECTED_GRADIENTS_DEFAULTS.samples, 1, 65536);
  const seed = options.seed ?? EXPECTED_GRADIENTS_DEFAULTS.seed;
  if (!Number.isSafeInteger(seed)) throw new ExplainerInputError('BAD_PARAMETER', `seed must be an integer, got ${String(seed)}`);
  const outputs = resolveOutputs(model, options.outputs);
  const bg = options.background;
  const n = instances.n;
  const k = model.nOutputs;

  // Sample points and their (x - b) factors, per instance from its own seeded stream.
  const points = new Float32Array(n * samples * d);
  const diffs = new Float32Array(n * samples * d);
  for (let i = 0; i < n; i++) {
    const rng = seededRng(seed + 7919 * i);
    const x = row(instances, i);
    for (let s = 0; s < samples; s++) {
      const b = row(bg, randomInt(rng, bg.n));
      const alpha = (s + rng()) / samples;
      const off = (i * samples + s) * d;
      for (let j = 0; j < d; j++) {
        const diff = x[j] - b[j];
        diffs[off + j] = diff;
        points[off + j] = b[j] + alpha * diff;
      }
    }
  }
  const chunk = rowsPerCall(d, options.maxRowsPerCall);
  const fx = await predictChunked(model, instances, chunk, options.signal);
  const fb = await predictChunked(model, bg, chunk, options.signal);

  const perOutput: { phi: Float64Array; se: Float64Array; sum: number; sumSe: number }[][] = Array.from({ length: n }, () => []);
  for (const o of outputs) {
    const g = new Float32Array(n * samples * d);
    for (let s = 0; s < n * samples; s += chunk) {
      options.signal?.throwIfAborted();
      const e = Math.min(n * samples, s + chunk);
      g.set(await model.inputGradients({ data: points.subarray(s * d, e * d), n: e - s, d }, o), s * d);
    }
    for (let i = 0; i < n; i++) {
      const s1 = new Float64Array(d);
      const s2 = new Float64Array(d);
      let t1 = 0;
      let t2 = 0;
      for (let s = 0; s < samples; s++) {
        const off = (i * samples + s) * d;
        let total = 0;
        for (let j = 0; j < d; j++) {
          const v = diffs[off + j] * g[off + j];
          s1[j] += v;
          s2[j] += v * v;
          total += v;
        }
        t1 += total;
        t2 += total * total;
      }
      const se = (sum: number, sq: number) => (samples > 1 ? Math.sqrt(Math.max(0, (sq / samples - (sum / samples) ** 2) * samples / (samples - 1)) / samples) : 0);
      perOutput[i].push({
        phi: s1.map((v) => v / samples),
        se: s1.map((v, j) => se(v, s2[j])),
        sum: t1 / samples,
        sumSe: se(t1, t2),
      });
    }
  }

  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < n; i++) {
    const x = row(instances, i);
    const gaps: number[] = [];
    const outs = outputs.map((o, oi) => {
      const r = perOutput[i][oi];
      let mean = 0;
      for (let b = 0; b < bg.n; b++) mean += fb[b * k + o] / bg.n;
      const gap = r.sum - (fx[i * k + o] - mean);
      gaps.push(gap);
      return outputExplanation(options.space, o, x, r.phi, { baseline: mean, instance: fx[i * k + o], error: gap }, r.se);
    });
    explanations.push({
      outputs: outs,
      converged: true,
      stopReason: 'budget',
      modelEvaluations: samples * outputs.length + 1 + bg.n,
      computeMs: (performance.now() - started) / n,
      diagnostics: {
        samples,
        // The gap is sampling error: |gap| within ~2 sumStderr is what completeness in expectation predicts.
        completenessGap: gaps,
        sumStderr: perOutput[i].map((r) => r.sumSe),
      },
    });
  }
  return { method: 'expected-gradients', explanations, inputShape: options.space.inputShape, diagnostics: { samples, seed, backgroundRows: bg.n } };
}
