/** Permutation importance on the request's data or the model's reference set, without HTTP. */
import type { Importance, Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { budgetOf, runOptions, type RequestControl } from './bounds.js';
import type { Service } from './context.js';
import { admit, playerCount, type Estimate } from './cost.js';
import { ServiceError } from './errors.js';
import { labelsFrom, layoutOf, resolveOutput, toRows } from './instances.js';
import type { ImportanceRequest } from './schemas/requests.js';

export type ServedImportance = Importance & { model: { name: string; version: string }; dataset: 'request' | 'reference' };

/** The default metric: r2 for regression, else accuracy. */
export function defaultMetric(m: ServedModel): 'r2' | 'accuracy' {
  return m.metadata?.task === 'regression' ? 'r2' : 'accuracy';
}

/** Permutation importance: the baseline pass, then repeats copies of the rows per player. */
export function importanceEstimate(m: ServedModel, rows: number, repeats: number): Estimate {
  const players = playerCount(m.model.nFeatures, m.space.groups);
  return { evaluations: rows * (1 + repeats * players), terms: `${rows} rows x (1 + ${repeats} repeats x ${players} features)` };
}

/** Rows permutation importance scores: maxSamples as a fraction or a count, else all. */
function rowsScored(n: number, maxSamples: number | undefined): number {
  if (maxSamples === undefined) return n;
  return Math.min(n, maxSamples <= 1 ? Math.floor(maxSamples * n) : Math.floor(maxSamples));
}

export async function computeImportance(
  svc: Service,
  m: ServedModel,
  p: ImportanceRequest,
  ctl: RequestControl = {},
): Promise<ServedImportance> {
  let data: Rows | undefined;
  let labels: Float32Array | undefined;
  if (p.data) {
    if (!p.labels) throw new ServiceError('BAD_LABELS', 'data needs labels: one label per row');
    data = toRows(p.data, layoutOf(m), 'data');
    if (p.labels.length !== data.n)
      throw new ServiceError('BAD_LABELS', `labels has ${p.labels.length} entries but data has ${data.n} rows`);
    labels = labelsFrom(p.labels, m);
  } else {
    if (p.labels)
      throw new ServiceError('BAD_LABELS', "labels were given without data; send both, or neither to use the model's reference set");
    if (!m.reference) {
      throw new ServiceError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send data and labels`);
    }
  }
  const nRows = data?.n ?? m.reference!.rows.n;
  if (p.sampleWeights && p.sampleWeights.length !== nRows) {
    throw new ServiceError('BAD_PARAMETER', `sampleWeights has ${p.sampleWeights.length} entries but there are ${nRows} rows`);
  }
  admit(
    svc.config,
    'this importance request',
    importanceEstimate(m, rowsScored(nRows, p.maxSamples), p.repeats),
    'Lower repeats or maxSamples',
  );
  const budget = budgetOf(svc.config, ctl, p.deadlineMs);
  const result = await svc.executor.run(
    {
      kind: 'importance',
      model: m.name,
      version: m.version,
      data,
      labels,
      options: {
        metric: p.metric ?? defaultMetric(m),
        metrics: p.metrics,
        repeats: p.repeats,
        seed: p.seed,
        maxSamples: p.maxSamples,
        sampleWeights: p.sampleWeights ? Float32Array.from(p.sampleWeights) : undefined,
        task: m.metadata?.task,
        output: p.output === undefined ? undefined : resolveOutput(p.output, m.space),
        deadline: budget.deadline,
      },
    },
    runOptions(budget),
  );
  return { model: { name: m.name, version: m.version }, dataset: p.data ? 'request' : 'reference', ...result };
}

/** Importance on the reference set as the chart URL and the model report compute it (at most 1000 rows). */
export async function referenceImportance(
  svc: Service,
  m: ServedModel,
  q: { metric?: ImportanceRequest['metric']; repeats?: number; seed?: number } = {},
  ctl: RequestControl = {},
): Promise<ServedImportance> {
  if (!m.reference)
    throw new ServiceError(
      'NO_REFERENCE_DATA',
      `model "${m.name}" has no reference set; POST /v1/models/${m.name}/importance with data and labels`,
    );
  const repeats = q.repeats ?? 5;
  const maxSamples = Math.min(1000, m.reference.rows.n);
  admit(svc.config, 'this importance chart', importanceEstimate(m, maxSamples, repeats), 'Lower repeats');
  const budget = budgetOf(svc.config, ctl);
  const result = await svc.executor.run(
    {
      kind: 'importance',
      model: m.name,
      version: m.version,
      options: {
        metric: q.metric ?? defaultMetric(m),
        repeats,
        seed: q.seed ?? 0,
        task: m.metadata?.task,
        maxSamples,
        deadline: budget.deadline,
      },
    },
    runOptions(budget),
  );
  return { model: { name: m.name, version: m.version }, dataset: 'reference', ...result };
}
