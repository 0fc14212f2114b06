/**
 * Model calls for the counterfactual search: every instance's candidate rows of one search step go
 * into one batch, evaluated in chunks. Between chunks the AbortSignal and the deadline are checked;
 * rows left unevaluated at the deadline come back as not evaluated. Each instance is charged for its
 * own rows, and a row beyond an instance's budget is refused when it is added.
 */
import type { Rng } from '../random.js';
import type { Model } from '../types.js';
import type { Outcome } from './outcome.js';
import type { Domain } from './space.js';
import type { CounterfactualSource } from './types.js';

/** Rows per model call: bounds memory, and how late the deadline and the signal can be seen. */
export const ROWS_PER_CALL = 4096;

export interface Candidate {
  row: Float32Array;
  pred: Float32Array;
  source: CounterfactualSource;
  cost: number;
}

export interface State {
  index: number;
  x: Float32Array;
  pred: Float32Array;
  outcome: Outcome;
  /** Per unit of the space. */
  domains: Domain[];
  /** Units that may change for this instance (mutable, with room to move). */
  movable: number[];
  rng: Rng;
  /** Rows predicted for this instance, and the most it may use. */
  evaluations: number;
  gradientEvaluations: number;
  limit: number;
  /** Some rows were refused for lack of budget. */
  budgetHit: boolean;
  pool: Candidate[];
  validBySource: Record<CounterfactualSource, number>;
  candidatesEvaluated: number;
  /** Already has the desired outcome: nothing to search. */
  done: boolean;
}

export class RowBatch {
  private parts: Float32Array[] = [];
  readonly owners: State[] = [];
  private pending = new Map<State, number>();

  constructor(readonly d: number) {}

  get n(): number {
    return this.owners.length;
  }

  /** Rows `owner` may still add within `cap` (its total limit unless a lower one is given). */
  room(owner: State, cap = owner.limit): number {
    return Math.max(0, cap - owner.evaluations - (this.pending.get(owner) ?? 0));
  }

  /** Adds a row; returns its index, or -1 (and marks the owner) when over budget. */
  add(owner: State, row: Float32Array, cap = owner.limit): number {
    if (this.room(owner, cap) <= 0) {
      owner.budgetHit = true;
      return -1;
    }
    this.parts.push(row);
    this.owners.push(owner);
    this.pending.set(owner, (this.pending.get(owner) ?? 0) + 1);
    return this.owners.length - 1;
  }

  row(i: number): Float32Array {
    return this.parts[i];
  }

  data(from: number, to: number): Float32Array {
    const out = new Float32Array((to - from) * this.d);
    for (let i = from; i < to; i++) out.set(this.parts[i], (i - from) * this.d);
    return out;
  }
}

export interface Evaluated {
  /** n x nOutputs; meaningful only where `done[i]` is 1. */
  preds: Float32Array;
  done: Uint8Array;
}

export class Evaluator {
  deadlineHit = false;

  constructor(
    readonly model: Model,
    readonly deadline: number | undefined,
    readonly signal: AbortSignal | undefined,
  ) {}

  /** True once the deadline has passed: nothing more is evaluated after that. */
  expired(): boolean {
    if (!this.deadlineHit && this.deadline !== undefined && Date.now() >= this.deadline) this.deadlineHit = true;
    return this.deadlineHit;
  }

  /** `always`: evaluate even past the deadline (the instances' own predictions, without which nothing can be said). */
  async run(batch: RowBatch, always = false): Promise<Evaluated> {
    const k = this.model.nOutputs;
    const preds = new Float32Array(batch.n * k);
    const done = new Uint8Array(batch.n);
    for (let from = 0; from < batch.n; from += ROWS_PER_CALL) {
      this.signal?.throwIfAborted();
      if (!always && this.expired()) break;
      const to = Math.min(batch.n, from + ROWS_PER_CALL);
      const out = await this.model.predict({ data: batch.data(from, to), n: to - from, d: batch.d });
      preds.set(out, from * k);
      done.fill(1, from, to);
      for (let i = from; i < to; i++) batch.owners[i].evaluations++;
    }
    this.signal?.throwIfAborted();
    return { preds, done };
  }

  /** The score's gradient (sum of sign x d output / d input) at each row, grouped into one call per output. */
  async scoreGradients(rows: Float32Array[], terms: { output: number; sign: number }[][], d: number): Promise<Float32Array[] | null> {
    const grad = this.model.inputGradients?.bind(this.model);
    if (!grad) return null;
    const out = rows.map(() => new Float32Array(d));
    const outputs = [...new Set(terms.flat().map((t) => t.output))].sort((a, b) => a - b);
    for (const o of outputs) {
      const who = rows.map((_, i) => i).filter((i) => terms[i].some((t) => t.output === o));
      for (let from = 0; from < who.length; from += ROWS_PER_CALL) {
        this.signal?.throwIfAborted();
        if (this.expired()) return null;
        const part = who.slice(from, from + ROWS_PER_CALL);
        const data = new Float32Array(part.length * d);
        part.forEach((i, r) => data.set(rows[i], r * d));
        const g = await grad({ data, n: part.length, d }, o);
        part.forEach((i, r) => {
          const sign = terms[i].filter((t) => t.output === o).reduce((s, t) => s + t.sign, 0);
          for (let j = 0; j < d; j++) out[i][j] += sign * g[r * d + j];
        });
      }
    }
    return out;
  }
}
