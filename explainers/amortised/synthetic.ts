/**
 * Synthetic training rows drawn from a Gaussian copula of the real training rows: each player gets
 * normal scores from its ranks, the scores' correlation matrix is estimated, and new rows are drawn
 * from that multivariate normal and mapped back through each player's empirical distribution (the
 * player's columns copied from the real row at that quantile). Marginals are the real ones (integer
 * columns stay integers, one-hot groups stay valid one-hot patterns) and pairwise rank dependence is
 * kept, so the rows lie near the data, unlike hybrids of two rows, which break correlations.
 *
 * Normal CDF and quantile are small functions here (no npm package for them among our dependencies;
 * ml-matrix gives the Cholesky factor).
 */
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import type { Rows } from '../types.js';

/** `rows` followed by `count` copula rows. `rng` is uniform on [0, 1). */
export function withCopulaRows(rows: Rows, count: number, players: number[][], rng: () => number): Rows {
  const { n, d } = rows;
  const data = new Float32Array((n + count) * d);
  data.set(rows.data.subarray(0, n * d));
  if (n === 0) throw new Error('synthetic rows need at least one real row');
  if (count === 0) return { data, n, d };
  const P = players.length;
  // Per player: the real rows ordered by the player's value (columns compared in order), and each row's normal score.
  const order: Int32Array[] = [];
  const scores = new Float64Array(n * P);
  players.forEach((cols, p) => {
    const compare = (a: number, b: number) => {
      for (const c of cols) {
        const diff = rows.data[a * d + c] - rows.data[b * d + c];
        if (diff !== 0) return diff;
      }
      return 0;
    };
    const idx = Int32Array.from({ length: n }, (_, i) => i).sort(compare);
    order.push(idx);
    // Tied rows share the mean rank of their run.
    for (let i = 0; i < n; ) {
      let j = i;
      while (j + 1 < n && compare(idx[j + 1], idx[i]) === 0) j++;
      const z = normalQuantile(((i + j) / 2 + 0.5) / n);
      for (let t = i; t <= j; t++) scores[idx[t] * P + p] = z;
      i = j + 1;
    }
  });
  const mean = new Float64Array(P);
  for (let i = 0; i < n; i++) for (let p = 0; p < P; p++) mean[p] += scores[i * P + p] / n;
  const cov = Matrix.zeros(P, P);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < P; a++) {
      const za = scores[i * P + a] - mean[a];
      for (let b = 0; b <= a; b++) cov.set(a, b, cov.get(a, b) + (za * (scores[i * P + b] - mean[b])) / n);
    }
  }
  // A small ridge keeps the factor defined for constant or collinear players.
  for (let a = 0; a < P; a++) {
    for (let b = 0; b < a; b++) cov.set(b, a, cov.get(a, b));
    cov.set(a, a, cov.get(a, a) + 1e-6);
  }
  const L = new CholeskyDecomposition(cov).lowerTriangularMatrix;
  const e = new Float64Array(P);
  for (let r = 0; r < count; r++) {
    for (let p = 0; p < P; p++) e[p] = standardNormal(rng);
    const at = (n + r) * d;
    players.forEach((cols, p) => {
      let z = mean[p];
      for (let q = 0; q <= p; q++) z += L.get(p, q) * e[q];
      const donor = order[p][Math.min(n - 1, Math.floor(normalCdf(z) * n))];
      for (const c of cols) data[at + c] = rows.data[donor * d + c];
    });
  }
  return { data, n: n + count, d };
}

/** Box-Muller from two uniforms. */
function standardNormal(rng: () => number): number {
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Φ(x), by the complementary error function's Chebyshev fit (Numerical Recipes erfc, |error| < 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Φ⁻¹(p) for p in (0, 1), by bisection on normalCdf (to 1e-9; only used for ranks). */
export function normalQuantile(p: number): number {
  let lo = -9;
  let hi = 9;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
