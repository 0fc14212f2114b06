/**
 * The four ways candidates are proposed. Each runs for every instance at once (one batch of model
 * calls per step) and adds the valid candidates it finds to the instance's pool:
 *
 * - coordinate: each movable feature alone, on a grid from the instance's value to the end of its
 *   range in each allowed direction (denser near the instance), and every other category. On a model
 *   that is monotone in each feature this finds every single-feature counterfactual; refinement then
 *   brings it to the decision boundary. Under L1 the minimal counterfactual of a linear model is such a
 *   single-feature change.
 * - gradient: where the model gives input gradients, a path from the instance that moves, at each step,
 *   the one feature whose gradient per unit of distance (|d score / d x_j| x MAD_j) is largest,
 *   by a Newton step towards the boundary (the steepest descent direction under L1).
 * - prototype: the reference rows the model already gives the desired outcome, projected onto the
 *   constraints (immutables and monotone features put back) and nearest first, as DiCE's k-d tree
 *   initialisation and Alibi's class prototypes do: plausible by construction, sparsified later.
 * - sphere: growing spheres (Laugel et al. 2018) in MAD units over random small subsets of features:
 *   gradient-free, for models where no single feature is enough.
 */
import { seededRng } from '../random.js';
import { RowBatch, type Evaluator, type State, type Candidate } from './evaluate.js';
import { activeMember, admissible, distance, type CounterfactualSpace } from './space.js';
import type { CounterfactualSource } from './types.js';

export interface SearchContext {
  space: CounterfactualSpace;
  ev: Evaluator;
  nOutputs: number;
  /** Rows a state may spend on the search, leaving the rest for refinement. */
  searchCap(s: State): number;
  maxChanged: number;
}

/** Grid points per direction in the coordinate search. */
const GRID = 12;
/** Gradient path: steps at most, and the largest step in MAD units. */
const GRADIENT_STEPS = 16;
const MAX_STEP = 2;
/** Prototypes tried per instance. */
const PROTOTYPES = 12;
/** Growing spheres: samples per layer, layers at most, features changed per sample at most. */
const SPHERE_SAMPLES = 64;
const SPHERE_LAYERS = 14;
const SPHERE_MAX_FEATURES = 6;

export function addCandidate(ctx: SearchContext, s: State, row: Float32Array, pred: Float32Array, source: CounterfactualSource): void {
  s.pool.push({ row, pred, source, cost: distance(ctx.space, s.x, 0, row, 0) });
  s.validBySource[source]++;
}

/**
 * Evaluates a batch and files its valid rows as candidates of their source (one for the whole batch,
 * or one per row). Returns the states that found any.
 */
export async function evaluateAndCollect(
  ctx: SearchContext,
  batch: RowBatch,
  source: CounterfactualSource | CounterfactualSource[],
): Promise<Set<State>> {
  const found = new Set<State>();
  if (batch.n === 0) return found;
  const k = ctx.nOutputs;
  const { preds, done } = await ctx.ev.run(batch);
  for (let i = 0; i < batch.n; i++) {
    if (!done[i]) continue;
    const s = batch.owners[i];
    s.candidatesEvaluated++;
    if (s.outcome.valid(preds, i * k)) {
      addCandidate(ctx, s, batch.row(i), preds.slice(i * k, (i + 1) * k), typeof source === 'string' ? source : source[i]);
      found.add(s);
    }
  }
  return found;
}

function withUnit(ctx: SearchContext, s: State, base: Float32Array, ui: number, value: number): Float32Array {
  const u = ctx.space.units[ui];
  const row = base.slice();
  if (u.kind === 'one-hot') {
    for (let m = 0; m < u.columns.length; m++) row[u.columns[m]] = m === value ? 1 : 0;
  } else row[u.columns[0]] = value;
  return row;
}

/** Adds the coordinate grid's rows of every state to `batch`. */
export function coordinateRows(ctx: SearchContext, states: State[], batch: RowBatch): void {
  for (const s of states) {
    const cap = ctx.searchCap(s);
    for (const ui of s.movable) {
      const u = ctx.space.units[ui];
      const dom = s.domains[ui];
      if (u.kind === 'numeric' || u.kind === 'integer') {
        const xv = s.x[u.columns[0]];
        for (const end of [dom.hi, dom.lo]) {
          if (end === xv) continue;
          let last = xv;
          for (let g = 1; g <= GRID; g++) {
            const v = Math.fround(admissible(u, dom, xv, xv + (end - xv) * (g / GRID) ** 2));
            if (v === last || v === Math.fround(xv)) continue;
            last = v;
            batch.add(s, withUnit(ctx, s, s.x, ui, v), cap);
          }
        }
      } else if (u.kind === 'categorical') {
        for (const code of dom.codes.slice(1)) batch.add(s, withUnit(ctx, s, s.x, ui, code), cap);
      } else {
        const active = activeMember(u, s.x);
        for (let m = 0; m < u.columns.length; m++) if (m !== active) batch.add(s, withUnit(ctx, s, s.x, ui, m), cap);
      }
    }
  }
}

