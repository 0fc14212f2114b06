/**
 * Refinement of valid candidates towards the instance, as DiCE's post-hoc sparsity enhancement does,
 * in two stages and batched across candidates and instances:
 *
 * 1. Sparsify: changed features are put back to the instance's value one at a time, smallest change
 *    first, keeping each reversion that leaves the candidate valid.
 * 2. Boundary search on the segment from the instance to the candidate (numeric changes scaled by t,
 *    categorical ones kept): each round evaluates 7 interior points of the bracket [t_invalid, t_valid]
 *    and keeps the first valid one, so after 6 rounds the bracket is 8^-6 ≈ 4e-6 of the change wide and
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

const SECTION_POINTS = 7;
const SECTION_ROUNDS = 6;

interface Item {
  s: State;
  c: Candidate;
  order: number[];
  next: number;
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
      items.push({ s, c: { ...c }, order, next: 0, visited: [] });
    }
  }

  // 1. Sparsify.
  for (;;) {
    const batch = new RowBatch(space.d);
    const tried: { item: Item; index: number }[] = [];
    for (const item of items) {
      while (item.next < item.order.length) {
        const ui = item.order[item.next++];
        if (changedUnits(space, item.s.x, 0, item.c.row, 0).length < 2) {
          item.next = item.order.length;
          break;
        }
        const row = item.c.row.slice();
        for (const j of space.units[ui].columns) row[j] = item.s.x[j];
        const index = batch.add(item.s, row);
        if (index >= 0) tried.push({ item, index });
        break;
      }
    }
    if (batch.n === 0 || ctx.ev.expired()) break;
    const { preds, done } = await ctx.ev.run(batch);
    for (const { item, index } of tried) {
      if (done[index] && item.s.outcome.valid(preds, index * k)) {
        item.c = { ...item.c, row: batch.row(index), pred: preds.slice(index * k, (index + 1) * k) };
        item.visited.push(item.c);
      }
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
