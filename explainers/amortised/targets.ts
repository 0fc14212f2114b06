/**
 * Training targets of the FastSHAP objective, kept as sufficient statistics. For one row x and a
 * sample of coalitions S with weights w_S (summing to W), the objective
 *   L_x(φ) = (1/W) Σ_S w_S (y_S - 1_S·φ)^2,   y_S = v_x(S) - v_x(∅),
 * is the quadratic φᵀAφ - 2 bᵀφ + c with A = (1/W) Σ w_S 1_S 1_Sᵀ, b = (1/W) Σ w_S y_S 1_S and
 * c = (1/W) Σ w_S y_S². Keeping (A, b, c) per row instead of the coalitions themselves lets training
 * use every coalition evaluated so far for the row at O(M²) cost per row and step, whatever their
 * number: fresh coalitions add information, none is thrown away.
 *
 * When a row's coalition budget covers all 2^M - 2 coalitions they are enumerated once with their
 * exact Shapley-kernel weights; the objective's minimiser under the efficiency constraint is then the
 * exact Shapley value.
 */
import { binomial, kernelMass } from '../coalitions.js';

export class CoalitionStats {
  /** Per row: A (M x M), then b (outputs x M), then c (outputs), each divided by `weight` when read. */
  readonly sums: Float64Array;
  readonly stride: number;
  /** Total coalition weight added to each row. */
  readonly weight: Float64Array;
  /** Per row and output, the minimum of the row's objective (see `computeMinimum`); subtracted from c when read. */
  readonly minimum: Float64Array;

  constructor(
    readonly rows: number,
    readonly M: number,
    readonly K: number,
    sums?: Float64Array,
  ) {
    this.stride = M * M + K * M + K;
    this.sums = sums ?? new Float64Array(rows * this.stride);
    this.minimum = new Float64Array(rows * K);
    this.weight = new Float64Array(rows);
    if (this.sums.length !== rows * this.stride) throw new Error(`statistics hold ${this.sums.length} values, expected ${rows * this.stride}`);
  }

  /**
   * Adds coalitions: job j is row rowOf[j] playing masks[j M .. (j + 1) M) with weight weights[j]
   * (default 1) and targets y[j K .. (j + 1) K).
   */
  add(rowOf: ArrayLike<number>, masks: Uint8Array, y: ArrayLike<number>, weights?: ArrayLike<number>): void {
    const { M, K, stride } = this;
    const on = new Int32Array(M);
    for (let j = 0; j < rowOf.length; j++) {
      const w = weights ? weights[j] : 1;
      const base = rowOf[j] * stride;
      this.weight[rowOf[j]] += w;
      let n = 0;
      for (let p = 0; p < M; p++) if (masks[j * M + p]) on[n++] = p;
      for (let a = 0; a < n; a++) {
        const ra = base + on[a] * M;
        for (let b = 0; b < n; b++) this.sums[ra + on[b]] += w;
      }
      for (let k = 0; k < K; k++) {
        const v = y[j * K + k];
        const bk = base + M * M + k * M;
        for (let a = 0; a < n; a++) this.sums[bk + on[a]] += w * v;
        this.sums[base + M * M + K * M + k] += w * v * v;
      }
    }
  }

  /**
   * Computes, to be subtracted from every row's c when read, the minimum of its own objective under the efficiency constraint
   * (the players in `varying` summing to `totals`, the others 0), so the loss reads as the excess
   * over what the row's own coalitions allow: (φ - φ̂)ᵀA(φ - φ̂) >= 0, where φ̂ is the row's Kernel
   * SHAP estimate from those coalitions. Gradients are unchanged; the schedule and early stopping
   * then see the part of the loss the network can reduce instead of a large constant.
   * `totals` is rows x outputs, `varying` rows x M (0/1).
   */
  computeMinimum(totals: ArrayLike<number>, varying: ArrayLike<number>): void {
    const { M, K, stride, rows } = this;
    const A = new Float64Array(M * M);
    const b = new Float64Array(M);
    for (let r = 0; r < rows; r++) {
      if (this.weight[r] === 0) continue;
      const inv = 1 / this.weight[r];
      const base = r * stride;
      const on: number[] = [];
      for (let p = 0; p < M; p++) if (varying[r * M + p]) on.push(p);
      for (let k = 0; k < K; k++) {
        const n = on.length;
        for (let i = 0; i < n; i++) {
          b[i] = this.sums[base + M * M + k * M + on[i]] * inv;
          for (let j = 0; j < n; j++) A[i * n + j] = this.sums[base + on[i] * M + on[j]] * inv;
        }
        const phi = constrainedMinimiser(A, b, n, totals[r * K + k]);
        // min = φᵀAφ - 2bᵀφ + c at φ̂.
        let value = 0;
        for (let i = 0; i < n; i++) {
          let a = 0;
          for (let j = 0; j < n; j++) a += A[i * n + j] * phi[j];
          value += phi[i] * a - 2 * b[i] * phi[i];
        }
        this.minimum[r * K + k] = value + this.sums[base + M * M + K * M + k] * inv;
      }
    }
  }

