/**
 * POST /v1/models/:name/fairness: group fairness of the model's decisions (explainers/fairness.ts)
 * with bootstrap intervals, and Kernel SHAP attributions by group with proxy detection
 * (explainers/groupAttributions.ts). Without data: the model's reference set and its declared
 * sensitive features. SVG (`?plot=groups|attributions`), HTML and PNG by content negotiation.
 *
 * The model calls (predictions, Kernel SHAP) run on the executor; the statistics run here, on the
 * main thread, bounded by MAX_BOOTSTRAP_WORK.
 */
import { Router } from 'express';
import { z } from 'zod';
import {
  attachAttributions,
  DEFAULT_ATTRIBUTION_BACKGROUND,
  DEFAULT_ATTRIBUTION_NSAMPLES,
  DEFAULT_ATTRIBUTION_SAMPLE,
  outcomeOutputs,
  prepareGroupings,
} from '../../monitoring/fairness/assess.js';
import { DEFAULT_BOOTSTRAP, fairnessReport } from '../../monitoring/fairness/report.js';
import type { FairnessReport, FairnessTask } from '../../monitoring/fairness/types.js';
import { pickRows, sampleRows } from '../../monitoring/sample.js';
import type { FeatureInfo } from '../../monitoring/features.js';
import type { Explanation, Rows } from '../../explainers/types.js';
import { renderFairnessChart, renderFairnessReport, FAIRNESS_PLOTS, type FairnessPlot } from '../../render/fairness.js';
import type { Config } from '../config.js';
import type { AppContext } from '../context.js';
import { ApiError } from '../errors.js';
import { toRows } from '../instances.js';
import { chooseFormat, queryInt, sendVisual } from '../negotiate.js';
import { getModel, type ServedModel } from '../registry.js';
import { parseWith } from '../schemas.js';

/** Bootstrap replicates x rows x groupings evaluated on the main thread at most (~1 s). */
export const MAX_BOOTSTRAP_WORK = 20_000_000;

const seed = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);

export const rowsOf = (max: number, what: string) =>
  z.array(z.unknown()).min(1, `${what} needs at least one row`).max(max, `${what} may hold at most ${max} rows`);

export const labelsSchema = z.array(z.union([z.number(), z.string()]));

export const attributionSettingsSchema = (cfg: Config) =>
  z.strictObject({
    sampleSize: z.number().int().min(1).max(2000).default(DEFAULT_ATTRIBUTION_SAMPLE),
    nSamples: z.number().int().min(2).max(cfg.maxNSamples).default(DEFAULT_ATTRIBUTION_NSAMPLES),
    seed: seed.default(0),
    maxBackground: z.number().int().min(1).max(1000).default(DEFAULT_ATTRIBUTION_BACKGROUND),
    background: rowsOf(cfg.maxBackgroundRows, 'attributions.background').optional(),
  });

export type AttributionSettings = z.infer<ReturnType<typeof attributionSettingsSchema>>;

/** Kernel SHAP over a seeded sample of `rows`: what attributions by group and attribution drift both need. */
export async function explainSample(
  ctx: AppContext,
  m: ServedModel,
  rows: Rows,
  settings: AttributionSettings,
  background: Rows,
  deadline: number,
  outputs?: number[],
): Promise<{ sample: Int32Array; explanation: Explanation }> {
  const sample = sampleRows(rows.n, settings.sampleSize, settings.seed);
  const explanation = await ctx.executor.run({
    kind: 'explain',
    model: m.name,
    version: m.version,
    method: 'kernel-shap',
    rows: pickRows(rows, sample),
    options: {
      background,
      ...(outputs ? { outputs } : {}),
      nSamples: settings.nSamples,
      seed: settings.seed,
      link: m.metadata?.link ?? 'identity',
      maxBackground: settings.maxBackground,
      deadline,
    },
  });
  return { sample, explanation };
}

