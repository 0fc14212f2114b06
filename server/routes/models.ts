/** The model catalogue and predictions. */
import { servedVersions, type ServedModel } from '../../models/served.js';
import { supportedMethods } from '../../service/methods/index.js';
import { predict } from '../../service/predict.js';
import { parseWith } from '../../service/schemas/common.js';
import { modelDetailSchema, modelListSchema, predictResponseSchema } from '../../service/schemas/responses.js';
import { inScope, scopeOf } from '../auth.js';
import type { AppContext } from '../context.js';
import { controlOf, type RouteSpec } from '../route.js';
import { errors, json, nameParams } from './common.js';

/** A model as the catalogue shows it: its description and the explain methods that work for it. */
const described = (m: ServedModel) => ({ ...m.describe(), methods: supportedMethods(m) });

export function modelRoutes(app: AppContext): RouteSpec[] {
  return [
    {
      method: 'get',
      path: '/v1/models',
      summary: "List the served models (those in the key's scope) with versions, features and outputs",
      access: { from: 'none', why: "lists only the models in the key's scope" },
      responses: { 200: json('Models, and the folders that failed to load', modelListSchema), ...errors() },
      handle(req, res) {
        const scope = scopeOf(req);
        const visible = [...app.svc.registry.models.values()].filter((m) => inScope(scope, m.name));
        res.json({
          models: visible.map(described),
          loadErrors: app.svc.registry.errors.filter((e) => inScope(scope, e.name)),
        });
      },
    },
    {
      method: 'get',
      path: '/v1/models/{name}',
      summary: 'One model with its metadata, and every version served (the default first)',
      access: { from: 'path' },
      request: { params: nameParams },
      responses: { 200: json('The model', modelDetailSchema), ...errors(403) },
      handle(_req, res, { model: m }) {
        const versions = servedVersions(app.svc.registry, m.name).map((v, i) => ({
          version: v.version,
          ...(v.label !== undefined ? { label: v.label } : {}),
          state: v.state,
          default: i === 0 && v.state === 'serving',
          loadedAt: v.loadedAt ? new Date(v.loadedAt).toISOString() : null,
          ...(v.retiresAt !== undefined ? { retiresAt: new Date(v.retiresAt).toISOString() } : {}),
        }));
        res.json({ ...described(m), metadata: m.metadata ?? null, versions });
      },
    },
    {
      method: 'post',
      path: '/v1/models/{name}/predict',
      summary: 'Predict: outputs for each instance',
      access: { from: 'path' },
      request: { params: nameParams, body: app.svc.schemas.predict, bodyRequired: true },
      responses: { 200: json('One row of outputs per instance', predictResponseSchema), ...errors(403, 413, 415, 429, 503) },
      async handle(req, res, { model: m }) {
        const body = parseWith(app.svc.schemas.predict, req.body);
        res.json(await predict(app.svc, m, body.instances, controlOf(req)));
      },
    },
  ];
}
