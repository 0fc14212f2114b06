/**
 * The space counterfactuals move in: features turned into units (a numeric or integer column, a
 * categorical code, or a one-hot group that changes as one), each with a scale, bounds and the
 * constraints declared for it, and the type-aware distance between rows.
 *
 * Distance (Wachter et al. 2017; DiCE's proximity): L1 over numeric columns, each change divided by the
 * column's median absolute deviation in the reference set (robust to outliers, unlike the standard
 * deviation), plus 1 for every categorical feature or one-hot group that differs. A change of one MAD
 * and a change of category cost the same.
 */
import { ExplainerInputError, type FeatureSpace, type Rows } from '../types.js';
import type { FeatureConstraint, FeatureScale } from './types.js';

export type UnitKind = 'numeric' | 'integer' | 'categorical' | 'one-hot';

export interface Unit {
  /** Feature name, or the one-hot group's name (the column names joined when the caller gave none). */
  name: string;
  columns: number[];
  kind: UnitKind;
  scale: number;
  scaleSource: FeatureScale['scaleSource'];
  immutable: boolean;
  /** +1 may only grow, -1 may only shrink, 0 free. */
  monotone: 0 | 1 | -1;
  /** Numeric, integer, categorical: the values a counterfactual may take (data range ∩ declared bounds). */
  lo: number;
  hi: number;
  /** Categorical: the codes seen in the reference set or declared, within [lo, hi], ascending. */
  codes: number[];
  /** Code -> readable name, when declared. */
  labels: Map<number, string>;
  /** One-hot: readable name of each member column's category, when declared. */
  columnLabels: (string | undefined)[];
}

export interface CounterfactualSpace {
  d: number;
  featureNames: string[];
  units: Unit[];
  /** Column -> index into units. */
  unitOf: Int32Array;
  /** Column -> one-hot group name, for the changes list. */
  groupOf: (string | undefined)[];
  /** The distance's terms flattened for speed: numeric columns with 1/scale, categorical columns, one-hot groups. */
  fast: { numeric: Int32Array; inverseScale: Float64Array; categorical: Int32Array; oneHot: Int32Array[] };
}

/** Groups with more distinct codes than this cannot be categorical (the caller binned nothing). */
const MAX_CATEGORIES = 1000;

