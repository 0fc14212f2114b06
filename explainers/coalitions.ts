/**
 * Coalition samplers for Kernel SHAP. A sampler chooses which coalitions (subsets of the M players)
 * the model is evaluated on and what weight each carries in the Shapley-kernel regression, and it
 * records how they were drawn (units and strata) so the regression can estimate its own variance.
 *
 * Every sampler draws coalitions in complementary pairs (S, N \ S) - the "paired sampling" that
 * Covert & Lee (2021) show removes most of the variance - and every sampler enumerates the whole
 * space when the budget allows (2^M - 2 coalitions), which makes the regression exact.
 *
 * - 'shap': shap's KernelExplainer scheme, reproduced for comparison: enumerate whole coalition sizes
 *   from the outside in while the budget covers them, then draw the rest with replacement, sizes
 *   ∝ the Shapley kernel, merging duplicates by adding up their weights. Its middle size (M even) is
 *   drawn unpaired, which costs it exactness on games with only pairwise interactions.
 * - 'leverage': Leverage SHAP (Musco & Witter, ICLR 2025): the leverage scores of the kernel regression
 *   are 1 / C(M, s), so sizes get equal shares, drawn without replacement, all pairs. We stratify by
 *   size with fixed counts (each size gets its share exactly rather than a Binomial share); a size
 *   whose share covers all its coalitions is enumerated, which reproduces shap's outside-in
 *   enumeration for free.
 * - 'balanced': 'leverage' whose coalitions of a size are cut as consecutive blocks of
 *   random permutations, so within a size every player sits in (nearly) equally many drawn
 *   coalitions - less variance from players being over- or under-drawn.
 *
 * bench/kernelShapAccuracy.ts measures them against brute-force Shapley values (M = 14-16, budgets
 * 256-2048, 120 runs per cell): 'balanced' and 'leverage' both have 0.55-0.92x the mean squared error
 * of 'shap' at equal budgets (geometric mean 0.71x), and their stderr is calibrated (about 95% of
 * errors within 2 stderr). Between the two (400 runs per cell) it is a tie overall (balanced 0.98x of
 * leverage): 'balanced' is better at small budgets (0.83-0.99x at 256, and better-calibrated stderr
 * there), slightly worse at 2048 (1.03-1.10x). Small early rounds are where estimates and their
 * stderr matter most for early stopping, so 'balanced' is the design Kernel SHAP uses (for the shared
 * background game, and relabelled for each background row's game: kernelShap.ts).
 * Tried and dropped: Neyman allocation re-estimated between rounds (no better than 'leverage', worse
 * stderr at small budgets; the optimal size shares measured on the bench models came out flat, i.e.
 * the leverage shares) and shares ∝ the Shapley kernel (no better).
 */
import type { Rng } from './random.js';

export type SamplerName = 'balanced' | 'leverage' | 'shap';
export const SAMPLER_NAMES: readonly SamplerName[] = ['balanced', 'leverage', 'shap'];

/** A group of sampling units drawn the same way; variance is estimated within each stratum. */
export interface Stratum {
  /** Size of the smaller coalition of each unit; 0 for shap's mixed-size sampled stratum. */
  size: number;
  /** Units in the population (a unit is a complementary pair, or one coalition for shap's middle size). */
  population: number;
  /** Units drawn so far (with replacement: draws, duplicates included). */
  drawn: number;
  withReplacement: boolean;
  /** Regression weight each coalition of a unit of this stratum contributes. */
  coalitionWeight: number;
}

/** What was drawn: distinct coalitions, and the units (draws) that map onto them. */
export interface CoalitionDesign {
  readonly M: number;
  /** One 0/1 mask of length M per distinct coalition, in the order they were added. */
  readonly masks: Uint8Array[];
  readonly unitStratum: number[];
  readonly unitFirst: number[];
  /** Second coalition of the unit, or -1 for a one-coalition unit. */
  readonly unitSecond: number[];
  readonly strata: Stratum[];
}

