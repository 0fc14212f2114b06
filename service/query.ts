/**
 * The GET chart URL's query (GET /v1/models/:name/explain.svg?age=42&method=...) as the POST body it
 * stands for: features by name (missing ones take the background median, reported back), method and
 * parameters by the method's own query keys (service/methods). The query arrives as a plain record.
 */
import type { ServedModel } from '../models/served.js';
import { quantileSorted } from '../stats/quantile.js';
import { ServiceError } from './errors.js';
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

/** The GET form's query as the POST body it stands for, and which features took their default. */
export function explainBodyFromQuery(query: Query, m: ServedModel): { body: ExplainBody; defaulted: string[] } {
  const names = m.space.featureNames;
  const index = new Map(names.map((n, i) => [n, i]));
  const given = new Map<number, number>();
  for (const [rawKey, raw] of Object.entries(query)) {
    const prefixed = rawKey.startsWith('f.');
    const key = prefixed ? rawKey.slice(2) : rawKey;
    if (!prefixed && RESERVED_QUERY_KEYS.has(key)) continue;
    const j = index.get(key);
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
  const median = backgroundMedian(m);
  const defaulted = names.filter((_, j) => !given.has(j));
  if (defaulted.length && !median) {
    throw new ServiceError(
      'MISSING_FEATURE',
      `model "${m.name}" has no background to take defaults from; give every feature: missing ${defaulted.slice(0, 5).join(', ')}`,
    );
  }
  const row = names.map((_, j) => given.get(j) ?? median![j]);
  const q = queryReader(query);
  const method = checkMethod(q.string('method') ?? DEFAULT_METHOD);
  const parameters = Object.fromEntries(Object.entries(EXPLAIN_METHODS[method].fromQuery(q)).filter(([, v]) => v !== undefined));
  const outputs = q
    .string('outputs')
    ?.split(',')
    .map((o) => (/^\d+$/.test(o) ? Number(o) : o));
  return { body: { instances: [row], method, ...(outputs ? { outputs } : {}), parameters }, defaulted };
}
