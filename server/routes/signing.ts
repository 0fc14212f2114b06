/** POST /v1/signed-urls: mints an expiring signed URL for a chart URL, for tools that cannot send keys. */
import type { Request } from 'express';
import { z } from 'zod';
import { ServiceError } from '../../service/errors.js';
import { parseWith } from '../../service/schemas/common.js';
import { signedUrlResponseSchema } from '../../service/schemas/responses.js';
import type { AppContext } from '../context.js';
import type { RouteSpec } from '../route.js';
import { signUrl } from '../signing.js';
import { errors, json } from './common.js';

export const signRequestSchema = z.strictObject({
  path: z
    .string()
    .regex(
      /^\/v1\/(models\/[^/?#]+\/(explain|importance|effects|counterfactuals)|explanations\/[0-9a-f]{32})\.(svg|png|html|json)(\?.*)?$/,
      'path must be a chart URL: /v1/models/<name>/explain.svg?..., /v1/models/<name>/importance.svg, /v1/models/<name>/effects.svg?..., /v1/models/<name>/counterfactuals.svg?... or /v1/explanations/<id>.svg',
    ),
  ttlSeconds: z
    .number()
    .int()
    .min(1)
    .max(366 * 24 * 3600)
    .default(7 * 24 * 3600),
});

/** The model a chart URL shows: named in it, or that of the stored explanation it names. */
async function modelOfPath(req: Request, app: AppContext): Promise<{ model: string; resource: z.infer<typeof signRequestSchema> }> {
  if (!app.signingKey)
    throw new ServiceError(
      'INVALID_REQUEST',
      'signed URLs need API_KEYS or SIGNING_KEY to be configured; without keys every URL works as it is',
    );
  const p = parseWith(signRequestSchema, req.body);
  if (/[?&](expires|sig)=/.test(p.path)) throw new ServiceError('INVALID_REQUEST', 'path must not carry expires or sig already');
  const named = /^\/v1\/models\/([^/?#]+)\//.exec(p.path)?.[1];
  if (named) return { model: decodeURIComponent(named), resource: p };
  const id = /explanations\/([0-9a-f]{32})/.exec(p.path)![1];
  const record = await app.svc.records.get(id);
  if (!record) throw new ServiceError('NOT_FOUND', `no explanation with id ${id}`);
  return { model: record.model, resource: p };
}

export function signingRoutes(app: AppContext): RouteSpec[] {
  return [
    {
      method: 'post',
      path: '/v1/signed-urls',
      summary: 'Mint an expiring signed URL (HMAC-SHA256 over path, query and expiry) for a chart URL of a model in scope',
      access: { from: 'lookup', lookup: modelOfPath },
      request: { body: signRequestSchema, bodyRequired: true },
      responses: { 201: json('The signed URL and when it expires', signedUrlResponseSchema), ...errors(403, 413, 415) },
      handle(_req, res, { resource }) {
        const p = resource as z.infer<typeof signRequestSchema>;
        const expiresAt = Math.floor(Date.now() / 1000) + p.ttlSeconds;
        res.status(201).json({ url: signUrl(app.signingKey!, p.path, expiresAt), expiresAt: new Date(expiresAt * 1000).toISOString() });
      },
    },
  ];
}
