/**
 * Counterfactual explanations: POST /v1/models/:name/counterfactuals and the embeddable GET chart URL.
 * - JSON by default; `Accept: image/svg+xml` (or ?format=svg|png) is the before/after chart of one
 *   instance (`?instance=i`, default 0), `text/html` a page with every instance.
 * - GET /v1/models/:name/counterfactuals.(svg|png|html|json)?income=30000&...: one instance by feature
 *   name (features left out take the background median, named in X-Defaulted-Features).
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { InstanceCounterfactuals } from '../../explainers/counterfactuals/types.js';
import type { ServedModel } from '../../models/served.js';
import { counterfactualSections, renderCounterfactuals, type CounterfactualChartOptions } from '../../render/counterfactuals.js';
import { renderHtmlReport } from '../../render/html.js';
import {
  computeCounterfactuals,
  counterfactualsBodyFromQuery,
  type InstanceCounterfactualsJson,
  type ServedCounterfactuals,
} from '../../service/counterfactuals.js';
import { ServiceError } from '../../service/errors.js';
import { parseWith } from '../../service/schemas/common.js';
import { counterfactualsResponseSchema } from '../../service/schemas/responses.js';
import type { AppContext } from '../context.js';
import { chooseFormat, FORMATS, queryInt, sendVisual, type Format } from '../negotiate.js';
import { controlOf, type RouteSpec } from '../route.js';
import { cacheHeaders, errors, formatQuery, nameParams, queryOf, visual } from './common.js';

const pictureQuery = {
  instance: z.string().regex(/^\d+$/).optional().meta({ description: 'Which instance to chart (default 0)' }),
};

/** JSON's open range ends (null) back to the infinities the charts read. */
function fromJson(r: InstanceCounterfactualsJson): InstanceCounterfactuals {
  const d = r.desired;
  return { ...r, desired: 'range' in d ? { range: [d.range[0] ?? -Infinity, d.range[1] ?? Infinity], output: d.output } : d };
}

async function sendCounterfactuals(
  app: AppContext,
  req: Request,
  res: Response,
  m: ServedModel,
  result: ServedCounterfactuals,
  format: Format,
): Promise<void> {
  const instance = queryInt(req, 'instance', 0, app.config.maxInstances);
  if (format === 'json') {
    res.json(result);
    return;
  }
  const n = result.explanations.length;
  if (instance !== undefined && instance >= n)
    throw new ServiceError('BAD_PARAMETER', `instance=${instance} but the answer has ${n} instance(s)`);
  const options: CounterfactualChartOptions = {
    featureNames: m.space.featureNames,
    outputNames: m.space.outputNames,
    ...(m.metadata?.classes ? { classNames: m.metadata.classes } : {}),
  };
  await sendVisual(res, app.svc.executor, format, {
    svg: () => renderCounterfactuals(fromJson(result.explanations[instance ?? 0]), options),
    html: () =>
      renderHtmlReport({
        title: `Counterfactuals: ${m.name}`,
        subtitle: `version ${m.version}`,
        sections: counterfactualSections(result.explanations.map(fromJson), options),
      }),
  });
}

export function counterfactualRoutes(app: AppContext): RouteSpec[] {
  const svc = app.svc;
  return [
    {
      method: 'post',
      path: '/v1/models/{name}/counterfactuals',
      summary:
        'Counterfactual explanations: per instance, up to k close, plausible rows that reach the desired outcome, honouring the constraints',
      access: { from: 'path' },
      request: {
        params: nameParams,
        body: svc.schemas.counterfactuals,
        bodyRequired: true,
        query: z.object({ ...formatQuery, ...pictureQuery }),
      },
      responses: {
        200: visual('Counterfactuals, one entry per instance', counterfactualsResponseSchema),
        ...errors(403, 406, 413, 415, 422, 429, 503),
      },
      async handle(req, res, { model: m }) {
        const format = chooseFormat(req);
        const body = parseWith(svc.schemas.counterfactuals, req.body);
        await sendCounterfactuals(app, req, res, m, await computeCounterfactuals(svc, m, body, controlOf(req)), format);
      },
    },
    {
      method: 'get',
      path: '/v1/models/{name}/counterfactuals.{ext}',
      summary:
        'A counterfactual chart by URL: the instance by feature name in the query (f.<name> for names that collide), missing features from the background median',
      access: { from: 'path' },
      request: {
        params: nameParams.extend({ ext: z.enum(FORMATS) }),
        query: z
          .object({
            ...pictureQuery,
            class: z.string().optional().meta({ description: 'Desired class: index, name, or "opposite"' }),
            range: z.string().optional().meta({ description: 'Desired range "lo,hi" of an output (an end may be empty)' }),
            output: z.string().optional().meta({ description: "The range's output (index or name)" }),
            k: z.string().regex(/^\d+$/).optional(),
            seed: z.string().regex(/^\d+$/).optional(),
            maxEvaluations: z.string().regex(/^\d+$/).optional(),
            maxChangedFeatures: z.string().regex(/^\d+$/).optional(),
            minPlausibility: z.string().optional(),
            neighbours: z.string().regex(/^\d+$/).optional(),
            useGradients: z.enum(['true', 'false']).optional(),
            threshold: z.string().optional(),
            immutable: z.string().optional().meta({ description: 'Comma-separated features held fixed' }),
            deadlineMs: z.string().regex(/^\d+$/).optional(),
          })
          .meta({
            description: "Any other key is a feature's value, by the feature's name (f.<name> for a name that collides with these)",
          }),
      },
      responses: {
        200: {
          ...visual('The counterfactuals, as the extension says', counterfactualsResponseSchema),
          headers: { 'X-Defaulted-Features': 'Features that took the background median' },
        },
        ...errors(403, 422, 429, 503),
      },
      async handle(req, res, { model: m }) {
        const ext = String(req.params.ext);
        if (!(FORMATS as readonly string[]).includes(ext))
          throw new ServiceError('NOT_FOUND', 'counterfactual URLs end in .svg, .png, .html or .json');
        const query = { ...queryOf(req) };
        delete query.instance;
        const { body, defaulted } = counterfactualsBodyFromQuery(svc, query, m);
        const result = await computeCounterfactuals(svc, m, body, controlOf(req));
        if (defaulted.length) res.setHeader('X-Defaulted-Features', defaulted.join(',').slice(0, 2000));
        cacheHeaders(app, res, false);
        await sendCounterfactuals(app, req, res, m, result, ext as Format);
      },
    },
  ];
}
