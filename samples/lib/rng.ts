/**
 * Seeded randomness for the sample builders, on the project's one generator (stats/random.ts,
 * mulberry32): the sample data depend on its exact sequence, which test/samples-build.test.ts pins.
 */
import { seededRng, type Rng } from '../../stats/random.js';

export type { Rng };

/** mulberry32, under the name the sample builders' documented seeds use. */
export const mulberry32: (seed: number) => Rng = seededRng;

export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Integer in [lo, hi] inclusive. */
export function intBetween(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

export function bernoulli(rng: Rng, p: number): number {
  return rng() < p ? 1 : 0;
}

/** Standard normal (Box-Muller, one value per call: two uniforms are always consumed). */
export function gaussian(rng: Rng): number {
  const u = 1 - rng(); // (0, 1]
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Poisson by inversion (fine for small means). */
export function poisson(rng: Rng, mean: number): number {
  const l = Math.exp(-mean);
  let k = 0;
  let p = rng();
  while (p > l) {
    k++;
    p *= rng();
  }
  return k;
}

/** Uniformly random permutation of 0..n-1 (Fisher-Yates). */
export function shuffledIndices(rng: Rng, n: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx;
}

/** Rounds to `d` decimals (what goes into the CSV files is exactly what the models were trained on). */
export function round(x: number, d = 0): number {
  const f = 10 ** d;
  const r = Math.round(x * f) / f;
  return Object.is(r, -0) ? 0 : r;
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
