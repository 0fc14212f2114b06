/**
 * Integrated Gradients (Sundararajan et al. 2017): attribution_j = (x_j - x'_j) times the integral
 * over alpha in [0, 1] of d f / d x_j at x' + alpha (x - x'). By the fundamental theorem of calculus
 * the attributions sum to f(x) - f(x') (completeness); the gap, the completeness delta, is reported
 * with every explanation, next to an estimate of the largest error of any single attribution.
 *
 * The sum can be right while single attributions are wrong (their errors cancel), so automatic
 * mode bounds the error of each attribution, not only the sum:
 * - Exact segment integration (default for piecewise-linear networks that offer pathBreakpoints
 *   and logitJacobian): between two breakpoints the logits are affine in alpha and their Jacobian
 *   is constant, so one model evaluation per segment gives the integral exactly (up to float32
 *   and a 1-D integral of the output activation done to ~1e-12), whatever that activation
 *   (softmax, sigmoid, tanh, linear): see segmentIntegrals.ts. The breakpoints
 *   are checked (continuity of the logits, completeness); a path that fails falls back to quadrature.
 * - Quadrature otherwise (Gauss-Legendre by default): per segment between breakpoints when the
 *   model reports them, else over [0, 1]. The number of nodes doubles per level, and the difference
 *   between two levels, per feature and output, is the error estimate of the finer one: refinement
 *   stops when every output's largest estimate is <= tolerance x its largest |attribution| (and the
 *   completeness delta <= tolerance x |f(x) - f(x')|), or at maxSteps.
 * - `criterion: 'completeness'` checks the sum only: cheaper, blind to errors that cancel.
 * - Each instance says why it stopped (stopReason: exact, tolerance, budget, deadline) and carries
 *   its own diagnostics; the deadline is checked before every model call of a refinement level.
 * - Several baseline rows: attributions are averaged over baselines (as Vertex AI does), which is
 *   the IG of the mixture; baselineOutputValue is then the mean f over baselines, so completeness
 *   still reads sum(attributions) = f(x) - baselineOutputValue.
 *
 * Every path point of every (instance, baseline) pair goes to the model together (see
 * pathIntegrals.ts), and all explained outputs come from one pass when the model has logitJacobian.
 */
import { IG_CRITERIA, IG_DEFAULT_TOLERANCE } from './defaults.js';
import {
  ExplainerInputError,
  type CommonOptions,
  type Explanation,
  type InstanceExplanation,
  type Model,
  type Rows,
  type StopReason,
} from './types.js';
import { checkPredictLength, checkRows, positiveInteger } from './rows.js';
import { pathDelta, quadraturePass, segmentExactPass, type PassContext } from './pathIntegrals.js';
import { compositeOnSegments, minPoints, quadrature, QUADRATURE_RULES, type Quadrature, type QuadratureRule } from './quadrature.js';

export type IntegratedGradientsMethod = QuadratureRule | 'exact';

/** What automatic refinement must bound: every attribution (default) or only their sum. */
export type IntegratedGradientsCriterion = (typeof IG_CRITERIA)[number];

export interface IntegratedGradientsOptions extends CommonOptions {
  /**
   * 'auto' (default): refine until the tolerance is met or `maxSteps` is reached (exact segment
   * integration needs no refinement). A number fixes the path points (Gauss-Legendre nodes per
   * segment with method 'exact'); convergence is then judged on completeness alone.
   */
  steps?: number | 'auto';
  /** Default: 'exact' when the model has pathBreakpoints, else 'gauss-legendre'. */
  method?: IntegratedGradientsMethod;
  /** Default 'zeros'. 'mean' is the column mean of `background`. Several rows are averaged over. */
  baseline?: 'zeros' | 'mean' | Rows;
  /** Rows whose column mean is the 'mean' baseline. */
  background?: Rows;
  /**
   * Relative tolerance, default 1e-3: per output, the estimated error of every attribution must be
   * <= tolerance x the largest |attribution|, and the completeness delta <= tolerance x
   * |f(x) - f(x')|. 0 turns the relative test off (with absoluteTolerance unset too: refine to maxSteps).
   */
  tolerance?: number;
  /**
   * Absolute floor on both tests, for outputs where f(x) ~= f(x'). Default
   * 1e-5 * max(1, |f(x)|, |f(x')|) (float32 gradients cannot do much better); 0 when tolerance is 0.
   */
  absoluteTolerance?: number;
  /** Default 'attributions'. */
  criterion?: IntegratedGradientsCriterion;
  /** Cap on path points per (instance, baseline) in automatic mode. Default 1024. */
  maxSteps?: number;
  /** First point count of automatic Gauss-Legendre over [0, 1]. Default 16. */
  initialSteps?: number;
  /** Rows per model gradient call (the deadline is checked between calls). Default: ~1 MB of float32 input. */
  maxRowsPerCall?: number;
}

