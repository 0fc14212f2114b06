/**
 * Comparing two served versions of a model (GET /v1/models/{name}/versions/compare, and the model
 * report when two versions are served), computed as a cached job: the first request starts the
 * computation and answers "pending" (HTTP 202, poll the same URL), later ones get the result, which
 * is kept per (model, from, to) pair: in this process and, with REDIS_URL, in Redis for every replica
 * (one replica computes; the others wait on its lock or read its result). A failed computation is not
 * kept: the next request tries again.
 *
 * Both versions run on the same rows (the to version's reference set, else the from version's,
 * else a background set); attributions use one background for both (the to version's), so the
 * differences are the models', not the data's.
 *
 * A comparison is one computation for every client that asks (none cancels it by leaving), bounded by
 * the longest deadline (MAX_DEADLINE_MS); one whose model evaluations exceed MAX_REQUEST_EVALUATIONS
 * is refused before it starts (TOO_EXPENSIVE).
 */
import type { Explanation } from '../explainers/types.js';
import { findVersion, servedVersions, type ServedModel, type ServedVersion } from '../models/served.js';
import { playersOf } from '../monitoring/features.js';
import { sampleRows } from '../monitoring/sample.js';
import {
  attributionShift,
  decisionAgreement,
  decisions,
  fairnessShift,
  largestChanges,
  predictionShifts,
  type VersionComparison,
  type VersionRef,
} from '../monitoring/versions.js';
import { budgetOf, runOptions } from './bounds.js';
import { hashRows } from './cache.js';
import type { ComparisonJob, Service } from './context.js';
import { admit, kernelShapEstimate, playerCount, sumEstimates, type Estimate } from './cost.js';
import { ServiceError } from './errors.js';
import { computeFairness, explainSample } from './fairness.js';
import { featureInfo } from './instances.js';
import { parseWith } from './schemas/common.js';

/** Kernel SHAP settings of the attribution comparison (both versions, the same rows and seed). */
export const COMPARE_ATTRIBUTIONS = { sampleSize: 100, nSamples: 1024, seed: 0, maxBackground: 50 } as const;

export type ComparisonState =
  | { status: 'done'; comparison: VersionComparison }
  | { status: 'pending'; from: VersionRef; to: VersionRef; startedAt: string };

function ref(v: ServedVersion): VersionRef {
  return { version: v.version, ...(v.label !== undefined ? { label: v.label } : {}) };
}

/**
 * The pair to compare: `to` defaults to the default version, `from` to the next version served
 * (the newest other one). Unknown versions are VERSION_NOT_FOUND; one served version, the same
 * version twice, or versions with different inputs or outputs are VERSIONS_INCOMPARABLE.
 */
export function comparisonPair(svc: Service, name: string, from?: string, to?: string): { from: ServedVersion; to: ServedVersion } {
  const all = servedVersions(svc.registry, name);
  const pick = (v: string, which: string) => {
    const found = findVersion(svc.registry, name, v);
    if (!found)
      throw new ServiceError(
        'VERSION_NOT_FOUND',
        `${which}: model "${name}" has no version "${v.slice(0, 100)}"; served versions: ${all.map((x) => x.label ?? x.version).join(', ')}`,
        { versions: all.map((x) => x.label ?? x.version) },
      );
    return found;
  };
  const b = to !== undefined ? pick(to, 'to') : all[0];
  const a = from !== undefined ? pick(from, 'from') : all.find((v) => v.version !== b?.version);
  if (!a || !b)
    throw new ServiceError(
      'VERSIONS_INCOMPARABLE',
      `model "${name}" serves one version; add another under ${name}/versions/<label>/ in the model repository to compare`,
      { versions: all.map((x) => x.label ?? x.version) },
    );
  if (a.version === b.version) throw new ServiceError('VERSIONS_INCOMPARABLE', `from and to are the same version (${a.version})`);
  comparable(a, b);
  return { from: a, to: b };
}

/** Both versions take the same inputs and give as many outputs, and there are rows to run them on. */
function comparable(from: ServedVersion, to: ServedVersion): void {
  const a = from.model;
  const b = to.model;
  const names = `versions ${from.label ?? a.version} and ${to.label ?? b.version} of model "${b.name}"`;
  if (a.space.featureNames.join('\u0000') !== b.space.featureNames.join('\u0000'))
    throw new ServiceError('VERSIONS_INCOMPARABLE', `${names} take different features; only versions with the same inputs can be compared on the same rows`);
  if (a.model.nOutputs !== b.model.nOutputs)
    throw new ServiceError('VERSIONS_INCOMPARABLE', `${names} give ${a.model.nOutputs} and ${b.model.nOutputs} outputs`);
  if (!b.reference && !a.reference && !b.background && !a.background)
    throw new ServiceError('NO_REFERENCE_DATA', `neither of ${names} has a reference or background set in its metadata to compare on`);
}

