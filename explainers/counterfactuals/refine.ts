/**
 * Refinement of valid candidates towards the instance, as DiCE's post-hoc sparsity enhancement does,
 * in two stages and batched across candidates and instances:
 *
 * 1. Sparsify: changed features are put back to the instance's value, smallest change first, keeping
 *    the reversions that leave the candidate valid (in two model calls per pass, see below).
 * 2. Boundary search on the segment from the instance to the candidate (numeric changes scaled by t,
 *    categorical ones kept): each round evaluates 15 interior points of the bracket [t_invalid, t_valid]
 *    and keeps the first valid one, so after 4 rounds the bracket is 16^-4 ≈ 1.5e-5 of the change wide and
 *    the candidate sits on the decision boundary (when validity is monotone along the segment; where
 *    it is not, the first valid point found is still valid, only not the closest).
 *
 * Every point kept was evaluated by the model and found valid: refinement never returns an invalid row.
 * Besides the final point, the valid rows met on the way are returned too: where the boundary itself
 * lies off the data (classes far apart), the cheapest plausible counterfactual is one of them.
 */
import { RowBatch, type Candidate, type State } from './evaluate.js';
import { sameRow, type SearchContext } from './search.js';
import { admissible, changedUnits, distance, unitCost, type CounterfactualSpace } from './space.js';
import type { CounterfactualSource } from './types.js';

const SECTION_POINTS = 15;
const SECTION_ROUNDS = 4;
const SPARSIFY_PASSES = 2;

/** The item's current row with these units put back to the instance's values. */
function revert(space: CounterfactualSpace, item: Item, units: number[]): Float32Array {
  const row = item.c.row.slice();
  for (const ui of units) for (const j of space.units[ui].columns) row[j] = item.s.x[j];
  return row;
}

interface Item {
  s: State;
  c: Candidate;
  /** Changed units, smallest change first. */
  order: number[];
  /** Valid rows met on the way (sparsified, and farther along the segment than the final point). */
  visited: Candidate[];
}

/**
 * Which candidates to refine: one per distinct set of changed features (the cheapest), taken in cost
 * order round-robin over the search paths, so that every path that found something is represented.
 */
export function pickForRefinement(space: CounterfactualSpace, s: State, limit: number): Candidate[] {
  const bySignature = new Map<string, Candidate>();
  for (const c of s.pool) {
    const sig = changedUnits(space, s.x, 0, c.row, 0).join(',');
    const have = bySignature.get(sig);
    if (!have || c.cost < have.cost) bySignature.set(sig, c);
  }
  const sources: CounterfactualSource[] = ['coordinate', 'gradient', 'prototype', 'sphere'];
  const queues = sources.map((src) => [...bySignature.values()].filter((c) => c.source === src).sort((a, b) => a.cost - b.cost));
  const out: Candidate[] = [];
  while (out.length < limit && queues.some((q) => q.length)) {
    // The cheapest head first in each sweep, so the overall cheapest always gets in.
    const heads = queues.filter((q) => q.length).sort((a, b) => a[0].cost - b[0].cost);
    for (const q of heads) if (out.length < limit) out.push(q.shift()!);
  }
  return out;
}

