/**
 * Integrated Gradients (Sundararajan et al. 2017): attribution_j = (x_j - x'_j) times the integral
 * over alpha in [0, 1] of d f / d x_j at x' + alpha (x - x'). By the fundamental theorem of calculus
 * the attributions sum to f(x) - f(x') (completeness), so the gap between the two, the completeness
 * delta, measures the quadrature error and is reported with every explanation.
 *
 * What we do beyond a fixed-step Riemann sum:
 * - Gauss-Legendre by default, which converges much faster than Riemann sums for smooth models.
 * - `steps: 'auto'`: the point count doubles per (instance, baseline) until the completeness delta
 *   meets the tolerance, so easy instances stop early and hard ones get refined.
 * - `method: 'exact'` for piecewise-linear networks (chosen automatically by 'auto' when the model
 *   offers `pathBreakpoints`): integrate segment by segment between the points where a hidden unit
 *   changes regime. With a linear output the gradient is constant on each segment, so one midpoint
 *   per segment is exact; with a smooth output head a few Gauss-Legendre nodes per segment converge
 *   fast because no kink lies inside a segment. If completeness still fails (a model that misses
 *   breakpoints), nodes per segment double like any other level. When we chose 'exact' ourselves,
 *   paths with more than maxSteps / 4 segments (convolutional nets: hundreds) use plain
 *   Gauss-Legendre instead, which is cheaper there.
 * - Several baseline rows: attributions are averaged over baselines (as Vertex AI does), which is
 *   the IG of the mixture; baselineOutputValue is then the mean f over baselines, so completeness
 *   still reads sum(attributions) = f(x) - baselineOutputValue.
 *
 * Every path point of every (instance, baseline) pair for one output goes to the model in one
 * inputGradients call (chunked by `batchSize` rows), since models are far faster on big batches.
 */
import {
  ExplainerInputError,
  type CommonOptions,
  type Explanation,
  type InstanceExplanation,
  type Model,
  type Rows,
} from './types.js';
import { compositeOnSegments, minPoints, quadrature, QUADRATURE_RULES, type Quadrature, type QuadratureRule } from './quadrature.js';

export type IntegratedGradientsMethod = QuadratureRule | 'exact';

export interface IntegratedGradientsOptions extends CommonOptions {
  /**
   * Path points per (instance, baseline). 'auto' (default) doubles from `initialSteps` until the
   * completeness delta meets `tolerance` or `maxSteps` is reached. With method 'exact', 'auto' starts
   * at one node per segment and doubles; a number fixes the Gauss-Legendre nodes per segment for
   * smooth output heads (affine ones are exact with one).
   */
  steps?: number | 'auto';
  /** Default: 'exact' when steps is 'auto' and the model has pathBreakpoints, else 'gauss-legendre'. */
  method?: IntegratedGradientsMethod;
  /** Default 'zeros'. 'mean' is the column mean of `background`. Several rows are averaged over. */
  baseline?: 'zeros' | 'mean' | Rows;
  /** Rows whose column mean is the 'mean' baseline. */
  background?: Rows;
  /** Relative completeness tolerance: |delta| <= tolerance * |f(x) - f(x')|. Default 0.01. */
  tolerance?: number;
  /**
   * Absolute floor on the completeness tolerance, for paths where f(x) ~= f(x'). Default
   * 1e-5 * max(1, |f(x)|, |f(x')|): float32 gradients cannot do much better.
   */
  absoluteTolerance?: number;
  /** Cap on path points per (instance, baseline) in automatic mode. Default 1024. */
  maxSteps?: number;
  /** First point count in automatic mode. Default 16. */
  initialSteps?: number;
  /** Rows per inputGradients call. Default: about 16 MB of float32 input per call. */
  batchSize?: number;
}

const DEFAULTS = { tolerance: 0.01, maxSteps: 1024, initialSteps: 16 };
const MAX_FIXED_STEPS = 1 << 20;

/** One (instance, baseline) path for one output, refined level by level. */
interface PathState {
  instance: number;
  baseline: number;
  attributions: Float64Array;
  converged: boolean;
  /** Points in the last (best) estimate. */
  points: number;
  /** Breakpoints in exact mode. */
  breakpoints?: number[];
  affine?: boolean;
}

