/**
 * Pixel rasters for image charts: an image and its attribution overlay composited into RGB, upsampled
 * by whole pixels (so a 16x16 input stays crisp at 224 px), segment outlines, and an 8-bit PNG encoder
 * (zlib from Node; the PNG format is small enough that a dependency would add nothing). The SVG charts
 * embed the PNG as a data: URI, one <image> per panel instead of one <rect> per pixel.
 */
import { deflateSync } from 'node:zlib';
import * as d3 from 'd3';
import { divergingInterpolator } from './theme.js';

export interface Raster {
  width: number;
  height: number;
  /** RGB, 3 bytes per pixel, row-major. */
  rgb: Uint8Array;
}

/** Greyscale or RGB pixels of an [h, w, c] image, scaled to [0, 255] (values in [0, 1] are taken as they are). */
export function imageRaster(image: ArrayLike<number>, h: number, w: number, c: number): Raster {
  let lo = Infinity;
  let hi = -Infinity;
  for (let j = 0; j < h * w * c; j++) {
    lo = Math.min(lo, image[j]);
    hi = Math.max(hi, image[j]);
  }
  const unit = lo >= 0 && hi <= 1;
  const scale = (v: number) => Math.round(255 * Math.min(1, Math.max(0, unit ? v : hi > lo ? (v - lo) / (hi - lo) : 0.5)));
  const rgb = new Uint8Array(h * w * 3);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) rgb[p * 3 + k] = scale(image[p * c + (c >= 3 ? k : 0)]);
  }
  return { width: w, height: h, rgb };
}

export type OverlayKind = 'signed' | 'positive';

/** Colour of a value in [-1, 1] (signed) or [0, 1] (positive). */
export function overlayColour(kind: OverlayKind, t: number): string {
  return kind === 'signed' ? divergingInterpolator((t + 1) / 2) : d3.interpolateYlOrRd(0.15 + 0.85 * t);
}

/**
 * Blends a [h, w] map over the raster: colour by value / scale, opacity growing with |value| up to
 * `maxAlpha`, so small attributions leave the image visible.
 */
export function blendOverlay(base: Raster, map: ArrayLike<number>, scale: number, kind: OverlayKind, maxAlpha = 0.8): Raster {
  const rgb = Uint8Array.from(base.rgb);
  for (let p = 0; p < base.width * base.height; p++) {
    const t = Math.max(-1, Math.min(1, scale > 0 ? map[p] / scale : 0));
    const a = kind === 'signed' ? Math.abs(t) * maxAlpha : Math.max(0, t) * maxAlpha;
    if (a <= 0) continue;
    const col = d3.rgb(overlayColour(kind, kind === 'signed' ? t : Math.max(0, t)));
    const mix = [col.r, col.g, col.b];
    for (let k = 0; k < 3; k++) rgb[p * 3 + k] = Math.round(rgb[p * 3 + k] * (1 - a) + mix[k] * a);
  }
  return { width: base.width, height: base.height, rgb };
}

/** Nearest-neighbour upsampling by a whole factor. */
export function upsample(r: Raster, f: number): Raster {
  if (f <= 1) return r;
  const width = r.width * f;
  const height = r.height * f;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const src = (Math.floor(y / f) * r.width + Math.floor(x / f)) * 3;
      rgb.set(r.rgb.subarray(src, src + 3), (y * width + x) * 3);
    }
  return { width, height, rgb };
}

/** Draws segment boundaries (labels over the source h x w grid) on a raster upsampled by `f`. */
export function drawOutlines(r: Raster, labels: ArrayLike<number>, h: number, w: number, f: number, colour = '#FFD400'): Raster {
  const c = d3.rgb(colour);
  const rgb = Uint8Array.from(r.rgb);
  const at = (y: number, x: number) => labels[y * w + x];
  for (let Y = 0; Y < r.height; Y++)
    for (let X = 0; X < r.width; X++) {
      const y = Math.floor(Y / f);
      const x = Math.floor(X / f);
      const lastCol = X % f === f - 1;
      const lastRow = Y % f === f - 1;
      const edge = (lastCol && x + 1 < w && at(y, x + 1) !== at(y, x)) || (lastRow && y + 1 < h && at(y + 1, x) !== at(y, x));
      if (edge) rgb.set([c.r, c.g, c.b], (Y * r.width + X) * 3);
    }
  return { width: r.width, height: r.height, rgb };
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** An 8-bit RGB PNG of the raster. */
export function encodePng(r: Raster): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(r.width, 0);
  header.writeUInt32BE(r.height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type RGB
  const raw = Buffer.alloc(r.height * (1 + r.width * 3));
  for (let y = 0; y < r.height; y++) {
    raw[y * (1 + r.width * 3)] = 0; // filter: none
    Buffer.from(r.rgb.subarray(y * r.width * 3, (y + 1) * r.width * 3)).copy(raw, y * (1 + r.width * 3) + 1);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

export function pngDataUri(r: Raster): string {
  return `data:image/png;base64,${encodePng(r).toString('base64')}`;
}