/**
 * The comparison of the pair: done, or pending (started now, or already running here or on another
 * replica). `wait` waits for it instead (chart URLs and the report, which cannot poll).
 */
export async function versionComparison(
  svc: Service,
  pair: { from: ServedVersion; to: ServedVersion },
  options: { wait?: boolean } = {},
): Promise<ComparisonState> {
  const key = `${pair.from.model.name}:${pair.from.version}:${pair.to.version}`;
  let job = svc.comparisons.get(key);
  if (!job) {
    const shared = svc.comparisonsShared;
    if (shared) {
      const [done] = await shared.getMany<VersionComparison>([key]);
      if (done) {
        job = { promise: Promise.resolve(done), value: done, startedAt: Date.now() };
        svc.comparisons.set(key, job);
      }
    }
  }
  if (!job) {
    admit(
      svc.config,
      `the comparison of versions ${pair.from.label ?? pair.from.version} and ${pair.to.label ?? pair.to.version}`,
      comparisonEstimate(pair),
      'Its size is fixed by the versions (their reference rows, 100 rows explained per version)',
      'the operator can raise MAX_REQUEST_EVALUATIONS, or compare versions with smaller reference sets',
    );
    const started: ComparisonJob = { promise: Promise.resolve(undefined), startedAt: Date.now() };
    started.promise = produce(svc, key, pair).then(
      (value) => {
        started.value = value;
        return value;
      },
      (e: unknown) => {
        if (svc.comparisons.get(key) === started) svc.comparisons.delete(key);
        throw e;
      },
    );
    started.promise.catch(() => undefined);
    svc.comparisons.set(key, started);
    job = started;
  }
  if (job.value !== undefined || options.wait) return { status: 'done', comparison: (await job.promise) as VersionComparison };
  return { status: 'pending', from: ref(pair.from), to: ref(pair.to), startedAt: new Date(job.startedAt).toISOString() };
}

/** Computes here, or waits for the replica that holds the computation's lock (then computes if it vanished). */
async function produce(svc: Service, key: string, pair: { from: ServedVersion; to: ServedVersion }): Promise<VersionComparison> {
  const shared = svc.comparisonsShared;
  if (!shared) return computeComparison(svc, pair);
  const [mine] = await shared.acquire([key]);
  if (!mine) {
    const theirs = await shared.wait<VersionComparison>(key);
    if (theirs) return theirs;
  }
  const stop = shared.heartbeat([key]);
  try {
    const c = await computeComparison(svc, pair);
    await shared.setMany([[key, c]]);
    return c;
  } finally {
    stop();
    await shared.release([key]);
  }
}

/** What computeComparison evaluates: both versions on the rows, Kernel SHAP on a sample of them, fairness on each reference. */
export function comparisonEstimate(pair: { from: ServedVersion; to: ServedVersion }): Estimate {
  const a = pair.from.model;
  const b = pair.to.model;
  const rows = (b.reference?.rows ?? a.reference?.rows ?? b.background ?? a.background)?.n ?? 0;
  const parts: Estimate[] = [{ evaluations: 2 * rows, terms: `2 versions x ${rows} rows predicted` }];
  const background = b.background ?? a.background;
  if (b.inputShape.length === 1 && background) {
    const one = kernelShapEstimate({
      instances: Math.min(COMPARE_ATTRIBUTIONS.sampleSize, rows),
      players: playerCount(b.model.nFeatures, b.space.groups),
      nSamples: COMPARE_ATTRIBUTIONS.nSamples,
      backgroundRows: background.n,
      maxBackground: COMPARE_ATTRIBUTIONS.maxBackground,
    });
    parts.push({ evaluations: 2 * one.evaluations, terms: `2 versions x (${one.terms})` });
  }
  if (b.metadata?.sensitiveFeatures.length && a.reference && b.reference) {
    parts.push({ evaluations: a.reference.rows.n + b.reference.rows.n, terms: 'both reference sets predicted for fairness' });
  }
  return sumEstimates(...parts);
}