/** What every output's refinement loop shares. */
interface Context {
  config: Config;
  options: IntegratedGradientsOptions;
  inputGradients: NonNullable<Model['inputGradients']>;
  instances: Rows;
  baselines: Rows;
  /** f(x_i) and f(x'_b), output o. */
  fx(i: number, o: number): number;
  fb(b: number, o: number): number;
  breakpoints: { alphas: number[]; affine: boolean }[];
  /** Gradient rows spent per instance, for modelEvaluations and computeMs. */
  gradientRows: Float64Array;
  deadlineReached: boolean;
}

export async function integratedGradients(
  model: Model,
  instances: Rows,
  options: IntegratedGradientsOptions,
): Promise<Explanation> {
  const started = performance.now();
  const inputGradients = model.inputGradients?.bind(model);
  if (!inputGradients) {
    throw new ExplainerInputError(
      'METHOD_NOT_SUPPORTED',
      'integrated-gradients needs input gradients, which this model does not provide; use kernel-shap, which needs only predictions',
    );
  }
  const d = model.nFeatures;
  checkRows(instances, d, 'BAD_INSTANCES', 'instances');
  const config = resolveConfig(model, options, d);
  const baselines = resolveBaseline(options, d);
  options.signal?.throwIfAborted();

  const n = instances.n;
  const nb = baselines.n;
  const k = model.nOutputs;
  const values = await predictAll(model, instances, baselines);
  // Breakpoints do not depend on the output explained: fetch them once per path.
  const breakpoints: Context['breakpoints'] = [];
  if (config.method === 'exact') {
    for (let i = 0; i < n; i++) {
      for (let b = 0; b < nb; b++) {
        const r = await model.pathBreakpoints!(row(baselines, b), row(instances, i));
        breakpoints.push({ alphas: cleanBreakpoints(r.alphas), affine: r.affineBetween });
      }
    }
  }
  const ctx: Context = {
    config,
    options,
    inputGradients,
    instances,
    baselines,
    fx: (i, o) => values[i * k + o],
    fb: (b, o) => values[(n + b) * k + o],
    breakpoints,
    gradientRows: new Float64Array(n),
    deadlineReached: false,
  };
  const perOutput: PathState[][] = [];
  for (const o of config.outputs) perOutput.push(await explainOutput(ctx, o));
  return assemble(ctx, perOutput, performance.now() - started);
}

/** Refines every path for output o until each converges, runs out of levels, or time runs out. */
async function explainOutput(ctx: Context, o: number): Promise<PathState[]> {
  const { config, instances, baselines } = ctx;
  const d = instances.d;
  const paths: PathState[] = [];
  for (let i = 0; i < instances.n; i++) {
    for (let b = 0; b < baselines.n; b++) {
      const bp = ctx.breakpoints[i * baselines.n + b];
      // When 'exact' was our choice rather than the caller's, a path with more segments than a
      // quarter of maxSteps (deep or convolutional nets) is cheaper by plain Gauss-Legendre.
      const useBreakpoints = bp && !(config.methodChosen && bp.alphas.length + 1 > config.maxSteps / 4);
      paths.push({
        instance: i,
        baseline: b,
        attributions: new Float64Array(d),
        converged: false,
        points: 0,
        breakpoints: useBreakpoints ? bp.alphas : undefined,
        affine: bp?.affine,
      });
    }
  }
  for (let level = 0; ; level++) {
    const plans: { path: PathState; rule: Quadrature }[] = [];
    for (const path of paths) {
      const rule = path.converged ? null : planLevel(config, path, level);
      if (rule) plans.push({ path, rule });
    }
    if (plans.length === 0) break;
    if (level > 0) {
      ctx.options.signal?.throwIfAborted();
      if (ctx.options.deadline !== undefined && Date.now() >= ctx.options.deadline) {
        ctx.deadlineReached = true;
        break;
      }
    }
    const integrals = await integrate(ctx.inputGradients, o, instances, baselines, plans, config.batchSize, ctx.options.signal);
    plans.forEach(({ path, rule }, p) => {
      const x = row(instances, path.instance);
      const xb = row(baselines, path.baseline);
      let sum = 0;
      for (let j = 0; j < d; j++) {
        path.attributions[j] = (x[j] - xb[j]) * integrals[p][j];
        sum += path.attributions[j];
      }
      const fx = ctx.fx(path.instance, o);
      const fb = ctx.fb(path.baseline, o);
      const floor = config.absoluteTolerance ?? 1e-5 * Math.max(1, Math.abs(fx), Math.abs(fb));
      path.converged = Math.abs(sum - (fx - fb)) <= Math.max(config.tolerance * Math.abs(fx - fb), floor);
      path.points = rule.alphas.length;
      ctx.gradientRows[path.instance] += rule.alphas.length;
    });
    if (config.steps !== 'auto') break;
  }
  return paths;
}

