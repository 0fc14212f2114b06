/**
 * The Shapley-kernel regression of Kernel SHAP with efficiency as an exact constraint, and a
 * design-based standard error for every coefficient.
 *
 * Solve  min Σ_k ω_k (y_k - z_k·φ)²  subject to  Σ φ = Δ,  where y_k = v(S_k) - v(∅), Δ = v(N) - v(∅).
 * As in shap, the constraint eliminates the last player: φ_last = Δ - Σ_{j<last} φ_j, leaving an
 * unconstrained weighted least squares in M - 1 unknowns with rows x_k = z_k[j] - z_k[last]. Each
 * such row is ±1 on a set T_k and 0 elsewhere, so the normal matrix is built from index sets.
 *
 * The work is split by what it depends on, so that it is done once where it can be:
 * - DesignIndex: per design (shared by every instance, stream and output that uses the design): each
 *   sampling unit's set T, sign and stratum, each coalition's smaller side (to build masked rows).
 * - DesignSnapshot: per prefix of the design's units: the stratum weights, A⁻¹ (one factorisation)
 *   and the influence A⁻¹1_T of the units the variance is estimated from.
 * - StreamStats: per regression problem (an instance, or an instance and a background row): the sums
 *   Σ_{u in stratum h} d_u 1_{T_u} that the right-hand side is made of, d_u = Σ_{k in u} s_k ỹ_k, added
 *   as units are evaluated; and d_u of the units kept for the variance.
 *
 * Standard errors (Covert & Lee 2021 use the CLT over paired draws; we use its stratified form): the
 * estimator is the root of Σ_u c_u(φ) = 0, a sum over independently drawn sampling units, so
 *   φ̂ - φ ≈ A⁻¹ Σ_u c_u,   c_u = w_u Σ_{k∈u} x_k r_k   (r the residuals at φ̂),
 * and Var Σ_u c_u is estimated within each stratum from the spread of its units' c_u, with the finite
 * population correction 1 - n/N for draws without replacement (0 for enumerated strata, so an
 * enumerated design reports stderr 0) and none for shap's draws with replacement. The spread may be
 * taken over the first `cap` units of each stratum only (they are a random subsample: units of a
 * stratum are drawn in random order), scaled to the stratum's n units: when an instance has many
 * independent regressions (one per background row), their variances add up and the subsampling
 * noise averages out, while the per-unit work stays bounded.
 *
 * Linear algebra: a hand-written Cholesky on flat Float64Arrays. ml-matrix keeps matrices as arrays
 * of arrays and allocates a Matrix per solve (bench/kernelShapSpeed.ts times the two); its
 * pseudoInverse is the fallback when the normal matrix is singular (too few distinct coalitions).
 */
import { Matrix, pseudoInverse } from 'ml-matrix';
import type { CoalitionDesign, Stratum } from './coalitions.js';

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

/**
 * Float64Array buffers by length, handed back when a call is done with them: a call holds a few hundred
 * kilobytes of running sums per instance, and allocating them afresh every call made garbage collection
 * a visible share of the time. Bounded, so a burst of large calls does not pin memory.
 */
const pool = new Map<number, Float64Array[]>();
let pooled = 0;
const POOL_VALUES = 1 << 22;

/** A zeroed Float64Array of length n, from the pool when one is there. */
export function takeBuffer(n: number): Float64Array {
  const list = pool.get(n);
  const buf = list?.pop();
  if (buf) {
    pooled -= n;
    return buf.fill(0);
  }
  return new Float64Array(n);
}

/** Gives buffers back to the pool (the caller must not use them again). */
export function giveBuffers(...bufs: Float64Array[]): void {
  for (const b of bufs) {
    if (b.length === 0 || pooled + b.length > POOL_VALUES) continue;
    const list = pool.get(b.length) ?? [];
    list.push(b);
    pool.set(b.length, list);
    pooled += b.length;
  }
}

function growInt32(a: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  if (need <= a.length) return a;
  const b = new Int32Array(Math.max(need, 2 * a.length));
  b.set(a);
  return b;
}

/**
 * Per-unit and per-coalition facts of a design, indexed once as the design grows. Every instance,
 * stream and output that uses the design reads them.
 */
