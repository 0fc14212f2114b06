/**
 * The last two middlewares: unknown routes, and the one place that turns what was thrown into a
 * response (JSON, or a picture of the error on image URLs). Kept apart from the error catalogue so
 * worker threads, which import the catalogue, do not load the renderers.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { renderErrorSvg } from '../render/error.js';
import { svgToPng } from '../render/png.js';
import { ApiError, toErrorResponse } from './errors.js';

export function errorMiddleware(log: { error: (o: object, msg: string) => void }): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const { status, body } = toErrorResponse(err);
    if (status >= 500) log.error({ err, url: req.originalUrl, id: (req as { id?: string }).id }, 'unhandled error');
    const retry = (body.error.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
    if (status === 429 && retry) res.setHeader('Retry-After', String(retry));
    if (res.headersSent) {
      res.end();
      return;
    }
    // Image URLs live in <img> tags: show the error as a picture, with the same status.
    const ext = /\.(svg|png)$/.exec(req.path)?.[1];
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
  next(new ApiError('NOT_FOUND', `no route ${req.method} ${req.path}; see GET /v1/models for what is served`));
};