/** Averages over baselines per instance and output, and puts the Explanation together. */
function assemble(ctx: Context, perOutput: PathState[][], elapsed: number): Explanation {
  const { config, instances, options, gradientRows } = ctx;
  const n = instances.n;
  const nb = ctx.baselines.n;
  const d = instances.d;
  const totalEvaluations = gradientRows.reduce((a, b) => a + b, 0) + n + nb;
  const stepsUsed = new Array<number>(n).fill(0);
  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < n; i++) {
    const x = row(instances, i);
    let converged = true;
    const outputs = config.outputs.map((o, k) => {
      const paths = perOutput[k].slice(i * nb, (i + 1) * nb);
      for (const p of paths) {
        stepsUsed[i] = Math.max(stepsUsed[i], p.points);
        converged &&= p.converged;
      }
      const baselineOutputValue = mean(paths.map((p) => ctx.fb(p.baseline, o)));
      const instanceOutputValue = ctx.fx(i, o);
      let sum = 0;
      const attributions = Array.from({ length: d }, (_, j) => {
        const attribution = mean(paths.map((p) => p.attributions[j]));
        sum += attribution;
        return { feature: config.featureNames[j], value: x[j], attribution };
      });
      return {
        output: options.space.outputNames[o] ?? `y${o}`,
        outputIndex: o,
        baselineOutputValue,
        instanceOutputValue,
        attributions,
        approximationError: sum - (instanceOutputValue - baselineOutputValue),
      };
    });
    // Every instance shares the predict call on the baselines; count it in full for each, as the
    // cost this explanation would have alone. Wall time is shared in proportion to gradient rows.
    explanations.push({
      outputs,
      converged,
      modelEvaluations: 1 + nb + gradientRows[i],
      computeMs: (elapsed * (1 + gradientRows[i] + nb / n)) / totalEvaluations,
    });
  }
  const exact = config.method === 'exact';
  const segments = (i: number) => Math.max(...ctx.breakpoints.slice(i * nb, (i + 1) * nb).map((b) => b.alphas.length + 1));
  const explanation: Explanation = {
    method: 'integrated-gradients',
    explanations,
    diagnostics: {
      quadrature: config.method,
      steps: config.steps,
      tolerance: config.tolerance,
      baselines: nb,
      baselineKind: typeof options.baseline === 'object' ? 'rows' : (options.baseline ?? 'zeros'),
      stepsUsed,
      ...(exact
        ? {
            segments: Array.from({ length: n }, (_, i) => segments(i)),
            affineBetween: ctx.breakpoints.every((b) => b.affine),
            // (instance, baseline) paths with too many segments, integrated by Gauss-Legendre instead.
            gaussLegendrePaths: perOutput[0].filter((p) => !p.breakpoints).length,
          }
        : {}),
      gradientRows: totalEvaluations - n - nb,
      deadlineReached: ctx.deadlineReached,
    },
  };
  if (options.space.inputShape) explanation.inputShape = [...options.space.inputShape];
  return explanation;
}

interface Config {
  method: IntegratedGradientsMethod;
  /** True when the method was not given and we picked it. */
  methodChosen: boolean;
  steps: number | 'auto';
  tolerance: number;
  absoluteTolerance?: number;
  maxSteps: number;
  initialSteps: number;
  batchSize: number;
  outputs: number[];
  featureNames: string[];
}

/**
 * The quadrature for one path at one refinement level, or null when the path cannot be refined
 * further. Level 0 always has a plan.
 */
function planLevel(config: Config, path: PathState, level: number): Quadrature | null {
  if (path.breakpoints) {
    // One Gauss-Legendre node per segment is its midpoint, which is exact when the output is affine
    // between breakpoints. Smooth heads (and models that under-report breakpoints) get the count
    // per segment doubled per level: segments are short and kink-free, so a few nodes suffice.
    const bp = path.breakpoints;
    const perSegment = config.steps === 'auto' ? 1 << level : path.affine ? 1 : config.steps;
    if (level > 0 && perSegment * (bp.length + 1) > config.maxSteps) return null;
    return compositeOnSegments(bp, quadrature('gauss-legendre', perSegment));
  }
  const rule = config.method === 'exact' ? 'gauss-legendre' : config.method;
  if (config.steps !== 'auto') return quadrature(rule, config.steps);
  const points = Math.min(config.initialSteps, config.maxSteps) * 2 ** level;
  if (level > 0 && points > config.maxSteps) return null;
  return quadrature(rule, Math.max(points, minPoints(rule)));
}

