/** Small helpers around d3 scales shared by several charts. */
import * as d3 from 'd3';
import { textWidth } from './text.js';

/** [min, max] of the finite values, widened when all are equal so a scale never collapses. */
export function valueDomain(values: Iterable<number>, includeZero = false): [number, number] {
  let [lo, hi] = d3.extent(Array.from(values).filter(Number.isFinite)) as [number | undefined, number | undefined];
  if (lo === undefined || hi === undefined) return [0, 1];
  if (includeZero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

/** The x at which a centred label of `text` stays inside [left, right]. */
export function clampLabel(x: number, text: string, size: number, left: number, right: number, bold = false): number {
  const half = textWidth(text, size, bold) / 2 + 4;
  return Math.min(Math.max(x, left + half), right - half);
}
