/**
 * A fairness report for a model, without HTTP: group metrics with bootstrap intervals
 * (monitoring/fairness) and Kernel SHAP attributions by group with proxies. Without data: the model's
 * reference set and its declared sensitive features. The model calls (predictions, Kernel SHAP) and
 * the bootstrap all run on the executor (worker threads), never on the event loop, all within the
 * request's one budget (service/bounds.ts). Past the deadline the report is still answered when the
 * group metrics are done: without attributions (or with unconverged ones), `stopReason: "deadline"`.
 */
import type { Explanation, Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { attachAttributions, outcomeOutputs, prepareGroupings } from '../monitoring/fairness/assess.js';
import { DEFAULT_BOOTSTRAP } from '../monitoring/fairness/report.js';
import type { FairnessReport, FairnessTask } from '../monitoring/fairness/types.js';
import { pickRows, sampleRows } from '../monitoring/sample.js';
import { budgetOf, runOptions, type Budget, type RequestControl } from './bounds.js';
import type { Service } from './context.js';
import { admit, kernelShapEstimate, playerCount, sumEstimates, type Estimate } from './cost.js';
import { computeRecourse, recourseEstimate, type RecourseBurdenJson } from './counterfactuals.js';
import { ServiceError } from './errors.js';
import { classIndex, featureInfo, labelsFrom, layoutOf, resolveOutput, toRows } from './instances.js';
import { parseWith } from './schemas/common.js';
import type { AttributionSettings, FairnessRequest } from './schemas/requests.js';
import { recourseSettingsSchema } from './schemas/counterfactuals.js';

/** Bootstrap replicates x rows x groupings at most (about a second of one thread's work). */
export const MAX_BOOTSTRAP_WORK = 20_000_000;

export type ServedFairnessReport = FairnessReport & {
  model: { name: string; version: string };
  dataset: 'request' | 'reference';
  notes: string[];
  stopReason?: 'deadline';
  /** Recourse burden per sensitive feature, when the request asks for it. */
  recourse?: RecourseBurdenJson[];
};

/** Attribution settings with their defaults filled in. */
export function attributionSettings(svc: Service, asked: boolean | AttributionSettings | undefined): AttributionSettings {
  return typeof asked === 'object' ? asked : parseWith(svc.schemas.attributionSettings, {});
}

/** Kernel SHAP over a seeded sample of `rows`: what attributions by group and attribution drift both need. */
export async function explainSample(
  svc: Service,
  m: ServedModel,
  rows: Rows,
  settings: AttributionSettings,
  background: Rows,
  budget: Budget,
  outputs?: number[],
): Promise<{ sample: Int32Array; explanation: Explanation }> {
  const sample = sampleRows(rows.n, settings.sampleSize, settings.seed);
  const explanation = await svc.executor.run(
    {
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
        deadline: budget.deadline,
      },
    },
    runOptions(budget),
  );
  return { sample, explanation };
}

/** Kernel SHAP over min(sampleSize, rows) sampled rows (admission control of fairness and drift). */
export function sampleEstimate(m: ServedModel, rows: number, settings: AttributionSettings, background: Rows): Estimate {
  return kernelShapEstimate({
    instances: Math.min(rows, settings.sampleSize),
    players: playerCount(m.model.nFeatures, m.space.groups),
    nSamples: settings.nSamples,
    backgroundRows: background.n,
    maxBackground: settings.maxBackground,
  });
}

/** True for the error a task stopped at its deadline with. */
export function isDeadline(e: unknown): boolean {
  return (e as { code?: unknown } | undefined)?.code === 'DEADLINE_EXCEEDED';
}

/** The model's task: metadata's, else guessed from the outputs (probabilities in one column: binary). */
function taskOf(m: ServedModel, asked: FairnessTask | undefined, predictions: Float32Array): FairnessTask {
  if (asked) return asked;
  if (m.metadata?.task) return m.metadata.task;
  if (m.model.nOutputs > 1) return 'multiclass-classification';
  return predictions.every((p) => p >= 0 && p <= 1) ? 'binary-classification' : 'regression';
}

