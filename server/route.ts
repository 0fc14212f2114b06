/**
 * Routes as values: each declares its method, path, request and response schemas (the OpenAPI
 * document is generated from them) and where its model comes from. Access control lives here, not
 * in the handlers: `mountRoutes` resolves the model and checks the key's scope once, in a route
 * parameter handler for `{name}` and in a wrapper for models named in a body or found through a
 * lookup (a job, a stored explanation), before any handler runs. A route that touches no model must
 * say why (`access: {from: 'none', why}`), and test/server.access.test.ts sends an out-of-scope key
 * to every route that declares a model.
 *
 * Bodies are read here too, per route (server/body.ts): only once the route matched and its {name}
 * passed the access check, with the route's own limit, and JSON only (or the route's streamed types).
 * Each request carries a `RequestControl` (`controlOf(req)`): when it arrived and a signal that
 * fires when its client goes away, which handlers hand to the service so its tasks stop.
 *
 * Versions are resolved here too, for every route, after the scope check: a route whose model comes
 * from the path or the body answers for the version the request pins (`?version=` or the body's
 * `version`: a content hash or a versions/ label; VERSION_NOT_FOUND, or 410 MODEL_VERSION_GONE for a
 * retired one), else the model's default version. Handlers get that `ServedModel` and never look a
 * version up themselves.
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import type { ServedModel } from '../models/served.js';
import type { RequestControl } from '../service/bounds.js';
import { modelByName, pinnedVersion } from '../service/context.js';
import { ServiceError } from '../service/errors.js';
import { checkModelAccess } from './auth.js';
import { bodyMiddleware, streamedType } from './body.js';
import type { AppContext } from './context.js';

export type ModelAccess =
  /** The path's {name}. */
  | { from: 'path' }
  /** A field of the JSON body (of the query, for a streamed upload: server/body.ts). */
  | { from: 'body'; field: string }
  /** A resource the path names (a job, a stored explanation) and its model; 404 when there is none. */
  | { from: 'lookup'; lookup: (req: Request, app: AppContext) => Promise<{ model: string; resource: unknown }> }
  /** No model: the reason is part of the route's declaration. */
  | { from: 'none'; why: string };

export interface ResponseSpec {
  description: string;
  /** Media type -> schema (undefined: a body the schema language does not describe, e.g. PNG bytes). */
  content?: Record<string, z.ZodType | undefined>;
  headers?: Record<string, string>;
}

export interface RouteContext {
  app: AppContext;
  /** The resolved, access-checked model (access from 'path' or 'body'). */
  model: ServedModel;
  /** What the lookup found (access from 'lookup'). */
  resource: unknown;
}

export interface RouteSpec {
  method: 'get' | 'post' | 'delete';
  /** OpenAPI form: /v1/models/{name}/explain.{ext}. */
  path: string;
  summary: string;
  access: ModelAccess;
  request?: {
    body?: z.ZodType;
    bodyRequired?: boolean;
    query?: z.ZodObject;
    params?: z.ZodObject;
    /** Largest JSON body of this route (default BODY_LIMIT). */
    bodyLimit?: string;
    /** Media types besides JSON whose bodies the handler streams itself (left unread), with their description. */
    streamed?: Record<string, string>;
  };
  /** Every status the route answers with on purpose; errors use the Error schema. */
  responses: Record<number, ResponseSpec>;
  handle(req: Request, res: Response, ctx: RouteContext): Promise<void> | void;
  /**
   * Which version of its model the handler gets (access 'path' or 'body'): 'pinned' (absent) the one
   * the request pins with `?version=` or the body's `version`, else the default; 'default' always the
   * default (a route that names versions itself, as versions/compare's from and to).
   */
  version?: 'pinned' | 'default';
}

/** Whether the route answers for a version the request pins (and so takes `?version=`). */
export function pinsVersion(spec: RouteSpec): boolean {
  return (spec.access.from === 'path' || spec.access.from === 'body') && spec.version !== 'default';
}

/**
 * The model version a request pins: `?version=` or the body's `version` (they must agree), or
 * undefined. A streamed upload's body is not JSON: its version is in the query.
 */
export function requestedVersion(req: Request): string | undefined {
  const q = req.query.version;
  if (q !== undefined && typeof q !== 'string') throw new ServiceError('BAD_PARAMETER', 'query parameter version is given more than once');
  // The body's schema checks its `version` (a string); anything else is refused there.
  const raw = streamedType(req) ? undefined : (req.body as Record<string, unknown> | undefined)?.version;
  const fromBody = typeof raw === 'string' ? raw : undefined;
  if (q !== undefined && fromBody !== undefined && q !== fromBody)
    throw new ServiceError('BAD_PARAMETER', `version is "${q}" in the query but "${fromBody}" in the body; give it once`);
  return q ?? fromBody;
}

/** /v1/models/{name}/explain.{ext} -> /v1/models/:name/explain.:ext */
export function expressPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

const MODEL = Symbol('model');
const CONTROL = Symbol('control');

type Located = Request & { [MODEL]?: ServedModel; [CONTROL]?: RequestControl };

/**
 * Gives every request its control: the time it arrived and a signal that fires when the client
 * closes the connection before the answer was sent. `onAbort` is called once for each such request.
 */
export function requestControl(onAbort?: (req: Request) => void): RequestHandler {
  return (req, res, next) => {
    const controller = new AbortController();
    (req as Located)[CONTROL] = { started: Date.now(), signal: controller.signal };
    res.once('close', () => {
      if (res.writableFinished) return;
      controller.abort(new ServiceError('CANCELLED', 'the client closed the connection before the answer'));
      onAbort?.(req);
    });
    next();
  };
}

/** The request's control (see requestControl); a fresh one when the middleware did not run (tests). */
export function controlOf(req: Request): RequestControl {
  return (req as Located)[CONTROL] ?? { started: Date.now() };
}

export function mountRoutes(app: AppContext, routes: RouteSpec[]): Router {
  const r = Router();
  // Every route with {name}: the model is looked up and the key's scope checked here, once.
  r.param('name', (req, _res, next, name: string) => {
    checkModelAccess(req, name);
    (req as Located)[MODEL] = modelByName(app.svc.registry, name);
    next();
  });
  for (const spec of routes) {
    const body =
      spec.method === 'post'
        ? [
            bodyMiddleware({
              limit: spec.request?.bodyLimit ?? app.config.bodyLimit,
              streamTypes: Object.keys(spec.request?.streamed ?? {}),
            }),
          ]
        : [];
    r[spec.method](expressPath(spec.path), ...body, async (req, res) => {
      let model = (req as Located)[MODEL];
      let resource: unknown;
      const access = spec.access;
      if (access.from === 'body') {
        const fields = (streamedType(req) ? req.query : req.body) as Record<string, unknown> | undefined;
        const name = fields?.[access.field];
        if (typeof name !== 'string' || !name) {
          throw new ServiceError('INVALID_REQUEST', `${access.field}: the name of a served model is required`);
        }
        checkModelAccess(req, name);
        model = modelByName(app.svc.registry, name);
      } else if (access.from === 'lookup') {
        const found = await access.lookup(req, app);
        checkModelAccess(req, found.model);
        resource = found.resource;
      }
      if (model && pinsVersion(spec)) model = pinnedVersion(app.svc.registry, model, requestedVersion(req));
      await spec.handle(req, res, { app, model: model!, resource });
    });
  }
  return r;
}
