/**
 * Request bodies: read only after authentication, only for a route that matched (and after its
 * model's access check), with that route's own size limit. A body that is sent to no route, or by a
 * client without a valid key, is never parsed: the answer says so and the connection is closed
 * (server/errors.ts), so it is not read either.
 *
 * Media types: JSON only (`application/json`, or a `+json` type), plus the streamed upload types a
 * route declares (`text/csv` and `application/x-ndjson` for POST /v1/jobs), which are left unread for
 * the handler to stream. Anything else with a body is 415: `text/plain` and the form types are
 * what a web page can POST cross-site without a CORS preflight, so accepting them as JSON would let
 * any page drive an open service. A POST without a body needs no content type.
 *
 * `Content-Encoding: gzip` (also deflate, br) is decompressed, and the limit applies to the
 * decompressed size (413); a body that does not decompress is 400 BAD_ENCODING; other encodings 415.
 */
import express, { type Request, type RequestHandler } from 'express';
import { ServiceError } from '../service/errors.js';

export const JSON_TYPES = ['application/json', '+json'];

const STREAMED = Symbol('streamed');

/** The media type of a body left unread for the handler (a streamed upload), if any. */
export function streamedType(req: Request): string | undefined {
  return (req as Request & { [STREAMED]?: string })[STREAMED];
}

/** True when the request carries a non-empty body (or one of unknown length). */
export function hasBody(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

/** An error body-parser (or its decompression) raised, as the catalogue's error. */
function bodyError(err: unknown, req: Request): unknown {
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type) return err; // body-parser's own: server/errors.ts maps them
  const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') {
    return new ServiceError(
      'BAD_ENCODING',
      `the body could not be decoded as Content-Encoding: ${encoding.slice(0, 40)} (${e?.message ?? 'decompression failed'}); send valid ${encoding.slice(0, 40)} or an uncompressed body`,
    );
  }
  return err;
}

export interface BodyPolicy {
  /** Largest body (after decompression), e.g. "5mb". */
  limit: string;
  /** Media types besides JSON left unread for the handler. */
  streamTypes?: string[];
}

/** The body middleware of one route. */
export function bodyMiddleware(policy: BodyPolicy): RequestHandler {
  const json = express.json({ limit: policy.limit, type: () => true, strict: false });
  const streamTypes = policy.streamTypes ?? [];
  return (req, res, next) => {
    if (!hasBody(req)) return next();
    if (req.is(JSON_TYPES)) {
      json(req, res, (err?: unknown) => (err ? next(bodyError(err, req)) : next()));
      return;
    }
    const streamed = streamTypes.length ? req.is(streamTypes) : false;
    if (streamed) {
      (req as Request & { [STREAMED]?: string })[STREAMED] = streamed;
      return next();
    }
    const sent = req.headers['content-type'];
    const accepted = ['application/json', ...streamTypes].join(', ');
    next(
      new ServiceError(
        'UNSUPPORTED_MEDIA_TYPE',
        sent
          ? `Content-Type ${JSON.stringify(sent.slice(0, 100))} is not accepted here: send ${accepted}`
          : `the body has no Content-Type: send it as ${accepted}`,
        { accepted: ['application/json', ...streamTypes] },
      ),
    );
  };
}