export class DesignIndex {
  readonly M: number;
  readonly p: number;
  /** Units and coalitions indexed so far. */
  units = 0;
  coalitions = 0;
  /** Per unit: stratum, coalitions in it (1 or 2), sign of its first coalition's reduced row, rank within its stratum. */
  stratum = new Int32Array(64);
  nc = new Int32Array(64);
  sign = new Int32Array(64);
  rank = new Int32Array(64);
  first = new Int32Array(64);
  second = new Int32Array(64);
  /**
   * Per unit, CSR: the reduced players T_u (indices < p), or when tComp[u] is 1 its complement in
   * 0..p-1, whichever is smaller: sums over T become (sum over all) - (sum over the complement), which
   * halves the work on the per-stream paths.
   */
  tStart = new Int32Array(65);
  tIdx = new Int32Array(256);
  tComp = new Int32Array(64);
  /** Per unit: distinct coalitions referenced by units 0..u (a prefix of u + 1 units evaluates these). */
  kAfter = new Int32Array(64);
  /** Per coalition, CSR: the players of its smaller side (itself or its complement), and whether it is that side. */
  cStart = new Int32Array(65);
  cIdx = new Int32Array(256);
  cIsSmall = new Int32Array(64);
  /** Per coalition: the unit it completes (-1 when a later coalition of the same unit completes it). */
  cCompletes = new Int32Array(64);
  private perStratum: number[] = [];

  constructor(readonly design: CoalitionDesign) {
    this.M = design.M;
    this.p = design.M - 1;
    this.sync();
  }

  /** Index what the design added since the last call. */
  sync(): void {
    const d = this.design;
    const M = this.M;
    const p = this.p;
    const K = d.masks.length;
    if (K > this.coalitions) {
      this.cStart = growInt32(this.cStart, K + 1);
      this.cIsSmall = growInt32(this.cIsSmall, K);
      this.cCompletes = growInt32(this.cCompletes, K);
      for (let k = this.coalitions; k < K; k++) {
        const z = d.masks[k];
        let size = 0;
        for (let j = 0; j < M; j++) size += z[j];
        const small = 2 * size <= M ? 1 : 0;
        const count = small ? size : M - size;
        this.cIdx = growInt32(this.cIdx, this.cStart[k] + count);
        let at = this.cStart[k];
        for (let j = 0; j < M; j++) if ((z[j] === 1) === (small === 1)) this.cIdx[at++] = j;
        this.cStart[k + 1] = at;
        this.cIsSmall[k] = small;
        this.cCompletes[k] = -1;
      }
      this.coalitions = K;
    }
    const U = d.unitStratum.length;
    if (U > this.units) {
      for (const a of ['stratum', 'nc', 'sign', 'rank', 'first', 'second', 'kAfter', 'tComp'] as const) this[a] = growInt32(this[a], U);
      this.tStart = growInt32(this.tStart, U + 1);
      let kMax = this.units > 0 ? this.kAfter[this.units - 1] : 0;
      for (let u = this.units; u < U; u++) {
        const h = d.unitStratum[u];
        while (this.perStratum.length <= h) this.perStratum.push(0);
        const a = d.unitFirst[u];
        const b = d.unitSecond[u];
        const z = d.masks[a];
        const on = z[p] === 1;
        this.stratum[u] = h;
        this.nc[u] = b >= 0 ? 2 : 1;
        this.sign[u] = on ? -1 : 1;
        this.rank[u] = this.perStratum[h]++;
        this.first[u] = a;
        this.second[u] = b;
        let count = 0;
        for (let j = 0; j < p; j++) if ((z[j] === 1) !== on) count++;
        const comp = 2 * count > p;
        this.tComp[u] = comp ? 1 : 0;
        this.tIdx = growInt32(this.tIdx, this.tStart[u] + (comp ? p - count : count));
        let at = this.tStart[u];
        for (let j = 0; j < p; j++) if ((z[j] === 1) !== on !== comp) this.tIdx[at++] = j;
        this.tStart[u + 1] = at;
        kMax = Math.max(kMax, a + 1, b + 1);
        this.kAfter[u] = kMax;
        // A unit whose coalitions are new and consecutive is completed by its last one.
        if (a >= (u > 0 ? this.kAfter[u - 1] : 0) && (b < 0 || b === a + 1)) this.cCompletes[b >= 0 ? b : a] = u;
      }
      this.units = U;
    }
  }

  /** Distinct coalitions evaluated by a prefix of `units` units. */
  coalitionsOf(units: number): number {
    return units > 0 ? this.kAfter[units - 1] : 0;
  }

