/**
 * HTTP's side of errors: what Express and body-parser throw mapped onto the catalogue
 * (service/errors.ts), unknown routes, and the one middleware that turns whatever was thrown into a
 * response: `{"error": {"code", "message", "details"}}`, or a picture of the error on image URLs.
 * Anything unknown is a logged 500 that says nothing about internals.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { renderErrorSvg } from '../render/error.js';
import { svgToPng } from '../render/png.js';
import { knownErrorResponse, ServiceError, type ErrorBody } from '../service/errors.js';
import { errorPictureFormat } from './negotiate.js';

/** Converts what was thrown into a status and a body a client can act on. */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  const known = knownErrorResponse(err);
  if (known) return known;
  // body-parser's errors carry a `type` and a status.
  const e = err as { type?: string; status?: number; limit?: number; length?: number; message?: string };
  if (e && e.type === 'entity.parse.failed') {
    return {
      status: 400,
      body: { error: { code: 'MALFORMED_JSON', message: `the request body is not valid JSON: ${e.message ?? ''}`.trim() } },
    };
  }
  if (e && e.type === 'entity.too.large') {
    return {
      status: 413,
      body: {
        error: {
          code: 'PAYLOAD_TOO_LARGE',
          message: `the request body (${e.length} bytes) is larger than the limit of ${e.limit} bytes; send fewer instances per request or use POST /v1/jobs`,
          details: { limit: e.limit, length: e.length },
        },
      },
    };
  }
  if (e && (e.type === 'charset.unsupported' || e.type === 'encoding.unsupported')) {
    return { status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: e.message ?? 'unsupported encoding' } } };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'the service failed to handle this request; it has been logged' } } };
}

export function errorMiddleware(log: { error: (o: object, msg: string) => void }): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const { status, body } = toErrorResponse(err);
    if (status === 500) log.error({ err, url: req.originalUrl, id: (req as { id?: string }).id }, 'unhandled error');
    const retry = (body.error.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
    if ((status === 429 || status === 503) && retry) res.setHeader('Retry-After', String(retry));
    if (res.headersSent) {
      res.end();
      return;
    }
    // A handler may have set a chart's type before it failed: the error decides its own.
    res.removeHeader('Content-Type');
    // Image URLs live in <img> tags: show the error as a picture, with the same status. (A small
    // picture, rendered here: the executor may be the very thing that is full.)
    const ext = errorPictureFormat(req);
    if (ext) {
      const svg = renderErrorSvg(status, body.error.code, body.error.message);
      res.status(status).setHeader('Cache-Control', 'no-store');
      if (ext === 'svg') res.type('image/svg+xml').send(svg);
      else res.type('image/png').send(svgToPng(svg));
      return;
    }
    res.status(status).json(body);
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new ServiceError('NOT_FOUND', `no route ${req.method} ${req.path}; see GET /v1/models for what is served`));
};
