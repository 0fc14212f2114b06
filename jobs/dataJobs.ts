/**
 * Jobs over rows of data that are not explanations, on the same engine (chunks on the fixed grid,
 * per-row records in index order, resumable, local or distributed):
 *
 * - `counterfactuals`: one record per row, the row's entry of POST /counterfactuals (parameters as
 *   there, `desired` among them). No deadline: a row's answer depends on the seed alone.
 * - `effects`: partial dependence over a file too large for one request. Each row's record holds its
 *   ICE curve per feature and output, on grids fixed at submission (given, or from the quantiles of
 *   the job's own rows), so chunks, workers and restarts agree; the job's partial dependence is the
 *   mean of those curves (GET /v1/jobs/:id/effects.json), exactly what POST /effects computes on the
 *   same rows and grids. ALE needs bin statistics over all rows and dependence is Kernel SHAP per row
 *   (a kernel-shap job gives those attributions), so a job computes PD/ICE.
 */
import { z } from 'zod';
import type { PartialDependenceEffect } from '../explainers/effects/types.js';
import { categoryLabels, featureCatalogue, featureValues, resolveFeature } from '../explainers/effects/features.js';
import { gridFor } from '../explainers/effects/partialDependence.js';
import { LINK_NAMES } from '../explainers/link.js';
import type { Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { jsonInstance } from '../service/counterfactuals.js';
import { counterfactualTaskOptions, type CounterfactualTaskOptions } from '../service/counterfactualsTask.js';
import { effectsInfo } from '../service/effectsTask.js';
import { ServiceError } from '../service/errors.js';
import type { Executor } from '../service/executor.js';
import { parseWith, seedSchema, type Limits } from '../service/schemas/common.js';
import { counterfactualParametersSchema, desiredSchema } from '../service/schemas/counterfactuals.js';
import type { DataJobMethod } from '../service/schemas/requests.js';
import type { EffectsRecord, EffectsRowCurve, JobSpec, ResultRecord, RowResult } from './types.js';

/** Rows per chunk by default: a counterfactual search is up to maxEvaluations model rows per row. */
export const DATA_JOB_CHUNK_SIZE: Record<DataJobMethod, number> = { counterfactuals: 16, effects: 256 };

/** Grid points per feature at most in an effects job (as POST /effects). */
const MAX_GRID_POINTS = 256;

export const counterfactualJobParameters = (limits: Limits) =>
  counterfactualParametersSchema(limits).omit({ deadlineMs: true }).extend({ desired: desiredSchema.optional() });

export const effectsJobParameters = z.strictObject({
  kind: z.enum(['pd', 'ice']).default('pd'),
  features: z.array(z.string().min(1)).min(1).max(50),
  grid: z
    .record(
      z.string(),
      z
        .array(z.union([z.number(), z.string()]))
        .min(1)
        .max(10_000),
    )
    .optional(),
  resolution: z.number().int().min(2).max(10_000).optional(),
  percentiles: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).optional(),
  link: z.enum(LINK_NAMES).optional(),
  seed: seedSchema.optional(),
});

/** One feature of an effects job: its grid and how to label it, fixed at submission. */
export interface EffectsJobFeature {
  name: string;
  kind: PartialDependenceEffect['featureKind'];
  grid: number[];
  categories?: string[];
}

