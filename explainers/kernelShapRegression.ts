/**
 * The Shapley-kernel regression of Kernel SHAP with efficiency as an exact constraint, and a
 * design-based standard error for every coefficient.
 *
 * Solve  min Σ_k ω_k (y_k - z_k·φ)²  subject to  Σ φ = Δ,  where y_k = v(S_k) - v(∅), Δ = v(N) - v(∅).
 * As in shap, the constraint eliminates the last player: φ_last = Δ - Σ_{j<last} φ_j, leaving an
 * unconstrained weighted least squares in M - 1 unknowns with rows x_k = z_k[j] - z_k[last]. Each
 * such row is ±1 on a set T_k and 0 elsewhere, so the normal matrix is built from index sets.
 *
 * Standard errors (Covert & Lee 2021 use the CLT over paired draws; we use its stratified form): the
 * estimator is the root of Σ_u c_u(φ) = 0, a sum over independently drawn sampling units, so
 *   φ̂ - φ ≈ A⁻¹ Σ_u c_u,   c_u = w_u Σ_{k∈u} x_k r_k   (r the residuals at φ̂),
 * and Var Σ_u c_u is estimated within each stratum from the spread of its units' c_u, with the finite
 * population correction 1 - n/N for draws without replacement (0 for enumerated strata, so an
 * enumerated design reports stderr 0) and none for shap's draws with replacement.
 *
 * Linear algebra: a hand-written Cholesky on flat Float64Arrays. The normal matrix is accumulated
 * straight from the ±1 index sets, and the stderr needs A⁻¹1_T for every sampling unit, which we take
 * as sums of rows of A⁻¹ (|T|·M per unit instead of a 2·M² solve). ml-matrix keeps matrices as arrays
 * of arrays and allocates a Matrix per solve: its CholeskyDecomposition plus one solve per unit alone
 * took 6.4 / 11.5 / 51 ms at M = 16 / 32 / 64 against 7.0 / 5.8 / 18.6 ms for this whole function,
 * stderr included (bench/kernelShapSpeed.ts, ~2100 coalitions). ml-matrix's pseudoInverse is the
 * fallback when the normal matrix is singular (too few distinct coalitions).
 */
import { Matrix, pseudoInverse } from 'ml-matrix';
import type { CoalitionDesign } from './coalitions.js';

export interface ShapleyFit {
  /** Estimated Shapley value of each player; sums to Δ to float precision. */
  phi: Float64Array;
  stderr: Float64Array;
}

export interface RegressionResult {
  /** One fit per output. */
  fits: ShapleyFit[];
  /** True when the normal matrix was singular and a pseudo-inverse was used (budget too small). */
  singular: boolean;
}

/** Regression weight of each distinct coalition: the sum over the units (draws) that hold it. */
export function coalitionWeights(design: CoalitionDesign): Float64Array {
  const w = new Float64Array(design.masks.length);
  for (let u = 0; u < design.unitStratum.length; u++) {
    const cw = design.strata[design.unitStratum[u]].coalitionWeight;
    w[design.unitFirst[u]] += cw;
    if (design.unitSecond[u] >= 0) w[design.unitSecond[u]] += cw;
  }
  return w;
}

/**
 * @param y per output, v(S_k) - v(∅) for every coalition k of the design (link space)
 * @param delta per output, v(N) - v(∅)
 */