export function buildSpace(
  space: FeatureSpace,
  reference: Rows,
  constraints: Record<string, FeatureConstraint> = {},
  groupNames?: string[],
): CounterfactualSpace {
  const d = space.featureNames.length;
  if (reference.d !== d) {
    throw new ExplainerInputError('BAD_REFERENCE', `reference rows have ${reference.d} values but the model takes ${d} features`);
  }
  if (reference.n < 2) {
    throw new ExplainerInputError(
      'BAD_REFERENCE',
      'counterfactuals need reference rows (at least 2) for scales, ranges and plausibility; send them or give the model a reference set',
    );
  }
  for (let i = 0; i < reference.data.length; i++) {
    if (!Number.isFinite(reference.data[i])) {
      throw new ExplainerInputError(
        'BAD_REFERENCE',
        `reference row ${Math.floor(i / d)} has a non-finite value in "${space.featureNames[i % d]}"`,
      );
    }
  }
  const names = space.featureNames;
  const all = space.groups ?? [];
  const keep = all.map((g, i) => i).filter((i) => all[i].length > 1);
  const groups = keep.map((i) => all[i]);
  const unitNames = keep.map((i) => groupNames?.[i] ?? commonGroupName(all[i].map((c) => names[c])));
  const known = new Set([...names, ...unitNames]);
  const unknown = Object.keys(constraints).filter((k) => !known.has(k));
  if (unknown.length) {
    throw new ExplainerInputError(
      'UNKNOWN_FEATURE',
      `constraints name ${unknown.map((u) => `"${u}"`).join(', ')}, which ${unknown.length > 1 ? 'are' : 'is'} neither a feature nor a one-hot group; features: ${names.slice(0, 20).join(', ')}` +
        (unitNames.length ? `; groups: ${unitNames.join(', ')}` : ''),
      { unknown },
    );
  }

  const units: Unit[] = [];
  const unitOf = new Int32Array(d).fill(-1);
  const groupOf: (string | undefined)[] = new Array(d).fill(undefined);
  groups.forEach((cols, gi) => {
    const name = unitNames[gi];
    const own = constraints[name] ?? {};
    const members = cols.map((c) => constraints[names[c]] ?? {});
    if (own.monotone || members.some((m) => m.monotone)) {
      throw new ExplainerInputError(
        'BAD_CONSTRAINT',
        `one-hot group "${name}" cannot be monotone: its categories have no order; declare it immutable or leave it free`,
      );
    }
    for (const c of cols) {
      unitOf[c] = units.length;
      groupOf[c] = name;
    }
    units.push({
      name,
      columns: cols.slice(),
      kind: 'one-hot',
      scale: 1,
      scaleSource: 'unit',
      immutable: !!own.immutable || members.some((m) => m.immutable),
      monotone: 0,
      lo: 0,
      hi: 1,
      codes: [],
      labels: new Map(),
      columnLabels: members.map((m) => m.categories?.find((c) => c.value === 1)?.label),
    });
  });

  for (let j = 0; j < d; j++) {
    if (unitOf[j] >= 0) continue;
    const c = constraints[names[j]] ?? {};
    const stats = statsOf(reference, j);
    const type = c.type ?? stats.type;
    const kind: UnitKind = type === 'binary' || type === 'categorical' ? 'categorical' : type;
    let lo = stats.min;
    let hi = stats.max;
    if (c.min !== undefined && c.max !== undefined && c.min > c.max) {
      throw new ExplainerInputError('BAD_CONSTRAINT', `"${names[j]}": min ${c.min} is above max ${c.max}`);
    }
    if (c.min !== undefined) lo = Math.max(lo, c.min);
    if (c.max !== undefined) hi = Math.min(hi, c.max);
    if (kind === 'integer') {
      lo = Math.ceil(lo);
      hi = Math.floor(hi);
    }
    let codes: number[] = [];
    if (kind === 'categorical') {
      if (!stats.distinct) {
        throw new ExplainerInputError(
          'BAD_CONSTRAINT',
          `"${names[j]}" is declared categorical but takes more than ${MAX_CATEGORIES} distinct values; declare it numeric or integer`,
        );
      }
      const seen = new Set<number>(stats.distinct);
      for (const cat of c.categories ?? []) seen.add(cat.value);
      if (type === 'binary') [0, 1].forEach((v) => seen.add(v));
      codes = [...seen].filter((v) => v >= lo && v <= hi).sort((a, b) => a - b);
    }
    const { scale, source } = kind === 'numeric' || kind === 'integer' ? stats.robust : { scale: 1, source: 'unit' as const };
    unitOf[j] = units.length;
    units.push({
      name: names[j],
      columns: [j],
      kind,
      scale,
      scaleSource: source,
      immutable: !!c.immutable,
      monotone: c.monotone === 'increasing' ? 1 : c.monotone === 'decreasing' ? -1 : 0,
      lo,
      hi,
      codes,
      labels: new Map((c.categories ?? []).map((k) => [k.value, k.label])),
      columnLabels: [],
    });
  }
  // Units in feature order of their first column, so changes and scales read in the model's order.
  const order = units.map((u, i) => i).sort((a, b) => units[a].columns[0] - units[b].columns[0]);
  const sorted = order.map((i) => units[i]);
  const remap = new Int32Array(units.length);
  order.forEach((old, now) => (remap[old] = now));
  for (let j = 0; j < d; j++) unitOf[j] = remap[unitOf[j]];
  const numericUnits = sorted.filter((u) => u.kind === 'numeric' || u.kind === 'integer');
  const fast = {
    numeric: Int32Array.from(numericUnits, (u) => u.columns[0]),
    inverseScale: Float64Array.from(numericUnits, (u) => 1 / u.scale),
    categorical: Int32Array.from(
      sorted.filter((u) => u.kind === 'categorical'),
      (u) => u.columns[0],
    ),
    oneHot: sorted.filter((u) => u.kind === 'one-hot').map((u) => Int32Array.from(u.columns)),
  };
  return { d, featureNames: names, units: sorted, unitOf, groupOf, fast };
}

