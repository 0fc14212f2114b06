/**
 * Weighted k-means summary of a background set, the way shap.kmeans summarises one: k centroids,
 * each coordinate snapped to the nearest value that really occurs in its column (so a one-hot
 * column stays 0/1 and an integer column stays integral), weighted by the rows they stand for.
 * Kernel SHAP's cost is linear in background rows, so this is what makes a large background usable.
 */
import type { Rows } from './types.js';
import { seededRng, type Rng } from './random.js';

export interface KMeansOptions {
  k: number;
  seed?: number;
  /** Row weights (default 1 each); cluster weights are sums of these. */
  weights?: ArrayLike<number>;
  /** Lloyd iterations at most; stops earlier when no assignment changes. */
  maxIterations?: number;
  /** Snap every centroid coordinate to the nearest value of its column (default true). */
  snap?: boolean;
}

export interface KMeansSummary {
  centroids: Rows;
  /** Total weight of the rows in each cluster; empty clusters are dropped, so length <= k. */
  weights: Float64Array;
  /** Cluster of each input row (index into centroids). */
  assignment: Int32Array;
  iterations: number;
  /** True when Lloyd's iterations reached a fixed point before maxIterations. */
  converged: boolean;
}

export function kmeans(rows: Rows, options: KMeansOptions): KMeansSummary {
  const { n, d } = rows;
  const w = options.weights ?? new Float64Array(n).fill(1);
  const k = Math.min(Math.max(1, Math.floor(options.k)), n);
  const maxIterations = options.maxIterations ?? 100;
  const rng = seededRng(options.seed ?? 0);

  const centers = initPlusPlus(rows, w, k, rng);
  const assignment = new Int32Array(n).fill(-1);
  const dist = new Float64Array(n);
  let iterations = 0;
  let converged = false;
  while (iterations < maxIterations) {
    iterations++;
    const changed = assign(rows, centers, k, assignment, dist);
    if (!changed && iterations > 1) {
      converged = true;
      break;
    }
    updateCenters(rows, w, centers, k, assignment, dist);
  }

  // Compact: drop empty clusters, sum the weights, snap to real column values.
  const clusterWeight = new Float64Array(k);
  for (let i = 0; i < n; i++) clusterWeight[assignment[i]] += w[i];
  const keep: number[] = [];
  for (let c = 0; c < k; c++) if (clusterWeight[c] > 0) keep.push(c);
  const remap = new Int32Array(k).fill(-1);
  keep.forEach((c, i) => (remap[c] = i));
  const out = new Float32Array(keep.length * d);
  keep.forEach((c, i) => {
    for (let j = 0; j < d; j++) out[i * d + j] = centers[c * d + j];
  });
  if (options.snap ?? true) snapToColumns(rows, out, keep.length);
  for (let i = 0; i < n; i++) assignment[i] = remap[assignment[i]];
  return {
    centroids: { data: out, n: keep.length, d },
    weights: Float64Array.from(keep, (c) => clusterWeight[c]),
    assignment,
    iterations,
    converged,
  };
}

function sqDist(a: Float32Array, ai: number, b: Float64Array, bi: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    const t = a[ai + j] - b[bi + j];
    s += t * t;
  }
  return s;
}

/** k-means++ (Arthur & Vassilvitskii 2007) with row weights: next centre drawn with prob. ∝ w D². */
function initPlusPlus(rows: Rows, w: ArrayLike<number>, k: number, rng: Rng): Float64Array {
  const { n, d, data } = rows;
  const centers = new Float64Array(k * d);
  const best = new Float64Array(n).fill(Infinity);
  const pick = (c: number, i: number) => {
    for (let j = 0; j < d; j++) centers[c * d + j] = data[i * d + j];
    for (let r = 0; r < n; r++) best[r] = Math.min(best[r], sqDist(data, r * d, centers, c * d, d));
  };
  pick(0, drawIndex(rng, n, (i) => w[i]));
  for (let c = 1; c < k; c++) {
    // All remaining mass zero means fewer distinct rows than k: duplicate centres end up empty.
    pick(c, drawIndex(rng, n, (i) => w[i] * best[i]));
  }
  return centers;
}

function drawIndex(rng: Rng, n: number, mass: (i: number) => number): number {
  let total = 0;
  for (let i = 0; i < n; i++) total += mass(i);
  if (!(total > 0)) return Math.floor(rng() * n);
  let u = rng() * total;
  for (let i = 0; i < n; i++) {
    u -= mass(i);
    if (u < 0) return i;
  }
  return n - 1;
}

function assign(rows: Rows, centers: Float64Array, k: number, assignment: Int32Array, dist: Float64Array): boolean {
  const { n, d, data } = rows;
  let changed = false;
  for (let i = 0; i < n; i++) {
    let bestC = 0;
    let bestD = Infinity;
    for (let c = 0; c < k; c++) {
      const s = sqDist(data, i * d, centers, c * d, d);
      if (s < bestD) {
        bestD = s;
        bestC = c;
      }
    }
    dist[i] = bestD;
    if (assignment[i] !== bestC) {
      assignment[i] = bestC;
      changed = true;
    }
  }
  return changed;
}

function updateCenters(
  rows: Rows,
  w: ArrayLike<number>,
  centers: Float64Array,
  k: number,
  assignment: Int32Array,
  dist: Float64Array,
): void {
  const { n, d, data } = rows;
  const sums = new Float64Array(k * d);
  const mass = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const c = assignment[i];
    mass[c] += w[i];
    for (let j = 0; j < d; j++) sums[c * d + j] += w[i] * data[i * d + j];
  }
  for (let c = 0; c < k; c++) {
    if (mass[c] > 0) {
      for (let j = 0; j < d; j++) centers[c * d + j] = sums[c * d + j] / mass[c];
      continue;
    }
    // An empty cluster moves to the row its centre explains worst (deterministic, like sklearn's relocation).
    let far = -1;
    for (let i = 0; i < n; i++) if (w[i] > 0 && (far < 0 || w[i] * dist[i] > w[far] * dist[far])) far = i;
    if (far < 0 || !(dist[far] > 0)) continue;
    for (let j = 0; j < d; j++) centers[c * d + j] = data[far * d + j];
    dist[far] = 0;
  }
}

/** Replace each coordinate by the nearest value present in its column (ties go to the smaller). */
function snapToColumns(rows: Rows, centroids: Float32Array, k: number): void {
  const { n, d, data } = rows;
  const col = new Float32Array(n);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) col[i] = data[i * d + j];
    col.sort();
    for (let c = 0; c < k; c++) {
      const v = centroids[c * d + j];
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (col[mid] < v) lo = mid + 1;
        else hi = mid;
      }
      // col[lo] is the first value >= v; its left neighbour may be nearer.
      let best = col[lo];
      if (lo > 0 && Math.abs(col[lo - 1] - v) <= Math.abs(best - v)) best = col[lo - 1];
      centroids[c * d + j] = best;
    }
  }
}
