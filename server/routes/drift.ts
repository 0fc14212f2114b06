/**
 * Drift of inputs, outputs, labels and attributions (explainers/drift.ts):
 * - POST /v1/models/:name/drift: `current` rows (optional labels) against the model's reference set
 *   or a `reference` in the body.
 * - GET /v1/models/:name/drift/live: the same report on the live window (server/live.ts), the
 *   last rows the model was asked to predict or explain.
 * Every report also sets the drift gauges when registerDriftMetrics was called for the app's
 * metrics registry. SVG (`?plot=psi|predictions|attributions`), HTML and PNG by negotiation.
 */
import { Router } from 'express';
import { z } from 'zod';
import { attributionDrift, DEFAULT_THRESHOLDS, driftReport, type AttributionDrift, type DriftReport } from '../../monitoring/drift/index.js';
import { playersOf } from '../../monitoring/features.js';
import { ExplainerInputError, type Explanation, type Rows } from '../../explainers/types.js';
import { DRIFT_PLOTS, renderDriftChart, renderDriftReport, type DriftPlot } from '../../render/drift.js';
import type { AppContext } from '../context.js';
import { ApiError } from '../errors.js';
import { toRows } from '../instances.js';
import { driftMetricsFor, liveWindow, MIN_LIVE_ROWS, type LiveWindow } from '../live.js';
import { chooseFormat, queryInt, sendVisual, type Format } from '../negotiate.js';
import { getModel, type ServedModel } from '../registry.js';
import { parseWith } from '../schemas.js';
import { attributionSettingsSchema, explainSample, featureInfo, labelsFrom, labelsSchema, layoutOf, rowsOf } from './fairness.js';
import type { Config } from '../config.js';
import type { Request, Response } from 'express';

export function driftSchema(cfg: Config) {
  return z.strictObject({
    current: rowsOf(cfg.maxImportanceRows, 'current'),
    currentLabels: labelsSchema.optional(),
    reference: rowsOf(cfg.maxImportanceRows, 'reference').optional(),
    referenceLabels: labelsSchema.optional(),
    bins: z.number().int().min(2).max(100).default(10),
    thresholds: z
      .strictObject({
        psiWarn: z.number().min(0).optional(),
        psiAlert: z.number().min(0).optional(),
        ksAlpha: z.number().gt(0).lt(1).optional(),
        ndcg: z.number().min(0).max(1).optional(),
      })
      .optional(),
    attributions: z.union([z.boolean(), attributionSettingsSchema(cfg)]).optional(),
    deadlineMs: z.number().int().positive().max(cfg.maxDeadlineMs, `deadlineMs may be at most ${cfg.maxDeadlineMs}`).optional(),
  });
}

export type DriftRequest = z.infer<ReturnType<typeof driftSchema>>;

export interface DriftComputation {
  reference: Rows;
  referenceLabels?: Float32Array;
  current: Rows;
  currentLabels?: Float32Array;
  bins?: number;
  thresholds?: DriftRequest['thresholds'];
  /** false: no attribution drift; undefined: on when the model has a background and is tabular. */
  attributions?: DriftRequest['attributions'];
  deadlineMs?: number;
  source: 'request' | 'live';
}

/** The model's own reference rows: its reference set, else its background (no labels). */
export function modelReference(m: ServedModel): { rows: Rows; labels?: Float32Array; name: 'reference' | 'background' } {
  if (m.reference) return { rows: m.reference.rows, labels: m.reference.labels, name: 'reference' };
  if (m.background) return { rows: m.background, name: 'background' };
  throw new ApiError('NO_REFERENCE_DATA', `model "${m.name}" has no reference or background set in its metadata; send reference rows`);
}

export async function computeDrift(ctx: AppContext, m: ServedModel, c: DriftComputation): Promise<DriftReport & { notes: string[] }> {
  const started = Date.now();
  const notes: string[] = [];
  const run = (rows: Rows) => ctx.executor.run({ kind: 'predict', model: m.name, version: m.version, rows });
  const [referencePredictions, currentPredictions] = [await run(c.reference), await run(c.current)];

  let attributions: AttributionDrift[] | undefined;
  const asked = c.attributions;
  const tabular = m.inputShape.length === 1;
  if (asked !== false) {
    const settings = typeof asked === 'object' ? asked : parseWith(attributionSettingsSchema(ctx.config), {});
    const background = settings.background ? toRows(settings.background, layoutOf(m), 'attributions.background') : m.background;
    if (!background || !tabular) {
      const why = !tabular ? 'Kernel SHAP over every pixel is too costly for a drift report' : `model "${m.name}" has no background set`;
      if (asked !== undefined) throw new ApiError(!tabular ? 'BAD_PARAMETER' : 'NO_BACKGROUND', `no attribution drift: ${why}`);
      notes.push(`no attribution drift: ${why}`);
    } else {
      const deadline = started + (c.deadlineMs ?? ctx.config.defaultDeadlineMs);
      const explain = async (rows: Rows) => (await explainSample(ctx, m, rows, settings, background, deadline)).explanation;
      const ref: Explanation = await explain(c.reference);
      const cur: Explanation = await explain(c.current);
      const players = playersOf(m.space, featureInfo(m));
      const ndcg = c.thresholds?.ndcg ?? DEFAULT_THRESHOLDS.ndcg;
      attributions = m.space.outputNames.map((name, o) => attributionDrift(ref, cur, players, o, name, ndcg));
    }
  }
  const report = driftReport(
    {
      reference: c.reference,
      current: c.current,
      featureNames: m.space.featureNames,
      featureTypes: featureInfo(m).types,
      outputNames: m.space.outputNames,
      referencePredictions,
      currentPredictions,
      referenceLabels: c.referenceLabels,
      currentLabels: c.currentLabels,
      task: m.metadata?.task,
      attributions,
    },
    { bins: c.bins, thresholds: c.thresholds },
  );
  driftMetricsFor(ctx.metrics?.registry)?.record(m.name, report, c.source);
  return { ...report, notes };
}