/** sum_k w_k grad f(x' + a_k (x - x')) for every planned path, in as few model calls as allowed. */
async function integrate(
  inputGradients: NonNullable<Model['inputGradients']>,
  output: number,
  instances: Rows,
  baselines: Rows,
  plans: { path: PathState; rule: Quadrature }[],
  batchSize: number,
  signal: AbortSignal | undefined,
): Promise<Float64Array[]> {
  const d = instances.d;
  const total = plans.reduce((s, p) => s + p.rule.alphas.length, 0);
  const integrals = plans.map(() => new Float64Array(d));
  let plan = 0;
  let node = 0;
  for (let start = 0; start < total; start += batchSize) {
    signal?.throwIfAborted();
    const rows = Math.min(batchSize, total - start);
    const data = new Float32Array(rows * d);
    const owner = new Int32Array(rows);
    const weight = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      while (node >= plans[plan].rule.alphas.length) {
        plan++;
        node = 0;
      }
      const { path, rule } = plans[plan];
      const a = rule.alphas[node];
      const x = row(instances, path.instance);
      const xb = row(baselines, path.baseline);
      for (let j = 0; j < d; j++) data[r * d + j] = xb[j] + a * (x[j] - xb[j]);
      owner[r] = plan;
      weight[r] = rule.weights[node];
      node++;
    }
    const grads = await inputGradients({ data, n: rows, d }, output);
    if (grads.length !== rows * d) {
      throw new Error(`model.inputGradients returned ${grads.length} values for ${rows} rows of ${d}`);
    }
    for (let r = 0; r < rows; r++) {
      const acc = integrals[owner[r]];
      const w = weight[r];
      for (let j = 0; j < d; j++) acc[j] += w * grads[r * d + j];
    }
  }
  return integrals;
}

async function predictAll(model: Model, instances: Rows, baselines: Rows): Promise<Float32Array> {
  const d = instances.d;
  const data = new Float32Array((instances.n + baselines.n) * d);
  data.set(instances.data.subarray(0, instances.n * d));
  data.set(baselines.data.subarray(0, baselines.n * d), instances.n * d);
  const rows = { data, n: instances.n + baselines.n, d };
  const out = await model.predict(rows);
  if (out.length !== rows.n * model.nOutputs) {
    throw new Error(`model.predict returned ${out.length} values for ${rows.n} rows of ${model.nOutputs} outputs`);
  }
  return out;
}

