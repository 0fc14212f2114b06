/** Permutation importance on the request's data or the model's reference set, without HTTP. */
import type { Importance, Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import type { Service } from './context.js';
import { ServiceError } from './errors.js';
import { labelsFrom, layoutOf, resolveOutput, toRows } from './instances.js';
import type { ImportanceRequest } from './schemas/requests.js';

export type ServedImportance = Importance & { model: { name: string; version: string }; dataset: 'request' | 'reference' };

/** The default metric: r2 for regression, else accuracy. */
export function defaultMetric(m: ServedModel): 'r2' | 'accuracy' {
  return m.metadata?.task === 'regression' ? 'r2' : 'accuracy';
}

export async function computeImportance(
  svc: Service,
  m: ServedModel,
  p: ImportanceRequest,
  signal?: AbortSignal,
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
      },
    },
    { signal },
  );
  return { model: { name: m.name, version: m.version }, dataset: p.data ? 'request' : 'reference', ...result };
}

/** Importance on the reference set as the chart URL and the model report compute it (at most 1000 rows). */
export async function referenceImportance(
  svc: Service,
  m: ServedModel,
  q: { metric?: ImportanceRequest['metric']; repeats?: number; seed?: number } = {},
): Promise<ServedImportance> {
  if (!m.reference)
    throw new ServiceError(
      'NO_REFERENCE_DATA',
      `model "${m.name}" has no reference set; POST /v1/models/${m.name}/importance with data and labels`,
    );
  const result = await svc.executor.run({
    kind: 'importance',
    model: m.name,
    version: m.version,
    options: {
      metric: q.metric ?? defaultMetric(m),
      repeats: q.repeats ?? 5,
      seed: q.seed ?? 0,
      task: m.metadata?.task,
      maxSamples: Math.min(1000, m.reference.rows.n),
    },
  });
  return { model: { name: m.name, version: m.version }, dataset: 'reference', ...result };
}