function send(
  req: Request,
  res: Response,
  format: Format,
  m: ServedModel,
  report: DriftReport & { notes: string[] },
  sources: { reference: Record<string, unknown>; current: Record<string, unknown> },
): void {
  if (format === 'json') {
    res.json({
      model: { name: m.name, version: m.version },
      ...report,
      reference: { ...report.reference, ...sources.reference },
      current: { ...report.current, ...sources.current },
    });
    return;
  }
  const plot = typeof req.query.plot === 'string' ? (req.query.plot as DriftPlot) : 'psi';
  const topK = queryInt(req, 'topK', 1, 1000);
  sendVisual(res, format, {
    svg: () => renderDriftChart(report, plot, { topK }),
    html: () => renderDriftReport(report, { name: m.name, version: m.version, description: m.metadata?.description }),
  });
}

function checkPlot(req: Request): void {
  const plot = req.query.plot;
  if (plot !== undefined && !(typeof plot === 'string' && (DRIFT_PLOTS as readonly string[]).includes(plot))) {
    throw new ApiError('BAD_PARAMETER', `plot must be one of ${DRIFT_PLOTS.join(', ')}`);
  }
}

export function driftRoutes(ctx: AppContext): Router {
  const r = Router();
  const schema = driftSchema(ctx.config);

  r.post('/v1/models/:name/drift', async (req, res) => {
    const m = getModel(ctx.registry, req.params.name, req);
    const format = chooseFormat(req);
    checkPlot(req);
    const p = parseWith(schema, req.body ?? {});
    const current = toRows(p.current, layoutOf(m), 'current');
    const currentLabels = p.currentLabels ? labelsFrom(p.currentLabels, m, 'currentLabels') : undefined;
    if (currentLabels && currentLabels.length !== current.n) {
      throw new ApiError('BAD_LABELS', `currentLabels has ${currentLabels.length} entries but current has ${current.n} rows`);
    }
    let reference: Rows;
    let referenceLabels: Float32Array | undefined;
    let referenceName: string;
    if (p.reference) {
      reference = toRows(p.reference, layoutOf(m), 'reference');
      referenceLabels = p.referenceLabels ? labelsFrom(p.referenceLabels, m, 'referenceLabels') : undefined;
      if (referenceLabels && referenceLabels.length !== reference.n) {
        throw new ApiError('BAD_LABELS', `referenceLabels has ${referenceLabels.length} entries but reference has ${reference.n} rows`);
      }
      referenceName = 'request';
    } else {
      if (p.referenceLabels) throw new ApiError('BAD_LABELS', 'referenceLabels were given without reference rows');
      const own = modelReference(m);
      reference = own.rows;
      referenceLabels = own.labels;
      referenceName = own.name;
    }
    const report = await computeDrift(ctx, m, {
      reference,
      referenceLabels: currentLabels ? referenceLabels : undefined,
      current,
      currentLabels: referenceLabels ? currentLabels : undefined,
      bins: p.bins,
      thresholds: p.thresholds,
      attributions: p.attributions,
      deadlineMs: p.deadlineMs,
      source: 'request',
    });
    if (currentLabels && !referenceLabels) report.notes.push('currentLabels ignored: the reference has no labels to compare with');
    send(req, res, format, m, report, { reference: { source: referenceName }, current: { source: 'request' } });
  });

  r.get('/v1/models/:name/drift/live', async (req, res) => {
    const m = getModel(ctx.registry, req.params.name, req);
    const format = chooseFormat(req);
    checkPlot(req);
    const bins = queryInt(req, 'bins', 2, 100);
    const a = req.query.attributions;
    if (a !== undefined && a !== 'true' && a !== 'false') throw new ApiError('BAD_PARAMETER', 'attributions must be true or false');
    const window: LiveWindow | undefined = liveWindow(m);
    const seen = window?.rows.n ?? 0;
    if (!window || seen < MIN_LIVE_ROWS) {
      throw new ExplainerInputError(
        'NO_LIVE_DATA',
        `the live window of model "${m.name}" holds ${seen} row(s); drift needs at least ${MIN_LIVE_ROWS}: send more predict or explain requests, or POST /v1/models/${m.name}/drift with current rows`,
        { rows: seen, minimum: MIN_LIVE_ROWS },
      );
    }
    const own = modelReference(m);
    const report = await computeDrift(ctx, m, {
      reference: own.rows,
      current: window.rows,
      bins,
      attributions: a === undefined ? undefined : a === 'true',
      source: 'live',
    });
    const { rows: _rows, ...windowInfo } = window;
    send(req, res, format, m, report, {
      reference: { source: own.name },
      current: { source: 'live', ...windowInfo },
    });
  });

  return r;
}
