/**
 * Routes as values: each declares its method, path, request and response schemas (the OpenAPI
 * document is generated from them) and where its model comes from. Access control lives here, not
 * in the handlers: `mountRoutes` resolves the model and checks the key's scope once, in a route
 * parameter handler for `{name}` and in a wrapper for models named in a body or found through a
 * lookup (a job, a stored explanation), before any handler runs. A route that touches no model must
 * say why (`access: {from: 'none', why}`), and test/server.access.test.ts sends an out-of-scope key
 * to every route that declares a model.
 */
import { Router, type Request, type Response } from 'express';
import type { z } from 'zod';
import type { ServedModel } from '../models/served.js';
import { modelByName } from '../service/context.js';
import { ServiceError } from '../service/errors.js';
import { checkModelAccess } from './auth.js';
import type { AppContext } from './context.js';

export type ModelAccess =
  /** The path's {name}. */
  | { from: 'path' }
  /** A field of the JSON body. */
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
  };
  /** Every status the route answers with on purpose; errors use the Error schema. */
  responses: Record<number, ResponseSpec>;
  handle(req: Request, res: Response, ctx: RouteContext): Promise<void> | void;
}

/** /v1/models/{name}/explain.{ext} -> /v1/models/:name/explain.:ext */
export function expressPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

const MODEL = Symbol('model');

type Located = Request & { [MODEL]?: ServedModel };

export function mountRoutes(app: AppContext, routes: RouteSpec[]): Router {
  const r = Router();
  // Every route with {name}: the model is looked up and the key's scope checked here, once.
  r.param('name', (req, _res, next, name: string) => {
    checkModelAccess(req, name);
    (req as Located)[MODEL] = modelByName(app.svc.registry, name);
    next();
  });
  for (const spec of routes) {
    r[spec.method](expressPath(spec.path), async (req, res) => {
      let model = (req as Located)[MODEL];
      let resource: unknown;
      const access = spec.access;
      if (access.from === 'body') {
        const name = (req.body as Record<string, unknown> | undefined)?.[access.field];
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
      await spec.handle(req, res, { app, model: model!, resource });
    });
  }
  return r;
}