const DEFAULTS = { tolerance: IG_DEFAULT_TOLERANCE, maxSteps: 1024, initialSteps: 16 };
const MAX_FIXED_STEPS = 1 << 20;
/** Logits of neighbouring segments may disagree at their breakpoint by this much relative (float32). */
const CONTINUITY_TOLERANCE = 1e-4;

/** How a path is integrated. */
type Integration = 'segments-exact' | 'segments' | 'straight';

/** One (instance, baseline) path, all explained outputs together. */
interface PathState {
  instance: number;
  baseline: number;
  /** Breakpoints inside (0, 1) for the segment integrations. */
  breakpoints?: number[];
  affine: boolean;
  integration: Integration;
  /** Integral of d y_o / d x_j over the path, K x d; attributions are these times x_j - x'_j. */
  integral: Float64Array | null;
  /** Bound on the error of `integral`, K x d; null until two levels can be compared. */
  error: Float64Array | null;
  /** Path points in the current estimate. */
  points: number;
  stop?: StopReason;
}

interface Config {
  method: IntegratedGradientsMethod;
  /** True when the method was not given and we picked it. */
  methodChosen: boolean;
  steps: number | 'auto';
  tolerance: number;
  absoluteTolerance?: number;
  criterion: IntegratedGradientsCriterion;
  maxSteps: number;
  initialSteps: number;
  maxRowsPerCall: number;
  outputs: number[];
  featureNames: string[];
}

