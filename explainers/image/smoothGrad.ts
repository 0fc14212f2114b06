/**
 * SmoothGrad (Smilkov et al. 2017) as Captum's NoiseTunnel: any gradient attribution averaged over
 * noisy copies x + N(0, sigma^2) of the instance, sigma = noise x (max - min of the instance).
 * Forms: 'mean' (SmoothGrad), 'squared' (mean of squares, SmoothGrad-Squared), 'variance' (VarGrad).
 * Bases: the plain gradient, gradient x input, or Integrated Gradients from a baseline.
 *
 * Every noisy copy of every instance goes to the model in one inputGradients call (chunked), or one
 * integratedGradients call for the IG base, which batches all path points of all copies itself.
 * Quality: the standard error of each sampled mean (mean and squared forms); for the IG base also
 * the IG completeness delta averaged over the copies (diagnostics).
 */
import { integratedGradients, type IntegratedGradientsOptions } from '../integratedGradients.js';
import { normal, seededRng } from '../random.js';
import { ExplainerInputError, type CommonOptions, type Explanation, type InstanceExplanation, type Model, type Rows } from '../types.js';
import { checkInstances, checkInteger, checkNumber, outputExplanation, resolveOutputs, row } from './common.js';
import { predictChunked, rowsPerCall } from '../rows.js';

export type SmoothGradBase = 'gradient' | 'input-x-gradient' | 'integrated-gradients';
export type SmoothGradForm = 'mean' | 'squared' | 'variance';

export interface SmoothGradOptions extends CommonOptions {
  /** The attribution averaged over noise. Default 'gradient'. */
  base?: SmoothGradBase;
  /** Default 'mean'. */
  form?: SmoothGradForm;
  /** Noisy copies per instance. Default 32, at most 4096. */
  samples?: number;
  /** Noise standard deviation as a share of (max - min) of the instance. Default 0.15; 0 gives the base method itself. */
  noise?: number;
  seed?: number;
  /** For base 'integrated-gradients': its options (steps, method, baseline, background ...). */
  integratedGradients?: Omit<IntegratedGradientsOptions, 'space' | 'outputs' | 'signal' | 'deadline'>;
  /** Rows per inputGradients call. Default: about 32 MB of input per call. */
  maxRowsPerCall?: number;
}

export const SMOOTHGRAD_DEFAULTS = { base: 'gradient' as SmoothGradBase, form: 'mean' as SmoothGradForm, samples: 32, noise: 0.15, seed: 0 };
export const SMOOTHGRAD_MAX_SAMPLES = 4096;

