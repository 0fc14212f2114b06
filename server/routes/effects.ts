/**
 * Global effects: POST /v1/models/:name/effects and the embeddable GET chart URL.
 * - JSON by default; `Accept: image/svg+xml` (or ?format=svg|png) charts one effect (`?effect=i`,
 *   default 0), `text/html` is a page with every effect.
 * - GET /v1/models/:name/effects.(svg|png|html|json)?feature=income&kind=pd&...: one feature (or a
 *   pair with feature2) on the model's reference data.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { EFFECT_KINDS } from '../../explainers/effects/types.js';
import { LINK_NAMES } from '../../explainers/link.js';
import type { ServedModel } from '../../models/served.js';
import { effectsSections, renderEffect } from '../../render/effects.js';
import { renderHtmlReport } from '../../render/html.js';
import { chartContext } from '../../service/chartContext.js';
import { computeServedEffects, effectsBodyFromQuery, type ServedEffects } from '../../service/effects.js';
import { ServiceError } from '../../service/errors.js';
import { parseWith } from '../../service/schemas/common.js';
import { effectsResponseSchema } from '../../service/schemas/responses.js';
import type { AppContext } from '../context.js';
import { chooseFormat, FORMATS, queryInt, sendVisual, type Format } from '../negotiate.js';
import { controlOf, type RouteSpec } from '../route.js';
import { cacheHeaders, errors, formatQuery, nameParams, queryOf, visual } from './common.js';

const pictureQuery = {
  effect: z.string().regex(/^\d+$/).optional().meta({ description: 'Which effect of the answer to chart (default 0)' }),
  maxCurves: z.string().regex(/^\d+$/).optional().meta({ description: 'ICE: curves drawn at most (default 50)' }),
};

async function sendEffects(
  app: AppContext,
  req: Request,
  res: Response,
  m: ServedModel,
  result: ServedEffects,
  format: Format,
): Promise<void> {
  const effect = queryInt(req, 'effect', 0, 100_000);
  const maxCurves = queryInt(req, 'maxCurves', 1, 1000);
  if (format === 'json') {
    res.json(result);
    return;
  }
  const n = result.effects.length;
  if (effect !== undefined && effect >= n) throw new ServiceError('BAD_PARAMETER', `effect=${effect} but the answer has ${n} effect(s)`);
  // Axes read as the metadata says (integer features without thousands separators, category labels).
  const context = chartContext(m);
  await sendVisual(res, app.svc.executor, format, {
    svg: () => renderEffect(result.effects[effect ?? 0], { maxCurves, context }),
    html: () =>
      renderHtmlReport({
        title: `Global effects: ${m.name}`,
        subtitle: `version ${m.version}`,
        sections: effectsSections(result.effects, { maxCurves, context }),
      }),
  });
}

export function effectsRoutes(app: AppContext): RouteSpec[] {
  const svc = app.svc;
  return [
    {
      method: 'post',
      path: '/v1/models/{name}/effects',
      summary: "Global effects (partial dependence, ICE, ALE, SHAP dependence) on the model's reference data or the rows sent",
      access: { from: 'path' },
      request: { params: nameParams, body: svc.schemas.effects, bodyRequired: true, query: z.object({ ...formatQuery, ...pictureQuery }) },
      responses: {
        200: { ...visual('One effect per feature (or pair) and output', effectsResponseSchema), headers: { 'X-Cache': 'HIT or MISS' } },
        ...errors(403, 406, 413, 415, 422, 429, 503),
      },
      async handle(req, res, { model: m }) {
        const format = chooseFormat(req);
        const body = parseWith(svc.schemas.effectsEnvelope, req.body);
        const { effects, cacheState } = await computeServedEffects(svc, m, body, controlOf(req));
        res.setHeader('X-Cache', cacheState);
        await sendEffects(app, req, res, m, effects, format);
      },
    },
    {
      method: 'get',
      path: '/v1/models/{name}/effects.{ext}',
      summary: "A global-effect chart by URL: one feature (feature2 for a 2-D pair) on the model's reference data",
      access: { from: 'path' },
      request: {
        params: nameParams.extend({ ext: z.enum(FORMATS) }),
        query: z.object({
          ...pictureQuery,
          feature: z.string().meta({ description: 'The feature (or one-hot group)' }),
          feature2: z.string().optional().meta({ description: 'A second feature: a 2-D effect (pd, ale)' }),
          kind: z.enum(EFFECT_KINDS).optional().meta({ description: 'Default pd' }),
          outputs: z.string().optional().meta({ description: 'Comma-separated output indices or names (default all)' }),
          grid: z.string().optional().meta({ description: 'Comma-separated grid values (or one-hot member names)' }),
          resolution: z.string().regex(/^\d+$/).optional(),
          percentiles: z.string().optional().meta({ description: 'low,high (default 0.05,0.95)' }),
          bins: z.string().regex(/^\d+$/).optional(),
          centered: z.enum(['true', 'false']).optional(),
          categoryOrder: z.enum(['similarity', 'value']).optional(),
          link: z.enum(LINK_NAMES).optional(),
          seed: z.string().regex(/^\d+$/).optional(),
          maxRows: z.string().regex(/^\d+$/).optional(),
          nSamples: z.string().optional(),
          interactions: z.enum(['approximate', 'exact']).optional(),
          interactionFeature: z.string().optional(),
          maxPlayers: z.string().regex(/^\d+$/).optional(),
          maxBackground: z.string().regex(/^\d+$/).optional(),
          deadlineMs: z.string().regex(/^\d+$/).optional(),
        }),
      },
      responses: {
        200: { ...visual('The effects, as the extension says', effectsResponseSchema), headers: { 'X-Cache': 'HIT or MISS' } },
        ...errors(403, 422, 429, 503),
      },
      async handle(req, res, { model: m }) {
        const ext = String(req.params.ext);
        if (!(FORMATS as readonly string[]).includes(ext))
          throw new ServiceError('NOT_FOUND', 'effects URLs end in .svg, .png, .html or .json');
        const body = effectsBodyFromQuery(queryOf(req));
        const { effects, cacheState } = await computeServedEffects(svc, m, body, controlOf(req));
        res.setHeader('X-Cache', cacheState);
        cacheHeaders(app, res, false);
        await sendEffects(app, req, res, m, effects, ext as Format);
      },
    },
  ];
}
