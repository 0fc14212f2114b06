/**
 * Embedding without JavaScript: chart URLs that work in an <img> tag.
 * - GET /v1/explanations/:id.(svg|png|html|json): a stored explanation by id, recomputed identically
 *   from its persisted request when it has left the cache.
 * - GET /v1/models/:name/explain.(svg|png|html|json)?age=42&...: an instance by feature name (missing
 *   features from the background median), method and parameters in the query.
 * - GET /v1/models/:name/importance.(svg|png|html|json): permutation importance on the reference set.
 * - POST /v1/signed-urls: mints an expiring signed URL for one of these, for services that need keys.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { ApiError } from '../errors.js';
import { FORMATS, type Format } from '../negotiate.js';
import { getModel, type ServedModel } from '../registry.js';
import { parseWith } from '../schemas.js';
import { signUrl } from '../signing.js';
import { checkModelAccess } from '../auth.js';
import { computeExplanation, sendExplanation, visualOptions, type ExplainBody } from './explain.js';
import { renderImportance, renderImportanceReport } from '../../render/index.js';
import { sendVisual } from '../negotiate.js';

/** Query keys that are not feature values. A feature named like one of these is passed as f.<name>. */
const RESERVED = new Set([
  'method',
  'plot',
  'topK',
  'instance',
  'format',
  'outputs',
  'nSamples',
  'seed',
  'link',
  'tolerance',
  'deadlineMs',
  'maxBackground',
  'steps',
  'quadrature',
  'baseline',
  'maxSteps',
  'repeats',
  'metric',
  'expires',
  'sig',
]);

const medians = new WeakMap<ServedModel, number[]>();
/** Per-feature median of the background: the stated default for features a URL leaves out. */
export function backgroundMedian(m: ServedModel): number[] | undefined {
  if (!m.background) return undefined;
  let v = medians.get(m);
  if (!v) {
    const { data, n, d } = m.background;
    v = Array.from({ length: d }, (_, j) => {
      const col = Array.from({ length: n }, (_, i) => data[i * d + j]).sort((a, b) => a - b);
      return n % 2 ? col[(n - 1) / 2] : (col[n / 2 - 1] + col[n / 2]) / 2;
    });
    medians.set(m, v);
  }
  return v;
}

