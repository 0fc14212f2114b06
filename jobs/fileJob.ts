/**
 * A batch job from an input file to a results file: what `tfjs-explain explain` runs, usable from
 * code (bench/jobsBench.ts). Input is streamed; chunks run on worker threads; results are appended
 * in order and committed per chunk (jobs/resultFile.ts), so `resume` after any crash yields every
 * input row exactly once with the values of an uninterrupted run.
 */
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ExplainMethod } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import type { Registry } from '../models/served.js';
import { loadServiceConfig, SAMPLE_MODELS } from '../service/config.js';
import { ServiceError } from '../service/errors.js';
import { inlineExecutor, poolExecutor, type Executor } from '../service/executor.js';
import { layoutOf } from '../service/instances.js';
import { chunked, executorExplain, explainChunk, runChunks, withRetries } from './engine.js';
import { openInput, countRows } from './input.js';
import { outputFormatOf, readRecords, ResultFile, type Checkpoint, type OutputFormat } from './resultFile.js';
import { buildSpec, specFingerprint } from './spec.js';
import { renderSummary, SummaryCollector, writeSummary } from './summary.js';
import { chartContext } from '../service/chartContext.js';
import { groupInfo, type GroupInfo } from '../service/groups.js';
import type { JobSpec } from './types.js';
import type { CsvColumns } from './csvOutput.js';

export interface FileJobOptions {
  /** A model name (under modelDir) or the path of a model folder. */
  model: string;
  modelDir?: string;
  input: string;
  output: string;
  method?: ExplainMethod;
  parameters?: Record<string, unknown>;
  outputs?: (number | string)[] | 'all';
  chunkSize?: number;
  /** Worker threads; 0 runs on this thread. Default: every core. */
  workers?: number;
  backend?: string;
  resume?: boolean;
  overwrite?: boolean;
  summaryDir?: string;
  /** Rows sampled for the summary charts. */
  summarySample?: number;
  signal?: AbortSignal;
  /** After each committed chunk. */
  onProgress?: (p: Progress) => void;
  /** Once the job is set up (before any chunk runs). */
  onStart?: (s: StartInfo) => void;
  /** fsync per chunk (default true). */
  sync?: boolean;
}

export interface Progress {
  rowsDone: number;
  rowsFailed: number;
  /** Estimated data rows of the input. */
  rowsTotal: number;
  /** Rows done by this run (not an earlier one that was resumed). */
  rowsThisRun: number;
  elapsedMs: number;
}

export interface StartInfo {
  spec: JobSpec;
  model: { name: string; version: string; folder: string };
  rowsTotal: number;
  resumedFrom: number;
  /** Rows already in the output (a resumed run). */
  rowsDone: number;
  opened: ResultFile['opened'];
  ignoredColumns: string[];
  labelColumn?: string;
  workers: number;
  alreadyDone: boolean;
}

export interface FileJobResult {
  status: 'succeeded' | 'interrupted';
  rowsDone: number;
  rowsFailed: number;
  /** Explained rows that stopped before converging (their stopReason is budget or deadline). */
  rowsUnconverged: number;
  rowsThisRun: number;
  elapsedMs: number;
  rowsPerSecond: number;
  checkpoint: Checkpoint;
  summaryFiles: string[];
  spec: JobSpec;
}

/** Where a --model argument points: a model folder path, or a name under the model directory. */
export function resolveModel(model: string, modelDir?: string): { name: string; folder: string; modelDir: string } {
  const looksLikePath = model.includes('/') || model.includes(path.sep) || model === '.' || model === '..';
  if (looksLikePath || (existsSync(path.join(model, 'model.json')) && !modelDir)) {
    const folder = path.resolve(model);
    return { name: path.basename(folder), folder, modelDir: path.dirname(folder) };
  }
  const dir = path.resolve(modelDir ?? process.env.MODEL_DIR ?? SAMPLE_MODELS);
  return { name: model, folder: path.join(dir, model), modelDir: dir };
}

export function outputColumns(spec: JobSpec, withLabel: boolean, groups: GroupInfo[] = []): CsvColumns {
  return { featureNames: spec.featureNames, withStderr: spec.method === 'kernel-shap', withLabel, ...(groups.length ? { groups } : {}) };
}

