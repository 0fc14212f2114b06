/** Permutation importance: POST on any labelled data, and the embeddable GET chart on the reference set. */
import { z } from 'zod';
import { METRIC_NAMES } from '../../explainers/defaults.js';
import { renderImportance } from '../../render/importance.js';
import { renderImportanceReport } from '../../render/report.js';
import type { ServedModel } from '../../models/served.js';
import type { Service } from '../../service/context.js';
import { ServiceError } from '../../service/errors.js';
import { computeImportance, referenceImportance, type ServedImportance } from '../../service/importance.js';
import { queryReader } from '../../service/query.js';
import { parseWith } from '../../service/schemas/common.js';
import { importanceResponseSchema } from '../../service/schemas/responses.js';
import type { Response } from 'express';
import type { AppContext } from '../context.js';
import { chooseFormat, FORMATS, queryInt, sendVisual, type Format } from '../negotiate.js';
import { controlOf, type RouteSpec } from '../route.js';
import { cacheHeaders, errors, formatQuery, nameParams, queryOf, topKQuery, visual } from './common.js';

async function send(svc: Service, res: Response, m: ServedModel, result: ServedImportance, format: Format, topK?: number): Promise<void> {
  if (format === 'json') {
    res.json(result);
    return;
  }
  await sendVisual(res, svc.executor, format, {
    svg: () => renderImportance(result, { topK }),
    html: () => renderImportanceReport(result, { name: m.name, version: m.version, description: m.metadata?.description }, { topK }),
  });
}

export function importanceRoutes(app: AppContext): RouteSpec[] {
  const svc = app.svc;
  return [
    {
      method: 'post',
      path: '/v1/models/{name}/importance',
      summary: "Permutation importance on the request's data and labels, or the model's reference set",
      access: { from: 'path' },
      request: { params: nameParams, body: svc.schemas.importance, query: z.object({ ...formatQuery, ...topKQuery }) },
      responses: { 200: visual('Importances per feature', importanceResponseSchema), ...errors(403, 406, 413, 415, 422, 429, 503) },
      async handle(req, res, { model: m }) {
        const format = chooseFormat(req);
        const topK = queryInt(req, 'topK', 1, 1000);
        const p = parseWith(svc.schemas.importance, req.body ?? {});
        await send(svc, res, m, await computeImportance(svc, m, p, controlOf(req)), format, topK);
      },
    },
    {
      method: 'get',
      path: '/v1/models/{name}/importance.{ext}',
      summary: 'Permutation importance on the reference set (at most 1000 rows), as a chart URL',
      access: { from: 'path' },
      request: {
        params: nameParams.extend({ ext: z.enum(FORMATS) }),
        query: z.object({
          ...topKQuery,
          repeats: z.string().regex(/^\d+$/).optional().meta({ description: 'Shuffles per feature (default 5)' }),
          metric: z.enum(METRIC_NAMES).optional(),
          seed: z.string().regex(/^\d+$/).optional(),
        }),
      },
      responses: { 200: visual('Importances per feature, as the extension says', importanceResponseSchema), ...errors(403, 422, 429, 503) },
      async handle(req, res, { model: m }) {
        const ext = String(req.params.ext);
        if (!(FORMATS as readonly string[]).includes(ext))
          throw new ServiceError('NOT_FOUND', 'importance URLs end in .svg, .png, .html or .json');
        const q = queryReader(queryOf(req));
        const repeats = q.number('repeats') ?? 5;
        if (!Number.isInteger(repeats) || repeats < 1 || repeats > app.config.maxRepeats) {
          throw new ServiceError('BAD_PARAMETER', `repeats must be an integer from 1 to ${app.config.maxRepeats}`);
        }
        const metric = parseWith(svc.schemas.importance.shape.metric, q.string('metric'), 'metric', 'BAD_PARAMETER');
        const result = await referenceImportance(svc, m, { metric, repeats, seed: q.number('seed') ?? 0 }, controlOf(req));
        cacheHeaders(app, res, false);
        await send(svc, res, m, result, ext as Format, q.number('topK'));
      },
    },
  ];
}
