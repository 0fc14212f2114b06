/**
 * The GET chart URL's query (GET /v1/models/:name/explain.svg?age=42&method=...) as the POST body it
 * stands for: features by name (missing ones take the background median, reported back; the columns
 * of a one-hot group the background's most frequent category; a group may be given by name and
 * category, housing=mortgage), method and parameters by the method's own query keys
 * (service/methods). The query arrives as a plain record.
 */
import type { ServedModel } from '../models/served.js';
import { quantileSorted } from '../stats/quantile.js';
import { ServiceError } from './errors.js';
import { groupInfo, type GroupInfo } from './groups.js';
import { DEFAULT_METHOD, EXPLAIN_METHODS, checkMethod } from './methods/index.js';
import type { QueryReader } from './methods/types.js';
import type { ExplainBody } from './schemas/requests.js';

export type Query = Record<string, unknown>;

/** Query keys that are not feature values (a feature named like one of these is passed as f.<name>). */
export const RESERVED_QUERY_KEYS: ReadonlySet<string> = new Set([
  'method',
  'plot',
  'topK',
  'instance',
  'format',
  'outputs',
  'repeats',
  'metric',
  'expires',
  'sig',
  'version',
  'text',
  ...Object.values(EXPLAIN_METHODS).flatMap((m) => m.queryKeys),
]);

