/**
 * Integrated Gradients along one path, exactly, for networks whose logits z are affine in alpha
 * between consecutive breakpoints (ReLU-family hidden layers; see Model.pathBreakpoints and
 * Model.logitJacobian). On a segment [a, b] the logits' Jacobian G = d z / d x is constant and
 * z(alpha) = z(a) + (alpha - a) v with v = G (x - x'), so for y = act(z)
 *
 *   integral_a^b d y_o / d x_j d alpha = sum_c M_oc G_cj,   M_oc = integral_a^b J_oc(z(alpha)) d alpha.
 *
 * One model evaluation per segment (G and z at its midpoint) is therefore enough, whatever the
 * output activation: M is a one-dimensional integral of the activation's Jacobian, computed here
 * without model calls by adaptive Gauss-Legendre to ~1e-12. Numerical quadrature of the gradient
 * itself would need several model evaluations per segment for the same accuracy.
 *
 * The model's breakpoints are checked rather than trusted: z is continuous, so the logits
 * extrapolated to a breakpoint from the segments on either side must agree. A missed breakpoint
 * breaks that (`mismatch`), and the caller then integrates the path by quadrature instead.
 */
import { activationJacobianRows, elementwise } from './outputActivation.js';
import { gaussLegendre } from './quadrature.js';
import type { OutputActivation } from './types.js';

const GL_LOW = gaussLegendre(5);
const GL_HIGH = gaussLegendre(10);
/** Accepted |GL10 - GL5| per unit of t: J is bounded by 1, so this is ~1e-12 relative. */
const HEAD_TOLERANCE = 1e-12;
const MAX_DEPTH = 40;
/**
 * Relative rounding error allowed for each float32 term M G (a few units in the last place of the
 * gradient pass): added to `error` so that it also covers what float32 gradients cannot resolve.
 */
const FLOAT32_NOISE = 2 ** -20;

/** Accumulates one path's segments, in order along the path. */
export class SegmentPath {
  /** sum over segments of M G: the integral of d y_o / d x_j, K x d (not yet times x_j - x'_j). */
  readonly integral: Float64Array;
  /** Error bound of `integral`: the activation integrals' quadrature error plus float32 rounding, K x d. */
  readonly error: Float64Array;
  /** Largest disagreement of consecutive segments' logits at their shared breakpoint. */
  mismatch = 0;
  /** Largest |z| seen (the scale `mismatch` is judged against). */
  zScale = 0;
  segments = 0;
  private readonly K: number;
  private readonly M: Float64Array;
  private readonly E: Float64Array;
  private readonly v: Float64Array;
  private readonly zStart: Float64Array;
  private readonly prevEnd: Float64Array;
  private readonly dz: Float64Array;
  private readonly work: HeadWork;

  constructor(
    private readonly act: OutputActivation,
    private readonly k: number,
    private readonly d: number,
    private readonly outputs: readonly number[],
    /** x - x'. */
    private readonly delta: Float64Array,
  ) {
    const K = outputs.length;
    this.K = K;
    this.integral = new Float64Array(K * d);
    this.error = new Float64Array(K * d);
    this.M = new Float64Array(K * k);
    this.E = new Float64Array(K * k);
    this.v = new Float64Array(k);
    this.zStart = new Float64Array(k);
    this.prevEnd = new Float64Array(k);
    this.dz = new Float64Array(k);
    this.work = headWork(K, k);
  }