export async function smoothGrad(model: Model, instances: Rows, options: SmoothGradOptions): Promise<Explanation> {
  const started = performance.now();
  const d = model.nFeatures;
  checkInstances(instances, d);
  const base = options.base ?? SMOOTHGRAD_DEFAULTS.base;
  if (!['gradient', 'input-x-gradient', 'integrated-gradients'].includes(base))
    throw new ExplainerInputError('BAD_PARAMETER', `base must be 'gradient', 'input-x-gradient' or 'integrated-gradients', got ${String(base)}`);
  const form = options.form ?? SMOOTHGRAD_DEFAULTS.form;
  if (!['mean', 'squared', 'variance'].includes(form))
    throw new ExplainerInputError('BAD_PARAMETER', `form must be 'mean', 'squared' or 'variance', got ${String(form)}`);
  const samples = checkInteger('samples', options.samples ?? SMOOTHGRAD_DEFAULTS.samples, 1, SMOOTHGRAD_MAX_SAMPLES);
  const noise = checkNumber('noise', options.noise ?? SMOOTHGRAD_DEFAULTS.noise, 0, 10);
  const seed = options.seed ?? SMOOTHGRAD_DEFAULTS.seed;
  if (!Number.isSafeInteger(seed)) throw new ExplainerInputError('BAD_PARAMETER', `seed must be an integer, got ${String(seed)}`);
  const outputs = resolveOutputs(model, options.outputs);
  if (base !== 'integrated-gradients' && !model.inputGradients)
    throw new ExplainerInputError('METHOD_NOT_SUPPORTED', 'smoothgrad needs input gradients, which this model does not provide; use occlusion or partition-shap');
  options.signal?.throwIfAborted();

  // Noise 0: every copy is the instance, so one copy gives the same answer exactly.
  const copies = noise === 0 ? 1 : samples;
  const n = instances.n;
  const noisy = new Float32Array(n * copies * d);
  const sigmas: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = row(instances, i);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const sigma = noise * (hi - lo);
    sigmas.push(sigma);
    // One stream per instance: an instance's answer does not depend on the others in the request.
    const rng = seededRng(seed + 7919 * i);
    for (let k = 0; k < copies; k++) {
      const off = (i * copies + k) * d;
      for (let j = 0; j < d; j++) noisy[off + j] = sigma === 0 ? x[j] : x[j] + sigma * normal(rng);
    }
  }
  const noisyRows: Rows = { data: noisy, n: n * copies, d };

  // Per output: n * copies attribution rows.
  const perOutput = new Map<number, Float32Array>();
  let igDiag: { delta: Float64Array; baseline: Float64Array } | undefined;
  let evaluations = 0;
  if (base === 'integrated-gradients') {
    const ig = await integratedGradients(model, noisyRows, {
      ...(options.integratedGradients ?? {}),
      space: options.space,
      outputs,
      signal: options.signal,
      deadline: options.deadline,
    });
    igDiag = { delta: new Float64Array(n * outputs.length), baseline: new Float64Array(n * outputs.length) };
    for (const [oi, o] of outputs.entries()) {
      const a = new Float32Array(n * copies * d);
      ig.explanations.forEach((e, r) => {
        const out = e.outputs[oi];
        for (let j = 0; j < d; j++) a[r * d + j] = out.attributions[j].attribution;
        const i = Math.floor(r / copies);
        igDiag!.delta[i * outputs.length + oi] += out.approximationError / copies;
        igDiag!.baseline[i * outputs.length + oi] += out.baselineOutputValue / copies;
      });
      perOutput.set(o, a);
    }
    evaluations = ig.explanations.reduce((s, e) => s + e.modelEvaluations, 0);
  } else {
    const chunk = rowsPerCall(d, options.maxRowsPerCall);
    for (const o of outputs) {
      const g = new Float32Array(n * copies * d);
      for (let s = 0; s < noisyRows.n; s += chunk) {
        options.signal?.throwIfAborted();
        const e = Math.min(noisyRows.n, s + chunk);
        g.set(await model.inputGradients!({ data: noisy.subarray(s * d, e * d), n: e - s, d }, o), s * d);
      }
      if (base === 'input-x-gradient') for (let k = 0; k < g.length; k++) g[k] *= noisy[k];
      perOutput.set(o, g);
      evaluations += noisyRows.n;
    }
  }
  // f(x) per instance and the smoothed output (mean f over the copies).
  const fx = await predictChunked(model, instances, rowsPerCall(d, options.maxRowsPerCall), options.signal);
  const fNoisy = await predictChunked(model, noisyRows, rowsPerCall(d, options.maxRowsPerCall), options.signal);
  const k = model.nOutputs;

  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < n; i++) {
    const x = row(instances, i);
    const outs = outputs.map((o, oi) => {
      const a = perOutput.get(o)!;
      const { value, stderr } = aggregate(a, i, copies, d, form);
      let smoothed = 0;
      for (let c = 0; c < copies; c++) smoothed += fNoisy[(i * copies + c) * k + o] / copies;
      const maxErr = stderr ? stderr.reduce((m, v) => Math.max(m, v), 0) : 0;
      return outputExplanation(
        options.space,
        o,
        x,
        value,
        { baseline: igDiag ? igDiag.baseline[i * outputs.length + oi] : smoothed, instance: fx[i * k + o], error: maxErr },
        stderr ?? undefined,
      );
    });
    explanations.push({
      outputs: outs,
      converged: true,
      stopReason: copies === 1 ? 'exact' : 'budget',
      modelEvaluations: Math.round(evaluations / n) + 1 + copies,
      computeMs: (performance.now() - started) / n,
      diagnostics: {
        sigma: sigmas[i],
        samples: copies,
        ...(igDiag ? { meanCompletenessDelta: outputs.map((_, oi) => igDiag!.delta[i * outputs.length + oi]) } : {}),
        meanNoisyOutput: outputs.map((o) => {
          let s = 0;
          for (let c = 0; c < copies; c++) s += fNoisy[(i * copies + c) * k + o] / copies;
          return s;
        }),
      },
    });
  }
  return {
    method: 'smoothgrad',
    explanations,
    inputShape: options.space.inputShape,
    diagnostics: { base, form, samples: copies, noise, seed },
  };
}

/** Mean, mean of squares or variance over the copies of instance i; stderr of the sampled means. */
function aggregate(a: Float32Array, i: number, copies: number, d: number, form: SmoothGradForm): { value: Float64Array; stderr: Float64Array | null } {
  const s1 = new Float64Array(d);
  const s2 = new Float64Array(d);
  const s4 = new Float64Array(d);
  for (let c = 0; c < copies; c++) {
    const off = (i * copies + c) * d;
    for (let j = 0; j < d; j++) {
      const v = a[off + j];
      s1[j] += v;
      s2[j] += v * v;
      if (form === 'squared') s4[j] += v * v * v * v;
    }
  }
  const value = new Float64Array(d);
  const stderr = form === 'variance' ? null : new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const m = s1[j] / copies;
    const q = s2[j] / copies;
    if (form === 'mean') {
      value[j] = m;
      stderr![j] = copies > 1 ? Math.sqrt(Math.max(0, (q - m * m) * copies / (copies - 1)) / copies) : 0;
    } else if (form === 'squared') {
      value[j] = q;
      stderr![j] = copies > 1 ? Math.sqrt(Math.max(0, (s4[j] / copies - q * q) * copies / (copies - 1)) / copies) : 0;
    } else value[j] = Math.max(0, q - m * m);
  }
  return { value, stderr };
}
