/**
 * Explanations: POST /explain, the embeddable GET chart URL, and permalinks by id.
 * - GET /v1/models/:name/explain.(svg|png|html|json)?age=42&...: an instance by feature name (missing
 *   features from the background median), method and parameters in the query.
 * - GET /v1/explanations/:id.(svg|png|html|json): a stored explanation, recomputed identically from
 *   its persisted request when it has left the cache.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { fittingPlots, isExplanationPlot, plotMismatch, renderExplanationPlot, EXPLANATION_PLOTS, type ExplanationPlot } from '../../render/plots.js';
import { renderExplanationReport } from '../../render/report.js';
import type { ServedModel } from '../../models/served.js';
import { modelOfVersion } from '../../models/served.js';
import { ServiceError } from '../../service/errors.js';
import { explain, type ServedExplanation } from '../../service/explain.js';
import { resolveOutput } from '../../service/instances.js';
import { chartContext } from '../../service/chartContext.js';
import { explainBodyFromQuery } from '../../service/query.js';
import { ExplanationRecords, type ExplanationRecord } from '../../service/records.js';
import { parseWith } from '../../service/schemas/common.js';
import { explanationResponseSchema } from '../../service/schemas/responses.js';
import type { AppContext } from '../context.js';
import { chooseFormat, FORMATS, queryInt, sendVisual, type Format } from '../negotiate.js';
import { controlOf, type RouteSpec } from '../route.js';
import { cacheHeaders, errors, formatQuery, nameParams, queryOf, topKQuery, visual } from './common.js';

interface VisualOptions {
  plot?: ExplanationPlot;
  topK?: number;
  instance?: number;
  /** The output to chart, by index or name (?outputs=, its first entry). */
  output?: number | string;
}

const visualQuery = {
  ...formatQuery,
  plot: z
    .enum(EXPLANATION_PLOTS)
    .optional()
    .meta({ description: 'Chart kind (default: waterfall; image for image models, tokens for text models); overlay: the map blended over the image' }),
  ...topKQuery,
  instance: z
    .string()
    .regex(/^\d+$/)
    .optional()
    .meta({ description: 'Which instance to chart, from 0 (default 0; a chart of several instances says which one it shows)' }),
};

const chartOutputsQuery = {
  outputs: z
    .string()
    .optional()
    .meta({ description: 'Which explained output to chart, by index or name (the first of a comma-separated list); default the first explained' }),
};

function visualOptions(app: AppContext, req: Request): VisualOptions {
  const plot = typeof req.query.plot === 'string' ? req.query.plot : undefined;
  if (plot !== undefined && !isExplanationPlot(plot)) {
    throw new ServiceError('BAD_PARAMETER', `plot must be one of ${EXPLANATION_PLOTS.join(', ')}`);
  }
  const outputs = req.query.outputs;
  if (outputs !== undefined && typeof outputs !== 'string') throw new ServiceError('BAD_PARAMETER', 'query parameter outputs is given more than once');
  const first = outputs?.split(',')[0]?.trim();
  return {
    plot,
    topK: queryInt(req, 'topK', 1, 1000),
    instance: queryInt(req, 'instance', 0, app.config.maxInstances),
    ...(first && first !== 'all' ? { output: /^\d+$/.test(first) ? Number(first) : first } : {}),
  };
}

/**
 * The position, in the charted instance's outputs, of the output ?outputs= names (by model index or
 * name); a 400 saying what the instance explains when it does not explain that one.
 */
function chartedOutput(m: ServedModel, explanation: ServedExplanation, v: VisualOptions): number | undefined {
  if (v.output === undefined) return undefined;
  const idx = resolveOutput(v.output, m.space, 'outputs');
  const i = v.instance ?? 0;
  const inst = explanation.explanations[i];
  const at = inst.outputs.findIndex((o) => o.outputIndex === idx);
  if (at < 0) {
    const has = inst.outputs.map((o) => o.output).join(', ');
    const why = explanation.outputSelection === 'predicted-class' ? ' (its predicted class, the default for a classifier)' : '';
    throw new ServiceError(
      'BAD_PARAMETER',
      `instance ${i} of this explanation explains ${has}${why}, not ${m.space.outputNames[idx]}; explain it with "outputs": ["${m.space.outputNames[idx]}"] (or "all")`,
      { explained: inst.outputs.map((o) => o.output) },
    );
  }
  return at;
}

async function sendExplanation(
  app: AppContext,
  res: Response,
  m: ServedModel,
  explanation: ServedExplanation,
  format: Format,
  v: VisualOptions,
): Promise<void> {
  if (format === 'json') {
    if (v.output === undefined) {
      res.json(explanation);
      return;
    }
    // ?outputs= on JSON: every instance's answer for that output (each must have explained it).
    const explanations = explanation.explanations.map((inst, i) => {
      const at = chartedOutput(m, explanation, { ...v, instance: i });
      return { ...inst, outputs: [inst.outputs[at!]] };
    });
    res.json({ ...explanation, explanations });
    return;
  }
  const n = explanation.explanations.length;
  if (v.instance !== undefined && v.instance >= n) {
    throw new ServiceError('BAD_PARAMETER', `instance=${v.instance} but the explanation has ${n} instance(s)`);
  }
  // The HTML report draws the charts that fit; plot does not apply to it.
  const mismatch = format !== 'html' && v.plot ? plotMismatch(explanation, v.plot) : undefined;
  if (mismatch) throw new ServiceError('BAD_PARAMETER', `${mismatch}; use plot=${fittingPlots(explanation).join(', ')}`);
  const output = chartedOutput(m, explanation, v);
  const context = chartContext(m, explanation.outputSelection);
  const summary = v.plot === 'beeswarm' || v.plot === 'mean-abs';
  await sendVisual(res, app.svc.executor, format, {
    svg: () =>
      renderExplanationPlot(explanation, v.plot, {
        topK: v.topK,
        instance: v.instance,
        // Summaries pick the output by name across instances; single charts by position in the instance's list.
        ...(output !== undefined ? { output: summary ? explanation.explanations[v.instance ?? 0].outputs[output].output : output } : {}),
        context,
      }),
    html: () =>
      renderExplanationReport(explanation, { name: m.name, version: m.version, description: m.metadata?.description }, { topK: v.topK, context }),
  });
}

