/**
 * Counterfactual explanations: for each instance, up to k diverse rows close to it (type-aware L1,
 * space.ts) that the model gives the desired outcome, honouring immutable, monotone, integer and
 * bounded features, staying within the reference data's range and close to the data (plausibility.ts).
 *
 * Why this search rather than DiCE's or Alibi's: DiCE's random method samples features uniformly over
 * their whole range and relies on post-hoc sparsity to come back; its genetic method evaluates a
 * population of 10k candidates per generation and never lands exactly on the boundary; Alibi's
 * CounterfactualProto needs gradients, or 2d numerical-gradient evaluations per optimiser step on a
 * black box, over thousands of steps. Here four cheap proposal paths (search.ts: per-feature grids,
 * a gradient path when the model has gradients, projected reference prototypes, growing spheres) run for
 * every instance in shared model calls, and refinement (refine.ts) sparsifies the valid candidates and
 * brings them onto the decision boundary, which makes the answer minimal on the models where a closed
 * form exists (a linear model: one feature, the best |w_j| x MAD_j, moved exactly to the boundary).
 *
 * Deterministic for a seed (each instance's randomness depends on the seed alone, not on the other
 * instances of the call); the deadline and the AbortSignal are checked between model-call chunks; an
 * instance stops spending at maxEvaluations predicted rows; every returned counterfactual was
 * predicted by the model and found valid.
 */
import { seededRng } from '../random.js';
import { ExplainerInputError, type Model, type Rows } from '../types.js';
import { Evaluator, RowBatch, type Candidate, type State } from './evaluate.js';
import { checkOutcome, resolveOutcome } from './outcome.js';
import { plausibilityCheck } from './plausibility.js';
import { refine } from './refine.js';
import { coordinateAndPrototypes, gradientPath, sphereSearch, type SearchContext } from './search.js';
import { diversityOf, selectDiverse, type Scored } from './select.js';
import { buildSpace, canMove, domainOf, scalesOf, shortestFloat32, type CounterfactualSpace } from './space.js';

export { shortestFloat32 };
import type { Counterfactual, CounterfactualOptions, CounterfactualResult, FeatureChange, InstanceCounterfactuals } from './types.js';

export const COUNTERFACTUAL_DEFAULTS = {
  k: 3,
  seed: 0,
  maxEvaluations: 5000,
  minPlausibility: 0.01,
  neighbours: 5,
  useGradients: true,
  threshold: 0.5,
} as const;

/** Share of an instance's budget the search may use; the rest is kept for refinement. */
const SEARCH_SHARE = 0.6;
/** Limits that keep one call bounded whatever the caller asks. */
export const COUNTERFACTUAL_LIMITS = { k: 20, maxEvaluations: 1_000_000, neighbours: 50 } as const;

function fail(code: string, message: string, details?: unknown): never {
  throw new ExplainerInputError(code, message, details);
}

function checkOptions(model: Model, instances: Rows, o: CounterfactualOptions) {
  if (instances.n < 1) fail('BAD_INSTANCES', 'no instances: send at least one row');
  if (instances.d !== model.nFeatures)
    fail('BAD_INSTANCES', `instances have ${instances.d} values per row but the model takes ${model.nFeatures}`);
  for (let i = 0; i < instances.data.length; i++) {
    if (!Number.isFinite(instances.data[i])) {
      fail('BAD_INSTANCES', `instance ${Math.floor(i / instances.d)} has a non-finite value in "${o.space.featureNames[i % instances.d]}"`);
    }
  }
  const int = (name: string, v: number | undefined, min: number, max: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max))
      fail('BAD_PARAMETER', `${name} must be an integer from ${min} to ${max}; got ${v}`);
  };
  int('k', o.k, 1, COUNTERFACTUAL_LIMITS.k);
  int('seed', o.seed, 0, 2 ** 32 - 1);
  int('maxEvaluations', o.maxEvaluations, 10, COUNTERFACTUAL_LIMITS.maxEvaluations);
  int('maxChangedFeatures', o.maxChangedFeatures, 1, Number.MAX_SAFE_INTEGER);
  int('neighbours', o.neighbours, 1, COUNTERFACTUAL_LIMITS.neighbours);
  if (o.minPlausibility !== undefined && !(o.minPlausibility >= 0 && o.minPlausibility <= 1))
    fail('BAD_PARAMETER', `minPlausibility must be within [0, 1]; got ${o.minPlausibility}`);
  if (o.deadline !== undefined && (typeof o.deadline !== 'number' || Number.isNaN(o.deadline)))
    fail('BAD_PARAMETER', 'deadline must be epoch milliseconds');
  if (o.referencePredictions && o.referencePredictions.length !== o.reference.n * model.nOutputs) {
    fail(
      'BAD_PARAMETER',
      `referencePredictions has ${o.referencePredictions.length} values; expected ${o.reference.n} rows x ${model.nOutputs} outputs`,
    );
  }
  checkOutcome({ task: o.task, desired: o.desired, threshold: o.threshold }, model.nOutputs);
}