  /** Largest prefix of units whose coalitions are all among the first `coalitions`. */
  unitsWithin(coalitions: number): number {
    let lo = 0;
    let hi = this.units;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.kAfter[mid - 1] <= coalitions) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** Writes T_u (sorted) into t; returns its size. */
function expandT(index: DesignIndex, u: number, t: Int32Array): number {
  const { tStart, tIdx, p } = index;
  const s = tStart[u];
  const e = tStart[u + 1];
  if (!index.tComp[u]) {
    for (let a = s; a < e; a++) t[a - s] = tIdx[a];
    return e - s;
  }
  let len = 0;
  let a = s;
  for (let j = 0; j < p; j++) {
    if (a < e && tIdx[a] === j) a++;
    else t[len++] = j;
  }
  return len;
}

/** The design made of the first U units: weights, one factorisation, and the variance units' influence. */
export interface DesignSnapshot {
  readonly index: DesignIndex;
  readonly units: number;
  readonly coalitions: number;
  /** Per stratum: regression weight of each coalition, units in the prefix, finite population correction. */
  readonly weight: Float64Array;
  readonly n: Int32Array;
  readonly fpc: Float64Array;
  readonly exhaustive: boolean;
  readonly singular: boolean;
  /** A⁻¹ (or its pseudo-inverse), p x p. */
  readonly inverse: Float64Array;
  /**
   * Units with rank < cap in their stratum, listed stratum by stratum (those of stratum h at
   * [mStart[h], mStart[h + 1])), each with its slot (its position among them in design order, which is
   * where StreamStats keeps its d_u) and its A⁻¹1_T (M values: the last is -Σ).
   */
  readonly cap: number;
  readonly storeCap: number;
  readonly varUnits: Int32Array;
  readonly varSlot: Int32Array;
  readonly influence: Float64Array;
  /** Variance units per stratum, and where each stratum's start in varUnits. */
  readonly m: Int32Array;
  readonly mStart: Int32Array;
}

/**
 * @param cap variance units per stratum (those of rank < cap)
 * @param storeCap the cap the StreamStats that will be solved with it keep d_u under (>= cap): slots count those
 */
export function designSnapshot(index: DesignIndex, units: number, strata: Stratum[], cap = Infinity, storeCap = cap): DesignSnapshot {
  if (storeCap < cap) throw new Error(`variance units: cap ${cap} above the stored ${storeCap}`);
  const { M, p } = index;
  const H = strata.length;
  const weight = new Float64Array(H);
  const n = new Int32Array(H);
  const fpc = new Float64Array(H);
  let exhaustive = true;
  strata.forEach((st, h) => {
    weight[h] = st.coalitionWeight;
    n[h] = st.drawn;
    fpc[h] = st.withReplacement ? 1 : Math.max(0, 1 - st.drawn / st.population);
    if (st.withReplacement || st.drawn < st.population) exhaustive = false;
  });
  const { stratum, nc, tStart, tIdx, tComp, rank } = index;

  // Lower triangle only (sets are sorted, so t[b] <= t[a] for b <= a), mirrored after.
  const A = new Float64Array(p * p);
  const t = new Int32Array(p);
  for (let u = 0; u < units; u++) {
    const w = weight[stratum[u]] * nc[u];
    if (w === 0) continue;
    const len = expandT(index, u, t);
    for (let a = 0; a < len; a++) {
      const row = t[a] * p;
      for (let b = 0; b <= a; b++) A[row + t[b]] += w;
    }
  }
  for (let i = 0; i < p; i++) for (let j = 0; j < i; j++) A[j * p + i] = A[i * p + j];
  const { inverse, singular } = invertSpd(A, p);

  const m = new Int32Array(H);
  for (let u = 0; u < units; u++) if (rank[u] < cap) m[stratum[u]]++;
  const mStart = new Int32Array(H + 1);
  for (let h = 0; h < H; h++) mStart[h + 1] = mStart[h] + m[h];
  const count = mStart[H];
  const varUnits = new Int32Array(count);
  const varSlot = new Int32Array(count);
  const fill = mStart.slice(0, H);
  let slot = 0;
  for (let u = 0; u < units; u++) {
    if (rank[u] < cap) {
      const i = fill[stratum[u]]++;
      varUnits[i] = u;
      varSlot[i] = slot;
    }
    if (rank[u] < storeCap) slot++;
  }
  // A⁻¹ 1_T as a sum of rows of A⁻¹ (symmetric): |T| p per unit instead of a 2 p² solve; with the
  // complement stored, A⁻¹1 - A⁻¹1_T̄.
  const influence = new Float64Array(exhaustive ? 0 : count * M);
  if (!exhaustive) {
    const all = new Float64Array(p);
    for (let r = 0; r < p; r++) for (let c = 0; c < p; c++) all[c] += inverse[r * p + c];
    for (let i = 0; i < count; i++) {
      const u = varUnits[i];
      const v = influence.subarray(i * M, (i + 1) * M);
      for (let a = tStart[u]; a < tStart[u + 1]; a++) {
        const row = tIdx[a] * p;
        for (let c = 0; c < p; c++) v[c] += inverse[row + c];
      }
      if (tComp[u]) for (let c = 0; c < p; c++) v[c] = all[c] - v[c];
      let total = 0;
      for (let c = 0; c < p; c++) total += v[c];
      v[p] = -total; // the eliminated player moves opposite to the sum of the others
    }
  }
  return {
    index,
    units,
    coalitions: index.coalitionsOf(units),
    weight,
    n,
    fpc,
    exhaustive,
    singular,
    inverse,
    cap,
    storeCap,
    varUnits,
    varSlot,
    influence,
    m,
    mStart,
  };
}

/**
 * The running sums of C regression problems that share one design (columns: the outputs of one game,
 * or the games of many background rows times their outputs), kept column-innermost so every unit's
 * work is a loop over contiguous columns. Units are added in design order (a prefix at any time).
 */
export class StreamStats {
  /**
   * Σ_{u in h} d_u 1_{T_u}: [stratum][reduced player][column], kept as R[h][j][c] + C[h][c] where
   * units stored by their complement add d_u to C[h][c] and subtract it on the complement.
   */
  private readonly R: Float64Array;
  private readonly C: Float64Array;
  /** d_u of the variance units, in order: [slot][column]. */
  private d: Float64Array;
  units = 0;
  private varCount = 0;
  private scratch: Float64Array = new Float64Array(0);
  private rhs: Float64Array = new Float64Array(0);
  private hs = new Int32Array(0);

