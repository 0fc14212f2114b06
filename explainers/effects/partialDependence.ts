/**
 * Partial dependence (Friedman 2001) and ICE curves (Goldstein et al. 2015), as sklearn.inspection
 * computes them with method='brute':
 * - ICE_i(v) = link(f(x_i with the feature set to v)); PD(v) = mean_i ICE_i(v). The link is applied
 *   per row before averaging (sklearn averages decision_function values likewise for log-odds), so PD
 *   is always the mean of the ICE curves, in either space.
 * - Centred ICE (sklearn's `centered=True`): every curve minus its value at the first grid point; PD
 *   is then the mean of the centred curves.
 * - A one-hot group moves as one categorical feature: grid point k sets member k to 1 and the others
 *   to 0 (k = members = all 0, the dropped category, when the data hold such rows).
 * - 2-D: PD(v, w) over the grid product, every row with both features set.
 * - Cost: grid points x rows model rows, sent as one predict call per feature (evaluate.ts).
 */
import { ExplainerInputError, type CommonOptions, type Model, type Rows } from '../types.js';
import type { LinkName } from '../link.js';
import { createEvaluator, evaluateRows } from './evaluate.js';
import {
  categoryLabels,
  checkData,
  checkOutputs,
  featureCatalogue,
  featureValues,
  resolveFeature,
  setFeature,
  type EffectFeature,
  type FeatureInfo,
} from './features.js';
import { deciles, numericGrid, observedCategories, userGrid } from './grid.js';
import type { IceEffect, PartialDependence2dEffect, PartialDependenceEffect } from './types.js';

/** Options every effect explainer takes. */
export interface EffectOptions extends CommonOptions, FeatureInfo {
  /** Space of the values: identity (model outputs) or logit (log-odds of probability outputs). Default identity. */
  link?: LinkName;
  /** Most rows in one predict call (also at most 2^23 values). Default 200 000. */
  maxRowsPerCall?: number;
}

export interface GridChoice {
  /** Caller-given grid values (numbers; member names for one-hot groups). Default: from the data. */
  grid?: unknown[];
  /** Numeric grid points when the grid comes from the data. Default 50. */
  resolution?: number;
  /** Quantile range of a data grid. Default [0.05, 0.95]. */
  percentiles?: [number, number];
  /** Largest grid accepted (points per feature). Default 1000. */
  maxGridPoints?: number;
}

export interface PartialDependenceOptions extends EffectOptions, GridChoice {}

export interface IceOptions extends PartialDependenceOptions {
  /** Subtract each curve's value at the first grid point. Default false. */
  centered?: boolean;
}

export interface PartialDependence2dOptions extends EffectOptions {
  grid?: unknown[];
  grid2?: unknown[];
  /** Points per numeric axis from the data. Default 20 (20 x 20 x rows model rows). */
  resolution?: number;
  percentiles?: [number, number];
  maxGridPoints?: number;
}

const DEFAULT_RESOLUTION = 50;
const DEFAULT_RESOLUTION_2D = 20;
const DEFAULT_PERCENTILES: [number, number] = [0.05, 0.95];
const DEFAULT_MAX_GRID = 1000;