export function solveShapleyRegression(design: CoalitionDesign, y: Float64Array[], delta: number[]): RegressionResult {
  const M = design.M;
  const p = M - 1;
  const K = design.masks.length;
  const omega = coalitionWeights(design);

  // Index sets T_k and signs of the reduced rows.
  const sets: Int32Array[] = new Array(K);
  const sign = new Int8Array(K);
  for (let k = 0; k < K; k++) {
    const z = design.masks[k];
    const on = z[p] === 1;
    sign[k] = on ? -1 : 1;
    let count = 0;
    for (let j = 0; j < p; j++) if ((z[j] === 1) !== on) count++;
    const t = new Int32Array(count);
    count = 0;
    for (let j = 0; j < p; j++) if ((z[j] === 1) !== on) t[count++] = j;
    sets[k] = t;
  }

  // Lower triangle only (sets are sorted, so t[b] <= t[a] for b <= a), mirrored after.
  const A = new Float64Array(p * p);
  for (let k = 0; k < K; k++) {
    const w = omega[k];
    if (w === 0) continue;
    const t = sets[k];
    for (let a = 0; a < t.length; a++) {
      const row = t[a] * p;
      for (let b = 0; b <= a; b++) A[row + t[b]] += w;
    }
  }
  for (let i = 0; i < p; i++) for (let j = 0; j < i; j++) A[j * p + i] = A[i * p + j];
  const solver = makeSolver(A, p);

  const nOut = y.length;
  const reducedY = y.map((yo, o) => {
    const r = new Float64Array(K);
    for (let k = 0; k < K; k++) r[k] = yo[k] - (design.masks[k][p] === 1 ? delta[o] : 0);
    return r;
  });
  const fits: ShapleyFit[] = [];
  const residuals: Float64Array[] = [];
  for (let o = 0; o < nOut; o++) {
    const b = new Float64Array(p);
    for (let k = 0; k < K; k++) {
      const v = omega[k] * sign[k] * reducedY[o][k];
      if (v === 0) continue;
      const t = sets[k];
      for (let a = 0; a < t.length; a++) b[t[a]] += v;
    }
    const reduced = solver.solve(b);
    const phi = new Float64Array(M);
    let sum = 0;
    for (let j = 0; j < p; j++) {
      phi[j] = reduced[j];
      sum += reduced[j];
    }
    phi[p] = delta[o] - sum;
    const r = new Float64Array(K);
    for (let k = 0; k < K; k++) {
      let fit = 0;
      const t = sets[k];
      for (let a = 0; a < t.length; a++) fit += reduced[t[a]];
      r[k] = reducedY[o][k] - sign[k] * fit;
    }
    residuals.push(r);
    fits.push({ phi, stderr: new Float64Array(M) });
  }

  stratifiedVariance(design, sets, sign, residuals, solver, fits);
  return { fits, singular: solver.singular };
}