export interface CoalitionSampler {
  readonly name: SamplerName;
  readonly design: CoalitionDesign;
  /** 2^M - 2: every coalition except the empty and the full one. */
  readonly capacity: number;
  /**
   * Add coalitions until there are `target` distinct ones (fewer if the space runs out; shap's
   * scheme may overshoot in its first call, where it enumerates the sizes its whole budget covers).
   * Returns the new total.
   */
  grow(target: number): number;
  /** True when every coalition is in the design with its exact kernel weight. */
  readonly exhaustive: boolean;
  /**
   * True when every prefix of the units (in the order they were added) is itself a valid design:
   * units of a size are drawn in random order and the units a grow adds are interleaved across sizes.
   * Then an estimate can be made from the units evaluated so far when a deadline cuts a round short.
   * shap's scheme (enumeration in lexicographic order, then draws) is valid only where a grow ended.
   */
  readonly anyPrefix: boolean;
  /** The strata (counts and weights) of the design made of the first `units` units. */
  strataAt(units: number): Stratum[];
}

/** Per-coalition weight of the Shapley kernel, times C(M, s): the kernel mass of size s. */
export function kernelMass(M: number, s: number): number {
  return (M - 1) / (s * (M - s));
}

/** C(n, k) as a float (exact while it fits in 2^53). */
export function binomial(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  k = Math.min(k, n - k);
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c < 2 ** 53 ? Math.round(c) : c;
}

export function createSampler(name: SamplerName, M: number, budget: number, rng: Rng): CoalitionSampler {
  if (M < 2) throw new Error(`a coalition sampler needs at least 2 players, got ${M}`);
  return name === 'shap' ? shapSampler(M, budget, rng) : stratifiedSampler(name, M, rng);
}

// ---------------------------------------------------------------------------------------------
// Shared machinery

function emptyDesign(M: number): CoalitionDesign {
  return { M, masks: [], unitStratum: [], unitFirst: [], unitSecond: [], strata: [] };
}

/**
 * Masks are views into shared 64 KB blocks: a design holds thousands of M-byte masks, and a typed
 * array of its own each (an ArrayBuffer per mask) made building a design allocation-bound.
 */
let maskBlock = new Uint8Array(0);
let maskUsed = 0;
function newMask(M: number): Uint8Array {
  if (maskUsed + M > maskBlock.length) {
    maskBlock = new Uint8Array(Math.max(M, 1 << 16));
    maskUsed = 0;
  }
  const m = maskBlock.subarray(maskUsed, maskUsed + M);
  maskUsed += M;
  return m;
}

function maskOf(M: number, members: ArrayLike<number>): Uint8Array {
  const m = newMask(M);
  for (let i = 0; i < members.length; i++) m[members[i]] = 1;
  return m;
}

function complementMask(mask: Uint8Array): Uint8Array {
  const c = newMask(mask.length);
  for (let i = 0; i < mask.length; i++) c[i] = 1 - mask[i];
  return c;
}

/** A sorted member list as a key: the bitmask as a number while it is exact (players < 53), else a string. */
function keyOf(members: ArrayLike<number>): number | string {
  if (members.length === 0 || members[members.length - 1] < 53) {
    let k = 0;
    for (let i = 0; i < members.length; i++) k += 2 ** members[i];
    return k;
  }
  let k = '';
  for (let i = 0; i < members.length; i++) k += String.fromCharCode(members[i]);
  return k;
}

function complementMembers(M: number, members: number[]): number[] {
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < M; i++) {
    if (j < members.length && members[j] === i) j++;
    else out.push(i);
  }
  return out;
}

/**
 * A uniformly random s-subset, sorted. Partial Fisher-Yates on a scratch permutation: any starting
 * order of the scratch array gives a uniform subset, so it is never reset.
 */
function randomSubset(rng: Rng, scratch: Int32Array, s: number): number[] {
  const M = scratch.length;
  for (let i = 0; i < s; i++) {
    const j = i + Math.floor(rng() * (M - i));
    const t = scratch[i];
    scratch[i] = scratch[j];
    scratch[j] = t;
  }
  return sortedSlice(scratch, 0, s);
}

/** a[from .. from + n) as a sorted array (insertion sort: these are short, and a comparator call per step is not). */
function sortedSlice(a: Int32Array, from: number, n: number): number[] {
  if (n > 32) return Array.from(a.slice(from, from + n).sort());
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const v = a[from + i];
    let j = i;
    while (j > 0 && out[j - 1] > v) {
      out[j] = out[j - 1];
      j--;
    }
    out[j] = v;
  }
  return out;
}