export async function gradientPath(ctx: SearchContext, states: State[]): Promise<void> {
  const { space, ev } = ctx;
  const d = space.d;
  const k = ctx.nOutputs;
  const numeric = (ui: number) => space.units[ui].kind === 'numeric' || space.units[ui].kind === 'integer';
  let live = states
    .filter((s) => s.movable.some(numeric))
    .map((s) => ({ s, p: s.x.slice() as Float32Array, pred: s.pred.slice() as Float32Array, blocked: new Set<number>(), finished: false }));
  for (let step = 0; step < GRADIENT_STEPS && live.length > 0; step++) {
    if (ev.expired()) return;
    live = live.filter((l) => new RowBatch(d).room(l.s, ctx.searchCap(l.s)) > 0);
    const terms = live.map((l) => l.s.outcome.gradientTerms(l.pred, 0));
    const grads = await ev.scoreGradients(
      live.map((l) => l.p),
      terms,
      d,
    );
    if (!grads) return;
    live.forEach((l, i) => (l.s.gradientEvaluations += new Set(terms[i].map((t) => t.output)).size));
    const batch = new RowBatch(d);
    const moved: { l: (typeof live)[number]; index: number }[] = [];
    live.forEach((l, i) => {
      const g = grads[i];
      let best = -1;
      let bestRatio = 0;
      for (const ui of l.s.movable) {
        if (!numeric(ui) || l.blocked.has(ui)) continue;
        const u = space.units[ui];
        const j = u.columns[0];
        const dom = l.s.domains[ui];
        if (g[j] === 0 || !Number.isFinite(g[j])) continue;
        if (g[j] > 0 ? l.p[j] >= dom.hi : l.p[j] <= dom.lo) continue;
        const ratio = Math.abs(g[j]) * u.scale;
        if (ratio > bestRatio) {
          bestRatio = ratio;
          best = ui;
        }
      }
      if (best < 0) {
        l.finished = true;
        return;
      }
      const u = space.units[best];
      const j = u.columns[0];
      const need = Math.max(0, -l.s.outcome.score(l.pred, 0));
      const dir = Math.sign(g[j]);
      // A Newton step to the boundary with 25% overshoot (refinement comes back to the boundary), at most MAX_STEP MADs.
      const dx = Math.min((need / Math.abs(g[j])) * 1.25, MAX_STEP * u.scale);
      const v = Math.fround(admissible(u, l.s.domains[best], l.s.x[j], l.p[j] + dir * Math.max(dx, 1e-3 * u.scale)));
      if (v === l.p[j]) {
        l.blocked.add(best);
        return;
      }
      const row = l.p.slice();
      row[j] = v;
      const index = batch.add(l.s, row, ctx.searchCap(l.s));
      if (index < 0) l.finished = true;
      else moved.push({ l, index });
    });
    if (batch.n > 0) {
      const { preds, done } = await ev.run(batch);
      for (const { l, index } of moved) {
        if (!done[index]) continue;
        l.p = batch.row(index);
        l.pred = preds.slice(index * k, (index + 1) * k);
        l.s.candidatesEvaluated++;
        if (l.s.outcome.valid(preds, index * k)) {
          addCandidate(ctx, l.s, l.p, l.pred, 'gradient');
          l.finished = true;
        }
      }
    }
    live = live.filter((l) => !l.finished);
  }
}

/** A reference row moved back into the instance's constraints. */
function project(ctx: SearchContext, s: State, ref: Float32Array, off: number): Float32Array {
  const row = s.x.slice();
  for (const ui of s.movable) {
    const u = ctx.space.units[ui];
    const dom = s.domains[ui];
    if (u.kind === 'one-hot') {
      for (const j of u.columns) row[j] = ref[off + j];
    } else if (u.kind === 'categorical') {
      const j = u.columns[0];
      if (dom.codes.includes(ref[off + j])) row[j] = ref[off + j];
    } else {
      const j = u.columns[0];
      row[j] = admissible(u, dom, s.x[j], ref[off + j]);
    }
  }
  return row;
}

/** Adds the projected prototypes of every state to `batch`. */
export function prototypeRows(
  ctx: SearchContext,
  states: State[],
  reference: { data: Float32Array; n: number; d: number },
  refPred: Float32Array,
  batch: RowBatch,
): void {
  const k = ctx.nOutputs;
  const d = ctx.space.d;
  for (const s of states) {
    const near: { cost: number; row: Float32Array }[] = [];
    for (let r = 0; r < reference.n; r++) {
      if (!s.outcome.valid(refPred, r * k)) continue;
      const row = project(ctx, s, reference.data, r * d);
      const cost = distance(ctx.space, s.x, 0, row, 0);
      if (cost > 0) near.push({ cost, row });
    }
    near.sort((a, b) => a.cost - b.cost);
    let taken = 0;
    for (let i = 0; i < near.length && taken < PROTOTYPES; i++) {
      if (i > 0 && near[i].cost === near[i - 1].cost && sameRow(near[i].row, near[i - 1].row)) continue;
      if (batch.add(s, near[i].row, ctx.searchCap(s)) < 0) break;
      taken++;
    }
  }
}