/** The group's name: the members' common prefix without a trailing separator ("housing_rent", "housing_own" -> "housing"). */
export function commonGroupName(members: string[]): string {
  let p = members[0];
  for (const m of members) while (!m.startsWith(p)) p = p.slice(0, -1);
  p = p.replace(/[_\-.=: ]+$/, '');
  return p.length ? p : members.join('+');
}

interface ColumnStats {
  min: number;
  max: number;
  type: 'binary' | 'integer' | 'numeric';
  robust: { scale: number; source: FeatureScale['scaleSource'] };
  /** Distinct values, when at most MAX_CATEGORIES. */
  distinct: number[] | null;
}

/** Per reference set (held weakly) and column: sorting every column on every call cost more than a one-instance search. */
const statsCache = new WeakMap<Rows, Map<number, ColumnStats>>();

function statsOf(reference: Rows, j: number): ColumnStats {
  let byColumn = statsCache.get(reference);
  if (!byColumn) statsCache.set(reference, (byColumn = new Map()));
  let s = byColumn.get(j);
  if (!s) {
    const column = columnOf(reference, j);
    let min = Infinity;
    let max = -Infinity;
    for (const v of column) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const distinct = new Set<number>();
    for (const v of column) {
      distinct.add(v);
      if (distinct.size > MAX_CATEGORIES) break;
    }
    s = { min, max, type: inferType(column), robust: robustScale(column), distinct: distinct.size > MAX_CATEGORIES ? null : [...distinct] };
    byColumn.set(j, s);
  }
  return s;
}

function columnOf(rows: Rows, j: number): Float64Array {
  const out = new Float64Array(rows.n);
  for (let i = 0; i < rows.n; i++) out[i] = rows.data[i * rows.d + j];
  return out;
}

function inferType(column: Float64Array): 'binary' | 'integer' | 'numeric' {
  let binary = true;
  let integer = true;
  for (const v of column) {
    if (v !== 0 && v !== 1) binary = false;
    if (!Number.isInteger(v)) integer = false;
  }
  return binary ? 'binary' : integer ? 'integer' : 'numeric';
}