  /** Row r's (A, b, c) divided by the total weight, as float32 into the given arrays at slot i. */
  read(r: number, A: Float32Array, b: Float32Array, c: Float32Array, i: number): void {
    const { M, K, stride } = this;
    const inv = this.weight[r] > 0 ? 1 / this.weight[r] : 0;
    const base = r * stride;
    for (let t = 0; t < M * M; t++) A[i * M * M + t] = this.sums[base + t] * inv;
    for (let t = 0; t < K * M; t++) b[i * K * M + t] = this.sums[base + M * M + t] * inv;
    for (let k = 0; k < K; k++) c[i * K + k] = this.sums[base + M * M + K * M + k] * inv - this.minimum[r * K + k];
  }
}

/** Every coalition but ∅ and N, as masks laid end to end, with Shapley-kernel weights summing to 1. */
export function allCoalitions(M: number): { masks: Uint8Array; weights: Float64Array } {
  if (M < 2 || M > 24) throw new Error(`enumerating coalitions needs 2..24 players, got ${M}`);
  const count = 2 ** M - 2;
  const masks = new Uint8Array(count * M);
  const weights = new Float64Array(count);
  let total = 0;
  for (let s = 1; s < M; s++) total += kernelMass(M, s);
  for (let S = 1, j = 0; S < 2 ** M - 1; S++, j++) {
    let size = 0;
    for (let p = 0; p < M; p++) {
      const bit = (S >>> p) & 1;
      masks[j * M + p] = bit;
      size += bit;
    }
    weights[j] = kernelMass(M, size) / binomial(M, size) / total;
  }
  return { masks, weights };
}

/**
 * argmin φᵀAφ - 2bᵀφ subject to Σφ = total, for the n x n symmetric positive semi-definite A (first
 * n x n entries of the flat array). The KKT system [2A 1; 1ᵀ 0][φ; λ] = [2b; total] is solved by
 * Gaussian elimination with partial pivoting, with a tiny ridge on A for designs that leave it singular.
 */
export function constrainedMinimiser(A: ArrayLike<number>, b: ArrayLike<number>, n: number, total: number): Float64Array {
  if (n === 0) return new Float64Array(0);
  const m = n + 1;
  const K = new Float64Array(m * (m + 1));
  let trace = 0;
  for (let i = 0; i < n; i++) trace += A[i * n + i];
  const ridge = 1e-10 * (trace / n || 1);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) K[i * (m + 1) + j] = 2 * A[i * n + j] + (i === j ? 2 * ridge : 0);
    K[i * (m + 1) + n] = 1;
    K[n * (m + 1) + i] = 1;
    K[i * (m + 1) + m] = 2 * b[i];
  }
  K[n * (m + 1) + m] = total;
  for (let col = 0; col < m; col++) {
    let piv = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(K[r * (m + 1) + col]) > Math.abs(K[piv * (m + 1) + col])) piv = r;
    if (piv !== col) for (let c = 0; c <= m; c++) [K[col * (m + 1) + c], K[piv * (m + 1) + c]] = [K[piv * (m + 1) + c], K[col * (m + 1) + c]];
    const d = K[col * (m + 1) + col];
    if (d === 0) continue;
    for (let r = 0; r < m; r++) {
      if (r === col) continue;
      const f = K[r * (m + 1) + col] / d;
      if (f !== 0) for (let c = col; c <= m; c++) K[r * (m + 1) + c] -= f * K[col * (m + 1) + c];
    }
  }
  const phi = new Float64Array(n);
  for (let i = 0; i < n; i++) phi[i] = K[i * (m + 1) + i] !== 0 ? K[i * (m + 1) + m] / K[i * (m + 1) + i] : 0;
  return phi;
}