export function checkResolution(value: unknown, name = 'resolution'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 2 || value > 10_000) {
    throw new ExplainerInputError('BAD_PARAMETER', `${name} must be an integer from 2 to 10000, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkPercentiles(value: unknown): [number, number] {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => typeof v === 'number' && v >= 0 && v <= 1) || !(value[0] < value[1])) {
    throw new ExplainerInputError('BAD_PARAMETER', `percentiles must be [low, high] with 0 <= low < high <= 1, got ${JSON.stringify(value)}`);
  }
  return [value[0], value[1]];
}

/** The grid of one feature: given by the caller, or from the data (quantiles, or the categories seen). */
export function gridFor(f: EffectFeature, values: Float64Array, choice: GridChoice, defaultResolution = DEFAULT_RESOLUTION): number[] {
  const maxGrid = choice.maxGridPoints ?? DEFAULT_MAX_GRID;
  if (choice.grid !== undefined) return userGrid(f, choice.grid, maxGrid);
  if (f.kind !== 'numeric') return observedCategories(f, values);
  const resolution = checkResolution(choice.resolution ?? defaultResolution);
  if (resolution > maxGrid) {
    throw new ExplainerInputError('GRID_TOO_LARGE', `resolution ${resolution} is above the largest grid allowed, ${maxGrid}`, { resolution, maximum: maxGrid });
  }
  return numericGrid(values, { resolution, percentiles: checkPercentiles(choice.percentiles ?? DEFAULT_PERCENTILES) });
}

/** Rug data: deciles for numeric features, rows per grid category for the others. */
function distribution(f: EffectFeature, values: Float64Array, grid: number[]): { deciles?: number[]; counts?: number[] } {
  if (f.kind === 'numeric') return { deciles: deciles(values) };
  const counts = grid.map(() => 0);
  const at = new Map(grid.map((v, k) => [v, k]));
  for (const v of values) {
    const k = at.get(v);
    if (k !== undefined) counts[k]++;
  }
  return { counts };
}

interface Setup {
  data: Rows;
  outputs: number[];
  feature: EffectFeature;
  values: Float64Array;
}

function setup(model: Model, data: Rows, name: string, options: EffectOptions): Setup {
  checkData(model, data);
  const outputs = checkOutputs(model, options.outputs);
  const catalogue = featureCatalogue(options.space, model.nFeatures, options);
  const feature = resolveFeature(catalogue, name);
  return { data, outputs, feature, values: featureValues(feature, data) };
}

/**
 * link(f) of every row at every grid point: result[(k * n + i) * outputs + o]. One predict call for
 * the whole grid (unless it passes maxRowsPerCall).
 */
async function evaluateGrid(model: Model, s: Setup, grid: number[], options: EffectOptions) {
  const ev = createEvaluator(model, { ...options, outputs: s.outputs });
  const { n } = s.data;
  const out = await evaluateRows(
    ev,
    grid.length * n,
    s.data,
    (r) => r % n,
    (r, buffer, at) => setFeature(s.feature, buffer, at, grid[Math.floor(r / n)]),
  );
  return { out, evaluations: ev.counter.rows };
}

export async function partialDependence(model: Model, data: Rows, feature: string, options: PartialDependenceOptions): Promise<PartialDependenceEffect[]> {
  const s = setup(model, data, feature, options);
  const grid = gridFor(s.feature, s.values, options);
  const { out, evaluations } = await evaluateGrid(model, s, grid, options);
  const n = s.data.n;
  const m = s.outputs.length;
  const rug = distribution(s.feature, s.values, grid);
  return s.outputs.map((o, oi) => {
    const values = grid.map((_, k) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += out[(k * n + i) * m + oi];
      return sum / n;
    });
    return {
      kind: 'pd' as const,
      feature: s.feature.name,
      featureKind: s.feature.kind,
      output: options.space.outputNames?.[o] ?? `y${o}`,
      outputIndex: o,
      link: options.link ?? 'identity',
      grid,
      ...optional('categories', categoryLabels(s.feature, grid)),
      values,
      ...rug,
      rows: n,
      modelEvaluations: evaluations,
    };
  });
}

export async function individualConditionalExpectation(model: Model, data: Rows, feature: string, options: IceOptions): Promise<IceEffect[]> {
  const s = setup(model, data, feature, options);
  const grid = gridFor(s.feature, s.values, options);
  const { out, evaluations } = await evaluateGrid(model, s, grid, options);
  const n = s.data.n;
  const m = s.outputs.length;
  const centered = options.centered ?? false;
  const rug = distribution(s.feature, s.values, grid);
  return s.outputs.map((o, oi) => {
    const curves = Array.from({ length: n }, (_, i) => {
      const c = grid.map((_, k) => out[(k * n + i) * m + oi]);
      if (centered) {
        const c0 = c[0];
        for (let k = 0; k < c.length; k++) c[k] -= c0;
      }
      return c;
    });
    const values = grid.map((_, k) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += curves[i][k];
      return sum / n;
    });
    return {
      kind: 'ice' as const,
      feature: s.feature.name,
      featureKind: s.feature.kind,
      output: options.space.outputNames?.[o] ?? `y${o}`,
      outputIndex: o,
      link: options.link ?? 'identity',
      grid,
      ...optional('categories', categoryLabels(s.feature, grid)),
      values,
      curves,
      rowIndices: Array.from({ length: n }, (_, i) => i),
      rowValues: Array.from(s.values),
      centered,
      ...rug,
      rows: n,
      modelEvaluations: evaluations,
    };
  });
}

export async function partialDependence2d(
  model: Model,
  data: Rows,
  features: [string, string],
  options: PartialDependence2dOptions,
): Promise<PartialDependence2dEffect[]> {
  const a = setup(model, data, features[0], options);
  const catalogue = featureCatalogue(options.space, model.nFeatures, options);
  const f2 = resolveFeature(catalogue, features[1]);
  if (f2.name === a.feature.name) throw new ExplainerInputError('BAD_FEATURE', `a 2-D effect needs two different features, got "${f2.name}" twice`);
  const values2 = featureValues(f2, data);
  const choice = { resolution: options.resolution, percentiles: options.percentiles, maxGridPoints: options.maxGridPoints };
  const grid = gridFor(a.feature, a.values, { ...choice, grid: options.grid }, DEFAULT_RESOLUTION_2D);
  const grid2 = gridFor(f2, values2, { ...choice, grid: options.grid2 }, DEFAULT_RESOLUTION_2D);
  const ev = createEvaluator(model, { ...options, outputs: a.outputs });
  const { n } = data;
  const G2 = grid2.length;
  const out = await evaluateRows(ev, grid.length * G2 * n, data, (r) => r % n, (r, buffer, at) => {
    const cell = Math.floor(r / n);
    setFeature(a.feature, buffer, at, grid[Math.floor(cell / G2)]);
    setFeature(f2, buffer, at, grid2[cell % G2]);
  });
  const m = a.outputs.length;
  return a.outputs.map((o, oi) => ({
    kind: 'pd' as const,
    feature: a.feature.name,
    featureKind: a.feature.kind,
    feature2: f2.name,
    featureKind2: f2.kind,
    output: options.space.outputNames?.[o] ?? `y${o}`,
    outputIndex: o,
    link: options.link ?? 'identity',
    grid,
    grid2,
    ...optional('categories', categoryLabels(a.feature, grid)),
    ...optional('categories2', categoryLabels(f2, grid2)),
    values: grid.map((_, k) =>
      grid2.map((_, l) => {
        let sum = 0;
        const base = (k * G2 + l) * n;
        for (let i = 0; i < n; i++) sum += out[(base + i) * m + oi];
        return sum / n;
      }),
    ),
    rows: n,
    modelEvaluations: ev.counter.rows,
  }));
}

/** `{key: value}` when value is defined, else nothing: keeps absent fields out of the JSON. */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
