/**
 * SLIC superpixels (Achanta et al. 2012), ours: no maintained npm implementation exists. k-means in
 * (colour, position) space restricted to a 2S x 2S window around each centre, S = sqrt(h w / K),
 * with distance D^2 = d_colour^2 + (d_xy / S)^2 m^2; colours are scaled by the image's value range so
 * `compactness` m does not depend on the pixel units (m = 0.1 here matches skimage's 10 on Lab).
 * Afterwards every segment is made 4-connected and fragments smaller than S^2 / 4 join a neighbour.
 * Labels are numbered 0..K'-1 in raster order of their first pixel.
 */
import { ExplainerInputError } from '../types.js';
import type { ImageShape } from './common.js';

export interface SlicOptions {
  /** Approximate number of segments. Default 50. */
  segments?: number;
  /** Spatial weight relative to colour (0.01 ragged .. 1 square). Default 0.1. */
  compactness?: number;
  iterations?: number;
}

export interface Segmentation {
  labels: Int32Array;
  count: number;
}

export function slic(image: ArrayLike<number>, shape: ImageShape, options: SlicOptions = {}): Segmentation {
  const { h, w, c } = shape;
  const K = options.segments ?? 50;
  if (!Number.isInteger(K) || K < 1 || K > h * w)
    throw new ExplainerInputError('BAD_PARAMETER', `segments must be an integer from 1 to ${h * w} (the pixel count), got ${String(K)}`);
  const m = options.compactness ?? 0.1;
  if (!(m > 0 && Number.isFinite(m))) throw new ExplainerInputError('BAD_PARAMETER', `compactness must be a positive number, got ${String(m)}`);
  let lo = Infinity;
  let hi = -Infinity;
  for (let j = 0; j < h * w * c; j++) {
    lo = Math.min(lo, image[j]);
    hi = Math.max(hi, image[j]);
  }
  const range = hi > lo ? hi - lo : 1;
  const col = (p: number, ch: number) => (image[p * c + ch] - lo) / range;
  const S = Math.max(1, Math.sqrt((h * w) / K));
  // Centres on a grid: rows x cols ~ K.
  const gy = Math.max(1, Math.round(h / S));
  const gx = Math.max(1, Math.round(w / S));
  const nC = gy * gx;
  const cy = new Float64Array(nC);
  const cx = new Float64Array(nC);
  const cc = new Float64Array(nC * c);
  for (let a = 0; a < gy; a++)
    for (let b = 0; b < gx; b++) {
      const k = a * gx + b;
      cy[k] = ((a + 0.5) * h) / gy;
      cx[k] = ((b + 0.5) * w) / gx;
      const p = Math.min(h - 1, Math.floor(cy[k])) * w + Math.min(w - 1, Math.floor(cx[k]));
      for (let ch = 0; ch < c; ch++) cc[k * c + ch] = col(p, ch);
    }
  const labels = new Int32Array(h * w).fill(-1);
  const dist = new Float64Array(h * w);
  const spatial = (m / S) ** 2;
  for (let it = 0; it < (options.iterations ?? 10); it++) {
    dist.fill(Infinity);
    for (let k = 0; k < nC; k++) {
      const y0 = Math.max(0, Math.floor(cy[k] - 2 * S));
      const y1 = Math.min(h - 1, Math.ceil(cy[k] + 2 * S));
      const x0 = Math.max(0, Math.floor(cx[k] - 2 * S));
      const x1 = Math.min(w - 1, Math.ceil(cx[k] + 2 * S));
      for (let y = y0; y <= y1; y++)
        for (let x = x0; x <= x1; x++) {
          const p = y * w + x;
          let dc = 0;
          for (let ch = 0; ch < c; ch++) dc += (col(p, ch) - cc[k * c + ch]) ** 2;
          // Pixel centres at +0.5, like the grid centres.
          const D = dc + spatial * ((y + 0.5 - cy[k]) ** 2 + (x + 0.5 - cx[k]) ** 2);
          if (D < dist[p]) {
            dist[p] = D;
            labels[p] = k;
          }
        }
    }
    const sy = new Float64Array(nC);
    const sx = new Float64Array(nC);
    const sc = new Float64Array(nC * c);
    const cnt = new Float64Array(nC);
    for (let p = 0; p < h * w; p++) {
      const k = labels[p];
      if (k < 0) continue;
      cnt[k]++;
      sy[k] += Math.floor(p / w) + 0.5;
      sx[k] += (p % w) + 0.5;
      for (let ch = 0; ch < c; ch++) sc[k * c + ch] += col(p, ch);
    }
    for (let k = 0; k < nC; k++) {
      if (cnt[k] === 0) continue;
      cy[k] = sy[k] / cnt[k];
      cx[k] = sx[k] / cnt[k];
      for (let ch = 0; ch < c; ch++) cc[k * c + ch] = sc[k * c + ch] / cnt[k];
    }
  }
  return connect(labels, h, w, Math.max(1, Math.floor((S * S) / 4)));
}