/** Fisher-Yates in place. */
function shuffle(rng: Rng, a: Int32Array): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/** All s-subsets of 0..M-1 in lexicographic order; `first0` keeps only those containing player 0. */
function* combinations(M: number, s: number, first0 = false): Generator<number[]> {
  const c = Array.from({ length: s }, (_, i) => i);
  while (true) {
    if (!first0 || c[0] === 0) yield c.slice();
    let i = s - 1;
    while (i >= 0 && c[i] === M - s + i) i--;
    if (i < 0) return;
    c[i]++;
    for (let j = i + 1; j < s; j++) c[j] = c[j - 1] + 1;
  }
}

function addPairUnit(design: CoalitionDesign, stratum: number, members: number[]): void {
  const a = maskOf(design.M, members);
  const first = design.masks.length;
  design.masks.push(a, complementMask(a));
  design.unitStratum.push(stratum);
  design.unitFirst.push(first);
  design.unitSecond.push(first + 1);
}

// ---------------------------------------------------------------------------------------------
// Stratified, without replacement: 'leverage', 'balanced'

/**
 * Strata by size: h = 0 .. H-1 holds pairs (S, N\S) with |S| = h + 1 < M/2; for even M the last
 * stratum holds the pairs of two halves (canonical side: the one containing player 0).
 */
function stratifiedSampler(name: 'leverage' | 'balanced', M: number, rng: Rng): CoalitionSampler {
  const design = emptyDesign(M);
  const capacity = 2 ** M - 2;
  const H = Math.floor(M / 2);
  const drawnKeys: Set<number | string>[] = [];
  for (let h = 0; h < H; h++) {
    const s = h + 1;
    const middle = 2 * s === M;
    design.strata.push({
      size: s,
      population: middle ? binomial(M, s) / 2 : binomial(M, s),
      drawn: 0,
      withReplacement: false,
      coalitionWeight: 0,
    });
    drawnKeys.push(new Set());
  }
  // Equal shares per size; a unit of the middle stratum covers one size, the others two.
  const shares = design.strata.map((st) => (2 * st.size === M ? 0.5 : 1));
  const scratch = Int32Array.from({ length: M }, (_, i) => i);
  // 'balanced': s-subsets come as consecutive blocks of a random permutation, so within a stratum every
  // player sits in (nearly) the same number of drawn coalitions.
  const blocks: number[][][] = Array.from({ length: H }, () => []);
  const nextBlock = (h: number, s: number): number[] => {
    if (blocks[h].length === 0) {
      shuffle(rng, scratch);
      for (let b = 0; b + s <= M; b += s) blocks[h].push(sortedSlice(scratch, b, s));
    }
    return blocks[h].pop()!;
  };

  /** `count` new units of stratum h, in random order (a uniform sample without replacement). */
  const drawUnits = (h: number, count: number): number[][] => {
    const st = design.strata[h];
    const s = st.size;
    const middle = 2 * s === M;
    const keys = drawnKeys[h];
    const want = st.drawn + count;
    const out: number[][] = [];
    if (st.population <= 4 * want) {
      // Dense: list the units not drawn yet and pick `count` of them uniformly.
      const rest: number[][] = [];
      for (const c of combinations(M, s, middle)) if (!keys.has(keyOf(c))) rest.push(c);
      for (let i = 0; i < count; i++) {
        const j = i + Math.floor(rng() * (rest.length - i));
        const t = rest[i];
        rest[i] = rest[j];
        rest[j] = t;
        keys.add(keyOf(rest[i]));
        out.push(rest[i]);
      }
    } else {
      // Sparse: rejection; at most 1/4 of the population is drawn, so few draws are rejected.
      while (out.length < count) {
        let c = name === 'balanced' ? nextBlock(h, s) : randomSubset(rng, scratch, s);
        if (middle && c[0] !== 0) c = complementMembers(M, c);
        const k = keyOf(c);
        if (keys.has(k)) continue;
        keys.add(k);
        out.push(c);
      }
    }
    st.drawn = want;
    // Each unit stands for population / drawn units; each coalition carries its size's kernel weight.
    st.coalitionWeight = stratumWeight(M, st);
    return out;
  };

  return {
    name,
    design,
    capacity,
    get exhaustive() {
      return design.strata.every((st) => st.drawn === st.population);
    },
    grow(target: number): number {
      const units = Math.floor(Math.min(target, capacity) / 2);
      const population = design.strata.map((st) => st.population);
      // Every stratum gets two units (or all it has) before shares apply: a stratum left out would drop
      // its kernel mass from the regression (bias), and one unit gives no variance estimate.
      const floor = (m: number) => population.map((p, h) => Math.max(design.strata[h].drawn, Math.min(p, m)));
      const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
      const current = sum(floor(2)) <= units ? floor(2) : sum(floor(1)) <= units ? floor(1) : floor(0);
      const alloc = allocate(units, population, shares, current);
      const fresh: number[][][] = [];
      for (let h = 0; h < H; h++) {
        const drawn = design.strata[h].drawn;
        fresh.push(alloc[h] > drawn ? drawUnits(h, alloc[h] - drawn) : []);
      }
      // Interleave the sizes: the first new unit of each size first, then unit i of a size that gets n
      // new units at (i + 1/2) / n, so any prefix of this grow holds every size in proportion.
      const order: [number, number, number][] = [];
      fresh.forEach((list, h) => list.forEach((_, i) => order.push([i === 0 ? -1 : (i + 0.5) / list.length, h, i])));
      order.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      for (const [, h, i] of order) addPairUnit(design, h, fresh[h][i]);
      return design.masks.length;
    },
    anyPrefix: true,
    strataAt(units: number): Stratum[] {
      const strata = design.strata.map((st) => ({ ...st, drawn: 0 }));
      const n = Math.min(units, design.unitStratum.length);
      for (let u = 0; u < n; u++) strata[design.unitStratum[u]].drawn++;
      for (const st of strata) st.coalitionWeight = stratumWeight(M, st);
      return strata;
    },
  };
}

