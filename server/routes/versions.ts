/**
 * GET /v1/models/{name}/versions/compare?from=&to=: two served versions of a model on the same rows
 * (service/compare.ts). A cached job: JSON answers 202 with Retry-After while it is computed (poll
 * the same URL; `wait=true` waits instead), then 200 with the comparison, kept per (from, to) pair.
 * Charts (svg, png, html) wait for it: an <img> cannot poll.
 */
import { z } from 'zod';
import { COMPARE_PLOTS, renderComparisonChart, renderComparisonReport, type ComparePlot } from '../../render/compare.js';
import { comparisonPair, versionComparison } from '../../service/compare.js';
import { ServiceError } from '../../service/errors.js';
import { comparisonPendingSchema, versionComparisonSchema } from '../../service/schemas/responses.js';
import type { AppContext } from '../context.js';
import { chooseFormat, queryInt, sendVisual } from '../negotiate.js';
import type { RouteSpec } from '../route.js';
import { errors, formatQuery, json, nameParams, topKQuery, visual } from './common.js';

const RETRY_AFTER_SECONDS = 2;

export function versionRoutes(app: AppContext): RouteSpec[] {
  return [
    {
      method: 'get',
      path: '/v1/models/{name}/versions/compare',
      summary: 'Compare two served versions on the reference set: predictions, attributions, fairness (a cached job: 202 then 200)',
      access: { from: 'path' },
      // from and to name the versions; ?version= does not apply.
      version: 'default',
      request: {
        params: nameParams,
        query: z.object({
          from: z.string().optional().meta({ description: 'Content hash or versions/ label; default: the newest version other than `to`' }),
          to: z.string().optional().meta({ description: 'Content hash or versions/ label; default: the default version' }),
          wait: z.enum(['true', 'false']).optional().meta({ description: 'JSON: wait for the result instead of 202 (charts always wait)' }),
          plot: z.enum(COMPARE_PLOTS).optional().meta({ description: 'Chart: predictions (default), attributions or fairness' }),
          output: z.string().regex(/^\d+$/).optional().meta({ description: 'Output index the chart shows (default 0)' }),
          ...topKQuery,
          ...formatQuery,
        }),
      },
      responses: {
        200: visual('The comparison', versionComparisonSchema),
        202: { ...json('Being computed: ask again after Retry-After seconds', comparisonPendingSchema), headers: { 'Retry-After': 'Seconds' } },
        ...errors(403, 406, 409, 422, 429, 503),
      },
      async handle(req, res, { model: m }) {
        const format = chooseFormat(req);
        const str = (k: string): string | undefined => {
          const v = req.query[k];
          if (v !== undefined && typeof v !== 'string') throw new ServiceError('BAD_PARAMETER', `query parameter ${k} is given more than once`);
          return v;
        };
        const plot = str('plot');
        if (plot !== undefined && !(COMPARE_PLOTS as readonly string[]).includes(plot))
          throw new ServiceError('BAD_PARAMETER', `plot must be one of ${COMPARE_PLOTS.join(', ')}`);
        const wait = str('wait');
        if (wait !== undefined && wait !== 'true' && wait !== 'false') throw new ServiceError('BAD_PARAMETER', 'wait must be true or false');
        const output = queryInt(req, 'output', 0, 100_000);
        const topK = queryInt(req, 'topK', 1, 1000);
        const pair = comparisonPair(app.svc, m.name, str('from'), str('to'));
        const state = await versionComparison(app.svc, pair, { wait: format !== 'json' || wait === 'true' });
        if (state.status === 'pending') {
          res.status(202).setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
          res.json({ ...state, retryAfterSeconds: RETRY_AFTER_SECONDS });
          return;
        }
        const c = state.comparison;
        if (output !== undefined && output >= c.outputs.length)
          throw new ServiceError('BAD_PARAMETER', `output=${output} but the model has ${c.outputs.length} output(s)`);
        if (format === 'json') {
          res.json(c);
          return;
        }
        const chosen = (plot ?? 'predictions') as ComparePlot;
        if (chosen === 'attributions' && !c.attributions)
          throw new ServiceError('BAD_PARAMETER', `no attribution comparison for this model: ${c.notes.join('; ') || 'no background set'}`);
        if (chosen === 'fairness' && !c.fairness?.metrics.length)
          throw new ServiceError('BAD_PARAMETER', 'no fairness comparison for this model: it needs sensitive features and a labelled reference set');
        await sendVisual(res, app.svc.executor, format, {
          svg: () => renderComparisonChart(c, chosen, { output, topK }),
          html: () => renderComparisonReport(c),
        });
      },
    },
  ];
}
