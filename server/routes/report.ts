/** GET /v1/models/:name/report: one self-contained HTML page about a model (service/report.ts builds its sections). */
import { renderHtmlReport } from '../../render/html.js';
import { modelReportSections } from '../../service/report.js';
import type { AppContext } from '../context.js';
import { controlOf, type RouteSpec } from '../route.js';
import { errors, htmlPage, nameParams } from './common.js';

export function reportRoutes(app: AppContext): RouteSpec[] {
  return [
    {
      method: 'get',
      path: '/v1/models/{name}/report',
      summary: 'Self-contained HTML report of a model: importance, local explanations, fairness, live drift',
      access: { from: 'path' },
      request: { params: nameParams },
      responses: { 200: htmlPage('The report'), ...errors(403, 422, 429, 503) },
      async handle(req, res, { model: m }) {
        const sections = await modelReportSections(app.svc, m, controlOf(req));
        res.type('html').send(renderHtmlReport({ title: `Model report: ${m.name}`, subtitle: `version ${m.version}`, sections }));
      },
    },
  ];
}