/** Per state: the refined candidates and every valid row met while refining them. */
export async function refine(ctx: SearchContext, states: State[], perState: number): Promise<Map<State, Candidate[]>> {
  const { space } = ctx;
  const k = ctx.nOutputs;
  const items: Item[] = [];
  for (const s of states) {
    for (const c of pickForRefinement(space, s, perState)) {
      const order = changedUnits(space, s.x, 0, c.row, 0).sort(
        (a, b) => unitCost(space.units[a], s.x, 0, c.row, 0) - unitCost(space.units[b], s.x, 0, c.row, 0),
      );
      items.push({ s, c: { ...c }, order, visited: [] });
    }
  }

  // 1. Sparsify, in few sequential model calls: (a) every changed feature reverted alone, all in one
  // call; (b) the features whose lone reversion stayed valid, reverted cumulatively (smallest change
  // first: {u1}, {u1, u2}, ...), all prefixes in one call, keeping the longest prefix that is valid with
  // all shorter ones. Twice, since a cut-off prefix may leave reversions that work on the new row.
  for (let pass = 0; pass < SPARSIFY_PASSES; pass++) {
    if (ctx.ev.expired()) break;
    const singles = new RowBatch(space.d);
    const tried: { item: Item; ui: number; index: number }[] = [];
    for (const item of items) {
      const changed = changedUnits(space, item.s.x, 0, item.c.row, 0);
      if (changed.length < 2) continue;
      for (const ui of item.order) {
        if (!changed.includes(ui)) continue;
        const index = singles.add(item.s, revert(space, item, [ui]));
        if (index >= 0) tried.push({ item, ui, index });
      }
    }
    if (singles.n === 0) break;
    const a = await ctx.ev.run(singles);
    const prefixes = new RowBatch(space.d);
    const chains: { item: Item; units: number[]; rows: { index: number; n: number }[] }[] = [];
    for (const item of items) {
      const ok = tried.filter((t) => t.item === item && a.done[t.index] && item.s.outcome.valid(a.preds, t.index * k));
      if (ok.length === 0) continue;
      for (const t of ok) item.visited.push({ ...item.c, row: singles.row(t.index), pred: a.preds.slice(t.index * k, (t.index + 1) * k) });
      const units = ok.map((t) => t.ui);
      const chain = { item, units, rows: [] as { index: number; n: number }[] };
      const changed = changedUnits(space, item.s.x, 0, item.c.row, 0).length;
      // Prefix of length 1 is known valid; never revert every change (that is x itself).
      chain.rows.push({ index: -1, n: 1 });
      for (let n = 2; n <= units.length && n < changed; n++) {
        const index = prefixes.add(item.s, revert(space, item, units.slice(0, n)));
        if (index < 0) break;
        chain.rows.push({ index, n });
      }
      chains.push(chain);
    }
    const b = await ctx.ev.run(prefixes);
    for (const { item, units, rows } of chains) {
      let best = 1;
      for (const r of rows.slice(1)) {
        if (!b.done[r.index] || !item.s.outcome.valid(b.preds, r.index * k)) break;
        best = r.n;
      }
      const first = tried.find((t) => t.item === item && t.ui === units[0])!;
      const at =
        best === 1 ? { batch: singles, e: a, index: first.index } : { batch: prefixes, e: b, index: rows.find((r) => r.n === best)!.index };
      item.c = { ...item.c, row: at.batch.row(at.index), pred: at.e.preds.slice(at.index * k, (at.index + 1) * k) };
      item.visited.push(item.c);
    }
  }

  // 2. Boundary search along the segment from x.
  const brackets = items.map((item) => {
    const numeric = changedUnits(space, item.s.x, 0, item.c.row, 0).filter(
      (ui) => space.units[ui].kind === 'numeric' || space.units[ui].kind === 'integer',
    );
    return { item, numeric, end: item.c.row, lo: 0, hi: 1, first: true };
  });
  for (let round = 0; round < SECTION_ROUNDS; round++) {
    if (ctx.ev.expired()) break;
    const batch = new RowBatch(space.d);
    const points: { b: (typeof brackets)[number]; t: number; index: number }[] = [];
    for (const b of brackets) {
      if (b.numeric.length === 0 || b.hi - b.lo < 1e-9) continue;
      const ts: number[] = [];
      // t = 0 (only the categorical changes) is worth one row when there are any.
      if (b.first && b.numeric.length < changedUnits(space, b.item.s.x, 0, b.end, 0).length) ts.push(0);
      for (let i = 1; i <= SECTION_POINTS; i++) ts.push(b.lo + ((b.hi - b.lo) * i) / (SECTION_POINTS + 1));
      b.first = false;
      let prev: Float32Array | null = null;
      for (const t of ts) {
        const row = b.end.slice();
        for (const ui of b.numeric) {
          const u = space.units[ui];
          const j = u.columns[0];
          const xv = b.item.s.x[j];
          row[j] = admissible(u, b.item.s.domains[ui], xv, xv + t * (b.end[j] - xv));
        }
        if ((prev && sameRow(prev, row)) || sameRow(row, b.item.c.row)) continue;
        prev = row;
        const index = batch.add(b.item.s, row);
        if (index < 0) break;
        points.push({ b, t, index });
      }
    }
    if (batch.n === 0) break;
    const { preds, done } = await ctx.ev.run(batch);
    const byBracket = new Map<(typeof brackets)[number], typeof points>();
    for (const p of points) if (done[p.index]) byBracket.set(p.b, [...(byBracket.get(p.b) ?? []), p]);
    for (const [b, ps] of byBracket) {
      const valid = ps.filter((p) => b.item.s.outcome.valid(preds, p.index * k));
      for (const p of valid)
        b.item.visited.push({ ...b.item.c, row: batch.row(p.index), pred: preds.slice(p.index * k, (p.index + 1) * k) });
      const firstValid = valid[0];
      if (firstValid) {
        const below = ps.filter((p) => p.t < firstValid.t);
        b.lo = below.length ? below[below.length - 1].t : b.lo;
        b.hi = firstValid.t;
        b.item.c = { ...b.item.c, row: batch.row(firstValid.index), pred: preds.slice(firstValid.index * k, (firstValid.index + 1) * k) };
      } else {
        b.lo = ps[ps.length - 1].t;
      }
    }
  }

  const out = new Map<State, Candidate[]>();
  for (const item of items) {
    const list = out.get(item.s) ?? [];
    for (const c of [item.c, ...item.visited]) list.push({ ...c, cost: distance(space, item.s.x, 0, c.row, 0) });
    out.set(item.s, list);
  }
  return out;
}