/** Splits labels into 4-connected components, merges those under `minSize` into a neighbour, renumbers. */
export function connect(labels: Int32Array, h: number, w: number, minSize: number): Segmentation {
  const comp = new Int32Array(h * w).fill(-1);
  const sizes: number[] = [];
  const stack: number[] = [];
  for (let p0 = 0; p0 < h * w; p0++) {
    if (comp[p0] >= 0) continue;
    const id = sizes.length;
    let size = 0;
    comp[p0] = id;
    stack.push(p0);
    while (stack.length) {
      const p = stack.pop()!;
      size++;
      const y = Math.floor(p / w);
      const x = p % w;
      for (const q of [y > 0 ? p - w : -1, y < h - 1 ? p + w : -1, x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1]) {
        if (q >= 0 && comp[q] < 0 && labels[q] === labels[p0]) {
          comp[q] = id;
          stack.push(q);
        }
      }
    }
    sizes.push(size);
  }
  // Small components join the neighbouring component they share the longest border with.
  const target = sizes.map((_, i) => i);
  const find = (i: number): number => (target[i] === i ? i : (target[i] = find(target[i])));
  const order = sizes.map((_, i) => i).filter((i) => sizes[i] < minSize);
  for (const i of order) {
    if (sizes.length === 1) break;
    const border = new Map<number, number>();
    for (let p = 0; p < h * w; p++) {
      if (find(comp[p]) !== find(i)) continue;
      const y = Math.floor(p / w);
      const x = p % w;
      for (const q of [y > 0 ? p - w : -1, y < h - 1 ? p + w : -1, x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1]) {
        if (q < 0) continue;
        const r = find(comp[q]);
        if (r !== find(i)) border.set(r, (border.get(r) ?? 0) + 1);
      }
    }
    let best = -1;
    let bestLen = -1;
    for (const [r, len] of border) if (len > bestLen || (len === bestLen && r < best)) [best, bestLen] = [r, len];
    if (best >= 0) target[find(i)] = best;
  }
  const renumber = new Map<number, number>();
  const out = new Int32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    const r = find(comp[p]);
    if (!renumber.has(r)) renumber.set(r, renumber.size);
    out[p] = renumber.get(r)!;
  }
  return { labels: out, count: renumber.size };
}

/** Segment sizes and centroids (row, column). */
export function segmentStats(seg: Segmentation, w: number): { size: number[]; cy: number[]; cx: number[] } {
  const size = new Array(seg.count).fill(0);
  const cy = new Array(seg.count).fill(0);
  const cx = new Array(seg.count).fill(0);
  seg.labels.forEach((l, p) => {
    size[l]++;
    cy[l] += Math.floor(p / w);
    cx[l] += p % w;
  });
  return { size, cy: cy.map((v, i) => v / size[i]), cx: cx.map((v, i) => v / size[i]) };
}