function median(sorted: Float64Array): number {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** MAD; when more than half the rows share one value (MAD 0), the mean absolute deviation from the median; else 1. */
function robustScale(column: Float64Array): { scale: number; source: FeatureScale['scaleSource'] } {
  const sorted = Float64Array.from(column).sort();
  const m = median(sorted);
  const dev = Float64Array.from(column, (v) => Math.abs(v - m)).sort();
  const mad = median(dev);
  if (mad > 0) return { scale: mad, source: 'mad' };
  const mean = dev.reduce((s, v) => s + v, 0) / dev.length;
  if (mean > 0) return { scale: mean, source: 'mean-absolute-deviation' };
  return { scale: 1, source: 'unit' };
}

/** Active member of a one-hot unit in row `r` at `offset` (the first column >= 0.5), or -1. */
export function activeMember(u: Unit, r: ArrayLike<number>, offset = 0): number {
  for (let m = 0; m < u.columns.length; m++) if (r[offset + u.columns[m]] >= 0.5) return m;
  return -1;
}

/** Cost of unit u between rows a and b (at offsets ao, bo). */
export function unitCost(u: Unit, a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number): number {
  switch (u.kind) {
    case 'numeric':
    case 'integer': {
      const j = u.columns[0];
      return Math.abs(a[ao + j] - b[bo + j]) / u.scale;
    }
    case 'categorical': {
      const j = u.columns[0];
      return a[ao + j] === b[bo + j] ? 0 : 1;
    }
    case 'one-hot':
      for (const j of u.columns) if (a[ao + j] !== b[bo + j]) return 1;
      return 0;
  }
}

/** Sum of unitCost over every unit (written out flat: it runs millions of times in the plausibility check). */
export function distance(s: CounterfactualSpace, a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number): number {
  const { numeric, inverseScale, categorical, oneHot } = s.fast;
  let t = 0;
  for (let i = 0; i < numeric.length; i++) t += Math.abs(a[ao + numeric[i]] - b[bo + numeric[i]]) * inverseScale[i];
  for (let i = 0; i < categorical.length; i++) if (a[ao + categorical[i]] !== b[bo + categorical[i]]) t += 1;
  for (const cols of oneHot) {
    for (let i = 0; i < cols.length; i++) {
      if (a[ao + cols[i]] !== b[bo + cols[i]]) {
        t += 1;
        break;
      }
    }
  }
  return t;
}

/** Units that differ between a and b. */
export function changedUnits(s: CounterfactualSpace, a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number): number[] {
  const out: number[] = [];
  s.units.forEach((u, i) => {
    for (const j of u.columns) {
      if (a[ao + j] !== b[bo + j]) {
        out.push(i);
        return;
      }
    }
  });
  return out;
}

export function scalesOf(s: CounterfactualSpace): FeatureScale[] {
  // Scales come from float32 data: shown as the shortest decimal of their float32 value (5.5, not 5.4999998807907104).
  return s.units.map((u) => ({
    feature: u.name,
    kind: u.kind,
    scale: shortestFloat32(u.scale),
    scaleSource: u.scaleSource,
    mutable: !u.immutable,
  }));
}

/**
 * Where unit u of instance x may go: the interval of new values (numeric, integer; bounds and
 * monotonicity applied, empty when lo > hi; it need not contain x, which may lie outside the data or
 * the declared bounds) or the codes (categorical; x's own first).
 */
export interface Domain {
  lo: number;
  hi: number;
  codes: number[];
}

export function domainOf(u: Unit, x: ArrayLike<number>): Domain {
  if (u.immutable) {
    const v = x[u.columns[0]];
    return { lo: v, hi: v, codes: [v] };
  }
  if (u.kind === 'one-hot') return { lo: 0, hi: 1, codes: [] };
  const v = x[u.columns[0]];
  let lo = u.lo;
  let hi = u.hi;
  if (u.monotone > 0) lo = Math.max(lo, v);
  if (u.monotone < 0) hi = Math.min(hi, v);
  if (u.kind === 'categorical') {
    const codes = u.codes.filter((c) => c >= lo && c <= hi && c !== v);
    return { lo, hi, codes: [v, ...codes] };
  }
  return { lo, hi, codes: [] };
}

/** A numeric or integer unit can take some value other than x's. */
export function canMove(dom: Domain, xv: number): boolean {
  return dom.lo <= dom.hi && !(dom.lo === xv && dom.hi === xv);
}

/**
 * Puts value `v` for a numeric/integer unit into x's domain: clamped, and for integers rounded away
 * from x (so a step that crossed the boundary still does) unless that leaves the domain. An empty
 * domain leaves x's value.
 */
export function admissible(u: Unit, dom: Domain, xv: number, v: number): number {
  if (dom.lo > dom.hi) return xv;
  let w = Math.min(dom.hi, Math.max(dom.lo, v));
  if (u.kind === 'integer') {
    const delta = w - xv;
    const r = xv + Math.sign(delta) * Math.ceil(Math.abs(delta) - 1e-9);
    w = r > dom.hi || r < dom.lo ? xv + Math.sign(delta) * Math.floor(Math.abs(delta) + 1e-9) : r;
  }
  return w;
}

/** The shortest decimal that is the same float32 (0.278, not 0.27799999713897705). */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v) || Number.isInteger(v)) return v;
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const r = Number(f.toPrecision(p));
    if (Math.fround(r) === f) return r;
  }
  return f;
}