export async function counterfactuals(model: Model, instances: Rows, options: CounterfactualOptions): Promise<CounterfactualResult> {
  const start = performance.now();
  checkOptions(model, instances, options);
  const space = buildSpace(options.space, options.reference, options.constraints, options.groupNames);
  options.signal?.throwIfAborted();
  const k = options.k ?? COUNTERFACTUAL_DEFAULTS.k;
  const seed = options.seed ?? COUNTERFACTUAL_DEFAULTS.seed;
  const limit = options.maxEvaluations ?? COUNTERFACTUAL_DEFAULTS.maxEvaluations;
  const maxChanged = options.maxChangedFeatures ?? Infinity;
  const nOut = model.nOutputs;
  const d = space.d;
  const ev = new Evaluator(model, options.deadline, options.signal);

  const states: State[] = Array.from({ length: instances.n }, (_, i) => {
    const x = instances.data.slice(i * d, (i + 1) * d);
    const domains = space.units.map((u) => domainOf(u, x));
    const movable = space.units
      .map((u, ui) => ui)
      .filter((ui) => {
        const u = space.units[ui];
        const dom = domains[ui];
        if (u.immutable) return false;
        if (u.kind === 'one-hot') return u.columns.length > 1;
        if (u.kind === 'categorical') return dom.codes.length > 1;
        return canMove(dom, x[u.columns[0]]);
      });
    return {
      index: i,
      x,
      pred: new Float32Array(nOut),
      outcome: undefined as unknown as State['outcome'],
      domains,
      movable,
      rng: seededRng(seed),
      evaluations: 0,
      gradientEvaluations: 0,
      limit,
      budgetHit: false,
      pool: [],
      validBySource: { coordinate: 0, gradient: 0, prototype: 0, sphere: 0 },
      candidatesEvaluated: 0,
      done: false,
    };
  });

  // The instances' own predictions decide "opposite" and which instances need no search.
  const own = new RowBatch(d);
  for (const s of states) own.add(s, s.x);
  const first = await ev.run(own, true);
  for (const s of states) {
    s.pred = first.preds.slice(s.index * nOut, (s.index + 1) * nOut);
    s.outcome = resolveOutcome(options, nOut, s.pred, 0);
    s.done = s.outcome.valid(s.pred, 0);
  }
  const ctx: SearchContext = { space, ev, nOutputs: nOut, searchCap: (s) => Math.floor(SEARCH_SHARE * s.limit), maxChanged };
  const searching = states.filter((s) => !s.done && s.movable.length > 0);

  let referenceEvaluations = 0;
  if (searching.length) {
    let refPred = options.referencePredictions;
    if (!refPred) {
      const got = await predictReference(model, options.reference, ev);
      refPred = got?.preds;
      referenceEvaluations = got?.evaluated ?? 0;
    }
    if (!ev.expired()) await coordinateAndPrototypes(ctx, searching, options.reference, refPred);
    if (options.useGradients !== false && model.inputGradients && !ev.expired()) await gradientPath(ctx, searching);
    if (!ev.expired()) await sphereSearch(ctx, searching);
  }
  const refined = searching.length && !ev.expired() ? await refine(ctx, searching, Math.max(8, 4 * k)) : new Map<State, Candidate[]>();

  const check = plausibilityCheck(space, options.reference, options.neighbours ?? COUNTERFACTUAL_DEFAULTS.neighbours);
  const minPlausibility = options.minPlausibility ?? COUNTERFACTUAL_DEFAULTS.minPlausibility;
  // Choose, then re-predict every chosen row in one call: `valid` and `prediction` come from that call.
  const picks = states.map((s) => {
    if (s.done)
      return {
        chosen: [{ row: s.x, pred: s.pred, source: 'coordinate' as const, cost: 0, sparsity: 0, ...check.score(s.x, 0) }],
        implausible: 0,
      };
    // Unrefined candidates stay in: the fallback when refinement ends off the data, or never ran (deadline).
    return selectDiverse(space, s.x, [...(refined.get(s) ?? []), ...s.pool], k, check, minPlausibility, maxChanged);
  });
  const again = new RowBatch(d);
  const slots = picks.map((p, i) => p.chosen.map((c) => again.add(states[i], c.row, Infinity)));
  const re = await ev.run(again, true);
  const totalEvaluations = states.reduce((t, s) => t + s.evaluations, 0) || 1;
  const elapsed = performance.now() - start;

  const results: InstanceCounterfactuals[] = states.map((s, i) => {
    const { chosen, implausible } = picks[i];
    const list = chosen.map((c, q) => {
      const at = slots[i][q] * nOut;
      const pred = re.preds.slice(at, at + nOut);
      return toCounterfactual(space, s.x, { ...c, pred }, s.outcome.valid(pred, 0));
    });
    const found = list.some((c) => c.valid);
    return {
      found,
      status: s.done ? 'already-desired' : found ? 'found' : 'not-found',
      stopReason: ev.deadlineHit ? 'deadline' : s.budgetHit ? 'budget' : 'complete',
      prediction: Array.from(s.pred),
      desired: s.outcome.desired,
      counterfactuals: list,
      ...(list.length > 1
        ? {
            diversity: diversityOf(
              space,
              chosen.map((c) => c.row),
            ),
          }
        : {}),
      modelEvaluations: s.evaluations,
      gradientEvaluations: s.gradientEvaluations,
      computeMs: (elapsed * s.evaluations) / totalEvaluations,
      diagnostics: { validBySource: s.validBySource, candidatesEvaluated: s.candidatesEvaluated, implausible },
    };
  });
  return { instances: results, scales: scalesOf(space), referenceEvaluations, computeMs: performance.now() - start };
}