export async function integratedGradients(model: Model, instances: Rows, options: IntegratedGradientsOptions): Promise<Explanation> {
  const started = performance.now();
  if (!model.inputGradients) {
    throw new ExplainerInputError(
      'METHOD_NOT_SUPPORTED',
      'integrated-gradients needs input gradients, which this model does not provide; use kernel-shap, which needs only predictions',
    );
  }
  const d = model.nFeatures;
  checkRows(instances, d, { code: 'BAD_INSTANCES', what: 'instances' });
  const config = resolveConfig(model, options, d);
  const baselines = resolveBaseline(options, d);
  options.signal?.throwIfAborted();

  const n = instances.n;
  const nb = baselines.n;
  const k = model.nOutputs;
  const K = config.outputs.length;
  const values = await predictAll(model, instances, baselines);
  const fx = (i: number, o: number) => values[i * k + o];
  const fb = (b: number, o: number) => values[(n + b) * k + o];

  const ctx: PassContext = {
    model,
    instances,
    baselines,
    outputs: config.outputs,
    maxRowsPerCall: config.maxRowsPerCall,
    // One pass gives every output; for a single output of several, its own gradient is cheaper.
    useJacobian: model.logitJacobian !== undefined && (K > 1 || k === 1),
    signal: options.signal,
    deadline: options.deadline,
    gradientRows: new Float64Array(n),
    deadlineReached: false,
  };

  // Breakpoints do not depend on the output explained: one request per path, all in flight at once.
  const refs = Array.from({ length: n * nb }, (_, p) => ({ instance: Math.floor(p / nb), baseline: p % nb }));
  const breakpoints =
    config.method === 'exact'
      ? await Promise.all(
          refs.map(async ({ instance, baseline }) => {
            const r = await model.pathBreakpoints!(row(baselines, baseline), row(instances, instance));
            return { alphas: cleanBreakpoints(r.alphas), affine: r.affineBetween };
          }),
        )
      : null;
  const segmentExact = config.method === 'exact' && config.steps === 'auto' && model.logitJacobian !== undefined;
  const paths: PathState[] = refs.map((ref, p) => {
    const bp = breakpoints?.[p];
    const segments = bp ? bp.alphas.length + 1 : 0;
    let integration: Integration = 'straight';
    if (bp && segmentExact && segments <= config.maxSteps) integration = 'segments-exact';
    // When 'exact' was our choice rather than the caller's, quadrature on a path with more
    // segments than a quarter of maxSteps (deep or convolutional nets) is cheaper over [0, 1].
    else if (bp && !(config.methodChosen && segments > config.maxSteps / 4)) integration = 'segments';
    return { ...ref, breakpoints: bp?.alphas, affine: bp?.affine ?? false, integration, integral: null, error: null, points: 0 };
  });

  /**
   * Whether the path's current estimate meets the tolerance (the per-feature test only when
   * `estimated`). `verifying` checks an exact integration for missed breakpoints: float32's
   * resolution is then always allowed, even with tolerance 0.
   */
  const meets = (path: PathState, estimated: boolean, verifying = false): boolean => {
    const delta = pathDelta(ctx, path);
    for (let q = 0; q < K; q++) {
      const o = config.outputs[q];
      const gap = fx(path.instance, o) - fb(path.baseline, o);
      const float32 = 1e-5 * Math.max(1, Math.abs(fx(path.instance, o)), Math.abs(fb(path.baseline, o)));
      const floor = verifying ? Math.max(config.absoluteTolerance ?? 0, float32) : (config.absoluteTolerance ?? (config.tolerance > 0 ? float32 : 0));
      let sum = 0;
      let largest = 0;
      let worst = 0;
      for (let j = 0; j < d; j++) {
        const a = delta[j] * path.integral![q * d + j];
        sum += a;
        largest = Math.max(largest, Math.abs(a));
        if (path.error) worst = Math.max(worst, Math.abs(delta[j]) * path.error[q * d + j]);
      }
      if (!(Math.abs(sum - gap) <= Math.max(config.tolerance * Math.abs(gap), floor))) return false;
      if (estimated && config.criterion === 'attributions') {
        if (!path.error || !(worst <= Math.max(config.tolerance * largest, floor))) return false;
      }
    }
    return true;
  };

  // Exact segment integration first: one level, no refinement; paths that fail its checks join the quadrature.
  const exactPaths = paths.filter((p) => p.integration === 'segments-exact');
  let fallbacks = 0;
  if (exactPaths.length > 0) {
    const results = await segmentExactPass(
      ctx,
      exactPaths.map((path) => ({ path, edges: [0, ...path.breakpoints!, 1] })),
    );
    exactPaths.forEach((path, p) => {
      const r = results[p];
      path.integral = r.integral;
      path.error = r.error;
      path.points = r.segments;
      // Exact up to float32: the per-feature bound is reported, not tested against the tolerance.
      if (r.mismatch <= CONTINUITY_TOLERANCE * Math.max(1, r.zScale) && meets(path, false, true)) path.stop = 'exact';
      else {
        fallbacks++;
        Object.assign(path, { integration: 'segments', integral: null, error: null, points: 0 });
      }
    });
  }

  const quadPaths = paths.filter((p) => p.integration !== 'segments-exact');
  for (let level = 0; ; level++) {
    const plans: { path: PathState; rule: Quadrature }[] = [];
    for (const path of quadPaths) {
      if (path.stop) continue;
      const rule = planLevel(config, path, level);
      if (rule) plans.push({ path, rule });
      else path.stop = 'budget';
    }
    if (plans.length === 0) break;
    options.signal?.throwIfAborted();
    if (level > 0 && options.deadline !== undefined && Date.now() >= options.deadline) ctx.deadlineReached = true;
    // The first level always completes (the caller gets an estimate); later ones stop at the deadline.
    const integrals = ctx.deadlineReached ? plans.map(() => null) : await quadraturePass(ctx, plans, level > 0);
    plans.forEach(({ path, rule }, p) => {
      const integral = integrals[p];
      if (!integral) {
        path.stop = 'deadline';
        return;
      }
      const previous = path.integral;
      path.integral = integral;
      path.points = rule.alphas.length;
      path.error = previous ? integral.map((v, m) => Math.abs(v - previous[m])) : null;
      if (config.steps !== 'auto') {
        // One fixed rule: only completeness can be checked.
        if (path.integration === 'segments' && path.affine && meets(path, false, true)) path.stop = 'exact';
        else path.stop = meets(path, false) ? 'tolerance' : 'budget';
      } else if (level === 0 && path.integration === 'segments' && path.affine) {
        // The midpoint of each segment is exact when the output is affine between breakpoints.
        if (meets(path, false, true)) {
          path.stop = 'exact';
          path.error = new Float64Array(integral.length);
        }
      } else if (config.criterion === 'completeness' ? meets(path, false) : previous !== null && meets(path, true)) {
        path.stop = 'tolerance';
      }
      if (!path.stop && ctx.deadlineReached) path.stop = 'deadline';
    });
    if (ctx.deadlineReached) break;
  }
  return assemble(ctx, config, options, paths, { fx, fb, fallbacks, breakpoints }, performance.now() - started);
}

