/** Pieces the route declarations share: response specs, query schemas, cache headers. */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { errorBodySchema } from '../../service/schemas/responses.js';
import type { AppContext } from '../context.js';
import type { ResponseSpec } from '../route.js';
import { FORMATS } from '../negotiate.js';

export const nameParams = z.object({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
    .meta({ description: 'A served model' }),
});

const svg = z.string().meta({ description: 'An SVG document' });
const html = z.string().meta({ description: 'A self-contained HTML page' });
const png = z.string().meta({ format: 'binary', description: 'PNG bytes' });

export const json = (description: string, schema: z.ZodType): ResponseSpec => ({ description, content: { 'application/json': schema } });

/** JSON by default; a chart, its PNG or an HTML report by content negotiation (Accept or ?format=). */
export const visual = (description: string, schema: z.ZodType): ResponseSpec => ({
  description,
  content: { 'application/json': schema, 'image/svg+xml': svg, 'image/png': png, 'text/html': html },
});

export const htmlPage = (description: string): ResponseSpec => ({ description, content: { 'text/html': html } });
export const svgImage = (description: string): ResponseSpec => ({ description, content: { 'image/svg+xml': svg } });
export const pngImage = (description: string): ResponseSpec => ({ description, content: { 'image/png': png } });

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Bad input: the message says what was wrong and how to fix it',
  401: 'A key is needed, or the key or signature is not valid',
  403: "The key's scope does not include this model",
  404: 'No such model, route or resource',
  406: 'None of the acceptable media types',
  409: 'Not ready: too little data yet',
  410: 'The model version this resource was made with is no longer served',
  413: 'The body is larger than the limit',
  415: 'The body is not JSON (or, for job uploads, CSV / NDJSON), or its Content-Encoding is not supported',
  422: 'TOO_EXPENSIVE: the estimated model evaluations exceed the per-request budget (POST /v1/jobs takes such work)',
  429: 'The worker queue is full (Retry-After)',
  503: 'The deadline passed before an answer (DEADLINE_EXCEEDED), or the job queue is unreachable (QUEUE_UNAVAILABLE)',
};

/** Error responses, all with the Error schema. Every route gets 400, 401, 403 (with keys), 404 and 500. */
export function errors(...statuses: number[]): Record<number, ResponseSpec> {
  const all = [...new Set([400, 401, 404, ...statuses])];
  return Object.fromEntries(
    [...all.map((s) => [s, ERROR_DESCRIPTIONS[s] ?? 'Error'] as const), [500, "The service's fault (logged)"] as const].map(([s, d]) => [
      s,
      { description: d, content: { 'application/json': errorBodySchema } },
    ]),
  );
}

export const formatQuery = {
  format: z.enum(FORMATS).optional().meta({ description: 'Overrides the Accept header' }),
};

export const topKQuery = { topK: z.string().regex(/^\d+$/).optional().meta({ description: 'Features shown, largest first' }) };

/** Cache-Control for GET chart URLs: immutable for permalinks, CHART_MAX_AGE otherwise; private with keys. */
export function cacheHeaders(app: AppContext, res: Response, immutable: boolean): void {
  const scope = app.config.apiKeys ? 'private' : 'public';
  res.setHeader(
    'Cache-Control',
    immutable ? `${scope}, max-age=31536000, immutable` : `${scope}, max-age=${app.config.chartMaxAgeSeconds}`,
  );
  res.vary('Accept');
}

/** The query as a plain record (Express's parsed query). */
export function queryOf(req: Request): Record<string, unknown> {
  return req.query as Record<string, unknown>;
}

/** `?version=`, which the OpenAPI document adds to every route that pins a model version (server/route.ts). */
export const versionQuery = {
  version: z.string().optional().meta({ description: 'Pin a served version (content hash or versions/ label); default: the newest' }),
};
