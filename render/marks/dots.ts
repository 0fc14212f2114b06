/**
 * Dots drawn as one path per style (a <circle> per dot costs jsdom ~50 us to create and serialise,
 * too much for thousands of points), and a deterministic beeswarm layout.
 */
import { round } from '../document.js';

/** Circles of radius r at each point, as one path's `d`. */
export function dotsPath(points: Iterable<readonly [number, number]>, r: number): string {
  const rr = round(r);
  const d = round(2 * r);
  let s = '';
  for (const [x, y] of points) s += `M${round(x - r)},${round(y)}a${rr},${rr} 0 1,0 ${d},0a${rr},${rr} 0 1,0 ${-d},0`;
  return s;
}

/**
 * Vertical offsets that keep dots of radius r at the given x positions from overlapping (a simple,
 * deterministic beeswarm). Dots go, in order of x, into horizontal lanes spaced like a hexagonal
 * packing (sqrt(3)/2 of a diameter apart): a dot takes the lane nearest the centre line (below first
 * on ties) whose last dot is a full diameter to its left and whose neighbour lanes' last dots are half
 * a diameter away, which is exactly what keeps any two dots at least a diameter apart. Linear in the
 * number of dots times the lanes searched, where the exact "nearest free spot" swarm is quadratic in
 * dense piles.
 */
export function dodge(xs: ArrayLike<number>, r: number, gap = 0.5): Float64Array {
  const n = xs.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => xs[a] - xs[b] || a - b);
  const d = 2 * r + gap;
  const laneStep = (d * Math.sqrt(3)) / 2;
  // lane k -> index 2k (k >= 0, below) or 2|k| - 1 (k < 0, above); last x placed in it.
  const last: number[] = [];
  const lastOf = (k: number) => last[k >= 0 ? 2 * k : -2 * k - 1] ?? -Infinity;
  const ys = new Float64Array(n);
  for (const i of order) {
    const x = xs[i];
    for (let m = 0; ; m++) {
      const k = m % 2 === 0 ? m / 2 : -(m + 1) / 2; // 0, -1, 1, -2, 2 ... then flip: below first
      const lane = -k;
      if (x - lastOf(lane) >= d && x - lastOf(lane - 1) >= d / 2 && x - lastOf(lane + 1) >= d / 2) {
        last[lane >= 0 ? 2 * lane : -2 * lane - 1] = x;
        ys[i] = lane * laneStep + 0; // + 0 turns -0 into 0
        break;
      }
    }
  }
  return ys;
}
