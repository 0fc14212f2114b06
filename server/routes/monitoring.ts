/**
 * Fairness and drift reports. SVG (`?plot=`), HTML and PNG by content negotiation.
 * - POST /v1/models/:name/fairness: group metrics with bootstrap intervals, attributions by group, proxies.
 * - POST /v1/models/:name/drift: current rows against the model's reference set or a given reference.
 * - GET /v1/models/:name/drift/live: the same on the live window (the last rows predict and explain saw).
 */
import { z } from 'zod';
import { DRIFT_PLOTS, renderDriftChart, renderDriftReport, type DriftPlot } from '../../render/drift.js';
import { recourseSections } from '../../render/counterfactuals.js';
import { FAIRNESS_PLOTS, fairnessSections, renderFairnessChart, renderFairnessReport, type FairnessPlot } from '../../render/fairness.js';
import { renderHtmlReport } from '../../render/html.js';
import type { ServedModel } from '../../models/served.js';
import { fromJsonBurden } from '../../service/counterfactuals.js';
import { driftOfLiveWindow, driftOfRequest, type ServedDrift } from '../../service/drift.js';
import { ServiceError } from '../../service/errors.js';
import { computeFairness } from '../../service/fairness.js';
import { parseWith } from '../../service/schemas/common.js';
import { driftResponseSchema, fairnessResponseSchema } from '../../service/schemas/responses.js';
import type { Request, Response } from 'express';
import type { AppContext } from '../context.js';
import { chooseFormat, queryInt, sendVisual, type Format } from '../negotiate.js';
import { controlOf, type RouteSpec } from '../route.js';
import { errors, formatQuery, nameParams, topKQuery, visual } from './common.js';

function checkPlot(req: Request, plots: readonly string[]): string | undefined {
  const plot = req.query.plot;
  if (plot !== undefined && !(typeof plot === 'string' && plots.includes(plot))) {
    throw new ServiceError('BAD_PARAMETER', `plot must be one of ${plots.join(', ')}`);
  }
  return plot;
}

async function sendDrift(app: AppContext, req: Request, res: Response, format: Format, m: ServedModel, report: ServedDrift): Promise<void> {
  if (format === 'json') {
    res.json(report);
    return;
  }
  const plot = (checkPlot(req, DRIFT_PLOTS) as DriftPlot | undefined) ?? 'psi';
  const topK = queryInt(req, 'topK', 1, 1000);
  if (format !== 'html' && plot === 'attributions' && !report.attributions?.length) {
    throw new ServiceError(
      'BAD_PARAMETER',
      `plot=attributions needs attribution drift, and this report has none (${report.notes.join('; ') || '"attributions": false was sent'}); use plot=psi or plot=predictions, or leave "attributions" on`,
    );
  }
  await sendVisual(res, app.svc.executor, format, {
    svg: () => renderDriftChart(report, plot, { topK }),
    html: () => renderDriftReport(report, { name: m.name, version: m.version, description: m.metadata?.description }),
  });
}