/** The plan of a counterfactuals or effects job (JobSpec.options and display parameters). */
export function planDataJob(
  limits: Limits,
  m: ServedModel,
  method: DataJobMethod,
  parameters: Record<string, unknown>,
  outputs: number[] | undefined,
  rows: Rows | undefined,
): { options: Record<string, unknown>; parameters: Record<string, unknown> } {
  if (m.inputShape.length > 1) {
    throw new ServiceError('METHOD_NOT_SUPPORTED', `${method} jobs are for tabular models; model "${m.name}" takes images`);
  }
  if (method === 'counterfactuals') {
    if (outputs)
      throw new ServiceError('BAD_PARAMETER', 'a counterfactuals job takes no outputs: say the outcome sought in parameters.desired');
    const p = parseWith(counterfactualJobParameters(limits), parameters, 'parameters', 'BAD_PARAMETER');
    const { desired, ...rest } = p;
    const options = counterfactualTaskOptions(m, desired, rest);
    // JSON has no infinities: the desired outcome is kept as the request gave it and resolved per chunk.
    return { options: { ...options, desired: desired ? toPlainDesired(options.desired) : undefined }, parameters: p };
  }
  const p = parseWith(effectsJobParameters, parameters, 'parameters', 'BAD_PARAMETER');
  if (!rows || rows.n === 0) throw new ServiceError('EMPTY_DATA', 'an effects job needs rows: none of its instances parsed');
  const catalogue = featureCatalogue(m.space, m.model.nFeatures, effectsInfo(m));
  const features = p.features.map((name) => resolveFeature(catalogue, name));
  if (new Set(features).size !== features.length) throw new ServiceError('BAD_FEATURE', 'parameters.features lists a feature twice');
  for (const name of Object.keys(p.grid ?? {})) {
    if (!features.some((f) => f.name === name)) {
      throw new ServiceError('BAD_GRID', `parameters.grid is given for "${name}", which is not among parameters.features`);
    }
  }
  const planned: EffectsJobFeature[] = features.map((f) => {
    const grid = gridFor(f, featureValues(f, rows), {
      grid: p.grid?.[f.name],
      resolution: p.resolution,
      percentiles: p.percentiles,
      maxGridPoints: MAX_GRID_POINTS,
    });
    const categories = categoryLabels(f, grid);
    return { name: f.name, kind: f.kind, grid, ...(categories ? { categories } : {}) };
  });
  const link = p.link ?? m.metadata?.link ?? 'identity';
  return {
    options: { features: planned, link },
    parameters: { ...p, link, grids: Object.fromEntries(planned.map((f) => [f.name, f.grid])) },
  };
}

type Desired = NonNullable<CounterfactualTaskOptions['desired']>;

function toPlainDesired(d: Desired | undefined): unknown {
  if (!d || 'class' in d) return d;
  return { range: d.range.map((v) => (Number.isFinite(v) ? v : null)), output: d.output };
}

function fromPlainDesired(d: unknown): Desired | undefined {
  if (!d || typeof d !== 'object') return undefined;
  if ('class' in d) return d as Desired;
  const r = d as { range: (number | null)[]; output?: number };
  return { range: [r.range[0] ?? -Infinity, r.range[1] ?? Infinity], output: r.output };
}

/** What a chunk of a counterfactuals or effects job yields per row, computed through `executor`. */
export async function runDataRows(executor: Executor, spec: JobSpec, rows: Rows, signal?: AbortSignal): Promise<RowResult[]> {
  if (spec.method === 'counterfactuals') {
    const o = spec.options as unknown as CounterfactualTaskOptions & { desired?: unknown };
    const desired = fromPlainDesired(o.desired);
    const options: CounterfactualTaskOptions = { ...o, desired };
    if (!desired) delete options.desired;
    const result = await executor.run({ kind: 'counterfactuals', model: spec.model, version: spec.version, rows, options }, { signal });
    return result.instances.map(jsonInstance);
  }
  const { features, link } = spec.options as { features: EffectsJobFeature[]; link: 'identity' | 'logit' };
  const result = await executor.run({
    kind: 'effects',
    model: spec.model,
    version: spec.version,
    request: {
      kind: 'ice',
      features: features.map((f) => f.name),
      outputs: spec.outputs ?? 'all',
      data: rows,
      grid: Object.fromEntries(features.map((f) => [f.name, f.grid])),
      parameters: { link, maxRows: rows.n },
    },
  }, { signal });
  return Array.from({ length: rows.n }, (_, i) => ({
    effects: result.effects.map((e): EffectsRowCurve => ({
      feature: e.feature,
      output: e.output,
      outputIndex: e.outputIndex,
      values: (e as { curves: number[][] }).curves[i],
    })),
  }));
}