function resolveConfig(model: Model, options: IntegratedGradientsOptions, d: number): Config {
  const steps = options.steps ?? 'auto';
  const method = options.method ?? (steps === 'auto' && model.pathBreakpoints ? 'exact' : 'gauss-legendre');
  if (method !== 'exact' && !QUADRATURE_RULES.includes(method)) {
    throw new ExplainerInputError('BAD_PARAMETER', `unknown method "${method as string}"; use one of ${[...QUADRATURE_RULES, 'exact'].join(', ')}`);
  }
  if (method === 'exact' && !model.pathBreakpoints) {
    throw new ExplainerInputError(
      'METHOD_NOT_SUPPORTED',
      "method 'exact' needs a piecewise-linear network that reports its path breakpoints; this model does not, so use 'gauss-legendre'",
    );
  }
  const least = method === 'exact' ? 1 : minPoints(method);
  if (steps !== 'auto' && !(Number.isInteger(steps) && steps >= least && steps <= MAX_FIXED_STEPS)) {
    throw new ExplainerInputError('BAD_PARAMETER', `steps must be 'auto' or an integer from ${least} to ${MAX_FIXED_STEPS}, got ${String(steps)}`);
  }
  const tolerance = options.tolerance ?? DEFAULTS.tolerance;
  if (!(tolerance > 0 && Number.isFinite(tolerance))) {
    throw new ExplainerInputError('BAD_PARAMETER', `tolerance must be a positive number, got ${tolerance}`);
  }
  const absoluteTolerance = options.absoluteTolerance;
  if (absoluteTolerance !== undefined && !(absoluteTolerance >= 0 && Number.isFinite(absoluteTolerance))) {
    throw new ExplainerInputError('BAD_PARAMETER', `absoluteTolerance must be a number >= 0, got ${absoluteTolerance}`);
  }
  const maxSteps = positiveInteger(options.maxSteps ?? DEFAULTS.maxSteps, 'maxSteps', Math.max(least, 1));
  const initialSteps = positiveInteger(options.initialSteps ?? DEFAULTS.initialSteps, 'initialSteps', Math.max(least, 1));
  const batchSize = positiveInteger(options.batchSize ?? Math.max(1, Math.floor(4_194_304 / Math.max(1, d))), 'batchSize', 1);
  const outputs = options.outputs ?? Array.from({ length: model.nOutputs }, (_, o) => o);
  for (const o of outputs) {
    if (!(Number.isInteger(o) && o >= 0 && o < model.nOutputs)) {
      throw new ExplainerInputError('BAD_OUTPUTS', `output index ${o} is out of range: the model has ${model.nOutputs} outputs`);
    }
  }
  if (outputs.length === 0) throw new ExplainerInputError('BAD_OUTPUTS', 'outputs is empty: name at least one output to explain');
  const { featureNames, inputShape } = options.space;
  if (featureNames.length !== 0 && featureNames.length !== d) {
    throw new ExplainerInputError('BAD_PARAMETER', `space.featureNames has ${featureNames.length} names for ${d} features`);
  }
  if (inputShape && inputShape.reduce((a, b) => a * b, 1) !== d) {
    throw new ExplainerInputError('BAD_PARAMETER', `space.inputShape [${inputShape.join(', ')}] does not hold ${d} values`);
  }
  return {
    method,
    methodChosen: options.method === undefined,
    steps,
    tolerance,
    absoluteTolerance,
    maxSteps,
    initialSteps,
    batchSize,
    outputs,
    featureNames: Array.from({ length: d }, (_, j) => featureNames[j] ?? `x${j}`),
  };
}

function resolveBaseline(options: IntegratedGradientsOptions, d: number): Rows {
  const baseline = options.baseline ?? 'zeros';
  if (baseline === 'zeros') return { data: new Float32Array(d), n: 1, d };
  if (baseline === 'mean') {
    const bg = options.background;
    if (!bg) throw new ExplainerInputError('BAD_BASELINE', "baseline 'mean' needs background rows to take the mean of");
    checkRows(bg, d, 'BAD_BASELINE', 'background');
    const sums = new Float64Array(d);
    for (let r = 0; r < bg.n; r++) for (let j = 0; j < d; j++) sums[j] += bg.data[r * d + j];
    return { data: Float32Array.from(sums, (s) => s / bg.n), n: 1, d };
  }
  if (typeof baseline === 'object' && baseline !== null && baseline.data instanceof Float32Array) {
    checkRows(baseline, d, 'BAD_BASELINE', 'baseline');
    return baseline;
  }
  throw new ExplainerInputError('BAD_BASELINE', "baseline must be 'zeros', 'mean' or rows of feature values");
}

function checkRows(rows: Rows, d: number, code: string, what: string): void {
  if (rows.d !== d) throw new ExplainerInputError(code, `${what} have ${rows.d} values per row; the model takes ${d}`);
  if (!(Number.isInteger(rows.n) && rows.n >= 1)) throw new ExplainerInputError(code, `${what} must hold at least one row`);
  if (rows.data.length < rows.n * d) {
    throw new ExplainerInputError(code, `${what} hold ${rows.data.length} values, fewer than ${rows.n} rows of ${d}`);
  }
  for (let k = 0; k < rows.n * d; k++) {
    if (!Number.isFinite(rows.data[k])) {
      throw new ExplainerInputError(code, `${what} row ${Math.floor(k / d)} has a non-finite value in column ${k % d}`);
    }
  }
}

function positiveInteger(v: number, name: string, least: number): number {
  if (!(Number.isInteger(v) && v >= least)) throw new ExplainerInputError('BAD_PARAMETER', `${name} must be an integer >= ${least}, got ${v}`);
  return v;
}

/** Sorted, distinct breakpoints strictly inside (0, 1); models may report endpoints or repeats. */
function cleanBreakpoints(alphas: number[]): number[] {
  const inside = alphas.filter((a) => Number.isFinite(a) && a > 0 && a < 1).sort((a, b) => a - b);
  return inside.filter((a, k) => k === 0 || a > inside[k - 1]);
}

function row(rows: Rows, i: number): Float32Array {
  return rows.data.subarray(i * rows.d, (i + 1) * rows.d);
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