/** The coordinate grids and the prototypes: independent of each other, so one batch of model calls. */
export async function coordinateAndPrototypes(
  ctx: SearchContext,
  states: State[],
  reference: { data: Float32Array; n: number; d: number },
  refPred: Float32Array | undefined,
): Promise<void> {
  const batch = new RowBatch(ctx.space.d);
  coordinateRows(ctx, states, batch);
  const split = batch.n;
  if (refPred) prototypeRows(ctx, states, reference, refPred, batch);
  const sources = Array.from({ length: batch.n }, (_, i): CounterfactualSource => (i < split ? 'coordinate' : 'prototype'));
  await evaluateAndCollect(ctx, batch, sources);
}

export function sameRow(a: Float32Array, b: Float32Array): boolean {
  for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) return false;
  return true;
}

function sampleInShell(ctx: SearchContext, s: State, rng: () => number, lo: number, hi: number): Float32Array | null {
  const space = ctx.space;
  const M = s.movable.length;
  const most = Math.min(M, ctx.maxChanged, SPHERE_MAX_FEATURES);
  // Subset size with P(size) ∝ 1/size: sparse changes first, as growing spheres' feature selection aims for.
  let total = 0;
  for (let z = 1; z <= most; z++) total += 1 / z;
  let u = rng() * total;
  let size = 1;
  for (; size < most; size++) {
    u -= 1 / size;
    if (u <= 0) break;
  }
  const pool = s.movable.slice();
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(rng() * (M - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  const chosen = pool.slice(0, size);
  const radius = lo + (hi - lo) * rng();
  const categorical = chosen.filter((ui) => space.units[ui].kind === 'categorical' || space.units[ui].kind === 'one-hot');
  const numeric = chosen.filter((ui) => !categorical.includes(ui));
  const left = Math.max(0, radius - categorical.length);
  const w = numeric.map(() => -Math.log(1 - rng()));
  const wsum = w.reduce((a, b) => a + b, 0) || 1;
  const row = s.x.slice();
  numeric.forEach((ui, i) => {
    const unit = space.units[ui];
    const j = unit.columns[0];
    const dom = s.domains[ui];
    const up = dom.hi > s.x[j];
    const down = dom.lo < s.x[j];
    if (!up && !down) return;
    const dir = up && down ? (rng() < 0.5 ? -1 : 1) : up ? 1 : -1;
    row[j] = admissible(unit, dom, s.x[j], s.x[j] + dir * (w[i] / wsum) * left * unit.scale);
  });
  for (const ui of categorical) {
    const unit = space.units[ui];
    if (unit.kind === 'categorical') {
      const codes = s.domains[ui].codes.slice(1);
      if (codes.length) row[unit.columns[0]] = codes[Math.floor(rng() * codes.length)];
    } else {
      const active = activeMember(unit, s.x);
      const others = unit.columns.map((_, m) => m).filter((m) => m !== active);
      const m = others[Math.floor(rng() * others.length)];
      unit.columns.forEach((c, q) => (row[c] = q === m ? 1 : 0));
    }
  }
  return sameRow(row, s.x) ? null : row;
}

/**
 * Shells of growing radius until a layer finds a valid candidate, then one more layer. When the other
 * paths have found candidates already (cheapest at distance D), two shells around D instead: they add
 * different feature sets at a similar cost, for diversity.
 */
export async function sphereSearch(ctx: SearchContext, states: State[]): Promise<void> {
  const live = states
    .filter((s) => s.movable.length > 0)
    .map((s) => {
      const best = s.pool.reduce((m, c) => Math.min(m, c.cost), Infinity);
      const known = Number.isFinite(best);
      return {
        s,
        rng: seededRng((s.rng() * 2 ** 32) >>> 0),
        lo: known ? 0.5 * best : 0,
        hi: known ? 1.5 * best : 0.5,
        left: known ? 2 : Infinity,
      };
    });
  for (let layer = 0; layer < SPHERE_LAYERS; layer++) {
    const active = live.filter((l) => l.left > 0 && new RowBatch(ctx.space.d).room(l.s, ctx.searchCap(l.s)) > 0);
    if (active.length === 0 || ctx.ev.expired()) return;
    const batch = new RowBatch(ctx.space.d);
    for (const l of active) {
      for (let i = 0; i < SPHERE_SAMPLES; i++) {
        const row = sampleInShell(ctx, l.s, l.rng, l.lo, l.hi);
        if (row && batch.add(l.s, row, ctx.searchCap(l.s)) < 0) break;
      }
    }
    const found = await evaluateAndCollect(ctx, batch, 'sphere');
    for (const l of active) {
      if (Number.isFinite(l.left)) l.left--;
      else if (found.has(l.s)) l.left = 1;
      l.lo = l.hi;
      l.hi *= 2;
    }
  }
}

export type { Candidate };