function extension(ext: string, what: string): Format {
  if (!(FORMATS as readonly string[]).includes(ext)) throw new ServiceError('NOT_FOUND', `${what} URLs end in .svg, .png, .html or .json`);
  return ext as Format;
}

const extParams = { ext: z.enum(FORMATS) };

/** A stored explanation's record, for the access check (its model) and the handler. */
async function findRecord(req: Request, app: AppContext): Promise<{ model: string; resource: ExplanationRecord }> {
  const id = String(req.params.id);
  const record = ExplanationRecords.isId(id) ? await app.svc.records.get(id) : undefined;
  if (!record)
    throw new ServiceError('NOT_FOUND', `no explanation with id "${id.slice(0, 40)}"; ids come from POST /v1/models/:name/explain`);
  return { model: record.model, resource: record };
}

export function explainRoutes(app: AppContext): RouteSpec[] {
  const svc = app.svc;
  return [
    {
      method: 'post',
      path: '/v1/models/{name}/explain',
      summary: 'Explain instances; SVG, PNG or an HTML report of the first by Accept or ?format=',
      access: { from: 'path' },
      request: { params: nameParams, body: svc.schemas.explain, bodyRequired: true, query: z.object({ ...visualQuery, ...chartOutputsQuery }) },
      responses: {
        200: { ...visual('Explanations, one per instance', explanationResponseSchema), headers: { 'X-Cache': 'HIT, MISS or PARTIAL' } },
        ...errors(403, 406, 413, 415, 422, 429, 503),
      },
      async handle(req, res, { model: m }) {
        const format = chooseFormat(req);
        const v = visualOptions(app, req);
        const body = parseWith(svc.schemas.explainEnvelope, req.body);
        const { explanation, cacheState } = await explain(svc, m, body, { ...controlOf(req), record: true, live: true });
        res.setHeader('X-Cache', cacheState);
        await sendExplanation(app, res, m, explanation, format, v);
      },
    },
    {
      method: 'get',
      path: '/v1/models/{name}/explain.{ext}',
      summary:
        'An explanation chart by URL: features by name in the query (f.<name> for names that collide), missing ones from the background median',
      access: { from: 'path' },
      request: {
        params: nameParams.extend(extParams),
        query: z
          .object({
            ...visualQuery,
            method: z.string().optional(),
            outputs: z
              .string()
              .optional()
              .meta({
                description:
                  'Comma-separated output indices or names, or "all", to explain (the chart shows the first); default: a classifier\'s predicted class, else all',
              }),
            text: z.string().optional().meta({ description: 'Text models: the text to explain (URL-encoded)' }),
          })
          .meta({
            description: "Any other key is a feature's value, by the feature's name (f.<name> for a name that collides with these)",
          }),
      },
      responses: {
        200: {
          ...visual('The explanation, as the extension says', explanationResponseSchema),
          headers: { 'X-Defaulted-Features': 'Features that took the background median' },
        },
        ...errors(403, 422, 429, 503),
      },
      async handle(req, res, { model: m }) {
        const format = extension(String(req.params.ext), 'explain');
        const v = visualOptions(app, req);
        const { body, defaulted } = explainBodyFromQuery(queryOf(req), m);
        const { explanation, cacheState } = await explain(svc, m, body, { ...controlOf(req), record: true });
        res.setHeader('X-Cache', cacheState);
        // Header values are Latin-1 at most: names are percent-encoded (UTF-8), so any name fits.
        if (defaulted.length) res.setHeader('X-Defaulted-Features', defaulted.map(encodeURIComponent).join(',').slice(0, 2000));
        cacheHeaders(app, res, false);
        await sendExplanation(app, res, m, explanation, format, v);
      },
    },
    {
      method: 'get',
      path: '/v1/explanations/{id}.{ext}',
      summary: 'A stored explanation by id (recomputed identically when it left the cache)',
      access: { from: 'lookup', lookup: findRecord },
      request: {
        params: z.object({ id: z.string().regex(/^[0-9a-f]{32}$/), ...extParams }),
        query: z.object({ ...visualQuery, ...chartOutputsQuery }),
      },
      responses: { 200: visual('The explanation', explanationResponseSchema), ...errors(403, 410, 422, 429, 503) },
      async handle(req, res, { resource }) {
        const record = resource as ExplanationRecord;
        const format = extension(String(req.params.ext), 'explanation');
        // Any version still served (the default, another one, or one draining) answers its permalinks.
        const m = modelOfVersion(svc.registry, record.model, record.version);
        if (!m) {
          const now = svc.registry.models.get(record.model)?.version;
          throw new ServiceError(
            'MODEL_VERSION_GONE',
            `explanation ${String(req.params.id)} was made with version ${record.version} of model "${record.model}", which is no longer served${now ? ` (it serves version ${now})` : ''}; explain again`,
            { recorded: record.version, served: now ?? null },
          );
        }
        const { explanation } = await explain(svc, m, record.body, controlOf(req));
        // The id pins the model version and the request: the answer never changes.
        cacheHeaders(app, res, true);
        await sendExplanation(app, res, m, { ...explanation, cached: true }, format, visualOptions(app, req));
      },
    },
  ];
}