export async function computeFairness(
  svc: Service,
  m: ServedModel,
  p: FairnessRequest,
  ctl: RequestControl = {},
): Promise<ServedFairnessReport> {
  const budget = budgetOf(svc.config, ctl, p.deadlineMs);
  const notes: string[] = [];
  let rows: Rows;
  let labels: Float32Array | undefined;
  if (p.data) {
    rows = toRows(p.data, layoutOf(m), 'data');
    if (p.labels) {
      if (p.labels.length !== rows.n)
        throw new ServiceError('BAD_LABELS', `labels has ${p.labels.length} entries but data has ${rows.n} rows`);
      labels = labelsFrom(p.labels, m);
    } else {
      notes.push('no labels: only label-free metrics (selection rate, mean score or prediction) are computed');
    }
  } else {
    if (p.labels)
      throw new ServiceError('BAD_LABELS', "labels were given without data; send both, or neither to use the model's reference set");
    if (!m.reference)
      throw new ServiceError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send data (and labels)`);
    rows = m.reference.rows;
    labels = m.reference.labels;
  }
  const info = featureInfo(m);
  const names = p.sensitiveFeatures ?? m.metadata?.sensitiveFeatures ?? [];
  const groupings = prepareGroupings(rows, m.space, names, info, p.intersections);
  const boot = { ...DEFAULT_BOOTSTRAP, ...p.bootstrap };
  const work = boot.n * rows.n * (groupings.all.length + 1);
  if (work > MAX_BOOTSTRAP_WORK) {
    throw new ServiceError(
      'LIMIT_EXCEEDED',
      `bootstrap.n (${boot.n}) x rows (${rows.n}) x groupings (${groupings.all.length + 1}) exceeds ${MAX_BOOTSTRAP_WORK}: lower bootstrap.n or send fewer rows`,
    );
  }

  const asked = p.attributions;
  const settings = attributionSettings(svc, asked);
  const background = settings.background ? toRows(settings.background, layoutOf(m), 'attributions.background') : m.background;
  const attributing = asked !== false && m.inputShape.length === 1 && background !== undefined;
  const recourseSettings = p.recourse ? (typeof p.recourse === 'object' ? p.recourse : parseWith(recourseSettingsSchema, {})) : undefined;
  const recourseFeatures = recourseSettings?.sensitiveFeatures ?? names;
  const predictionCost: Estimate = { evaluations: rows.n, terms: `${rows.n} rows predicted` };
  const parts = [predictionCost];
  if (attributing) parts.push(sampleEstimate(m, rows.n, settings, background));
  if (recourseSettings) parts.push(recourseEstimate(m, recourseFeatures.length, recourseSettings, p.data ? rows.n : undefined));
  admit(
    svc.config,
    'this fairness report',
    parts.length > 1 ? sumEstimates(...parts) : predictionCost,
    'Lower attributions.sampleSize, attributions.nSamples or attributions.maxBackground (or send attributions: false), or recourse.maxRows or recourse.maxEvaluations',
  );

  const predictions = await svc.executor.run({ kind: 'predict', model: m.name, version: m.version, rows }, runOptions(budget));
  const task = taskOf(m, p.task, predictions);
  let report = await svc.executor.run(
    {
      kind: 'fairness-stats',
      input: { predictions, nOutputs: m.model.nOutputs, n: rows.n, labels, groupings: groupings.all },
      options: {
        task,
        threshold: p.threshold,
        positiveClass: p.positiveClass === undefined ? undefined : classIndex(m, p.positiveClass, 'positiveClass'),
        classNames: m.metadata?.classes,
        output: p.output === undefined ? undefined : resolveOutput(p.output, m.space),
        bootstrap: boot,
        fourFifths: p.fourFifths,
      },
    },
    runOptions(budget),
  );

  let stopReason: 'deadline' | undefined;
  if (asked !== false) {
    if (m.inputShape.length > 1) {
      if (asked !== undefined)
        throw new ServiceError(
          'BAD_PARAMETER',
          'attributions by group are for tabular models: Kernel SHAP over every pixel is too costly here',
        );
      notes.push('no attributions: Kernel SHAP over every pixel is too costly for a fairness report');
    } else if (!background) {
      if (asked !== undefined) {
        throw new ServiceError(
          'NO_BACKGROUND',
          `model "${m.name}" has no background set; pass attributions.background (rows) for Kernel SHAP`,
        );
      }
      notes.push('no attributions: the model has no background set (pass attributions.background)');
    } else {
      try {
        const { sample, explanation } = await explainSample(svc, m, rows, settings, background, budget, outcomeOutputs(report));
        report = attachAttributions(report, { rows, space: m.space, info, groupings, sample, explanation }, p.proxy);
        const unconverged = explanation.explanations.filter((e) => !e.converged).length;
        if (unconverged)
          notes.push(
            `${unconverged} of ${sample.length} Kernel SHAP estimates stopped before converging (deadline or budget); see attributions.diagnostics`,
          );
        if (explanation.explanations.some((e) => e.stopReason === 'deadline')) stopReason = 'deadline';
      } catch (e) {
        // The group metrics are done: answer them, and say why the attributions are missing.
        if (!isDeadline(e)) throw e;
        stopReason = 'deadline';
        notes.push(
          'no attributions: the deadline passed before Kernel SHAP finished; allow more time (deadlineMs) or lower attributions.sampleSize or attributions.nSamples',
        );
      }
    }
  }
  // Recourse burden: opt-in (a counterfactual search per unfavourable row costs seconds), bounded by
  // recourse.maxRows, recourse.maxEvaluations and the request's deadline (admitted above).
  let recourse: RecourseBurdenJson[] | undefined;
  if (recourseSettings) {
    recourse = await computeRecourse(svc, m, recourseFeatures, recourseSettings, budget, p.data ? rows : undefined, { admitted: true });
    for (const b of recourse) {
      const cut = b.incomplete.deadline + b.incomplete.budget;
      if (cut)
        notes.push(
          `recourse by ${b.feature}: ${cut} row(s) stopped at the deadline or the search budget, so their costs may be overestimated; raise deadlineMs or recourse.maxEvaluations, or lower recourse.maxRows`,
        );
    }
  }
  return {
    model: { name: m.name, version: m.version },
    dataset: p.data ? 'request' : 'reference',
    ...report,
    notes,
    ...(stopReason ? { stopReason } : {}),
    ...(recourse ? { recourse } : {}),
  };
}
