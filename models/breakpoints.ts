/**
 * Exact breakpoints of a piecewise linear network along the straight path from + alpha (to - from).
 *
 * Walk the layers keeping a sorted list of alphas (starting with 0 and 1) and the layer's values at
 * each. Between two consecutive alphas everything before the current layer is affine in alpha, so
 * a pre-activation is affine too: it crosses a kink (0, or a ReLU cap) inside the segment iff its
 * values at the two ends lie on both sides, at the alpha found by linear interpolation. New alphas
 * are added with their interpolated (exact) pre-activations, and the next layer sees a finer list.
 */
import * as tf from '@tensorflow/tfjs';
import { applyLinear, isPiecewiseLinear, type Act, type Plan } from './plan.js';

/**
 * Whether `plan` has path breakpoints: piecewise linear activations everywhere except possibly one
 * smooth activation (sigmoid, tanh, softmax) at the very end. `affineBetween` is false in that case.
 */
export function breakpointSupport(plan: Plan): { affineBetween: boolean } | null {
  const acts = plan.steps.flatMap((s, i) => (s.op === 'act' ? [{ act: s.act, i }] : []));
  for (const [k, { act, i }] of acts.entries()) {
    if (isPiecewiseLinear(act)) continue;
    const last = k === acts.length - 1 && plan.steps.slice(i + 1).every((s) => s.op === 'reshape');
    if (!last || act.kind === 'elu') return null;
    return { affineBetween: false };
  }
  return { affineBetween: true };
}

export async function pathBreakpoints(plan: Plan, from: Float32Array, to: Float32Array): Promise<number[]> {
  return (await pathBreakpointsMany(plan, [{ from, to }]))[0];
}

/**
 * Breakpoints of several paths, walking the layers together: each linear step runs once on every
 * path's rows, so n paths cost as many tf calls as one.
 */
export async function pathBreakpointsMany(plan: Plan, paths: { from: Float32Array; to: Float32Array }[]): Promise<number[][]> {
  const d = paths[0]?.from.length ?? 0;
  const walks: { alphas: number[]; values: Float64Array }[] = paths.map(({ from, to }) => {
    const values = new Float64Array(2 * d);
    values.set(from, 0);
    values.set(to, d);
    return { alphas: [0, 1], values };
  });
  let width = d;
  let shape = plan.inputShape;
  for (const step of plan.steps) {
    if (step.op !== 'act') {
      const rows = walks.reduce((s, w) => s + w.alphas.length, 0);
      const input = new Float32Array(rows * width);
      let at = 0;
      for (const w of walks) {
        input.set(w.values, at);
        at += w.values.length;
      }
      const out = tf.tidy(() => applyLinear(step, tf.tensor(input, [rows, ...shape])));
      let data: Float32Array;
      try {
        data = (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
      const outWidth = step.shape.reduce((a, b) => a * b, 1);
      at = 0;
      for (const w of walks) {
        w.values = Float64Array.from(data.subarray(at, at + w.alphas.length * outWidth));
        at += w.alphas.length * outWidth;
      }
    } else {
      if (!isPiecewiseLinear(step.act)) break; // the smooth output activation: no kinks past here
      const at = kinks(step.act);
      for (const w of walks) {
        [w.alphas, w.values] = refine(w.alphas, w.values, width, at);
        activate(step.act, w.values);
      }
    }
    shape = step.shape;
    width = shape.reduce((a, b) => a * b, 1);
  }
  return walks.map((w) => w.alphas.slice(1, -1));
}

function kinks(act: Act): number[] {
  if (act.kind === 'relu') return act.cap === undefined ? [0] : [0, act.cap];
  return act.kind === 'leaky' ? [0] : [];
}

/** Inserts every alpha where a unit crosses a kink, with values interpolated within its segment. */
function refine(alphas: number[], values: Float64Array, width: number, at: number[]): [number[], Float64Array] {
  if (at.length === 0) return [alphas, values];
  const outAlphas: number[] = [];
  const rows: { seg: number; t: number }[] = [];
  for (let s = 0; s + 1 < alphas.length; s++) {
    const a0 = alphas[s];
    const a1 = alphas[s + 1];
    const ts: number[] = [];
    for (let j = 0; j < width; j++) {
      const z0 = values[s * width + j];
      const z1 = values[(s + 1) * width + j];
      for (const k of at) if ((z0 - k) * (z1 - k) < 0) ts.push((z0 - k) / (z0 - z1));
    }
    ts.sort((p, q) => p - q);
    outAlphas.push(a0);
    rows.push({ seg: s, t: 0 });
    let prev = 0;
    for (const t of ts) {
      // Units crossing at the same alpha (up to rounding) make one breakpoint.
      if ((t - prev) * (a1 - a0) <= 1e-12 || (1 - t) * (a1 - a0) <= 1e-12) continue;
      outAlphas.push(a0 + t * (a1 - a0));
      rows.push({ seg: s, t });
      prev = t;
    }
  }
  outAlphas.push(alphas[alphas.length - 1]);
  rows.push({ seg: alphas.length - 1, t: 0 });
  if (outAlphas.length === alphas.length) return [alphas, values];

  const out = new Float64Array(rows.length * width);
  for (const [r, { seg, t }] of rows.entries()) {
    const base = seg * width;
    for (let j = 0; j < width; j++) {
      const z0 = values[base + j];
      out[r * width + j] = t === 0 ? z0 : z0 + t * (values[base + width + j] - z0);
    }
  }
  return [outAlphas, out];
}

/** Applies a piecewise linear activation in place. */
function activate(act: Act, v: Float64Array): void {
  if (act.kind === 'relu') {
    const cap = act.cap ?? Infinity;
    for (let i = 0; i < v.length; i++) v[i] = Math.min(Math.max(v[i], 0), cap);
  } else if (act.kind === 'leaky') {
    for (let i = 0; i < v.length; i++) if (v[i] < 0) v[i] *= act.alpha;
  }
}
