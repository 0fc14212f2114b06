/**
 * Turns what a caller names (a feature, a one-hot group) into the columns the effect moves, and
 * checks the data the effects average over. Everything a caller can get wrong surfaces here as an
 * ExplainerInputError before the model is called.
 */
import { ExplainerInputError, type FeatureSpace, type Model, type Rows } from '../types.js';
import { permutation, seededRng } from '../random.js';
import { checkRows } from '../rows.js';
import type { FeatureKind } from './types.js';

/** A feature as the effects see it: one column, or a one-hot group whose columns move together. */
export interface EffectFeature {
  name: string;
  columns: number[];
  kind: FeatureKind;
  /** One-hot: the member columns' names (the category labels). */
  members?: string[];
}

/** Facts about the columns that FeatureSpace does not carry (from the model's metadata). */
export interface FeatureInfo {
  /** Per column: metadata type (numeric, integer, binary, categorical, one-hot, pixel). */
  featureTypes?: (string | undefined)[];
  /** Names of space.groups, index by index (metadata `group`). */
  groupNames?: string[];
}

export interface FeatureCatalogue {
  /** Every feature a caller may name: groups and the columns in no group, by first column. */
  features: EffectFeature[];
  byName: Map<string, EffectFeature>;
  /** For each column: the group feature it belongs to, if any. */
  groupOf: (EffectFeature | undefined)[];
}

const CATEGORICAL_TYPES = new Set(['categorical', 'binary', 'one-hot']);

export function featureCatalogue(space: FeatureSpace, d: number, info: FeatureInfo = {}): FeatureCatalogue {
  const names = Array.from({ length: d }, (_, j) => space.featureNames?.[j] ?? `x${j}`);
  const groupOf: (EffectFeature | undefined)[] = new Array(d).fill(undefined);
  const features: EffectFeature[] = [];
  for (const [g, columns] of (space.groups ?? []).entries()) {
    if (!Array.isArray(columns) || columns.length === 0) throw new ExplainerInputError('BAD_GROUPS', `group ${g} is empty`);
    const sorted = [...columns].sort((a, b) => a - b);
    for (const c of sorted) {
      if (!(Number.isInteger(c) && c >= 0 && c < d)) throw new ExplainerInputError('BAD_GROUPS', `group ${g} names column ${c}, outside 0..${d - 1}`);
      if (groupOf[c]) throw new ExplainerInputError('BAD_GROUPS', `column ${c} is in two groups`);
    }
    // A one-column "group" is just that column.
    if (sorted.length === 1) continue;
    const feature: EffectFeature = {
      name: info.groupNames?.[g] ?? commonName(sorted.map((c) => names[c])),
      columns: sorted,
      kind: 'one-hot',
      members: sorted.map((c) => names[c]),
    };
    for (const c of sorted) groupOf[c] = feature;
    features.push(feature);
  }
  for (let j = 0; j < d; j++) {
    if (groupOf[j]) continue;
    const type = info.featureTypes?.[j];
    features.push({ name: names[j], columns: [j], kind: type !== undefined && CATEGORICAL_TYPES.has(type) ? 'categorical' : 'numeric' });
  }
  features.sort((a, b) => a.columns[0] - b.columns[0]);
  const byName = new Map<string, EffectFeature>();
  for (const f of features) if (!byName.has(f.name)) byName.set(f.name, f);
  return { features, byName, groupOf };
}

/**
 * "color=red", "color=blue" -> "color": the members' common prefix up to its last separator, else
 * the names joined with "+". (Same convention as permutation importance's unnamed groups.)
 */