export function monitoringRoutes(app: AppContext): RouteSpec[] {
  const svc = app.svc;
  const driftQuery = { ...formatQuery, plot: z.enum(DRIFT_PLOTS).optional(), ...topKQuery };
  return [
    {
      method: 'post',
      path: '/v1/models/{name}/fairness',
      summary: 'Group fairness metrics with bootstrap intervals, attributions by group and proxy detection',
      access: { from: 'path' },
      request: {
        params: nameParams,
        body: svc.schemas.fairness,
        query: z.object({
          ...formatQuery,
          plot: z.enum(FAIRNESS_PLOTS).optional(),
          outcome: z.string().regex(/^\d+$/).optional(),
          breakdown: z.string().regex(/^\d+$/).optional(),
        }),
      },
      responses: { 200: visual('Fairness report', fairnessResponseSchema), ...errors(403, 406, 413, 415, 422, 429, 503) },
      async handle(req, res, { model: m }) {
        const format = chooseFormat(req);
        const plot = checkPlot(req, FAIRNESS_PLOTS) as FairnessPlot | undefined;
        const outcome = queryInt(req, 'outcome', 0, 1000);
        const breakdown = queryInt(req, 'breakdown', 0, 1000);
        const p = parseWith(svc.schemas.fairness, req.body ?? {});
        const report = await computeFairness(svc, m, p, controlOf(req));
        if (format === 'json') {
          res.json(report);
          return;
        }
        if (outcome !== undefined && outcome >= report.outcomes.length) {
          throw new ServiceError('BAD_PARAMETER', `outcome=${outcome} but the report has ${report.outcomes.length} outcome(s)`);
        }
        if (format !== 'html' && plot === 'attributions' && !report.outcomes[outcome ?? 0].attributions) {
          throw new ServiceError(
            'BAD_PARAMETER',
            `plot=attributions needs attributions by group, and this report has none (${report.notes.join('; ') || '"attributions": false was sent'}); use plot=groups, or leave "attributions" on`,
          );
        }
        const breakdowns = report.outcomes[outcome ?? 0].breakdowns.length;
        if (breakdown !== undefined && breakdown >= breakdowns) {
          throw new ServiceError('BAD_PARAMETER', `breakdown=${breakdown} but the outcome has ${breakdowns} breakdown(s)`);
        }
        await sendVisual(res, svc.executor, format, {
          svg: () => renderFairnessChart(report, plot ?? 'groups', { outcome, breakdown }),
          html: () =>
            report.recourse
              ? renderHtmlReport({
                  title: `Fairness: ${m.name}`,
                  subtitle: `version ${m.version}`,
                  sections: [...fairnessSections(report), ...report.recourse.flatMap((b) => recourseSections(fromJsonBurden(b)))],
                })
              : renderFairnessReport(report, { name: m.name, version: m.version, description: m.metadata?.description }),
        });
      },
    },
    {
      method: 'post',
      path: '/v1/models/{name}/drift',
      summary: 'Drift of inputs, predictions and attributions: current rows against the reference set',
      access: { from: 'path' },
      request: { params: nameParams, body: svc.schemas.drift, bodyRequired: true, query: z.object(driftQuery) },
      responses: { 200: visual('Drift report', driftResponseSchema), ...errors(403, 406, 413, 415, 422, 429, 503) },
      async handle(req, res, { model: m }) {
        const format = chooseFormat(req);
        checkPlot(req, DRIFT_PLOTS);
        const p = parseWith(svc.schemas.drift, req.body ?? {});
        await sendDrift(app, req, res, format, m, await driftOfRequest(svc, m, p, controlOf(req)));
      },
    },
    {
      method: 'get',
      path: '/v1/models/{name}/drift/live',
      summary: 'Drift of the recent predict/explain traffic (a bounded window) against the reference set',
      access: { from: 'path' },
      request: {
        params: nameParams,
        query: z.object({
          ...driftQuery,
          bins: z.string().regex(/^\d+$/).optional(),
          attributions: z.enum(['true', 'false']).optional(),
        }),
      },
      responses: { 200: visual('Drift report', driftResponseSchema), ...errors(403, 406, 409, 422, 429, 503) },
      async handle(req, res, { model: m }) {
        const format = chooseFormat(req);
        checkPlot(req, DRIFT_PLOTS);
        const bins = queryInt(req, 'bins', 2, 100);
        const a = req.query.attributions;
        if (a !== undefined && a !== 'true' && a !== 'false') throw new ServiceError('BAD_PARAMETER', 'attributions must be true or false');
        const report = await driftOfLiveWindow(svc, m, { bins, attributions: a === undefined ? undefined : a === 'true' }, controlOf(req));
        await sendDrift(app, req, res, format, m, report);
      },
    },
  ];
}