export async function runFileJob(o: FileJobOptions): Promise<FileJobResult> {
  const where = resolveModel(o.model, o.modelDir);
  const workers = o.workers ?? os.availableParallelism();
  const wanted = o.backend ?? process.env.TFJS_BACKEND;
  // Threads start (tsx, tfjs, wasm: seconds) while this thread loads the model and opens the files.
  const pool =
    workers > 0
      ? poolExecutor({ modelDir: where.modelDir, backend: wanted, threads: workers, busyMessage: `all ${workers} job threads are busy` })
      : undefined;
  let loaded: LoadedModel;
  try {
    await selectBackend(wanted);
    loaded = await loadModelFolder(where.name, where.folder);
  } catch (e) {
    await pool?.close();
    throw new ServiceError('MODEL_NOT_FOUND', `model ${where.folder}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const m = loaded;
  let executor: Executor | undefined = pool;
  try {
    if (pool) {
      // One small task per thread loads the model there too, before the first chunk needs it.
      const row = {
        data: (m.background?.data ?? new Float32Array(m.model.nFeatures)).slice(0, m.model.nFeatures),
        n: 1,
        d: m.model.nFeatures,
      };
      for (let i = 0; i < workers; i++) pool.run({ kind: 'predict', model: m.name, version: m.version, rows: row }).catch(() => undefined);
    }
    const spec = buildSpec(loadServiceConfig(), m, {
      method: o.method,
      parameters: o.parameters,
      outputs: o.outputs,
      chunkSize: o.chunkSize,
    });
    const layout = layoutOf(m);
    const labelNames = [...(m.metadata?.label ? [m.metadata.label] : []), 'label'];
    const input = await openInput(o.input, layout, labelNames);
    const format: OutputFormat = outputFormatOf(o.output);
    const withLabel = input.format === 'csv' ? input.csv!.labelColumn !== undefined : true;
    const csv = format === 'csv' ? outputColumns(spec, withLabel, groupInfo(m)) : undefined;
    const inputSize = (await stat(o.input)).size;
    const fingerprint = specFingerprint(spec, { inputSize, inputFormat: input.format, csv: csv ?? null });
    const file = await ResultFile.open({
      path: o.output,
      format,
      fingerprint,
      resume: !!o.resume,
      overwrite: o.overwrite,
      csv,
      sync: o.sync,
    });
    const rowsTotal = await countRows(o.input, input.format);
    const start = { ...file.checkpoint };
    o.onStart?.({
      spec,
      model: { name: m.name, version: m.version, folder: where.folder },
      rowsTotal,
      resumedFrom: start.nextIndex,
      rowsDone: start.rowsDone,
      opened: file.opened,
      ignoredColumns: input.csv?.ignored ?? [],
      ...(input.csv?.labelColumn !== undefined ? { labelColumn: input.csv.header[input.csv.labelColumn] } : {}),
      workers,
      alreadyDone: start.done,
    });

    const t0 = Date.now();
    let status: FileJobResult['status'] = 'succeeded';
    try {
      if (!start.done) {
        const registry: Registry = { models: new Map([[m.name, m]]), errors: [] };
        executor ??= inlineExecutor(registry);
        const explain = executorExplain(executor, spec, o.signal);
        const outcome = await runChunks({
          chunks: chunked(input.items(start.nextIndex), spec.chunkSize),
          process: (c) => withRetries(() => explainChunk(c.items, spec.nFeatures, explain), 3, o.signal),
          commit: async (c, records) => {
            await file.append(records, (c.chunk + 1) * spec.chunkSize);
            const cp = file.checkpoint;
            o.onProgress?.({
              rowsDone: cp.rowsDone,
              rowsFailed: cp.rowsFailed,
              rowsTotal: Math.max(rowsTotal, cp.rowsDone),
              rowsThisRun: cp.rowsDone - start.rowsDone,
              elapsedMs: Date.now() - t0,
            });
          },
          inFlight: Math.max(1, workers) * 2,
          signal: o.signal,
        });
        if (outcome === 'aborted') status = 'interrupted';
        else await file.markDone();
      }
    } finally {
      await file.close();
    }
    const elapsedMs = Date.now() - t0;
    const cp = file.checkpoint;
    let summaryFiles: string[] = [];
    if (status === 'succeeded' && o.summaryDir) {
      const c = await new SummaryCollector(o.summarySample).addAll(readRecords(o.output, format, csv, cp.bytes));
      if (c.rowsExplained > 0) {
        const files = renderSummary(c, {
          model: m.name,
          version: m.version,
          // The CLI builds explain jobs only (o.method is an explain method).
          method: spec.method as ExplainMethod,
          context: chartContext(m, spec.outputSelection),
          overview: [
            ['Input', path.basename(o.input)],
            ['Parameters', JSON.stringify(spec.parameters)],
          ],
        });
        summaryFiles = await writeSummary(o.summaryDir, files);
      }
    }
    const rowsThisRun = cp.rowsDone - start.rowsDone;
    return {
      status,
      rowsDone: cp.rowsDone,
      rowsFailed: cp.rowsFailed,
      rowsUnconverged: cp.rowsUnconverged ?? 0,
      rowsThisRun,
      elapsedMs,
      rowsPerSecond: elapsedMs > 0 ? (rowsThisRun / elapsedMs) * 1000 : 0,
      checkpoint: { ...cp },
      summaryFiles,
      spec,
    };
  } finally {
    await executor?.close();
    loaded.model.dispose();
  }
}
