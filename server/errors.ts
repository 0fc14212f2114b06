/**
 * HTTP's side of errors: what Express and body-parser throw mapped onto the catalogue
 * (service/errors.ts), unknown routes, and the one middleware that turns whatever was thrown into a
 * response: `{"error": {"code", "message", "details"}}`, or a picture of the error on image URLs.
 * Anything unknown is a logged 500 that says nothing about internals; no body ever carries a stack
 * trace or a file path. An error answered before the request's body was read (a missing key, a
 * refused media type, an unknown route) closes the connection, so the body is not read either.
 */
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
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
    // A compressed body's length is known only once decompressed: then it is not given.
    const size = typeof e.length === 'number' ? `the request body (${e.length} bytes)` : 'the request body (decompressed)';
    return {
      status: 413,
      body: {
        error: {
          code: 'PAYLOAD_TOO_LARGE',
          message: `${size} is larger than the limit of ${e.limit} bytes; send fewer instances per request or use POST /v1/jobs`,
          details: { limit: e.limit, ...(typeof e.length === 'number' ? { length: e.length } : {}) },
        },
      },
    };
  }
  if (e && (e.type === 'charset.unsupported' || e.type === 'encoding.unsupported')) {
    return { status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: e.message ?? 'unsupported encoding' } } };
  }
  if (e && (e.type === 'request.size.invalid' || e.type === 'request.aborted' || e.type === 'stream.encoding.set')) {
    return {
      status: 400,
      body: { error: { code: 'INVALID_REQUEST', message: `the request body was not received whole: ${e.message ?? ''}`.trim() } },
    };
  }
  // A path that is not valid percent-encoding (/v1/models/%zz), from the router.
  if (err instanceof URIError) {
    return {
      status: 400,
      body: {
        error: {
          code: 'INVALID_REQUEST',
          message: 'the URL path is not valid percent-encoding (a "%" must be followed by two hex digits)',
        },
      },
    };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'the service failed to handle this request; it has been logged' } } };
}

/** A body announced larger than 64 kB (or of unknown length) that nobody has read. */
function unreadLargeBody(req: Request): boolean {
  if (req.readableEnded || req.body !== undefined) return false;
  if (req.headers['transfer-encoding'] !== undefined) return true;
  return Number(req.headers['content-length'] ?? 0) > 65_536;
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
    // A large body that was not read (refused before parsing): close rather than read it now. A
    // small one is left to Node, which drains it and keeps the connection.
    if (unreadLargeBody(req)) res.setHeader('Connection', 'close');
    // A handler may have set a chart's type before it failed: the error decides its own.
    res.removeHeader('Content-Type');
    // Image URLs live in <img> tags: show the error as a picture, with the same status. (A small
    // picture, rendered here: the executor may be the very thing that is full.)
    const ext = errorPictureFormat(req);
    if (ext) {
      try {
        const svg = renderErrorSvg(status, body.error.code, body.error.message);
        const picture = ext === 'svg' ? svg : svgToPng(svg);
        res.status(status).setHeader('Cache-Control', 'no-store');
        res.type(ext === 'svg' ? 'image/svg+xml' : 'image/png').send(picture);
        return;
      } catch (e) {
        log.error({ err: e, url: req.originalUrl }, 'the error picture failed; answering JSON');
      }
    }
    res.status(status).json(body);
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new ServiceError('NOT_FOUND', `no route ${req.method} ${req.path}; see GET /v1/models for what is served`));
};