  constructor(
    readonly index: DesignIndex,
    readonly strata: number,
    readonly columns: number,
    readonly cap: number,
  ) {
    this.R = takeBuffer(strata * index.p * columns);
    this.C = takeBuffer(strata * columns);
    this.d = new Float64Array(0);
  }

  /** Hands the running sums back to the pool: the stats must not be used after. */
  release(): void {
    giveBuffers(this.R, this.C, this.d, this.scratch, this.rhs);
  }

  /** Adds unit `u` (must be the next one) with d_u for every column. */
  add(u: number, du: Float64Array): void {
    const { index, columns: nc, R, C } = this;
    const p = index.p;
    const h = index.stratum[u];
    const tIdx = index.tIdx;
    const t1 = index.tStart[u + 1];
    // Into the rows of R of T's players (or, stored by its complement, C and minus the complement's
    // rows), four rows per pass over d_u.
    const sign = index.tComp[u] === 1 ? -1 : 1;
    if (sign < 0) {
      const cb = h * nc;
      for (let c = 0; c < nc; c++) C[cb + c] += du[c];
    }
    const hp = h * p;
    let a = index.tStart[u];
    for (; a + 4 <= t1; a += 4) {
      const b0 = (hp + tIdx[a]) * nc;
      const b1 = (hp + tIdx[a + 1]) * nc;
      const b2 = (hp + tIdx[a + 2]) * nc;
      const b3 = (hp + tIdx[a + 3]) * nc;
      for (let c = 0; c < nc; c++) {
        const v = sign * du[c];
        R[b0 + c] += v;
        R[b1 + c] += v;
        R[b2 + c] += v;
        R[b3 + c] += v;
      }
    }
    const left = t1 - a;
    if (left === 3) {
      const b0 = (hp + tIdx[a]) * nc;
      const b1 = (hp + tIdx[a + 1]) * nc;
      const b2 = (hp + tIdx[a + 2]) * nc;
      for (let c = 0; c < nc; c++) {
        const v = sign * du[c];
        R[b0 + c] += v;
        R[b1 + c] += v;
        R[b2 + c] += v;
      }
    } else if (left === 2) {
      const b0 = (hp + tIdx[a]) * nc;
      const b1 = (hp + tIdx[a + 1]) * nc;
      for (let c = 0; c < nc; c++) {
        const v = sign * du[c];
        R[b0 + c] += v;
        R[b1 + c] += v;
      }
    } else if (left === 1) {
      const b0 = (hp + tIdx[a]) * nc;
      for (let c = 0; c < nc; c++) R[b0 + c] += sign * du[c];
    }
    if (index.rank[u] < this.cap) {
      const need = (this.varCount + 1) * nc;
      if (need > this.d.length) {
        // At most cap units per stratum are kept: room for all of them at the first (while the cap is small).
        const most = Number.isFinite(this.cap) && this.cap * this.strata <= 256 ? this.cap * this.strata * nc : 0;
        const grown = takeBuffer(Math.max(need, 2 * this.d.length, 16 * nc, most));
        grown.set(this.d);
        giveBuffers(this.d);
        this.d = grown;
      }
      this.d.set(du.subarray(0, nc), this.varCount * nc);
      this.varCount++;
    }
    this.units = u + 1;
  }

