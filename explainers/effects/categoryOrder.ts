/**
 * An order for the categories of a nominal feature, which ALE needs: it accumulates effects between
 * neighbouring categories, and only categories that are alike in the rest of the data make honest
 * neighbours (the row moved to the next category should stay a plausible row).
 *
 * Distances between categories are alibi's association-based distance (alibi.utils.distance.abdm,
 * after Le & Ho 2005): for every other feature, the distribution of its levels among the rows of
 * category a and among those of category b, compared with the symmetric Kullback-Leibler divergence,
 * summed over features. Numeric features are binned at their quartiles first (alibi bins numeric
 * features the same way for abdm; its counterfactual explainers default to 25/50/75%); categorical and
 * one-hot features use their categories. The categories are then ordered along the first coordinate
 * of a classical (Torgerson) multidimensional scaling of that distance matrix, which is how Apley &
 * Zhu's ALEPlot and iml order categories (cmdscale, k = 1); alibi embeds with sklearn's SMACOF MDS,
 * which needs random restarts, where the classical solution is one deterministic eigenvector.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import type { Rows } from '../types.js';
import { featureValues, type EffectFeature, type FeatureCatalogue } from './features.js';
import { distinctSorted, sorted, sortedQuantile } from './grid.js';

const EPS = 1e-12;

/** Levels (0..L-1) of another feature in every row: quartile bins of numeric features, else categories. */
function levelsOf(f: EffectFeature, data: Rows): { levels: Int32Array; count: number } {
  const values = featureValues(f, data);
  if (f.kind === 'numeric') {
    const s = sorted(values);
    const cuts = distinctSorted([0.25, 0.5, 0.75].map((q) => sortedQuantile(s, q)));
    // level = quartile cuts strictly below the value (x <= q25 -> 0, ...)
    return { levels: Int32Array.from(values, (v) => cuts.filter((c) => v > c).length), count: cuts.length + 1 };
  }
  const distinct = distinctSorted(values);
  const index = new Map(distinct.map((v, k) => [v, k]));
  return { levels: Int32Array.from(values, (v) => index.get(v)!), count: distinct.length };
}

/** Pairwise association-based distances between `categories` of `feature`, over the other features. */
export function categoryDistances(feature: EffectFeature, categories: number[], rowCategory: ArrayLike<number>, data: Rows, catalogue: FeatureCatalogue): number[][] {
  const K = categories.length;
  const at = new Map(categories.map((c, k) => [c, k]));
  const size = new Float64Array(K);
  for (let i = 0; i < data.n; i++) {
    const k = at.get(rowCategory[i]);
    if (k !== undefined) size[k]++;
  }
  const dist = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (const other of catalogue.features) {
    if (other === feature) continue;
    const { levels, count } = levelsOf(other, data);
    // p[k][l] = share of category k's rows at level l of the other feature
    const p = Array.from({ length: K }, () => new Float64Array(count));
    for (let i = 0; i < data.n; i++) {
      const k = at.get(rowCategory[i]);
      if (k !== undefined) p[k][levels[i]]++;
    }
    for (let k = 0; k < K; k++) for (let l = 0; l < count; l++) p[k][l] /= size[k] + EPS;
    for (let a = 0; a < K; a++) {
      for (let b = 0; b < a; b++) {
        let s = 0;
        for (let l = 0; l < count; l++) {
          const x = p[a][l];
          const y = p[b][l];
          s += x * Math.log((x + EPS) / (y + EPS)) + y * Math.log((y + EPS) / (x + EPS));
        }
        dist[a][b] += s;
        dist[b][a] += s;
      }
    }
  }
  return dist;
}

/**
 * The first coordinate of classical MDS: the top eigenvector of -1/2 J D^2 J, scaled by the root of
 * its eigenvalue. Null when the distances carry no order (all zero).
 */
export function classicalMds1d(dist: number[][]): number[] | null {
  const K = dist.length;
  const sq = dist.map((row) => row.map((v) => v * v));
  const rowMean = sq.map((row) => row.reduce((a, b) => a + b, 0) / K);
  const total = rowMean.reduce((a, b) => a + b, 0) / K;
  const B = new Matrix(sq.map((row, a) => row.map((v, b) => -0.5 * (v - rowMean[a] - rowMean[b] + total))));
  const evd = new EigenvalueDecomposition(B, { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  let top = 0;
  for (let k = 1; k < values.length; k++) if (values[k] > values[top]) top = k;
  if (!(values[top] > 1e-12)) return null;
  const scale = Math.sqrt(values[top]);
  return Array.from({ length: K }, (_, k) => evd.eigenvectorMatrix.get(k, top) * scale);
}

/**
 * `categories` (in natural order) reordered by similarity. The sign of an eigenvector is arbitrary, so
 * the order is oriented to put the naturally first category before the naturally last; ties keep
 * natural order. Two categories (or no signal in the distances) keep natural order.
 */
export function orderBySimilarity(feature: EffectFeature, categories: number[], rowCategory: ArrayLike<number>, data: Rows, catalogue: FeatureCatalogue): number[] {
  if (categories.length <= 2) return categories;
  const coord = classicalMds1d(categoryDistances(feature, categories, rowCategory, data, catalogue));
  if (!coord) return categories;
  const sign = coord[0] <= coord[coord.length - 1] ? 1 : -1;
  return categories.map((c, k) => ({ c, k, x: sign * coord[k] })).sort((a, b) => a.x - b.x || a.k - b.k).map((e) => e.c);
}
