/**
 * Coalition designs shared by everything that can share them. A design depends only on the sampler,
 * the number of players, the seed (and, for shap's scheme, the budget), never on the instance: every
 * instance (of this call or a later one) and every background row whose game has M players reads the
 * same design, indexed once, with one factorisation of the normal matrix per prefix used. That is what
 * makes an instance's result independent of its batch-mates (so results can be cached per instance)
 * and N instances in one call cheaper than N calls.
 *
 * A design grows through fixed checkpoints (4M coalitions, doubling), the same whatever the instances
 * ask for; an instance that wants t coalitions uses the longest prefix of at most t coalitions, which
 * is a valid design for the stratified samplers (CoalitionSampler.anyPrefix). shap's scheme is grown
 * once to its whole budget, as shap does.
 */
import { createSampler, type CoalitionSampler, type SamplerName } from './coalitions.js';
import { DesignIndex, designSnapshot, type DesignSnapshot } from './kernelShapRegression.js';
import { seededRng } from './random.js';

/** Plans kept between calls, bounded by the coalitions they hold (about 40 bytes + M each, plus snapshots). */
const CACHE_COALITIONS = 1 << 21;
const SNAPSHOTS_PER_PLAN = 8;

export class DesignPlan {
  readonly sampler: CoalitionSampler;
  readonly index: DesignIndex;
  readonly capacity: number;
  private next: number;
  private readonly last: number;
  /** Units at the end of each grow: the valid prefixes of a design that is not valid at any prefix. */
  private readonly growEnds: number[] = [];
  private readonly snapshots = new Map<string, DesignSnapshot>();

  constructor(
    readonly name: SamplerName,
    readonly M: number,
    budget: number,
    seed: number,
  ) {
    this.capacity = 2 ** M - 2;
    this.sampler = createSampler(name, M, Math.min(budget, this.capacity), seededRng(seed));
    this.index = new DesignIndex(this.sampler.design);
    // shap's scheme decides what to enumerate from its whole budget: one grow, as shap does.
    this.last = name === 'shap' ? Math.min(budget, this.capacity) : this.capacity;
    this.next = name === 'shap' ? this.last : Math.min(this.last, 4 * M);
  }

  get coalitions(): number {
    return this.index.coalitions;
  }

  /** Grows the design until it holds `coalitions` coalitions (or all it can), through the checkpoints. */
  private growTo(coalitions: number): void {
    const want = Math.min(coalitions, this.last);
    while (this.sampler.design.masks.length < want && this.next > 0) {
      const before = this.sampler.design.masks.length;
      this.sampler.grow(this.next);
      this.index.sync();
      this.growEnds.push(this.index.units);
      const reached = this.next >= this.last;
      this.next = reached ? 0 : Math.min(this.last, 2 * this.next);
      if (this.sampler.design.masks.length === before && reached) break;
    }
  }

  /**
   * Units to evaluate for about `coalitions` coalitions: the longest valid prefix with at most that
   * many (at least one unit), or for shap's scheme the first grow that reaches it.
   */
  unitsFor(coalitions: number): number {
    this.growTo(coalitions);
    const index = this.index;
    if (!this.sampler.anyPrefix) {
      for (const u of this.growEnds) if (index.coalitionsOf(u) >= Math.min(coalitions, this.last)) return u;
      return this.growEnds.at(-1) ?? 0;
    }
    return Math.max(Math.min(1, index.units), index.unitsWithin(coalitions));
  }

  /** The longest valid prefix of at most `units` units. */
  validPrefix(units: number): number {
    if (this.sampler.anyPrefix) return Math.min(units, this.index.units);
    let best = 0;
    for (const u of this.growEnds) if (u <= units) best = Math.max(best, u);
    return best;
  }

  /**
   * The factorised design of the first `units` units, with variance units capped at `cap` per stratum,
   * for running sums that keep d_u under `storeCap`.
   */
  snapshot(units: number, cap: number, storeCap = cap): DesignSnapshot {
    const key = `${units}:${cap}:${storeCap}`;
    let snap = this.snapshots.get(key);
    if (!snap) {
      snap = designSnapshot(this.index, units, this.sampler.strataAt(units), cap, storeCap);
      if (this.snapshots.size >= SNAPSHOTS_PER_PLAN) this.snapshots.delete(this.snapshots.keys().next().value!);
      this.snapshots.set(key, snap);
    }
    return snap;
  }
}

const plans = new Map<string, DesignPlan>();

/** The plan for these keys, from the cache when a call made it before (least recently used goes first). */
export function designPlan(name: SamplerName, M: number, budget: number, seed: number): DesignPlan {
  const key = `${name}|${M}|${seed}|${name === 'shap' ? budget : ''}`;
  let plan = plans.get(key);
  if (plan) {
    plans.delete(key);
  } else {
    plan = new DesignPlan(name, M, budget, seed);
  }
  plans.set(key, plan);
  let held = 0;
  for (const p of plans.values()) held += p.coalitions;
  for (const [k, p] of plans) {
    if (held <= CACHE_COALITIONS || p === plan) break;
    held -= p.coalitions;
    plans.delete(k);
  }
  return plan;
}