  /**
   * Adds the segment [a, b], given the logits z (k values at zAt) and their Jacobian G (k x d at
   * gAt) at a point inside it.
   */
  add(a: number, b: number, at: number, z: ArrayLike<number>, zAt: number, G: ArrayLike<number>, gAt: number): void {
    const { k, d, K, v, zStart, dz, outputs } = this;
    const len = b - a;
    for (let c = 0; c < k; c++) {
      let s = 0;
      const row = gAt + c * d;
      for (let j = 0; j < d; j++) s += G[row + j] * this.delta[j];
      v[c] = s;
    }
    let jump = 0;
    for (let c = 0; c < k; c++) {
      const zc = z[zAt + c];
      zStart[c] = zc + (a - at) * v[c];
      dz[c] = len * v[c];
      if (this.segments > 0) jump = Math.max(jump, Math.abs(zStart[c] - this.prevEnd[c]));
      this.prevEnd[c] = zc + (b - at) * v[c];
      this.zScale = Math.max(this.zScale, Math.abs(zc), Math.abs(zStart[c]), Math.abs(this.prevEnd[c]));
    }
    this.mismatch = Math.max(this.mismatch, jump);
    this.segments++;
    if (!(len > 0)) return;

    const { M, E } = this;
    if (this.act === 'linear') {
      for (let r = 0; r < K; r++) {
        const row = gAt + outputs[r] * d;
        for (let j = 0; j < d; j++) {
          const t = len * G[row + j];
          this.integral[r * d + j] += t;
          this.error[r * d + j] += FLOAT32_NOISE * Math.abs(t);
        }
      }
      return;
    }
    headIntegral(this.act, zStart, dz, k, outputs, M, E, this.work);
    const diagonal = elementwise(this.act);
    for (let r = 0; r < K; r++) {
      const out = r * d;
      for (let c = diagonal ? outputs[r] : 0; c < (diagonal ? outputs[r] + 1 : k); c++) {
        const m = len * M[r * k + c];
        const e = len * E[r * k + c];
        const row = gAt + c * d;
        for (let j = 0; j < d; j++) {
          const g = G[row + j];
          this.integral[out + j] += m * g;
          this.error[out + j] += (e + FLOAT32_NOISE * Math.abs(m)) * Math.abs(g);
        }
      }
    }
  }
}

interface HeadWork {
  low: Float64Array;
  high: Float64Array;
  J: Float64Array;
  z: Float64Array;
  p: Float64Array;
}

function headWork(K: number, k: number): HeadWork {
  return { low: new Float64Array(K * k), high: new Float64Array(K * k), J: new Float64Array(K * k), z: new Float64Array(k), p: new Float64Array(k) };
}

/**
 * M = integral_0^1 J(z0 + t dz) dt (rows: outputs, k columns) and E, a bound on its error: on each
 * piece of [0, 1] Gauss-Legendre with 10 nodes is accepted when it agrees with 5 nodes to
 * HEAD_TOLERANCE per unit length (the difference is kept as the bound), else the piece is halved.
 */
export function headIntegral(
  act: OutputActivation,
  z0: Float64Array,
  dz: Float64Array,
  k: number,
  outputs: readonly number[],
  M: Float64Array,
  E: Float64Array,
  work: HeadWork = headWork(outputs.length, k),
): void {
  const n = outputs.length * k;
  M.fill(0, 0, n);
  E.fill(0, 0, n);
  const stack: number[] = [0, 1, 0];
  while (stack.length > 0) {
    const depth = stack.pop() as number;
    const t1 = stack.pop() as number;
    const t0 = stack.pop() as number;
    rule(act, z0, dz, k, outputs, t0, t1, GL_LOW, work.low, work);
    rule(act, z0, dz, k, outputs, t0, t1, GL_HIGH, work.high, work);
    let diff = 0;
    for (let i = 0; i < n; i++) diff = Math.max(diff, Math.abs(work.high[i] - work.low[i]));
    if (diff <= HEAD_TOLERANCE * (t1 - t0) || depth >= MAX_DEPTH) {
      for (let i = 0; i < n; i++) {
        M[i] += work.high[i];
        E[i] += Math.abs(work.high[i] - work.low[i]);
      }
    } else {
      const mid = (t0 + t1) / 2;
      stack.push(t0, mid, depth + 1, mid, t1, depth + 1);
    }
  }
}

function rule(
  act: OutputActivation,
  z0: Float64Array,
  dz: Float64Array,
  k: number,
  outputs: readonly number[],
  t0: number,
  t1: number,
  q: { alphas: number[]; weights: number[] },
  out: Float64Array,
  work: HeadWork,
): void {
  const n = outputs.length * k;
  out.fill(0, 0, n);
  const len = t1 - t0;
  for (let i = 0; i < q.alphas.length; i++) {
    const t = t0 + len * q.alphas[i];
    for (let c = 0; c < k; c++) work.z[c] = z0[c] + t * dz[c];
    activationJacobianRows(act, work.z, 0, k, outputs, work.J, work.p);
    const w = len * q.weights[i];
    for (let m = 0; m < n; m++) out[m] += w * work.J[m];
  }
}