export function queryReader(query: Query): QueryReader {
  const string = (key: string): string | undefined => {
    const v = query[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new ServiceError('BAD_PARAMETER', `query parameter ${key} is given more than once`);
    return v;
  };
  const number = (key: string): number | undefined => {
    const v = string(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new ServiceError('BAD_PARAMETER', `query parameter ${key}="${v}" is not a number`);
    return n;
  };
  return { string, number, numberOrAuto: (key) => (string(key) === 'auto' ? 'auto' : number(key)) };
}

const medians = new WeakMap<ServedModel, number[]>();

/** Per-feature median of the background: the stated default for features a URL leaves out. */
export function backgroundMedian(m: ServedModel): number[] | undefined {
  if (!m.background) return undefined;
  let v = medians.get(m);
  if (!v) {
    const { data, n, d } = m.background;
    v = Array.from({ length: d }, (_, j) => quantileSorted(Float64Array.from({ length: n }, (_, i) => data[i * d + j]).sort(), 0.5));
    medians.set(m, v);
  }
  return v;
}

const categoryCounts = new WeakMap<ServedModel, Map<string, number[]>>();

/** Per one-hot group, how many background rows are in each member's category. */
function groupCounts(m: ServedModel, groups: GroupInfo[]): Map<string, number[]> {
  let counts = categoryCounts.get(m);
  if (!counts) {
    counts = new Map();
    const bg = m.background;
    for (const g of groups) {
      const c = g.columns.map(() => 0);
      if (bg) for (let i = 0; i < bg.n; i++) g.columns.forEach((col, k) => (c[k] += bg.data[i * bg.d + col] === 1 ? 1 : 0));
      counts.set(g.name, c);
    }
    categoryCounts.set(m, counts);
  }
  return counts;
}

/**
 * Fills the columns of one-hot groups the query left out with a valid one-hot row (never per-column
 * medians, which give rows that cannot exist: all three housing columns 0): a member given as 1 makes
 * the others 0; otherwise the background's most frequent category among the members not given as 0.
 */
function fillGroups(m: ServedModel, given: Map<number, number>): void {
  const groups = groupInfo(m);
  if (!groups.length) return;
  const counts = groupCounts(m, groups);
  for (const g of groups) {
    const missing = g.columns.filter((c) => !given.has(c));
    if (missing.length === 0) continue;
    const on = g.columns.some((c) => given.get(c) === 1);
    const c = counts.get(g.name)!;
    let pick = -1;
    if (!on) {
      for (let k = 0; k < g.columns.length; k++) if (!given.has(g.columns[k]) && (pick < 0 || c[k] > c[pick])) pick = k;
    }
    for (const col of missing) given.set(col, pick >= 0 && col === g.columns[pick] ? 1 : 0);
  }
}

/** A group given by name (`housing=mortgage`): its category by label or member name, as member values. */
function groupFromQuery(m: ServedModel, name: string, raw: unknown, given: Map<number, number>): boolean {
  const g = groupInfo(m).find((x) => x.name === name);
  if (!g) return false;
  if (typeof raw !== 'string') throw new ServiceError('BAD_INSTANCE', `group "${name}" is given more than once`);
  const k = g.columns.findIndex((c, i) => g.categories[i] === raw || m.space.featureNames[c] === raw);
  if (k < 0) {
    throw new ServiceError(
      'BAD_INSTANCE',
      `"${raw}" is not a category of group "${name}"; its categories are ${g.categories.join(', ')}`,
      { group: name, categories: g.categories },
    );
  }
  g.columns.forEach((c, i) => given.set(c, i === k ? 1 : 0));
  return true;
}

/** The GET form's query as the POST body it stands for, and which features took their default. */
export function explainBodyFromQuery(query: Query, m: ServedModel): { body: ExplainBody; defaulted: string[] } {
  if (m.tokenizer) return { body: textBodyFromQuery(query, m), defaulted: [] };
  const { row, defaulted } = instanceFromQuery(query, m, RESERVED_QUERY_KEYS);
  const q = queryReader(query);
  const method = checkMethod(q.string('method') ?? DEFAULT_METHOD);
  const parameters = Object.fromEntries(Object.entries(EXPLAIN_METHODS[method].fromQuery(q)).filter(([, v]) => v !== undefined));
  const rawOutputs = q.string('outputs');
  const outputs =
    rawOutputs === 'all' ? ('all' as const) : rawOutputs?.split(',').map((o) => (/^\d+$/.test(o) ? Number(o) : o));
  return { body: { instances: [row], method, ...(outputs ? { outputs } : {}), parameters }, defaulted };
}

/** Text models: the instance is `text=` (the sentence, URL-encoded); method and parameters as for any model. */
function textBodyFromQuery(query: Query, m: ServedModel): ExplainBody {
  const q = queryReader(query);
  const text = q.string('text');
  if (text === undefined) {
    throw new ServiceError('BAD_INSTANCE', `model "${m.name}" is a text model: give the text to explain as text=... (URL-encoded)`);
  }
  const stray = Object.keys(query).filter((k) => !RESERVED_QUERY_KEYS.has(k));
  if (stray.length) {
    throw new ServiceError('UNKNOWN_FEATURE', `unknown query parameter "${stray[0]}"; a text model takes its instance as text=...`);
  }
  const method = checkMethod(q.string('method') ?? DEFAULT_METHOD);
  const parameters = Object.fromEntries(Object.entries(EXPLAIN_METHODS[method].fromQuery(q)).filter(([, v]) => v !== undefined));
  const outputs = q
    .string('outputs')
    ?.split(',')
    .map((o) => (/^\d+$/.test(o) ? Number(o) : o));
  return { instances: [text], method, ...(outputs ? { outputs } : {}), parameters };
}

/**
 * One instance by feature name from a chart URL's query (f.<name> is <name>; keys in `reserved` are
 * the request's own settings, skipped unless prefixed): a one-hot group may be given by name
 * (`housing=mortgage`); groups left out take the background's most frequent category and the other
 * features left out the background median, all listed in `defaulted`.
 */
export function instanceFromQuery(
  query: Query,
  m: ServedModel,
  reserved: ReadonlySet<string> = new Set(),
): { row: number[]; defaulted: string[] } {
  const names = m.space.featureNames;
  const index = new Map(names.map((n, i) => [n, i]));
  const given = new Map<number, number>();
  for (const [rawKey, raw] of Object.entries(query)) {
    const prefixed = rawKey.startsWith('f.');
    const key = prefixed ? rawKey.slice(2) : rawKey;
    if (!prefixed && reserved.has(key)) continue;
    const j = index.get(key);
    if (j === undefined && groupFromQuery(m, key, raw, given)) continue;
    if (j === undefined) {
      throw new ServiceError(
        'UNKNOWN_FEATURE',
        `unknown query parameter or feature "${rawKey}"; features are ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}`,
      );
    }
    if (typeof raw !== 'string') throw new ServiceError('BAD_INSTANCE', `feature "${key}" is given more than once`);
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v))
      throw new ServiceError('BAD_INSTANCE', `feature "${key}"="${raw}" is not a finite number`);
    given.set(j, v);
  }
  const defaulted = names.filter((_, j) => !given.has(j));
  // One-hot groups first (a valid category), then the medians for the rest.
  if (m.background) fillGroups(m, given);
  const median = backgroundMedian(m);
  if (defaulted.length && !median) {
    throw new ServiceError(
      'MISSING_FEATURE',
      `model "${m.name}" has no background to take defaults from; give every feature: missing ${defaulted.slice(0, 5).join(', ')}`,
    );
  }
  return { row: names.map((_, j) => given.get(j) ?? median![j]), defaulted };
}
