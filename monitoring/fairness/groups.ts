/**
 * Which group each row belongs to, for one sensitive attribute or the intersection of two.
 *
 * A sensitive attribute is either one column whose distinct values are the groups (a binary,
 * integer or categorical code), or a one-hot group of columns whose active member is the group.
 * Continuous columns are refused: the caller bins them first, since group boundaries on, say, age
 * are a policy choice this service should not make silently.
 */
import { ExplainerInputError, type FeatureSpace, type Rows } from '../../explainers/types.js';
import type { FeatureInfo } from '../features.js';

export interface SensitiveAttribute {
  /** The feature or group name the caller used. */
  name: string;
  kind: 'value' | 'one-hot';
  /** One column for 'value', the member columns for 'one-hot'. */
  columns: number[];
  /** Levels that must each have rows (a declared binary feature: [0, 1]). */
  declaredLevels?: number[];
  /**
   * Names for the groups' labels, from metadata categories: per value ('value' attributes, sex 0 ->
   * "male"), or per member column ('one-hot': the category each column stands for).
   */
  valueLabels?: { value: number; label: string }[];
  memberLabels?: string[];
}

/** Groups with more levels than this are taken for a continuous variable. */
export const MAX_GROUP_LEVELS = 20;

export function resolveSensitive(names: string[], space: FeatureSpace, info: FeatureInfo = {}): SensitiveAttribute[] {
  if (names.length === 0) {
    throw new ExplainerInputError(
      'NO_SENSITIVE_FEATURES',
      'no sensitive features: the model declares none in its metadata; name them in sensitiveFeatures',
    );
  }
  if (new Set(names).size !== names.length) throw new ExplainerInputError('BAD_PARAMETER', 'sensitiveFeatures lists a feature twice');
  return names.map((name) => {
    const group = info.groups?.find((g) => g.name === name);
    if (group) {
      // A member's category: its metadata label for the value 1, else its column name without the "<group>_" prefix.
      const memberLabels = group.columns.map((c) => {
        const label = info.categories?.[c]?.find((k) => k.value === 1)?.label;
        const column = space.featureNames[c];
        const prefix = `${name}_`;
        return label ?? (column.startsWith(prefix) && column.length > prefix.length ? column.slice(prefix.length) : column);
      });
      return { name, kind: 'one-hot', columns: group.columns.slice(), memberLabels };
    }
    const j = space.featureNames.indexOf(name);
    if (j < 0) {
      const groups = (info.groups ?? []).map((g) => g.name);
      throw new ExplainerInputError(
        'UNKNOWN_FEATURE',
        `sensitive feature "${name}" is neither a feature nor a feature group of this model; features: ${space.featureNames.slice(0, 20).join(', ')}` +
          (groups.length ? `; groups: ${groups.join(', ')}` : ''),
        { unknown: [name] },
      );
    }
    const type = info.types?.[j];
    const valueLabels = info.categories?.[j];
    return {
      name,
      kind: 'value',
      columns: [j],
      ...(type === 'binary' ? { declaredLevels: [0, 1] } : {}),
      ...(valueLabels ? { valueLabels } : {}),
    };
  });
}

export interface Grouping {
  /** The sensitive attributes this grouping crosses (one, or two for an intersection). */
  features: string[];
  /**
   * Per group: a readable label ("sex=female", "sex=female & race=2": metadata's category label when
   * there is one, else the value or member column) and the level of each attribute.
   */
  groups: { label: string; key: Record<string, number | string> }[];
  /** Group of each row, an index into `groups`. */
  index: Int32Array;
  /** Rows per group (intersections may have empty cells). */
  counts: Int32Array;
}

interface Levels {
  labels: string[];
  keys: (number | string)[];
  index: Int32Array;
}

const NONE = '(none)';