  /**
   * φ and Var φ of every column (written to phi[j * columns + c], variance[j * columns + c]) from the
   * first snap.units units, which must all have been added. delta[c] = v(N) - v(∅) of column c.
   */
  solve(snap: DesignSnapshot, delta: ArrayLike<number>, phi: Float64Array, variance: Float64Array): void {
    const { index, columns: nc } = this;
    const { M, p } = index;
    if (snap.index !== index || snap.storeCap !== this.cap) throw new Error('the snapshot is not of this stream design');
    if (this.units < snap.units) throw new Error(`the stream has ${this.units} units, the snapshot ${snap.units}`);
    const H = this.strata;
    if (this.rhs.length < p * nc) {
      giveBuffers(this.rhs);
      this.rhs = takeBuffer(p * nc);
    }
    const rhs = this.rhs;
    const { weight, inverse } = snap;
    const { R, C } = this;
    // rhs = Σ_h w_h (R_h + C_h), over the strata that carry weight, in order; then φ_reduced = A⁻¹ rhs
    // into the first p rows of phi (the last player takes Δ - Σ). Both four columns at a time, each
    // sum in a register in its own order (the same bits as one column at a time).
    let hs = this.hs;
    if (hs.length < H) hs = this.hs = new Int32Array(H);
    let nh = 0;
    for (let h = 0; h < H; h++) if (weight[h] !== 0) hs[nh++] = h;
    const hStride = p * nc;
    const nc4 = nc & ~3;
    for (let j = 0; j < p; j++) {
      const out = j * nc;
      for (let c = 0; c < nc4; c += 4) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let k = 0; k < nh; k++) {
          const h = hs[k];
          const w = weight[h];
          const r = h * hStride + out + c;
          const q = h * nc + c;
          s0 += w * (R[r] + C[q]);
          s1 += w * (R[r + 1] + C[q + 1]);
          s2 += w * (R[r + 2] + C[q + 2]);
          s3 += w * (R[r + 3] + C[q + 3]);
        }
        rhs[out + c] = s0;
        rhs[out + c + 1] = s1;
        rhs[out + c + 2] = s2;
        rhs[out + c + 3] = s3;
      }
      for (let c = nc4; c < nc; c++) {
        let s0 = 0;
        for (let k = 0; k < nh; k++) {
          const h = hs[k];
          s0 += weight[h] * (R[h * hStride + out + c] + C[h * nc + c]);
        }
        rhs[out + c] = s0;
      }
    }
    for (let i = 0; i < p; i++) {
      const row = i * p;
      const out = i * nc;
      for (let c = 0; c < nc4; c += 4) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let j = 0, src = c; j < p; j++, src += nc) {
          const a = inverse[row + j];
          s0 += a * rhs[src];
          s1 += a * rhs[src + 1];
          s2 += a * rhs[src + 2];
          s3 += a * rhs[src + 3];
        }
        phi[out + c] = s0;
        phi[out + c + 1] = s1;
        phi[out + c + 2] = s2;
        phi[out + c + 3] = s3;
      }
      for (let c = nc4; c < nc; c++) {
        let s0 = 0;
        for (let j = 0, src = c; j < p; j++, src += nc) s0 += inverse[row + j] * rhs[src];
        phi[out + c] = s0;
      }
    }
    const last = p * nc;
    for (let c = 0; c < nc; c++) {
      let sum = 0;
      for (let i = 0; i < p; i++) sum += phi[i * nc + c];
      phi[last + c] = delta[c] - sum;
    }
    variance.fill(0, 0, M * nc);
    if (!snap.exhaustive) this.variance(snap, phi, variance);
  }

  private variance(snap: DesignSnapshot, phi: Float64Array, out: Float64Array): void {
    const { index, columns: nc } = this;
    const { M, p } = index;
    const H = this.strata;
    const { tStart, tIdx, tComp } = index;
    const { varUnits, varSlot, influence, weight, mStart } = snap;
    // Units are taken four at a time: counts padded to a multiple of 4 with units of α = 0, which add
    // exact zeros (the same sums, bit for bit).
    let mMax = 0;
    for (let h = 0; h < H; h++) mMax = Math.max(mMax, (snap.m[h] + 3) & ~3);
    const need = nc + mMax * nc + mMax;
    if (this.scratch.length < need) {
      giveBuffers(this.scratch);
      this.scratch = takeBuffer(need);
    }
    // Σ over all reduced players, for units stored by their complement.
    const all = this.scratch.subarray(0, nc).fill(0);
    for (let j = 0; j < p; j++) for (let c = 0; c < nc; c++) all[c] += phi[j * nc + c];
    // The stratum's units' α, [unit][column], and one player's influence of each.
    const alpha = this.scratch.subarray(nc, nc + mMax * nc);
    const g = this.scratch.subarray(nc + mMax * nc, need);
    const d = this.d;
    for (let h = 0; h < H; h++) {
      const m = snap.m[h];
      const fpc = snap.fpc[h];
      if (m === 0 || !(fpc > 0)) continue;
      const mp = (m + 3) & ~3;
      const w = weight[h];
      const i0 = mStart[h];
      for (let i = 0; i < m; i++) {
        const u = varUnits[i0 + i];
        // α = w (d_u - n_u f_u), f_u = Σ_{j in T_u} φ_j.
        const at = i * nc;
        alpha.fill(0, at, at + nc);
        let a = tStart[u];
        const a1 = tStart[u + 1];
        for (; a + 4 <= a1; a += 4) {
          const s0 = tIdx[a] * nc;
          const s1 = tIdx[a + 1] * nc;
          const s2 = tIdx[a + 2] * nc;
          const s3 = tIdx[a + 3] * nc;
          for (let c = 0; c < nc; c++) alpha[at + c] = alpha[at + c] + phi[s0 + c] + phi[s1 + c] + phi[s2 + c] + phi[s3 + c];
        }
        for (; a < a1; a++) {
          const src = tIdx[a] * nc;
          for (let c = 0; c < nc; c++) alpha[at + c] += phi[src + c];
        }
        const n = index.nc[u];
        const dOff = varSlot[i0 + i] * nc;
        if (tComp[u] === 1) for (let c = 0; c < nc; c++) alpha[at + c] = w * (d[dOff + c] - n * (all[c] - alpha[at + c]));
        else for (let c = 0; c < nc; c++) alpha[at + c] = w * (d[dOff + c] - n * alpha[at + c]);
      }
      alpha.fill(0, m * nc, mp * nc);
      // Per player and column, the spread of c_u = α_u (A⁻¹1_T)_j over the stratum's units, summed in
      // registers (one pass, nothing stored per unit). m >= 2: the stratum's spread, scaled from its m
      // sampled units to its n; one unit gives no spread, so count its own square (conservative, since
      // Σ_u c_u = 0 overall).
      const n = snap.n[h];
      const spread = m >= 2;
      const scale = spread ? fpc * (n / (m - 1)) : fpc * n;
      for (let j = 0; j < M; j++) {
        for (let i = 0; i < mp; i++) g[i] = i < m ? influence[(i0 + i) * M + j] : 0;
        const base = j * nc;
        if (m === 2) {
          // Two units (the fewest a stratum of a many-game stream keeps): the padding's zeros left out.
          const g0 = g[0];
          const g1 = g[1];
          for (let c = 0; c < nc; c++) {
            const q0 = alpha[c] * g0;
            const q1 = alpha[c + nc] * g1;
            const s1 = q0 + q1;
            out[base + c] += scale * Math.max(q0 * q0 + q1 * q1 - (s1 * s1) / 2, 0);
          }
          continue;
        }
        if (mp === 4) {
          // Up to four units (the usual count, the minimum per stratum): unrolled whole.
          const g0 = g[0];
          const g1 = g[1];
          const g2 = g[2];
          const g3 = g[3];
          for (let c = 0; c < nc; c++) {
            const q0 = alpha[c] * g0;
            const q1 = alpha[c + nc] * g1;
            const q2 = alpha[c + 2 * nc] * g2;
            const q3 = alpha[c + 3 * nc] * g3;
            const s1 = q0 + q1 + q2 + q3;
            const s2 = q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3;
            out[base + c] += scale * (spread ? Math.max(s2 - (s1 * s1) / m, 0) : s2);
          }
          continue;
        }
        for (let c = 0; c < nc; c++) {
          let s1 = 0;
          let s2 = 0;
          for (let i = 0, a = c; i < mp; i += 4, a += 4 * nc) {
            const q0 = alpha[a] * g[i];
            const q1 = alpha[a + nc] * g[i + 1];
            const q2 = alpha[a + 2 * nc] * g[i + 2];
            const q3 = alpha[a + 3 * nc] * g[i + 3];
            s1 = s1 + q0 + q1 + q2 + q3;
            s2 = s2 + q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3;
          }
          out[base + c] += scale * (spread ? Math.max(s2 - (s1 * s1) / m, 0) : s2);
        }
      }
    }
  }
}