/** Kernel weight of each coalition of a stratum drawn without replacement: its size's mass, spread evenly. */
function stratumWeight(M: number, st: Stratum): number {
  return st.drawn > 0 ? (kernelMass(M, st.size) / binomial(M, st.size)) * (st.population / st.drawn) : 0;
}

/**
 * Water-filling: n_h = min(population_h, max(current_h, λ share_h)) with Σ n_h = units, in integers.
 * Strata whose share would exceed their population are enumerated and the rest is spread over the
 * others, which is how outer sizes (few coalitions) end up complete.
 */
export function allocate(units: number, population: number[], share: number[], current: number[]): number[] {
  const H = population.length;
  let totalPop = 0;
  for (let h = 0; h < H; h++) totalPop += population[h];
  if (units >= totalPop) return population.slice();
  const filled = (lambda: number) => {
    let s = 0;
    for (let h = 0; h < H; h++) s += Math.min(population[h], Math.max(current[h], lambda * share[h]));
    return s;
  };
  let lo = 0;
  let hi = 1;
  while (filled(hi) < units) hi *= 2;
  for (let it = 0; it < 100; it++) {
    const mid = (lo + hi) / 2;
    if (filled(mid) < units) lo = mid;
    else hi = mid;
  }
  const real = population.map((p, h) => Math.min(p, Math.max(current[h], hi * share[h])));
  const n = real.map((x) => Math.floor(x));
  let left = units - n.reduce((a, b) => a + b, 0);
  const order = Array.from({ length: H }, (_, h) => h)
    .filter((h) => n[h] < population[h])
    .sort((a, b) => real[b] - n[b] - (real[a] - n[a]) || a - b);
  for (const h of order) {
    if (left <= 0) break;
    n[h]++;
    left--;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// shap's KernelExplainer scheme

function shapSampler(M: number, budget: number, rng: Rng): CoalitionSampler {
  const design = emptyDesign(M);
  const capacity = 2 ** M - 2;
  const total = Math.min(budget, capacity);
  const numSizes = Math.ceil((M - 1) / 2);
  const numPaired = Math.floor((M - 1) / 2);
  // Kernel mass of each small-side size, its complement size included when paired.
  const mass = Array.from({ length: numSizes }, (_, i) => kernelMass(M, i + 1) * (i < numPaired ? 2 : 1));
  const massSum = mass.reduce((a, b) => a + b, 0);

  // Which sizes the whole budget enumerates, decided up front as shap does.
  let fullSizes = 0;
  let left = total;
  let remaining = mass.map((m) => m / massSum);
  for (let s = 1; s <= numSizes; s++) {
    const n = binomial(M, s) * (s <= numPaired ? 2 : 1);
    if ((left * remaining[s - 1]) / n < 1 - 1e-8) break;
    fullSizes++;
    left -= n;
    const r = remaining[s - 1];
    if (r < 1) remaining = remaining.map((x) => x / (1 - r));
  }
  for (let s = 1; s <= fullSizes; s++) {
    const pop = 2 * s === M ? binomial(M, s) / 2 : binomial(M, s);
    design.strata.push({
      size: s,
      population: pop,
      drawn: pop,
      withReplacement: false,
      coalitionWeight: kernelMass(M, s) / binomial(M, s),
    });
  }
  const sampledSizes = Array.from({ length: numSizes - fullSizes }, (_, i) => fullSizes + 1 + i);
  // Sizes are drawn ∝ the kernel mass per draw: a paired draw yields two coalitions, so it is halved.
  const drawMass = sampledSizes.map((s) => mass[s - 1] / (s <= numPaired ? 2 : 1));
  const drawMassSum = drawMass.reduce((a, b) => a + b, 0);
  const weightLeft = sampledSizes.reduce((a, s) => a + mass[s - 1], 0);
  const sampled = design.strata.length;
  if (sampledSizes.length > 0) {
    design.strata.push({ size: 0, population: Infinity, drawn: 0, withReplacement: true, coalitionWeight: 0 });
  }
  const seen = new Map<number | string, number>();
  const scratch = Int32Array.from({ length: M }, (_, i) => i);
  let drawnCoalitions = 0;
  let enumerated = false;
  // The strata as they stood at the end of each grow, by units: the only prefixes that are designs.
  const snapshots = new Map<number, Stratum[]>();
  const lone = new Set<number>();

  const enumerate = () => {
    for (let s = 1; s <= fullSizes; s++) {
      for (const c of combinations(M, s, 2 * s === M)) addPairUnit(design, s - 1, c);
    }
    enumerated = true;
  };

  /** One draw, as shap makes it; `room` = coalitions still wanted. */
  const drawOne = (room: number) => {
    let u = rng() * drawMassSum;
    let i = 0;
    while (i < sampledSizes.length - 1 && (u -= drawMass[i]) >= 0) i++;
    const s = sampledSizes[i];
    const members = randomSubset(rng, scratch, s);
    const key = keyOf(members);
    let paired = s <= numPaired;
    let first = seen.get(key);
    if (first === undefined) {
      first = design.masks.length;
      seen.set(key, first);
      const mask = maskOf(M, members);
      design.masks.push(mask);
      // With one coalition left to add, shap adds the first of a pair alone.
      if (paired && room < 2) {
        paired = false;
        lone.add(first);
      }
      if (paired) design.masks.push(complementMask(mask));
    } else if (lone.has(first)) {
      paired = false; // a repeat of a coalition that was added alone
    }
    design.unitStratum.push(sampled);
    design.unitFirst.push(first);
    design.unitSecond.push(paired ? first + 1 : -1);
    drawnCoalitions += paired ? 2 : 1;
    design.strata[sampled].drawn++;
  };

  return {
    name: 'shap',
    design,
    capacity,
    get exhaustive() {
      return sampledSizes.length === 0;
    },
    grow(target: number): number {
      if (!enumerated) enumerate();
      if (sampledSizes.length === 0) {
        snapshots.set(design.unitStratum.length, design.strata.map((st) => ({ ...st })));
        return design.masks.length;
      }
      const goal = Math.min(target, total);
      // shap gives up after 4 draws per coalition wanted (the space may be nearly exhausted).
      let draws = 4 * Math.max(0, goal - design.masks.length);
      while (design.masks.length < goal && draws-- > 0) drawOne(goal - design.masks.length);
      // Draws share the kernel mass left after enumeration equally (shap's final rescaling).
      design.strata[sampled].coalitionWeight = drawnCoalitions > 0 ? weightLeft / drawnCoalitions : 0;
      snapshots.set(design.unitStratum.length, design.strata.map((st) => ({ ...st })));
      return design.masks.length;
    },
    anyPrefix: false,
    strataAt(units: number): Stratum[] {
      const st = snapshots.get(units);
      if (!st) throw new Error(`shap's sampler has no valid design of ${units} units (only where a grow ended)`);
      return st.map((x) => ({ ...x }));
    },
  };
}
