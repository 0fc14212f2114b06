/**
 * The model calls behind Integrated Gradients: weighted sums of output gradients at many path
 * points (quadrature), and the one-point-per-segment pass of exact segment integration. Every
 * (instance, baseline) path's points go to the model together, in chunks of `maxRowsPerCall` rows, and
 * all explained outputs come from one pass when the model offers logitJacobian.
 */
import { activationJacobianRows } from './outputActivation.js';
import type { Quadrature } from './quadrature.js';
import { SegmentPath } from './segmentIntegrals.js';
import type { Model, Rows } from './types.js';

/** What a pass needs to know about the request. */
export interface PassContext {
  model: Model;
  instances: Rows;
  baselines: Rows;
  /** Output indices explained, in order. */
  outputs: number[];
  maxRowsPerCall: number;
  /** Gradients of every explained output from one logitJacobian call per chunk. */
  useJacobian: boolean;
  signal?: AbortSignal;
  deadline?: number;
  /** Rows sent to the model's gradient methods, per instance. */
  gradientRows: Float64Array;
  deadlineReached: boolean;
}

export interface PathRef {
  instance: number;
  baseline: number;
}

export function pathPoint(ctx: PassContext, path: PathRef, alpha: number, out: Float32Array, at: number): void {
  const d = ctx.instances.d;
  const x = ctx.instances.data;
  const b = ctx.baselines.data;
  const xi = path.instance * d;
  const bi = path.baseline * d;
  for (let j = 0; j < d; j++) out[at + j] = b[bi + j] + alpha * (x[xi + j] - b[bi + j]);
}

/** x - x' of a path, in float64. */
export function pathDelta(ctx: PassContext, path: PathRef): Float64Array {
  const d = ctx.instances.d;
  const delta = new Float64Array(d);
  for (let j = 0; j < d; j++) delta[j] = ctx.instances.data[path.instance * d + j] - ctx.baselines.data[path.baseline * d + j];
  return delta;
}

function deadlinePassed(ctx: PassContext): boolean {
  return ctx.deadline !== undefined && Date.now() >= ctx.deadline;
}

/**
 * sum_k w_k grad y_o(x' + a_k (x - x')) for every plan and explained output o (K x d per plan).
 * With `stoppable`, the deadline is checked before every chunk: the plans not completed by then
 * get null and ctx.deadlineReached is set.
 */
export async function quadraturePass(
  ctx: PassContext,
  plans: { path: PathRef; rule: Quadrature }[],
  stoppable: boolean,
): Promise<(Float64Array | null)[]> {
  const d = ctx.instances.d;
  const K = ctx.outputs.length;
  const k = ctx.model.nOutputs;
  const total = plans.reduce((s, p) => s + p.rule.alphas.length, 0);
  const integrals = plans.map(() => new Float64Array(K * d));
  const done = new Array<boolean>(plans.length).fill(false);
  const J = new Float64Array(K * k);
  const scratch = new Float64Array(k);
  let plan = 0;
  let node = 0;
  for (let start = 0; start < total; start += ctx.maxRowsPerCall) {
    ctx.signal?.throwIfAborted();
    if (stoppable && deadlinePassed(ctx)) {
      ctx.deadlineReached = true;
      break;
    }
    const rows = Math.min(ctx.maxRowsPerCall, total - start);
    const data = new Float32Array(rows * d);
    const owner = new Int32Array(rows);
    const weight = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      while (node >= plans[plan].rule.alphas.length) {
        plan++;
        node = 0;
      }
      const { path, rule } = plans[plan];
      pathPoint(ctx, path, rule.alphas[node], data, r * d);
      owner[r] = plan;
      weight[r] = rule.weights[node];
      node++;
      ctx.gradientRows[path.instance] += ctx.useJacobian ? 1 : K;
    }
    const chunk = { data, n: rows, d };
    if (ctx.useJacobian) {
      const { activation, logits, jacobian } = await ctx.model.logitJacobian!(chunk);
      checkLength(logits.length, rows * k, 'logitJacobian logits');
      checkLength(jacobian.length, rows * k * d, 'logitJacobian jacobian');
      for (let r = 0; r < rows; r++) {
        activationJacobianRows(activation, logits, r * k, k, ctx.outputs, J, scratch);
        const acc = integrals[owner[r]];
        const w = weight[r];
        for (let q = 0; q < K; q++) {
          for (let c = 0; c < k; c++) {
            const f = w * J[q * k + c];
            if (f === 0) continue;
            const g = (r * k + c) * d;
            for (let j = 0; j < d; j++) acc[q * d + j] += f * jacobian[g + j];
          }
        }
      }
    } else {
      for (let q = 0; q < K; q++) {
        const grads = await ctx.model.inputGradients!(chunk, ctx.outputs[q]);
        checkLength(grads.length, rows * d, 'inputGradients');
        for (let r = 0; r < rows; r++) {
          const acc = integrals[owner[r]];
          const w = weight[r];
          for (let j = 0; j < d; j++) acc[q * d + j] += w * grads[r * d + j];
        }
      }
    }
    // Plans whose last node was in this chunk are complete.
    const last = node >= plans[plan].rule.alphas.length ? plan : plan - 1;
    for (let p = 0; p <= last; p++) done[p] = true;
  }
  return integrals.map((v, p) => (done[p] ? v : null));
}

/**
 * Exact segment integration (see segmentIntegrals.ts) of each path: one logitJacobian row per
 * segment, at its midpoint. `edges` are each path's segment ends, 0 and 1 included.
 */
export async function segmentExactPass(ctx: PassContext, paths: { path: PathRef; edges: number[] }[]): Promise<SegmentPath[]> {
  const d = ctx.instances.d;
  const k = ctx.model.nOutputs;
  const total = paths.reduce((s, p) => s + p.edges.length - 1, 0);
  const acc: SegmentPath[] = [];
  let p = 0;
  let seg = 0;
  for (let start = 0; start < total; start += ctx.maxRowsPerCall) {
    ctx.signal?.throwIfAborted();
    const rows = Math.min(ctx.maxRowsPerCall, total - start);
    const data = new Float32Array(rows * d);
    const where: [number, number][] = [];
    let q = p;
    let s = seg;
    for (let r = 0; r < rows; r++) {
      while (s >= paths[q].edges.length - 1) {
        q++;
        s = 0;
      }
      const { path, edges } = paths[q];
      pathPoint(ctx, path, (edges[s] + edges[s + 1]) / 2, data, r * d);
      where.push([q, s]);
      ctx.gradientRows[path.instance] += 1;
      s++;
    }
    const { activation, logits, jacobian } = await ctx.model.logitJacobian!({ data, n: rows, d });
    checkLength(logits.length, rows * k, 'logitJacobian logits');
    checkLength(jacobian.length, rows * k * d, 'logitJacobian jacobian');
    for (let r = 0; r < rows; r++) {
      const [pi, si] = where[r];
      const { path, edges } = paths[pi];
      if (!acc[pi]) acc[pi] = new SegmentPath(activation, k, d, ctx.outputs, pathDelta(ctx, path));
      const a = edges[si];
      const b = edges[si + 1];
      acc[pi].add(a, b, (a + b) / 2, logits, r * k, jacobian, r * k * d);
    }
    p = q;
    seg = s;
  }
  return acc;
}

function checkLength(got: number, want: number, what: string): void {
  if (got !== want) throw new Error(`model.${what} returned ${got} values, expected ${want}`);
}
