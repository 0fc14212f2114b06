/**
 * Drift of inputs, outputs, labels and attributions (monitoring/drift), without HTTP: current rows
 * (a request's, or the live window) against a reference (the request's, or the model's own). The
 * model's own reference side of attribution drift is explained once per model version and
 * settings, then reused (service context's referenceAttributions), not recomputed per report view.
 * Every task runs within the request's budget (service/bounds.ts); past the deadline the report is
 * answered without attribution drift, with `stopReason: "deadline"`. The shared reference side is
 * computed without the request's cancellation signal (another request may be waiting for it).
 */
import type { Explanation, Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { attributionDrift, driftReport, type AttributionDrift, type DriftReport } from '../monitoring/drift/index.js';
import { DEFAULT_THRESHOLDS } from '../monitoring/drift/thresholds.js';
import { playersOf } from '../monitoring/features.js';
import { ExplanationCache, hashRows } from './cache.js';
import { budgetOf, runOptions, type Budget, type RequestControl } from './bounds.js';
import type { Service } from './context.js';
import { admit, sumEstimates, type Estimate } from './cost.js';
import { ServiceError } from './errors.js';
import { attributionSettings, explainSample, isDeadline, sampleEstimate } from './fairness.js';
import { featureInfo, labelsFrom, layoutOf, toRows } from './instances.js';
import { MIN_LIVE_ROWS } from './live.js';
import type { AttributionSettings, DriftRequest } from './schemas/requests.js';
import { isCacheable } from './stopReason.js';

export type DriftSource = 'request' | 'live';

export interface DriftComputation {
  reference: Rows;
  referenceLabels?: Float32Array;
  /** Set when `reference` is the model's own set: its attributions are then cached per version. */
  referenceName?: 'reference' | 'background';
  current: Rows;
  currentLabels?: Float32Array;
  bins?: number;
  thresholds?: DriftRequest['thresholds'];
  /** false: no attribution drift; undefined: on when the model has a background and is tabular. */
  attributions?: DriftRequest['attributions'];
  deadlineMs?: number;
  source: DriftSource;
}

export type ComputedDrift = DriftReport & { notes: string[]; stopReason?: 'deadline' };

/** The model's own reference rows: its reference set, else its background (no labels). */
export function modelReference(m: ServedModel): { rows: Rows; labels?: Float32Array; name: 'reference' | 'background' } {
  if (m.reference) return { rows: m.reference.rows, labels: m.reference.labels, name: 'reference' };
  if (m.background) return { rows: m.background, name: 'background' };
  throw new ServiceError('NO_REFERENCE_DATA', `model "${m.name}" has no reference or background set in its metadata; send reference rows`);
}

async function referenceExplanation(
  svc: Service,
  m: ServedModel,
  c: DriftComputation,
  settings: AttributionSettings,
  background: Rows,
  budget: Budget,
): Promise<Explanation> {
  const compute = async (b: Budget) => (await explainSample(svc, m, c.reference, settings, background, b)).explanation;
  if (!c.referenceName) return compute(budget);
  const key = ExplanationCache.contextHash({
    model: m.name,
    version: m.version,
    reference: c.referenceName,
    settings: { ...settings, background: hashRows(background) },
  });
  let p = svc.referenceAttributions.get(key);
  if (!p) {
    // Shared with later requests: not cancelled when this request's client leaves.
    p = compute({ ...budget, signal: undefined });
    svc.referenceAttributions.set(key, p);
    // A failed or deadline-cut explanation is not the one to keep.
    p.then(
      (e) => e.explanations.every(isCacheable) || svc.referenceAttributions.delete(key),
      () => svc.referenceAttributions.delete(key),
    );
  }
  return p;
}

export async function computeDrift(svc: Service, m: ServedModel, c: DriftComputation, ctl: RequestControl = {}): Promise<ComputedDrift> {
  const budget = budgetOf(svc.config, ctl, c.deadlineMs);
  const notes: string[] = [];
  const asked = c.attributions;
  const tabular = m.inputShape.length === 1;
  const settings = attributionSettings(svc, asked);
  const background = settings.background ? toRows(settings.background, layoutOf(m), 'attributions.background') : m.background;
  const attributing = asked !== false && tabular && background !== undefined;
  const predictionCost: Estimate = { evaluations: c.reference.n + c.current.n, terms: `${c.reference.n + c.current.n} rows predicted` };
  admit(
    svc.config,
    'this drift report',
    attributing
      ? sumEstimates(
          predictionCost,
          sampleEstimate(m, c.reference.n, settings, background),
          sampleEstimate(m, c.current.n, settings, background),
        )
      : predictionCost,
    'Lower attributions.sampleSize or attributions.nSamples, or send attributions: false',
  );
  const run = (rows: Rows) => svc.executor.run({ kind: 'predict', model: m.name, version: m.version, rows }, runOptions(budget));
  const [referencePredictions, currentPredictions] = [await run(c.reference), await run(c.current)];

  let attributions: AttributionDrift[] | undefined;
  let stopReason: 'deadline' | undefined;
  if (asked !== false) {
    if (!background || !tabular) {
      const why = !tabular ? 'Kernel SHAP over every pixel is too costly for a drift report' : `model "${m.name}" has no background set`;
      if (asked !== undefined) throw new ServiceError(!tabular ? 'BAD_PARAMETER' : 'NO_BACKGROUND', `no attribution drift: ${why}`);
      notes.push(`no attribution drift: ${why}`);
    } else {
      try {
        const ref = await referenceExplanation(svc, m, c, settings, background, budget);
        const cur = (await explainSample(svc, m, c.current, settings, background, budget)).explanation;
        const players = playersOf(m.space, featureInfo(m));
        const ndcg = c.thresholds?.ndcg ?? DEFAULT_THRESHOLDS.ndcg;
        attributions = m.space.outputNames.map((name, o) => attributionDrift(ref, cur, players, o, name, ndcg));
        if ([ref, cur].some((e) => e.explanations.some((i) => i.stopReason === 'deadline'))) stopReason = 'deadline';
      } catch (e) {
        if (!isDeadline(e)) throw e;
        stopReason = 'deadline';
        notes.push(
          'no attribution drift: the deadline passed before Kernel SHAP finished; allow more time (deadlineMs) or lower attributions.sampleSize',
        );
      }
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
  if (report.summary.lowConfidence) {
    notes.push(
      `low confidence: ${Math.min(c.reference.n, c.current.n)} row(s) on the smaller side, fewer than the ${report.summary.minimumRows} ` +
        'a drift test needs; the statistics are given but nothing is flagged as drifted',
    );
  }
  svc.observer.drift?.(m.name, report, c.source);
  return { ...report, notes, ...(stopReason ? { stopReason } : {}) };
}

export type ServedDrift = Omit<ComputedDrift, 'reference' | 'current'> & {
  model: { name: string; version: string };
  reference: { rows: number; source: string };
  current: { rows: number; source: string } & Record<string, unknown>;
};

function served(m: ServedModel, report: ComputedDrift, reference: Record<string, unknown>, current: Record<string, unknown>): ServedDrift {
  return {
    model: { name: m.name, version: m.version },
    ...report,
    reference: { ...report.reference, source: 'request', ...reference },
    current: { ...report.current, source: 'request', ...current },
  };
}

/** POST /drift: the request's current rows against its reference, or the model's own. */
export async function driftOfRequest(svc: Service, m: ServedModel, p: DriftRequest, ctl: RequestControl = {}): Promise<ServedDrift> {
  const current = toRows(p.current, layoutOf(m), 'current');
  const currentLabels = p.currentLabels ? labelsFrom(p.currentLabels, m, 'currentLabels') : undefined;
  if (currentLabels && currentLabels.length !== current.n) {
    throw new ServiceError('BAD_LABELS', `currentLabels has ${currentLabels.length} entries but current has ${current.n} rows`);
  }
  let reference: Rows;
  let referenceLabels: Float32Array | undefined;
  let referenceName: 'request' | 'reference' | 'background';
  if (p.reference) {
    reference = toRows(p.reference, layoutOf(m), 'reference');
    referenceLabels = p.referenceLabels ? labelsFrom(p.referenceLabels, m, 'referenceLabels') : undefined;
    if (referenceLabels && referenceLabels.length !== reference.n) {
      throw new ServiceError('BAD_LABELS', `referenceLabels has ${referenceLabels.length} entries but reference has ${reference.n} rows`);
    }
    referenceName = 'request';
  } else {
    if (p.referenceLabels) throw new ServiceError('BAD_LABELS', 'referenceLabels were given without reference rows');
    const own = modelReference(m);
    reference = own.rows;
    referenceLabels = own.labels;
    referenceName = own.name;
  }
  const report = await computeDrift(
    svc,
    m,
    {
      reference,
      referenceName: referenceName === 'request' ? undefined : referenceName,
      referenceLabels: currentLabels ? referenceLabels : undefined,
      current,
      currentLabels: referenceLabels ? currentLabels : undefined,
      bins: p.bins,
      thresholds: p.thresholds,
      attributions: p.attributions,
      deadlineMs: p.deadlineMs,
      source: 'request',
    },
    ctl,
  );
  if (currentLabels && !referenceLabels) report.notes.push('currentLabels ignored: the reference has no labels to compare with');
  return served(m, report, { source: referenceName }, { source: 'request' });
}

/** GET /drift/live: the live window (the last rows predict and explain saw) against the model's reference. */
export async function driftOfLiveWindow(
  svc: Service,
  m: ServedModel,
  q: { bins?: number; attributions?: boolean } = {},
  ctl: RequestControl = {},
): Promise<ServedDrift> {
  const window = await svc.live.window(m);
  const seen = window?.rows.n ?? 0;
  if (!window || seen < MIN_LIVE_ROWS) {
    throw new ServiceError(
      'NO_LIVE_DATA',
      `the live window of model "${m.name}" holds ${seen} row(s); drift needs at least ${MIN_LIVE_ROWS}: send more predict or explain requests, or POST /v1/models/${m.name}/drift with current rows`,
      { rows: seen, minimum: MIN_LIVE_ROWS },
    );
  }
  const own = modelReference(m);
  const report = await computeDrift(
    svc,
    m,
    {
      reference: own.rows,
      referenceName: own.name,
      current: window.rows,
      bins: q.bins,
      attributions: q.attributions,
      source: 'live',
    },
    ctl,
  );
  const { rows: _rows, ...windowInfo } = window;
  return served(m, report, { source: own.name }, { source: 'live', ...windowInfo });
}