function levelsOf(rows: Rows, attr: SensitiveAttribute, featureNames: string[], maxLevels: number): Levels {
  const { n, d, data } = rows;
  if (attr.kind === 'one-hot') {
    // The active member (value 1) names the group; a row with no active member is its own group.
    const names = attr.columns.map((c) => featureNames[c]);
    const raw = new Int32Array(n);
    let anyNone = false;
    for (let i = 0; i < n; i++) {
      raw[i] = -1;
      for (let m = 0; m < attr.columns.length; m++) {
        if (data[i * d + attr.columns[m]] >= 0.5) {
          raw[i] = m;
          break;
        }
      }
      if (raw[i] < 0) anyNone = true;
    }
    const keys: (number | string)[] = [...names, ...(anyNone ? [NONE] : [])];
    const shown = [...(attr.memberLabels ?? names), ...(anyNone ? [NONE] : [])];
    const index = Int32Array.from(raw, (m) => (m < 0 ? names.length : m));
    return { labels: shown.map((k) => `${attr.name}=${k}`), keys, index };
  }
  const c = attr.columns[0];
  const distinct = new Set<number>(attr.declaredLevels ?? []);
  for (let i = 0; i < n; i++) {
    distinct.add(data[i * d + c]);
    if (distinct.size > maxLevels) {
      throw new ExplainerInputError(
        'BAD_SENSITIVE_FEATURE',
        `sensitive feature "${attr.name}" has more than ${maxLevels} distinct values, so it looks continuous: ` +
          'send it binned into a few levels (e.g. age bands coded 0, 1, 2)',
        { feature: attr.name, maximum: maxLevels },
      );
    }
  }
  const values = [...distinct].sort((a, b) => a - b);
  const at = new Map(values.map((v, k) => [v, k]));
  const index = new Int32Array(n);
  for (let i = 0; i < n; i++) index[i] = at.get(data[i * d + c])!;
  const named = (v: number) => attr.valueLabels?.find((k) => k.value === v)?.label ?? String(v);
  return { labels: values.map((v) => `${attr.name}=${named(v)}`), keys: values, index };
}

function countOf(index: Int32Array, k: number): Int32Array {
  const counts = new Int32Array(k);
  for (let i = 0; i < index.length; i++) counts[index[i]]++;
  return counts;
}

/**
 * The groups of one attribute. Every declared level (a binary feature's 0 and 1, every member of a
 * one-hot group) must have rows, and there must be at least two groups: fairness compares groups.
 */
export function groupBy(rows: Rows, attr: SensitiveAttribute, featureNames: string[], maxLevels = MAX_GROUP_LEVELS): Grouping {
  const lv = levelsOf(rows, attr, featureNames, maxLevels);
  const counts = countOf(lv.index, lv.labels.length);
  const empty = lv.labels.filter((_, k) => counts[k] === 0);
  if (empty.length) {
    throw new ExplainerInputError(
      'EMPTY_GROUP',
      `no rows in group${empty.length > 1 ? 's' : ''} ${empty.join(', ')} of sensitive feature "${attr.name}": ` +
        'a group without rows has no rates to compare; send data that covers every group',
      { feature: attr.name, emptyGroups: empty },
    );
  }
  if (lv.labels.length < 2) {
    throw new ExplainerInputError(
      'EMPTY_GROUP',
      `sensitive feature "${attr.name}" takes one value (${lv.labels[0] ?? 'none'}) in these rows: fairness compares at least two groups`,
      { feature: attr.name, groups: lv.labels },
    );
  }
  return {
    features: [attr.name],
    groups: lv.labels.map((label, k) => ({ label, key: { [attr.name]: lv.keys[k] } })),
    index: lv.index,
    counts,
  };
}

/**
 * The intersection of two groupings: every combination of their levels, in row-major order of
 * (first, second), including combinations with no rows (Fairlearn reindexes to the full product
 * too); empty cells get count 0 and undefined metrics.
 */
export function intersect(a: Grouping, b: Grouping): Grouping {
  const kb = b.groups.length;
  const groups = a.groups.flatMap((ga) => b.groups.map((gb) => ({ label: `${ga.label} & ${gb.label}`, key: { ...ga.key, ...gb.key } })));
  const index = Int32Array.from(a.index, (ia, i) => ia * kb + b.index[i]);
  return { features: [...a.features, ...b.features], groups, index, counts: countOf(index, groups.length) };
}
