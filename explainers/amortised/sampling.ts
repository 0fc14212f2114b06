/**
 * Coalitions for FastSHAP's training objective (Jethani et al., ICLR 2022). A coalition S of the M
 * players is drawn from the Shapley kernel distribution: its size s in 1..M-1 with probability
 * proportional to (M - 1) / (s (M - s)), then a uniform subset of that size. Under this
 * distribution the expected weighted least-squares loss E_S[(v(S) - v(∅) - Σ_{i∈S} φ_i)^2], with
 * φ constrained to sum to v(N) - v(∅), is minimised exactly by the Shapley values.
 *
 * Coalitions are drawn in complementary pairs (S, N \ S): paired sampling, which FastSHAP and
 * Covert & Lee (2021) show removes most of the variance of the sampled objective.
 *
 * Randomness is derived, not carried: every row's coalitions, every epoch's shuffle and the network's
 * initial weights get their own generator seeded from (seed, index, stream). A checkpoint then only
 * needs the epoch number to resume the exact random sequence.
 */
import { createSampler, kernelMass } from '../coalitions.js';
import { coalitionWeights } from '../kernelShapRegression.js';
import { seededRng, type Rng } from '../random.js';
import { allCoalitions } from './targets.js';

/** Cumulative probabilities of the coalition sizes 1..M-1 under the Shapley kernel. */
export function shapleySizeCdf(M: number): Float64Array {
  if (!Number.isInteger(M) || M < 2) throw new Error(`coalition sampling needs at least 2 players, got ${M}`);
  const cdf = new Float64Array(M - 1);
  let total = 0;
  for (let s = 1; s < M; s++) total += kernelMass(M, s);
  let acc = 0;
  for (let s = 1; s < M; s++) {
    acc += kernelMass(M, s) / total;
    cdf[s - 1] = acc;
  }
  cdf[M - 2] = 1;
  return cdf;
}

/**
 * `pairs` complementary pairs of coalitions over M players, as 2 * pairs masks laid end to end
 * (mask k occupies [k M, (k + 1) M)); mask 2p + 1 is the complement of mask 2p.
 */
export function samplePairedCoalitions(rng: Rng, M: number, pairs: number, cdf = shapleySizeCdf(M)): Uint8Array {
  const out = new Uint8Array(2 * pairs * M);
  const order = new Int32Array(M);
  for (let i = 0; i < M; i++) order[i] = i;
  for (let p = 0; p < pairs; p++) {
    const u = rng();
    let s = 1;
    while (s < M - 1 && cdf[s - 1] <= u) s++;
    // Partial Fisher-Yates: the first s entries of `order` become a uniform s-subset. Any starting
    // order gives a uniform subset, so the scratch array is never reset.
    for (let i = 0; i < s; i++) {
      const j = i + Math.floor(rng() * (M - i));
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    const a = 2 * p * M;
    const b = a + M;
    out.fill(1, b, b + M);
    for (let i = 0; i < s; i++) {
      out[a + order[i]] = 1;
      out[b + order[i]] = 0;
    }
  }
  return out;
}

/** Independent random streams of one training run. */
export const STREAM = { coalitions: 1, shuffle: 2, validation: 3, split: 4, init: 5, synthetic: 6 } as const;

/** The generator of one (seed, index, stream): a hash of the three, so streams do not overlap. */
export function streamRng(seed: number, index: number, stream: number): Rng {
  // murmur3-finaliser mixing of the three integers into one 32-bit seed for mulberry32.
  let h = (seed >>> 0) ^ 0x9e3779b9;
  for (const v of [index, stream]) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return seededRng(h >>> 0);
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function shuffled(rng: Rng, n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

export type AmortisedSampler = 'balanced' | 'kernel';
export const AMORTISED_SAMPLERS: readonly AmortisedSampler[] = ['balanced', 'kernel'];

/**
 * The coalitions one row is trained on, with their regression weights (the row's objective is their
 * weighted mean squared residual; targets.ts):
 * - 'kernel': FastSHAP's own scheme, budget/2 complementary pairs drawn from the Shapley kernel
 *   distribution, weight 1 each;
 * - 'balanced' (default): Kernel SHAP's default sampler (coalitions.ts): pairs stratified by size,
 *   outer sizes enumerated when the budget covers them, each coalition weighted by its size's kernel
 *   mass over its sampling rate. The same objective in expectation; on the credit sample its per-row
 *   minimiser is 2-3x closer to the exact Shapley values at equal budget (bench/amortisedBench.ts).
 * When the budget covers all 2^M - 2 coalitions both enumerate them with exact kernel weights.
 */
export function rowCoalitions(sampler: AmortisedSampler, M: number, budget: number, rng: Rng): { masks: Uint8Array; weights: Float64Array } {
  if (budget >= 2 ** M - 2) return allCoalitions(M);
  if (sampler === 'kernel') {
    const pairs = Math.max(1, Math.floor(budget / 2));
    return { masks: samplePairedCoalitions(rng, M, pairs), weights: new Float64Array(2 * pairs).fill(1) };
  }
  const s = createSampler('balanced', M, budget, rng);
  s.grow(budget);
  const masks = new Uint8Array(s.design.masks.length * M);
  s.design.masks.forEach((mask, k) => masks.set(mask, k * M));
  return { masks, weights: coalitionWeights(s.design) };
}