export function fairnessSchema(cfg: Config) {
  return z.strictObject({
    data: rowsOf(cfg.maxImportanceRows, 'data').optional(),
    labels: labelsSchema.optional(),
    sensitiveFeatures: z.array(z.string().min(1)).min(1).max(10).optional(),
    intersections: z.boolean().default(true),
    task: z.enum(['binary-classification', 'multiclass-classification', 'regression']).optional(),
    threshold: z.number().min(0).max(1).optional(),
    positiveClass: z.union([z.number().int().min(0), z.string()]).optional(),
    output: z.union([z.number().int().min(0), z.string()]).optional(),
    bootstrap: z
      .strictObject({
        n: z.number().int().min(0).max(5000).default(DEFAULT_BOOTSTRAP.n),
        seed: seed.default(DEFAULT_BOOTSTRAP.seed),
        confidence: z.number().gt(0).lt(1).default(DEFAULT_BOOTSTRAP.confidence),
      })
      .optional(),
    fourFifths: z.number().gt(0).max(1).default(0.8),
    attributions: z.union([z.boolean(), attributionSettingsSchema(cfg)]).optional(),
    proxy: z
      .strictObject({ minAssociation: z.number().min(0).max(1).optional(), minShare: z.number().min(0).max(1).optional() })
      .optional(),
    deadlineMs: z.number().int().positive().max(cfg.maxDeadlineMs, `deadlineMs may be at most ${cfg.maxDeadlineMs}`).optional(),
  });
}

export type FairnessRequest = z.infer<ReturnType<typeof fairnessSchema>>;

/** Labels as numbers: class names (metadata.classes) become indices. */
export function labelsFrom(raw: (number | string)[], m: ServedModel, what = 'labels'): Float32Array {
  const classes = m.metadata?.classes;
  return Float32Array.from(raw, (v, i) => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new ApiError('BAD_LABELS', `${what}[${i}]: ${v} is not a finite number`);
      return v;
    }
    const idx = classes ? classes.indexOf(v) : -1;
    if (idx < 0) {
      throw new ApiError(
        'BAD_LABELS',
        `${what}[${i}]: "${v}" is not a class of model "${m.name}"${classes ? `; classes are ${classes.join(', ')}` : ' (it declares no class names; send class indices)'}`,
      );
    }
    return idx;
  });
}

/** Feature types and one-hot groups from metadata.json. */
export function featureInfo(m: ServedModel): FeatureInfo {
  const features = m.metadata?.features;
  if (!features) return m.inputShape.length > 1 ? { types: m.space.featureNames.map(() => 'pixel') } : {};
  const groups = new Map<string, number[]>();
  features.forEach((f, i) => {
    if (f.group !== undefined) groups.set(f.group, [...(groups.get(f.group) ?? []), i]);
  });
  return { types: features.map((f) => f.type), groups: [...groups].map(([name, columns]) => ({ name, columns })) };
}

export function layoutOf(m: ServedModel) {
  return { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space };
}

/** The model's task: metadata's, else guessed from the outputs (probabilities in one column: binary). */
function taskOf(m: ServedModel, asked: FairnessTask | undefined, predictions: Float32Array): FairnessTask {
  if (asked) return asked;
  if (m.metadata?.task) return m.metadata.task;
  if (m.model.nOutputs > 1) return 'multiclass-classification';
  return predictions.every((p) => p >= 0 && p <= 1) ? 'binary-classification' : 'regression';
}

function classIndex(m: ServedModel, v: number | string, what: string): number {
  if (typeof v === 'number') return v;
  const idx = m.metadata?.classes?.indexOf(v) ?? -1;
  if (idx < 0) throw new ApiError('BAD_PARAMETER', `${what} "${v}" is not a class of model "${m.name}"`);
  return idx;
}

