/**
 * Global-effects throughput: model rows per second of computeEffects (PD over every feature, ALE over
 * every feature, one 2-D PD), against the model's own predict throughput on batches of the same size
 * measured in the same run, and against the naive way of computing PD (one predict call per grid
 * point). Also counts predict calls, which is what batching saves.
 * `npx tsx bench/effectsBench.ts` runs it on the sample models.
 */
import { pathToFileURL } from 'node:url';
import { computeEffects, type EffectsRequest } from '../explainers/effects/index.js';
import type { Model, Rows } from '../explainers/types.js';
import type { LoadedModel } from '../models/repository.js';
import { percentile } from './igBench.js';

export interface EffectsBenchRow {
  model: string;
  what: string;
  rows: number;
  modelRows: number;
  predictCalls: number;
  p50Ms: number;
  rowsPerSec: number;
  /** One raw predict call of the same size as the explainer's calls, rows per second. */
  rawRowsPerSec: number;
  /** PD only: one predict call of n rows per grid point, as a loop over the grid would do. */
  naiveRowsPerSec?: number;
}

function counting(model: Model): Model & { calls: number } {
  const m = {
    nFeatures: model.nFeatures,
    nOutputs: model.nOutputs,
    calls: 0,
    predict(rows: Rows) {
      m.calls++;
      return model.predict(rows);
    },
  };
  return m;
}

function tile(src: Rows, n: number): Rows {
  const data = new Float32Array(n * src.d);
  for (let i = 0; i < n; i++) data.set(src.data.subarray((i % src.n) * src.d, ((i % src.n) + 1) * src.d), i * src.d);
  return { data, n, d: src.d };
}

async function medianMs(runs: number, f: () => Promise<unknown>): Promise<number> {
  await f();
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return percentile(times, 0.5);
}

/** Metadata facts computeEffects takes: per-column types and the names of the one-hot groups (in space.groups order). */
export function effectsInfo(m: LoadedModel): { featureTypes?: (string | undefined)[]; groupNames?: string[] } {
  const features = m.metadata?.features;
  if (!features) return {};
  const sizes = new Map<string, number>();
  for (const f of features) if (f.group !== undefined) sizes.set(f.group, (sizes.get(f.group) ?? 0) + 1);
  return { featureTypes: features.map((f) => f.type), groupNames: [...sizes].filter(([, k]) => k > 1).map(([g]) => g) };
}

export async function effectsBench(name: string, m: LoadedModel, options: { runs?: number; resolution?: number } = {}): Promise<EffectsBenchRow[]> {
  const runs = options.runs ?? 5;
  const G = options.resolution ?? 20;
  const data = m.reference?.rows ?? m.background;
  if (!data) return [];
  const context = { defaultData: data, ...effectsInfo(m) };
  const model = counting(m.model);
  const all = m.space.featureNames.filter((_, j) => !(m.space.groups ?? []).some((g) => g.includes(j)));
  const groups = context.groupNames ?? [];
  const features = [...all, ...groups];
  const numeric = all.filter((f) => context.featureTypes?.[m.space.featureNames.indexOf(f)] !== 'binary');
  const requests: { what: string; request: EffectsRequest }[] = [
    { what: `pd, ${features.length} features, grid ${G}`, request: { kind: 'pd', features, parameters: { resolution: G } } },
    { what: `ale, ${features.length} features`, request: { kind: 'ale', features } },
  ];
  if (numeric.length >= 2) {
    requests.push({ what: `pd 2-D, ${numeric[0]} x ${numeric[1]}, grid 10 x 10`, request: { kind: 'pd', features: [[numeric[0], numeric[1]]], parameters: { resolution: 10 } } });
  }
  const out: EffectsBenchRow[] = [];
  for (const { what, request } of requests) {
    const before = model.calls;
    const r0 = await computeEffects(model, m.space, request, context);
    const modelRows = r0.modelEvaluations;
    const calls = model.calls - before;
    const ms = await medianMs(runs, () => computeEffects(model, m.space, request, context));
    // The raw baseline: predict on batches of the size the explainer sent, same number of rows.
    const batch = Math.round(modelRows / calls);
    const rows = tile(data, batch);
    const rawMs = await medianMs(runs, () => m.model.predict(rows));
    const row: EffectsBenchRow = {
      model: name,
      what,
      rows: r0.rows,
      modelRows,
      predictCalls: calls,
      p50Ms: ms,
      rowsPerSec: (modelRows / ms) * 1000,
      rawRowsPerSec: (batch / rawMs) * 1000,
    };
    if (request.kind === 'pd' && !Array.isArray(request.features[0])) {
      // Naive PD of one feature: G predict calls of n rows each.
      const n = data.n;
      const naiveMs = await medianMs(runs, async () => {
        for (let k = 0; k < G; k++) await m.model.predict(data);
      });
      row.naiveRowsPerSec = ((n * G) / naiveMs) * 1000;
    }
    out.push(row);
  }
  return out;
}

export function printEffects(rows: EffectsBenchRow[]): void {
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  console.log(
    '| model | request | data rows | model rows | predict calls | p50 ms | model rows/s | raw predict rows/s (same batch) | ratio | raw predict, one call per grid point, rows/s | batched / per grid point |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const naive = r.naiveRowsPerSec ? `${n(r.naiveRowsPerSec)} | ${(r.rawRowsPerSec / r.naiveRowsPerSec).toFixed(1)}x` : ' | ';
    console.log(
      `| ${r.model} | ${r.what} | ${n(r.rows)} | ${n(r.modelRows)} | ${r.predictCalls} | ${r.p50Ms.toFixed(1)} | ${n(r.rowsPerSec)} | ${n(r.rawRowsPerSec)} | ${(r.rowsPerSec / r.rawRowsPerSec).toFixed(2)} | ${naive} |`,
    );
  }
}

async function main(): Promise<void> {
  const { selectBackend } = await import('../models/backend.js');
  const { loadModelRepository } = await import('../models/repository.js');
  await selectBackend(process.env.TFJS_BACKEND);
  const repo = await loadModelRepository('samples/models');
  const rows: EffectsBenchRow[] = [];
  for (const [name, m] of repo.models) if (m.inputShape.length === 1) rows.push(...(await effectsBench(name, m)));
  printEffects(rows);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