/** Reference predictions per model and reference set (both held weakly): every call on a served model needs the same ones. */
const referenceCache = new WeakMap<Model, WeakMap<Rows, Float32Array>>();

async function predictReference(
  model: Model,
  reference: Rows,
  ev: Evaluator,
): Promise<{ preds: Float32Array; evaluated: number } | undefined> {
  const cached = referenceCache.get(model)?.get(reference);
  if (cached) return { preds: cached, evaluated: 0 };
  const preds = await predictAll(model, reference, ev);
  if (!preds) return undefined;
  if (!referenceCache.has(model)) referenceCache.set(model, new WeakMap());
  referenceCache.get(model)!.set(reference, preds);
  return { preds, evaluated: reference.n };
}

async function predictAll(model: Model, reference: Rows, ev: Evaluator): Promise<Float32Array | undefined> {
  const holder: State = { evaluations: 0, limit: Infinity } as State;
  const batch = new RowBatch(reference.d);
  for (let r = 0; r < reference.n; r++) batch.add(holder, reference.data.subarray(r * reference.d, (r + 1) * reference.d));
  const { preds, done } = await ev.run(batch);
  return done.every((v) => v === 1) ? preds : undefined;
}

function toCounterfactual(space: CounterfactualSpace, x: Float32Array, c: Scored, valid: boolean): Counterfactual {
  const changes: FeatureChange[] = [];
  for (let j = 0; j < space.d; j++) {
    if (c.row[j] === x[j]) continue;
    const u = space.units[space.unitOf[j]];
    const change: FeatureChange = { feature: space.featureNames[j], from: shortestFloat32(x[j]), to: shortestFloat32(c.row[j]) };
    if (u.kind === 'one-hot') change.group = u.name;
    else {
      const from = u.labels.get(x[j]);
      const to = u.labels.get(c.row[j]);
      if (from !== undefined) change.fromLabel = from;
      if (to !== undefined) change.toLabel = to;
    }
    changes.push(change);
  }
  return {
    values: Array.from(c.row, shortestFloat32),
    changes,
    distance: c.cost,
    sparsity: c.sparsity,
    plausibility: c.plausibility,
    neighbourDistance: c.neighbourDistance,
    valid,
    prediction: Array.from(c.pred),
    source: c.source,
  };
}