export async function computeFairness(ctx: AppContext, m: ServedModel, p: FairnessRequest): Promise<FairnessReport & { notes: string[] }> {
  const started = Date.now();
  const notes: string[] = [];
  let rows: Rows;
  let labels: Float32Array | undefined;
  if (p.data) {
    rows = toRows(p.data, layoutOf(m), 'data');
    if (p.labels) {
      if (p.labels.length !== rows.n) throw new ApiError('BAD_LABELS', `labels has ${p.labels.length} entries but data has ${rows.n} rows`);
      labels = labelsFrom(p.labels, m);
    } else {
      notes.push('no labels: only label-free metrics (selection rate, mean score or prediction) are computed');
    }
  } else {
    if (p.labels)
      throw new ApiError('BAD_LABELS', "labels were given without data; send both, or neither to use the model's reference set");
    if (!m.reference)
      throw new ApiError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send data (and labels)`);
    rows = m.reference.rows;
    labels = m.reference.labels;
  }
  const info = featureInfo(m);
  const names = p.sensitiveFeatures ?? m.metadata?.sensitiveFeatures ?? [];
  const groupings = prepareGroupings(rows, m.space, names, info, p.intersections);
  const boot = { ...DEFAULT_BOOTSTRAP, ...p.bootstrap };
  const work = boot.n * rows.n * (groupings.all.length + 1);
  if (work > MAX_BOOTSTRAP_WORK) {
    throw new ApiError(
      'LIMIT_EXCEEDED',
      `bootstrap.n (${boot.n}) x rows (${rows.n}) x groupings (${groupings.all.length + 1}) exceeds ${MAX_BOOTSTRAP_WORK}: lower bootstrap.n or send fewer rows`,
    );
  }

  const predictions = await ctx.executor.run({ kind: 'predict', model: m.name, version: m.version, rows });
  const task = taskOf(m, p.task, predictions);
  let output: number | undefined;
  if (p.output !== undefined) {
    output = typeof p.output === 'number' ? p.output : m.space.outputNames.indexOf(p.output);
    if (output < 0 || output >= m.model.nOutputs)
      throw new ApiError('UNKNOWN_OUTPUT', `output ${JSON.stringify(p.output)} is not one of ${m.space.outputNames.join(', ')}`);
  }
  let report = fairnessReport(
    { predictions, nOutputs: m.model.nOutputs, n: rows.n, labels, groupings: groupings.all },
    {
      task,
      threshold: p.threshold,
      positiveClass: p.positiveClass === undefined ? undefined : classIndex(m, p.positiveClass, 'positiveClass'),
      classNames: m.metadata?.classes,
      output,
      bootstrap: boot,
      fourFifths: p.fourFifths,
    },
  );

  const asked = p.attributions;
  const settings = typeof asked === 'object' ? asked : parseWith(attributionSettingsSchema(ctx.config), {});
  const background = settings.background ? toRows(settings.background, layoutOf(m), 'attributions.background') : m.background;
  if (asked !== false) {
    if (m.inputShape.length > 1) {
      if (asked !== undefined)
        throw new ApiError(
          'BAD_PARAMETER',
          'attributions by group are for tabular models: Kernel SHAP over every pixel is too costly here',
        );
      notes.push('no attributions: Kernel SHAP over every pixel is too costly for a fairness report');
    } else if (!background) {
      if (asked !== undefined) {
        throw new ApiError('NO_BACKGROUND', `model "${m.name}" has no background set; pass attributions.background (rows) for Kernel SHAP`);
      }
      notes.push('no attributions: the model has no background set (pass attributions.background)');
    } else {
      const deadline = started + (p.deadlineMs ?? ctx.config.defaultDeadlineMs);
      const { sample, explanation } = await explainSample(ctx, m, rows, settings, background, deadline, outcomeOutputs(report));
      report = attachAttributions(report, { rows, space: m.space, info, groupings, sample, explanation }, p.proxy);
      const unconverged = explanation.explanations.filter((e) => !e.converged).length;
      if (unconverged)
        notes.push(
          `${unconverged} of ${sample.length} Kernel SHAP estimates stopped before converging (deadline or budget); see attributions.diagnostics`,
        );
    }
  }
  return { ...report, notes };
}

export function fairnessRoutes(ctx: AppContext): Router {
  const r = Router();
  const schema = fairnessSchema(ctx.config);

  r.post('/v1/models/:name/fairness', async (req, res) => {
    const m = getModel(ctx.registry, req.params.name, req);
    const format = chooseFormat(req);
    const plot = typeof req.query.plot === 'string' ? req.query.plot : undefined;
    if (plot !== undefined && !(FAIRNESS_PLOTS as readonly string[]).includes(plot)) {
      throw new ApiError('BAD_PARAMETER', `plot must be one of ${FAIRNESS_PLOTS.join(', ')}`);
    }
    const outcome = queryInt(req, 'outcome', 0, 1000);
    const breakdown = queryInt(req, 'breakdown', 0, 1000);
    const p = parseWith(schema, req.body ?? {});
    const report = await computeFairness(ctx, m, p);
    if (format === 'json') {
      res.json({ model: { name: m.name, version: m.version }, dataset: p.data ? 'request' : 'reference', ...report });
      return;
    }
    if (outcome !== undefined && outcome >= report.outcomes.length) {
      throw new ApiError('BAD_PARAMETER', `outcome=${outcome} but the report has ${report.outcomes.length} outcome(s)`);
    }
    const breakdowns = report.outcomes[outcome ?? 0].breakdowns.length;
    if (breakdown !== undefined && breakdown >= breakdowns) {
      throw new ApiError('BAD_PARAMETER', `breakdown=${breakdown} but the outcome has ${breakdowns} breakdown(s)`);
    }
    sendVisual(res, format, {
      svg: () => renderFairnessChart(report, (plot as FairnessPlot | undefined) ?? 'groups', { outcome, breakdown }),
      html: () => renderFairnessReport(report, { name: m.name, version: m.version, description: m.metadata?.description }),
    });
  });

  return r;
}