/** The partial dependence of an effects job so far: the mean of its rows' curves. */
export class EffectsAggregate {
  rows = 0;
  rowsFailed = 0;
  private sums: Float64Array[] = [];
  private keys: { feature: string; output: string; outputIndex: number }[] = [];

  constructor(private readonly spec: JobSpec) {}

  add(r: ResultRecord): void {
    if ('error' in r) {
      this.rowsFailed++;
      return;
    }
    if (!('effects' in r)) return;
    const curves = (r as EffectsRecord).effects;
    if (this.rows === 0) {
      this.keys = curves.map((c) => ({ feature: c.feature, output: c.output, outputIndex: c.outputIndex }));
      this.sums = curves.map((c) => new Float64Array(c.values.length));
    }
    curves.forEach((c, q) => c.values.forEach((v, k) => (this.sums[q][k] += v)));
    this.rows++;
  }

  async addAll(records: AsyncIterable<ResultRecord>): Promise<this> {
    for await (const r of records) this.add(r);
    return this;
  }

  effects(): PartialDependenceEffect[] {
    const { features, link } = this.spec.options as { features: EffectsJobFeature[]; link: 'identity' | 'logit' };
    return this.keys.map((key, q) => {
      const f = features.find((x) => x.name === key.feature)!;
      return {
        kind: 'pd' as const,
        feature: key.feature,
        featureKind: f.kind,
        output: key.output,
        outputIndex: key.outputIndex,
        link,
        grid: f.grid,
        ...(f.categories ? { categories: f.categories } : {}),
        values: Array.from(this.sums[q], (s) => s / this.rows),
        rows: this.rows,
        modelEvaluations: this.rows * f.grid.length,
      };
    });
  }
}

/** A counterfactuals job's summary: outcomes, the cheapest valid counterfactual's cost, and which features it changes. */
export class CounterfactualSummary {
  rows = 0;
  rowsFailed = 0;
  readonly status = { found: 0, 'not-found': 0, 'already-desired': 0 };
  readonly stopReasons = { complete: 0, budget: 0, deadline: 0 };
  private costs: number[] = [];
  /** Rows whose cheapest valid counterfactual changes the feature (a one-hot group counted once). */
  readonly changed = new Map<string, number>();

  add(r: ResultRecord): void {
    if ('error' in r) {
      this.rowsFailed++;
      return;
    }
    if (!('counterfactuals' in r)) return;
    this.rows++;
    this.status[r.status]++;
    this.stopReasons[r.stopReason]++;
    if (r.status !== 'found') return;
    const best = r.counterfactuals.find((c) => c.valid);
    if (!best) return;
    this.costs.push(best.distance);
    for (const name of new Set(best.changes.map((c) => c.group ?? c.feature))) this.changed.set(name, (this.changed.get(name) ?? 0) + 1);
  }

  async addAll(records: AsyncIterable<ResultRecord>): Promise<this> {
    for await (const r of records) this.add(r);
    return this;
  }

  cost(): { mean: number | null; median: number | null } {
    const s = [...this.costs].sort((a, b) => a - b);
    if (!s.length) return { mean: null, median: null };
    const m = s.length >> 1;
    return { mean: s.reduce((a, b) => a + b, 0) / s.length, median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 };
  }

  /** Features by the share of rows with a counterfactual whose cheapest one changes them, largest first. */
  changeShares(): { feature: string; rows: number; share: number }[] {
    const withCf = this.costs.length;
    return [...this.changed]
      .map(([feature, rows]) => ({ feature, rows, share: withCf ? rows / withCf : 0 }))
      .sort((a, b) => b.rows - a.rows || a.feature.localeCompare(b.feature));
  }
}