function commonName(members: string[]): string {
  let prefix = members[0];
  for (const name of members) while (!name.startsWith(prefix)) prefix = prefix.slice(0, -1);
  const cut = Math.max(...[...'=_:.-[( '].map((sep) => prefix.lastIndexOf(sep)));
  const name = cut > 0 ? prefix.slice(0, cut).replace(/[=_:.\-[( ]+$/, '') : '';
  return name.length > 0 ? name : members.join('+');
}

export function resolveFeature(catalogue: FeatureCatalogue, name: unknown): EffectFeature {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ExplainerInputError('UNKNOWN_FEATURE', `features must be feature names (strings), got ${JSON.stringify(name)}`);
  }
  const f = catalogue.byName.get(name);
  if (f) return f;
  const member = catalogue.features.find((g) => g.kind === 'one-hot' && g.members!.includes(name));
  if (member) {
    throw new ExplainerInputError(
      'BAD_FEATURE',
      `"${name}" is one column of the one-hot group "${member.name}", whose columns move together: ask for "${member.name}"`,
      { feature: name, group: member.name },
    );
  }
  const known = catalogue.features.map((x) => x.name);
  throw new ExplainerInputError(
    'UNKNOWN_FEATURE',
    `no feature named "${name}"; known features: ${known.slice(0, 30).join(', ')}${known.length > 30 ? ', ...' : ''}`,
    { feature: name, known },
  );
}

/** Checks the data matrix: rows of the model's width, finite, at least one row. */
export function checkData(model: Model, data: Rows | undefined, what = 'data'): Rows {
  return checkRows(data, model.nFeatures, {
    code: 'BAD_DATA',
    what,
    tooFew: { code: 'EMPTY_DATA', message: `${what} has no rows: effects average over rows of data, give at least one` },
  });
}

/** Output indices to report: all by default. */
export function checkOutputs(model: Model, outputs: number[] | undefined): number[] {
  const all = Array.from({ length: model.nOutputs }, (_, i) => i);
  if (outputs === undefined) return all;
  if (!Array.isArray(outputs) || outputs.length === 0) throw new ExplainerInputError('BAD_OUTPUTS', 'outputs must list at least one output index');
  for (const o of outputs) {
    if (!Number.isInteger(o) || o < 0 || o >= model.nOutputs) {
      throw new ExplainerInputError('BAD_OUTPUTS', `output ${o} does not exist: the model has outputs 0..${model.nOutputs - 1}`);
    }
  }
  if (new Set(outputs).size !== outputs.length) throw new ExplainerInputError('BAD_OUTPUTS', 'outputs lists an output twice');
  return outputs;
}

/**
 * At most `max` rows, drawn without replacement with a seeded permutation (kept in data order, so
 * the same seed gives the same rows); all rows, in order, when there are no more than `max`.
 */
export function subsampleRows(data: Rows, max: number, seed: number): { rows: Rows; indices: number[] } {
  if (data.n <= max) return { rows: data, indices: Array.from({ length: data.n }, (_, i) => i) };
  const picked = Array.from(permutation(seededRng(seed), data.n).subarray(0, max)).sort((a, b) => a - b);
  const out = new Float32Array(max * data.d);
  picked.forEach((r, i) => out.set(data.data.subarray(r * data.d, (r + 1) * data.d), i * data.d));
  return { rows: { data: out, n: max, d: data.d }, indices: picked };
}

/** The value a row has for a feature: the column's value, or the one-hot category position. */
export function featureValue(f: EffectFeature, data: Rows, row: number): number {
  const base = row * data.d;
  if (f.kind !== 'one-hot') return data.data[base + f.columns[0]];
  for (let k = 0; k < f.columns.length; k++) if (data.data[base + f.columns[k]] > 0.5) return k;
  return f.columns.length; // every member 0: the dropped reference category
}

export function featureValues(f: EffectFeature, data: Rows): Float64Array {
  const out = new Float64Array(data.n);
  for (let i = 0; i < data.n; i++) out[i] = featureValue(f, data, i);
  return out;
}

/** Writes grid value v of feature f into the row starting at buffer[at]. */
export function setFeature(f: EffectFeature, buffer: Float32Array, at: number, v: number): void {
  const cols = f.columns;
  if (f.kind !== 'one-hot') {
    buffer[at + cols[0]] = v;
    return;
  }
  for (let k = 0; k < cols.length; k++) buffer[at + cols[k]] = k === v ? 1 : 0;
}

/** Labels of one-hot category positions (k = members.length is "(none)") or categorical codes. */
export function categoryLabels(f: EffectFeature, grid: number[]): string[] | undefined {
  if (f.kind === 'numeric') return undefined;
  if (f.kind === 'categorical') return grid.map((v) => String(v));
  return grid.map((k) => (k < f.members!.length ? f.members![k] : '(none)'));
}