function single(req: Request, key: string): string | undefined {
  const v = req.query[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new ApiError('BAD_PARAMETER', `query parameter ${key} is given more than once`);
  return v;
}

function num(req: Request, key: string): number | undefined {
  const v = single(req, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new ApiError('BAD_PARAMETER', `query parameter ${key}="${v}" is not a number`);
  return n;
}

/** The GET form's query as the POST body it stands for, and which features took their default. */
export function bodyFromQuery(req: Request, m: ServedModel): { body: ExplainBody; defaulted: string[] } {
  const names = m.space.featureNames;
  const index = new Map(names.map((n, i) => [n, i]));
  const given = new Map<number, number>();
  for (const [rawKey, raw] of Object.entries(req.query)) {
    const key = rawKey.startsWith('f.') ? rawKey.slice(2) : rawKey;
    if (!rawKey.startsWith('f.') && RESERVED.has(key)) continue;
    const j = index.get(key);
    if (j === undefined) {
      throw new ApiError(
        'UNKNOWN_FEATURE',
        `unknown query parameter or feature "${rawKey}"; features are ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}`,
      );
    }
    if (typeof raw !== 'string') throw new ApiError('BAD_INSTANCE', `feature "${key}" is given more than once`);
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) throw new ApiError('BAD_INSTANCE', `feature "${key}"="${raw}" is not a finite number`);
    given.set(j, v);
  }
  const median = backgroundMedian(m);
  const defaulted = names.filter((_, j) => !given.has(j));
  if (defaulted.length && !median) {
    throw new ApiError(
      'MISSING_FEATURE',
      `model "${m.name}" has no background to take defaults from; give every feature: missing ${defaulted.slice(0, 5).join(', ')}`,
    );
  }
  const row = names.map((_, j) => given.get(j) ?? median![j]);
  const method = single(req, 'method') ?? 'kernel-shap';
  const parameters: Record<string, unknown> = {};
  const put = (key: string, value: unknown) => value !== undefined && (parameters[key] = value);
  if (method === 'kernel-shap') {
    const ns = single(req, 'nSamples');
    put('nSamples', ns === 'auto' ? 'auto' : num(req, 'nSamples'));
    put('seed', num(req, 'seed'));
    put('link', single(req, 'link'));
    put('tolerance', num(req, 'tolerance'));
    put('maxBackground', num(req, 'maxBackground'));
  } else {
    const st = single(req, 'steps');
    put('steps', st === 'auto' ? 'auto' : num(req, 'steps'));
    put('method', single(req, 'quadrature'));
    put('baseline', single(req, 'baseline'));
    put('tolerance', num(req, 'tolerance'));
    put('maxSteps', num(req, 'maxSteps'));
  }
  put('deadlineMs', num(req, 'deadlineMs'));
  const outputs = single(req, 'outputs')
    ?.split(',')
    .map((o) => (/^\d+$/.test(o) ? Number(o) : o));
  return { body: { instances: [row], method, ...(outputs ? { outputs } : {}), parameters }, defaulted };
}

function splitFile(file: string, what: string): { stem: string; format: Format } {
  const dot = file.lastIndexOf('.');
  const ext = dot < 0 ? '' : file.slice(dot + 1);
  if (!(FORMATS as readonly string[]).includes(ext)) {
    throw new ApiError('NOT_FOUND', `${what} URLs end in .svg, .png, .html or .json`);
  }
  return { stem: file.slice(0, dot), format: ext as Format };
}

function cacheHeaders(ctx: AppContext, req: Request, res: Response, immutable: boolean): void {
  const scope = ctx.config.apiKeys ? 'private' : 'public';
  res.setHeader(
    'Cache-Control',
    immutable ? `${scope}, max-age=31536000, immutable` : `${scope}, max-age=${ctx.config.chartMaxAgeSeconds}`,
  );
  res.vary('Accept');
  void req;
}

export function embedRoutes(ctx: AppContext): Router {
  const r = Router();

  r.get('/v1/explanations/:file', async (req, res) => {
    const { stem: id, format } = splitFile(req.params.file, 'explanation');
    const record = ctx.records ? await ctx.records.get(id) : undefined;
    if (!record)
      throw new ApiError('NOT_FOUND', `no explanation with id "${id.slice(0, 40)}"; ids come from POST /v1/models/:name/explain`);
    const m = getModel(ctx.registry, record.model, req);
    if (m.version !== record.version) {
      throw new ApiError(
        'MODEL_VERSION_GONE',
        `explanation ${id} was made with version ${record.version} of model "${m.name}", which now serves version ${m.version}; explain again`,
        {
          recorded: record.version,
          served: m.version,
        },
      );
    }
    const { explanation } = await computeExplanation(ctx, m, record.body);
    // The id pins the model version and the request: the answer never changes.
    cacheHeaders(ctx, req, res, true);
    sendExplanation(res, m, { ...explanation, cached: true }, format, visualOptions(ctx, req));
  });

  r.get('/v1/models/:name/:file', async (req, res, next) => {
    const dot = req.params.file.lastIndexOf('.');
    const action = dot < 0 ? req.params.file : req.params.file.slice(0, dot);
    if (action !== 'explain' && action !== 'importance') return next();
    const { format } = splitFile(req.params.file, action);
    const m = getModel(ctx.registry, req.params.name, req);
    if (action === 'explain') {
      const visual = visualOptions(ctx, req);
      const { body, defaulted } = bodyFromQuery(req, m);
      const { explanation, cacheState } = await computeExplanation(ctx, m, body);
      await ctx.records?.put(explanation.id, { model: m.name, version: m.version, body });
      res.setHeader('X-Cache', cacheState);
      if (defaulted.length) res.setHeader('X-Defaulted-Features', defaulted.join(',').slice(0, 2000));
      cacheHeaders(ctx, req, res, false);
      sendExplanation(res, m, explanation, format, visual);
      return;
    }
    if (!m.reference)
      throw new ApiError(
        'NO_REFERENCE_DATA',
        `model "${m.name}" has no reference set; POST /v1/models/${m.name}/importance with data and labels`,
      );
    const repeats = num(req, 'repeats') ?? 5;
    if (!Number.isInteger(repeats) || repeats < 1 || repeats > ctx.config.maxRepeats) {
      throw new ApiError('BAD_PARAMETER', `repeats must be an integer from 1 to ${ctx.config.maxRepeats}`);
    }
    const task = m.metadata?.task;
    const metric = single(req, 'metric') ?? (task === 'regression' ? 'r2' : 'accuracy');
    const parsedMetric = parseWith(ctx.schemas.importance.shape.metric, metric, 'metric', 'BAD_PARAMETER');
    const seed = num(req, 'seed') ?? 0;
    const result = await ctx.executor.run({
      kind: 'importance',
      model: m.name,
      version: m.version,
      options: { metric: parsedMetric ?? 'accuracy', repeats, seed, task, maxSamples: Math.min(1000, m.reference.rows.n) },
    });
    cacheHeaders(ctx, req, res, false);
    if (format === 'json') {
      res.json({ model: { name: m.name, version: m.version }, dataset: 'reference', ...result });
      return;
    }
    const topK = num(req, 'topK');
    sendVisual(res, format, {
      svg: () => renderImportance(result, { topK }),
      html: () => renderImportanceReport(result, { name: m.name, version: m.version, description: m.metadata?.description }, { topK }),
    });
  });

  const SignRequest = z.strictObject({
    path: z
      .string()
      .regex(
        /^\/v1\/(models\/[^/?#]+\/(explain|importance)|explanations\/[0-9a-f]{32})\.(svg|png|html|json)(\?.*)?$/,
        'path must be a chart URL: /v1/models/<name>/explain.svg?..., /v1/models/<name>/importance.svg or /v1/explanations/<id>.svg',
      ),
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(366 * 24 * 3600)
      .default(7 * 24 * 3600),
  });
  r.post('/v1/signed-urls', async (req, res) => {
    if (!ctx.signingKey)
      throw new ApiError(
        'INVALID_REQUEST',
        'signed URLs need API_KEYS or SIGNING_KEY to be configured; without keys every URL works as it is',
      );
    const p = parseWith(SignRequest, req.body);
    if (/[?&](expires|sig)=/.test(p.path)) throw new ApiError('INVALID_REQUEST', 'path must not carry expires or sig already');
    const model = /^\/v1\/models\/([^/?#]+)\//.exec(p.path)?.[1];
    if (model) checkModelAccess(req, decodeURIComponent(model));
    else {
      const id = /explanations\/([0-9a-f]{32})/.exec(p.path)![1];
      const record = await ctx.records?.get(id);
      if (!record) throw new ApiError('NOT_FOUND', `no explanation with id ${id}`);
      checkModelAccess(req, record.model);
    }
    const expiresAt = Math.floor(Date.now() / 1000) + p.ttlSeconds;
    res.status(201).json({ url: signUrl(ctx.signingKey, p.path, expiresAt), expiresAt: new Date(expiresAt * 1000).toISOString() });
  });

  return r;
}
