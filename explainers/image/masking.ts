/**
 * What a "missing" superpixel becomes, as shap's Image masker offers: 'blur' (a wide blur of the
 * image), 'mean' (the image's per-channel mean), 'inpaint' (filled from the visible pixels around it)
 * or a constant. Blur and mean give one fixed replacement image; 'inpaint' depends on which segments
 * are visible, and is done by normalised convolution (blur(x * visible) / blur(visible)), a cheap
 * inpainting that needs no iterative solver: 2 box-blur passes of 3 per masked image.
 */
import { ExplainerInputError } from '../types.js';
import type { ImageShape } from './common.js';

export type Masking = 'blur' | 'mean' | 'inpaint' | number;

export function checkMasking(m: unknown): Masking {
  if (m === undefined) return 'blur';
  if (m === 'blur' || m === 'mean' || m === 'inpaint') return m;
  if (typeof m === 'number' && Number.isFinite(m)) return m;
  throw new ExplainerInputError('BAD_PARAMETER', `masking must be 'blur', 'mean', 'inpaint' or a number, got ${String(m)}`);
}

/** Box blur of radius r along rows and columns, three times (close to a Gaussian of sd ~ r). */
export function blur(img: Float32Array, shape: ImageShape, r: number): Float32Array {
  const { h, w, c } = shape;
  let a = Float32Array.from(img);
  let b = new Float32Array(a.length);
  const pass = (src: Float32Array, dst: Float32Array, horizontal: boolean) => {
    const len = horizontal ? w : h;
    const lines = horizontal ? h : w;
    for (let l = 0; l < lines; l++)
      for (let ch = 0; ch < c; ch++) {
        const at = (i: number) => (horizontal ? (l * w + i) * c + ch : (i * w + l) * c + ch);
        // Running sum over the window clamped to the image: edges average what they have.
        let sum = 0;
        let count = 0;
        for (let i = 0; i <= Math.min(len - 1, r); i++) {
          sum += src[at(i)];
          count++;
        }
        for (let i = 0; i < len; i++) {
          dst[at(i)] = sum / count;
          const add = i + r + 1;
          const drop = i - r;
          if (add < len) {
            sum += src[at(add)];
            count++;
          }
          if (drop >= 0) {
            sum -= src[at(drop)];
            count--;
          }
        }
      }
  };
  for (let k = 0; k < 3; k++) {
    pass(a, b, true);
    pass(b, a, false);
  }
  b = a;
  return b;
}

/** Blur radius used for 'blur' and 'inpaint': an eighth of the smaller side. */
export function maskRadius(shape: ImageShape): number {
  return Math.max(1, Math.round(Math.min(shape.h, shape.w) / 8));
}

/** The replacement image for blur / mean / constant masking (null for 'inpaint'). */
export function fixedFill(x: Float32Array, shape: ImageShape, masking: Masking): Float32Array | null {
  const { h, w, c } = shape;
  if (masking === 'inpaint') return null;
  if (typeof masking === 'number') return new Float32Array(x.length).fill(masking);
  if (masking === 'blur') return blur(x, shape, maskRadius(shape));
  const mean = new Float64Array(c);
  for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) mean[ch] += x[p * c + ch] / (h * w);
  const out = new Float32Array(x.length);
  for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) out[p * c + ch] = mean[ch];
  return out;
}

/**
 * Writes into `out` the image x with every pixel of an absent segment replaced. `present[s]` says
 * whether segment s is visible; `labels` maps pixels to segments.
 */
export function maskImage(
  x: Float32Array,
  shape: ImageShape,
  labels: Int32Array,
  present: ArrayLike<number>,
  fill: Float32Array | null,
  out: Float32Array,
): void {
  const { h, w, c } = shape;
  if (fill) {
    for (let p = 0; p < h * w; p++) {
      const on = present[labels[p]] >= 0.5;
      for (let ch = 0; ch < c; ch++) out[p * c + ch] = on ? x[p * c + ch] : fill[p * c + ch];
    }
    return;
  }
  // Normalised convolution: the visible image and the visibility mask blurred alike.
  const visible = new Float32Array(h * w * c);
  const weight = new Float32Array(h * w);
  let mean = 0;
  for (let p = 0; p < h * w; p++) {
    const on = present[labels[p]] >= 0.5 ? 1 : 0;
    weight[p] = on;
    for (let ch = 0; ch < c; ch++) {
      visible[p * c + ch] = on * x[p * c + ch];
      mean += x[p * c + ch] / (h * w * c);
    }
  }
  const r = maskRadius(shape);
  const num = blur(visible, shape, r);
  const den = blur(weight, { h, w, c: 1 }, r);
  for (let p = 0; p < h * w; p++) {
    const on = weight[p] === 1;
    for (let ch = 0; ch < c; ch++) out[p * c + ch] = on ? x[p * c + ch] : den[p] > 1e-6 ? num[p * c + ch] / den[p] : mean;
  }
}