export async function computeComparison(svc: Service, pair: { from: ServedVersion; to: ServedVersion }): Promise<VersionComparison> {
  const started = Date.now();
  const a = pair.from.model;
  const b = pair.to.model;
  const name = b.name;
  const notes: string[] = [];
  const reference = b.reference ?? a.reference;
  const rows = reference?.rows ?? b.background ?? a.background;
  if (!rows) throw new ServiceError('NO_REFERENCE_DATA', `neither version of model "${name}" has data to compare on`);
  if (a.reference && b.reference && hashRows(a.reference.rows) !== hashRows(b.reference.rows))
    notes.push('the versions have different reference sets: predictions and attributions use the to version\'s; fairness uses each version\'s own');
  if (a.space.outputNames.join('\u0000') !== b.space.outputNames.join('\u0000'))
    notes.push(`output names differ (${a.space.outputNames.join(', ')} before, ${b.space.outputNames.join(', ')} after); the to version's are shown`);

  // One computation for every client that asks: the longest deadline, and no client's cancellation.
  const budget = budgetOf(svc.config, { started }, svc.config.maxDeadlineMs);
  const k = b.model.nOutputs;
  const [pa, pb] = await Promise.all([
    svc.executor.run({ kind: 'predict', model: a.name, version: a.version, rows }, runOptions(budget)),
    svc.executor.run({ kind: 'predict', model: b.name, version: b.version, rows }, runOptions(budget)),
  ]);
  const task = b.metadata?.task ?? a.metadata?.task;
  const classifier = task === 'binary-classification' || task === 'multiclass-classification';
  const classes = b.metadata?.classes ?? (k === 1 ? ['0', '1'] : b.space.outputNames);
  const classOf = classifier ? (p: number[]) => classes[decisions(p, 1, k)[0]] ?? String(decisions(p, 1, k)[0]) : undefined;

  const comparison: VersionComparison = {
    model: name,
    from: ref(pair.from),
    to: ref(pair.to),
    data: { source: reference ? 'reference' : 'background', rows: rows.n },
    features: b.space.featureNames,
    outputs: b.space.outputNames,
    predictions: {
      shifts: predictionShifts(pa, pb, rows.n, b.space.outputNames),
      ...(classifier ? { agreement: decisionAgreement(pa, pb, rows.n, k, classes) } : {}),
      largestChanges: largestChanges(rows, pa, pb, k, 10, classOf),
    },
    notes,
    computedAt: '',
    computeMs: 0,
  };

  const background = b.background ?? a.background;
  if (b.inputShape.length > 1) notes.push('no attribution comparison: Kernel SHAP over every pixel is too costly here');
  else if (!background) notes.push('no attribution comparison: neither version has a background set');
  else {
    const settings = COMPARE_ATTRIBUTIONS;
    const explain = (m: ServedModel): Promise<{ explanation: Explanation }> => explainSample(svc, m, rows, { ...settings }, background, budget);
    const [ea, eb] = await Promise.all([explain(a), explain(b)]);
    const players = playersOf(b.space, featureInfo(b));
    comparison.attributions = {
      method: 'kernel-shap',
      ...settings,
      sampleSize: Math.min(settings.sampleSize, sampleRows(rows.n, settings.sampleSize, settings.seed).length),
      outputs: b.space.outputNames.map((o, j) => attributionShift(ea.explanation, eb.explanation, players, j, o)),
    };
    const unconverged = [...ea.explanation.explanations, ...eb.explanation.explanations].filter((e) => !e.converged).length;
    if (unconverged) notes.push(`${unconverged} Kernel SHAP estimates stopped before converging: small attribution differences may be sampling noise`);
  }

  if (b.metadata?.sensitiveFeatures.length && a.reference && b.reference) {
    const request = parseWith(svc.schemas.fairness, { attributions: false, bootstrap: { n: 0 }, deadlineMs: svc.config.maxDeadlineMs });
    try {
      const [fa, fb] = await Promise.all([computeFairness(svc, a, request), computeFairness(svc, b, request)]);
      comparison.fairness = fairnessShift(fa, fb);
    } catch (e) {
      if (!(e instanceof ServiceError)) throw e;
      notes.push(`no fairness comparison: ${e.message}`);
    }
  }
  comparison.computedAt = new Date().toISOString();
  comparison.computeMs = Date.now() - started;
  return comparison;
}