/** Adds each stratum's variance into fits[o].stderr (as variances, then takes square roots). */
function stratifiedVariance(
  design: CoalitionDesign,
  sets: Int32Array[],
  sign: Int8Array,
  residuals: Float64Array[],
  solver: Solver,
  fits: ShapleyFit[],
): void {
  const M = design.M;
  const p = M - 1;
  const nOut = fits.length;
  const H = design.strata.length;
  const unitsOf: number[][] = Array.from({ length: H }, () => []);
  design.unitStratum.forEach((h, u) => unitsOf[h].push(u));
  const sum = new Float64Array(M);
  const sumSq = new Float64Array(M);
  const q = new Float64Array(M);
  const e = new Float64Array(p);
  const inverse = new Float64Array(p * p);
  for (let j = 0; j < p; j++) {
    e.fill(0);
    e[j] = 1;
    inverse.set(solver.solve(e), j * p);
  }
  for (let h = 0; h < H; h++) {
    const st = design.strata[h];
    const units = unitsOf[h];
    const n = units.length;
    const fpc = st.withReplacement ? 1 : 1 - st.drawn / st.population;
    if (n === 0 || !(fpc > 0)) continue;
    // A unit's contribution is Σ_k w σ_k r_k A⁻¹1_{T_k}; both halves of a pair share T, so one solve
    // per unit (the influence A⁻¹1_T) serves every output.
    const influence = new Float64Array(n * M);
    const shared = new Uint8Array(n);
    units.forEach((u, i) => {
      const a = design.unitFirst[u];
      const b = design.unitSecond[u];
      if (b >= 0 && !sameSet(sets[a], sets[b])) return; // never in our designs; handled below
      shared[i] = 1;
      const v = influence.subarray(i * M, (i + 1) * M);
      // A⁻¹ 1_T as a sum of columns of A⁻¹ (symmetric, so rows): |T| p instead of 2 p² for a solve.
      for (const j of sets[a]) {
        const row = inverse.subarray(j * p, (j + 1) * p);
        for (let c = 0; c < p; c++) v[c] += row[c];
      }
      let total = 0;
      for (let c = 0; c < p; c++) total += v[c];
      v[p] = -total; // the eliminated player moves opposite to the sum of the others
    });
    for (let o = 0; o < nOut; o++) {
      const r = residuals[o];
      sum.fill(0);
      sumSq.fill(0);
      for (let i = 0; i < n; i++) {
        const u = units[i];
        const a = design.unitFirst[u];
        const b = design.unitSecond[u];
        if (shared[i]) {
          const alpha = st.coalitionWeight * (sign[a] * r[a] + (b >= 0 ? sign[b] * r[b] : 0));
          for (let j = 0; j < M; j++) q[j] = alpha * influence[i * M + j];
        } else {
          q.fill(0);
          for (const k of [a, b]) {
            e.fill(0);
            for (const j of sets[k]) e[j] = 1;
            const v = solver.solve(e);
            const alpha = st.coalitionWeight * sign[k] * r[k];
            for (let j = 0; j < p; j++) {
              q[j] += alpha * v[j];
              q[p] -= alpha * v[j];
            }
          }
        }
        for (let j = 0; j < M; j++) {
          sum[j] += q[j];
          sumSq[j] += q[j] * q[j];
        }
      }
      const se = fits[o].stderr;
      for (let j = 0; j < M; j++) {
        // One unit gives no spread: count its own square (conservative, since Σ_u c_u = 0 overall).
        const ss = Math.max(n >= 2 ? sumSq[j] - (sum[j] * sum[j]) / n : sumSq[j], 0);
        se[j] += fpc * (n >= 2 ? n / (n - 1) : 1) * ss;
      }
    }
  }
  for (const f of fits) for (let j = 0; j < M; j++) f.stderr[j] = Math.sqrt(f.stderr[j]);
}

function sameSet(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Solver {
  solve(b: Float64Array): Float64Array;
  singular: boolean;
}

/** Cholesky of a symmetric p x p matrix; pseudo-inverse when it is not numerically positive definite. */
function makeSolver(A: Float64Array, p: number): Solver {
  const L = cholesky(A, p);
  if (L) {
    return {
      singular: false,
      solve(b) {
        const x = Float64Array.from(b);
        for (let i = 0; i < p; i++) {
          let s = x[i];
          for (let j = 0; j < i; j++) s -= L[i * p + j] * x[j];
          x[i] = s / L[i * p + i];
        }
        for (let i = p - 1; i >= 0; i--) {
          let s = x[i];
          for (let j = i + 1; j < p; j++) s -= L[j * p + i] * x[j];
          x[i] = s / L[i * p + i];
        }
        return x;
      },
    };
  }
  const rows = Array.from({ length: p }, (_, i) => Array.from(A.subarray(i * p, (i + 1) * p)));
  const pinv = pseudoInverse(new Matrix(rows));
  return {
    singular: true,
    solve(b) {
      const x = new Float64Array(p);
      for (let i = 0; i < p; i++) {
        let s = 0;
        for (let j = 0; j < p; j++) s += pinv.get(i, j) * b[j];
        x[i] = s;
      }
      return x;
    },
  };
}

function cholesky(A: Float64Array, p: number): Float64Array | null {
  const L = new Float64Array(p * p);
  let maxDiag = 0;
  for (let i = 0; i < p; i++) maxDiag = Math.max(maxDiag, A[i * p + i]);
  const tol = maxDiag * 1e-10;
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * p + j];
      for (let k = 0; k < j; k++) s -= L[i * p + k] * L[j * p + k];
      if (i === j) {
        if (!(s > tol)) return null;
        L[i * p + i] = Math.sqrt(s);
      } else {
        L[i * p + j] = s / L[j * p + j];
      }
    }
  }
  return L;
}
