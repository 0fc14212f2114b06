/**
 * Occlusion (Zeiler & Fergus 2014; Captum's Occlusion): slide a window over the image, replace it by
 * a baseline, and give every occluded value the drop f(x) - f(occluded); a value covered by several
 * windows gets the mean drop of those windows. Needs predictions only. Every occluded image of every
 * instance goes to predict in as few calls as memory allows.
 * Not an additive method: its diagnostics carry the completeness gap sum(phi) - (f(x) - f(baseline
 * image)) as a reader's check (0 for additive models with 1x1 windows), and approximationError is 0
 * since nothing is estimated.
 */
import { ExplainerInputError, type CommonOptions, type Explanation, type InstanceExplanation, type Model, type Rows } from '../types.js';
import { checkInstances, checkNumber, imageShape, outputExplanation, resolveOutputs, row } from './common.js';
import { predictChunked, rowsPerCall } from '../rows.js';

export interface OcclusionOptions extends CommonOptions {
  /** Window [height, width] in pixels. Default: an eighth of the smaller side (at least 1), square. */
  window?: [number, number];
  /** Steps between windows. Default: half the window (at least 1). */
  strides?: [number, number];
  /** What occluded values become: a number (default 0) or one baseline image (1 row). */
  baseline?: number | Rows;
  /** Occlude one channel at a time instead of all channels of a pixel together. Default false. */
  perChannel?: boolean;
  maxRowsPerCall?: number;
}

/** Most occluded images per instance (windows x channel slices). */
export const OCCLUSION_MAX_WINDOWS = 65536;

export async function occlusion(model: Model, instances: Rows, options: OcclusionOptions): Promise<Explanation> {
  const d = model.nFeatures;
  const { h, w, c } = imageShape(model, options.space, 'occlusion');
  checkInstances(instances, d);
  const outputs = resolveOutputs(model, options.outputs);
  const side = Math.max(1, Math.floor(Math.min(h, w) / 8));
  const [wh, ww] = options.window ?? [side, side];
  if (!Number.isInteger(wh) || !Number.isInteger(ww) || wh < 1 || ww < 1 || wh > h || ww > w)
    throw new ExplainerInputError('BAD_PARAMETER', `window must be [height, width] with 1 <= height <= ${h} and 1 <= width <= ${w}, got [${options.window}]`);
  const [sh, sw] = options.strides ?? [Math.max(1, Math.floor(wh / 2)), Math.max(1, Math.floor(ww / 2))];
  if (!Number.isInteger(sh) || !Number.isInteger(sw) || sh < 1 || sw < 1)
    throw new ExplainerInputError('BAD_PARAMETER', `strides must be two positive integers, got [${options.strides}]`);
  let base: Float32Array;
  if (options.baseline === undefined || typeof options.baseline === 'number') {
    base = new Float32Array(d).fill(checkNumber('baseline', options.baseline ?? 0, -Infinity));
  } else {
    checkInstances(options.baseline, d, 'baseline');
    if (options.baseline.n !== 1) throw new ExplainerInputError('BAD_BASELINE', 'baseline must be a number or one image');
    base = options.baseline.data;
  }
  const starts = (size: number, win: number, stride: number) => {
    const s: number[] = [];
    for (let p = 0; p + win <= size; p += stride) s.push(p);
    if (s[s.length - 1] !== size - win) s.push(size - win); // cover the last rows/columns too
    return s;
  };
  const rows0 = starts(h, wh, sh);
  const cols0 = starts(w, ww, sw);
  const slices = options.perChannel ? c : 1;
  const perInstance = rows0.length * cols0.length * slices;
  if (perInstance > OCCLUSION_MAX_WINDOWS)
    throw new ExplainerInputError('BAD_PARAMETER', `${perInstance} occluded images per instance is more than ${OCCLUSION_MAX_WINDOWS}: use a larger window or stride`);

  const windows: { r: number; q: number; ch: number }[] = [];
  for (const r of rows0) for (const q of cols0) for (let ch = 0; ch < slices; ch++) windows.push({ r, q, ch });
  const inWindow = (win: { r: number; q: number; ch: number }, fn: (j: number) => void) => {
    for (let y = win.r; y < win.r + wh; y++)
      for (let x = win.q; x < win.q + ww; x++) {
        if (options.perChannel) fn((y * w + x) * c + win.ch);
        else for (let ch = 0; ch < c; ch++) fn((y * w + x) * c + ch);
      }
  };
  const k = model.nOutputs;
  const chunk = rowsPerCall(d, options.maxRowsPerCall);
  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < instances.n; i++) {
    const t0 = performance.now();
    const x = row(instances, i);
    // The instance, the whole baseline image, then every occluded image.
    const ys = new Float32Array((2 + windows.length) * k);
    const firstTwo = new Float32Array(2 * d);
    firstTwo.set(x);
    firstTwo.set(base, d);
    ys.set(await model.predict({ data: firstTwo, n: 2, d }));
    for (let s = 0; s < windows.length; s += chunk) {
      options.signal?.throwIfAborted();
      const e = Math.min(windows.length, s + chunk);
      const batch = new Float32Array((e - s) * d);
      for (let t = s; t < e; t++) {
        const off = (t - s) * d;
        batch.set(x, off);
        inWindow(windows[t], (j) => (batch[off + j] = base[j]));
      }
      ys.set(await predictChunked(model, { data: batch, n: e - s, d }, chunk), (2 + s) * k);
    }
    const counts = new Float64Array(d);
    for (const win of windows) inWindow(win, (j) => counts[j]++);
    const gaps: number[] = [];
    const outs = outputs.map((o) => {
      const sum = new Float64Array(d);
      windows.forEach((win, t) => {
        const drop = ys[o] - ys[(2 + t) * k + o];
        inWindow(win, (j) => (sum[j] += drop));
      });
      let total = 0;
      for (let j = 0; j < d; j++) {
        sum[j] /= counts[j];
        total += sum[j];
      }
      gaps.push(total - (ys[o] - ys[k + o]));
      return outputExplanation(options.space, o, x, sum, { baseline: ys[k + o], instance: ys[o], error: 0 });
    });
    explanations.push({
      outputs: outs,
      converged: true,
      stopReason: 'exact',
      modelEvaluations: windows.length + 2,
      computeMs: performance.now() - t0,
      diagnostics: { windows: windows.length, completenessGap: gaps },
    });
  }
  return {
    method: 'occlusion',
    explanations,
    inputShape: options.space.inputShape,
    diagnostics: { window: [wh, ww], strides: [sh, sw], perChannel: options.perChannel ?? false },
  };
}