/** d_u of a unit from the values y_k = v(S_k) - v(∅) of its coalitions (pair: both, else the first). */
export function unitValue(index: DesignIndex, u: number, yFirst: number, ySecond: number, delta: number): number {
  const s = index.sign[u];
  // Pair: s_a (ỹ_a - ỹ_b) = s_a (y_a - y_b) + Δ, since exactly one of the two holds the last player.
  if (index.nc[u] === 2) return s * (yFirst - ySecond) + delta;
  // One coalition: s_a ỹ_a, where ỹ_a = y_a - Δ when it holds the last player (s_a = -1).
  return s * yFirst + (s < 0 ? delta : 0);
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
 * The whole regression in one call, for a complete design (all its units, its current strata).
 * @param y per output, v(S_k) - v(∅) for every coalition k of the design (link space)
 * @param delta per output, v(N) - v(∅)
 */
export function solveShapleyRegression(design: CoalitionDesign, y: Float64Array[], delta: number[]): RegressionResult {
  const index = new DesignIndex(design);
  const snap = designSnapshot(index, index.units, design.strata);
  const nOut = y.length;
  const stats = new StreamStats(index, design.strata.length, nOut, Infinity);
  const du = new Float64Array(nOut);
  for (let u = 0; u < index.units; u++) {
    const a = index.first[u];
    const b = index.second[u];
    for (let o = 0; o < nOut; o++) du[o] = unitValue(index, u, y[o][a], b >= 0 ? y[o][b] : 0, delta[o]);
    stats.add(u, du);
  }
  const M = design.M;
  const phi = new Float64Array(nOut * M);
  const variance = new Float64Array(nOut * M);
  stats.solve(snap, delta, phi, variance);
  return {
    fits: Array.from({ length: nOut }, (_, o) => ({
      phi: Float64Array.from({ length: M }, (_, j) => phi[j * nOut + o]),
      stderr: Float64Array.from({ length: M }, (_, j) => Math.sqrt(variance[j * nOut + o])),
    })),
    singular: snap.singular,
  };
}

/** A⁻¹ of a symmetric p x p matrix by Cholesky; the pseudo-inverse when it is not numerically positive definite. */
function invertSpd(A: Float64Array, p: number): { inverse: Float64Array; singular: boolean } {
  const L = cholesky(A, p);
  const inverse = new Float64Array(p * p);
  if (L) {
    const x = new Float64Array(p);
    for (let c = 0; c < p; c++) {
      x.fill(0);
      x[c] = 1;
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
      for (let i = 0; i < p; i++) inverse[i * p + c] = x[i];
    }
    return { inverse, singular: false };
  }
  if (p === 0) return { inverse, singular: false };
  const rows = Array.from({ length: p }, (_, i) => Array.from(A.subarray(i * p, (i + 1) * p)));
  const pinv = pseudoInverse(new Matrix(rows));
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) inverse[i * p + j] = pinv.get(i, j);
  return { inverse, singular: true };
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