/**
 * The quadrature for one path at one refinement level, or null when the path cannot be refined
 * further. Level 0 always has a plan.
 */
function planLevel(config: Config, path: PathState, level: number): Quadrature | null {
  if (path.integration === 'segments') {
    // One Gauss-Legendre node per segment is its midpoint, exact when the output is affine between
    // breakpoints. Otherwise nodes per segment double per level: segments are kink-free.
    const bp = path.breakpoints!;
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

/** Why an instance stopped: the least final of its paths' reasons. */
const STOP_ORDER: StopReason[] = ['deadline', 'budget', 'tolerance', 'exact'];

/** Averages over baselines per instance and output, and puts the Explanation together. */
function assemble(
  ctx: PassContext,
  config: Config,
  options: IntegratedGradientsOptions,
  paths: PathState[],
  extra: {
    fx: (i: number, o: number) => number;
    fb: (b: number, o: number) => number;
    fallbacks: number;
    breakpoints: { alphas: number[]; affine: boolean }[] | null;
  },
  elapsed: number,
): Explanation {
  const { instances, gradientRows } = ctx;
  const n = instances.n;
  const nb = ctx.baselines.n;
  const d = instances.d;
  const K = config.outputs.length;
  const totalRows = gradientRows.reduce((a, b) => a + b, 0);
  const totalEvaluations = totalRows + n + nb;
  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < n; i++) {
    const mine = paths.slice(i * nb, (i + 1) * nb);
    const deltas = mine.map((p) => pathDelta(ctx, p));
    const x = row(instances, i);
    const completenessDelta: number[] = [];
    const featureError: (number | null)[] = [];
    const outputs = config.outputs.map((o, q) => {
      const baselineOutputValue = mean(mine.map((p) => extra.fb(p.baseline, o)));
      const instanceOutputValue = extra.fx(i, o);
      let sum = 0;
      let worst: number | null = 0;
      const attributions = Array.from({ length: d }, (_, j) => {
        let a = 0;
        let e = 0;
        mine.forEach((p, b) => {
          a += deltas[b][j] * p.integral![q * d + j];
          if (p.error) e += Math.abs(deltas[b][j]) * p.error[q * d + j];
        });
        a /= nb;
        sum += a;
        if (worst !== null) worst = Math.max(worst, e / nb);
        return { feature: config.featureNames[j], value: x[j], attribution: a };
      });
      if (mine.some((p) => !p.error)) worst = null;
      const approximationError = sum - (instanceOutputValue - baselineOutputValue);
      completenessDelta.push(approximationError);
      featureError.push(worst);
      return {
        output: options.space.outputNames[o] ?? `y${o}`,
        outputIndex: o,
        baselineOutputValue,
        instanceOutputValue,
        attributions,
        approximationError,
      };
    });
    const stopReason = STOP_ORDER.find((s) => mine.some((p) => p.stop === s)) ?? 'budget';
    const integrations = [...new Set(mine.map((p) => p.integration))];
    const segments = mine.filter((p) => p.breakpoints).map((p) => p.breakpoints!.length + 1);
    // Every instance shares the predict call on the baselines; count it in full for each, as the
    // cost this explanation would have alone. Wall time is shared in proportion to model rows.
    explanations.push({
      outputs,
      converged: stopReason === 'exact' || stopReason === 'tolerance',
      stopReason,
      modelEvaluations: 1 + nb + gradientRows[i],
      computeMs: (elapsed * (1 + gradientRows[i] + nb / n)) / totalEvaluations,
      diagnostics: {
        integration: integrations.length === 1 ? integrations[0] : integrations,
        ...(segments.length ? { segments: Math.max(...segments) } : {}),
        stepsUsed: Math.max(...mine.map((p) => p.points)),
        gradientRows: gradientRows[i],
        completenessDelta,
        featureError,
        outputsExplained: K,
      },
    });
  }
  const explanation: Explanation = {
    method: 'integrated-gradients',
    explanations,
    diagnostics: {
      quadrature: config.method,
      steps: config.steps,
      tolerance: config.tolerance,
      criterion: config.criterion,
      baselines: nb,
      baselineKind: typeof options.baseline === 'object' ? 'rows' : (options.baseline ?? 'zeros'),
      gradients: ctx.useJacobian ? 'jacobian' : 'per-output',
      ...(extra.breakpoints
        ? {
            affineBetween: extra.breakpoints.every((b) => b.affine),
            // Paths integrated by quadrature over [0, 1] because they have too many segments.
            gaussLegendrePaths: paths.filter((p) => p.integration === 'straight').length,
            // Paths whose exact segment integration failed its checks and went to quadrature.
            fallbackPaths: extra.fallbacks,
          }
        : {}),
      gradientRows: totalRows,
      deadlineReached: ctx.deadlineReached,
    },
  };
  if (options.space.inputShape) explanation.inputShape = [...options.space.inputShape];
  return explanation;
}

async function predictAll(model: Model, instances: Rows, baselines: Rows): Promise<Float32Array> {
  const d = instances.d;
  const data = new Float32Array((instances.n + baselines.n) * d);
  data.set(instances.data.subarray(0, instances.n * d));
  data.set(baselines.data.subarray(0, baselines.n * d), instances.n * d);
  const rows = { data, n: instances.n + baselines.n, d };
  return checkPredictLength(model, await model.predict(rows), rows.n);
}

function resolveConfig(model: Model, options: IntegratedGradientsOptions, d: number): Config {
  const steps = options.steps ?? 'auto';
  const method = options.method ?? (model.pathBreakpoints ? 'exact' : 'gauss-legendre');
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
  if (!(tolerance >= 0 && Number.isFinite(tolerance))) {
    throw new ExplainerInputError('BAD_PARAMETER', `tolerance must be a number >= 0, got ${tolerance}`);
  }
  const absoluteTolerance = options.absoluteTolerance;
  if (absoluteTolerance !== undefined && !(absoluteTolerance >= 0 && Number.isFinite(absoluteTolerance))) {
    throw new ExplainerInputError('BAD_PARAMETER', `absoluteTolerance must be a number >= 0, got ${absoluteTolerance}`);
  }
  const criterion = options.criterion ?? 'attributions';
  if (criterion !== 'attributions' && criterion !== 'completeness') {
    throw new ExplainerInputError('BAD_PARAMETER', `criterion must be 'attributions' or 'completeness', got ${String(criterion)}`);
  }
  const maxSteps = positiveInteger(options.maxSteps ?? DEFAULTS.maxSteps, 'maxSteps', Math.max(least, 1));
  const initialSteps = positiveInteger(options.initialSteps ?? DEFAULTS.initialSteps, 'initialSteps', Math.max(least, 1));
  const maxRowsPerCall = positiveInteger(options.maxRowsPerCall ?? Math.max(64, Math.floor(262_144 / Math.max(1, d))), 'maxRowsPerCall', 1);
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
    criterion,
    maxSteps,
    initialSteps,
    maxRowsPerCall,
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
    checkRows(bg, d, { code: 'BAD_BASELINE', what: 'background' });
    const sums = new Float64Array(d);
    for (let r = 0; r < bg.n; r++) for (let j = 0; j < d; j++) sums[j] += bg.data[r * d + j];
    return { data: Float32Array.from(sums, (s) => s / bg.n), n: 1, d };
  }
  if (typeof baseline === 'object' && baseline !== null && baseline.data instanceof Float32Array) {
    checkRows(baseline, d, { code: 'BAD_BASELINE', what: 'baseline' });
    return baseline;
  }
  throw new ExplainerInputError('BAD_BASELINE', "baseline must be 'zeros', 'mean' or rows of feature values");
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
