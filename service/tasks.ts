/**
 * The work requests turn into, as plain structured-cloneable data, and the one function that
 * carries a task out. The same function runs inline (tests, WORKERS=0) and inside the worker threads
 * of service/worker.ts, which the server's pool, the CLI's pool and `npm run worker` all use.
 *
 * Adding a task kind: add its type to `Task` and `TaskResult`, and its case to `runTask`. A kind that
 * needs no model (fairness statistics, PNG rendering) leaves `model` out.
 */
import { permutationImportance, type PermutationImportanceOptions } from '../explainers/permutationImportance.js';
import type { Explanation, Importance, Rows } from '../explainers/types.js';
import type { ServedModel } from '../models/served.js';
import { fairnessReport } from '../monitoring/fairness/report.js';
import { svgToPng } from '../render/png.js';
import type { FairnessInput, FairnessOptions, FairnessReport } from '../monitoring/fairness/types.js';
import { ServiceError } from './errors.js';
import { checkStop, guardModel, type TaskStop } from './guard.js';
import { runMethod, type ExplainCall } from './methods/index.js';
import type { TaskOptions } from './methods/types.js';

interface ModelTask {
  model: string;
  /** The version the caller resolved; a worker holding another refuses (MODEL_NOT_FOUND). */
  version: string;
}

export type PredictTask = ModelTask & { kind: 'predict'; rows: Rows };

export type ExplainTask = ModelTask & { kind: 'explain'; rows: Rows } & ExplainCall;

export type ImportanceTask = ModelTask & {
  kind: 'importance';
  /** Absent: the model's reference set. */
  data?: Rows;
  labels?: Float32Array;
  options: TaskOptions<PermutationImportanceOptions>;
};

/** Group metrics, disparities and their bootstrap: seconds of arithmetic, kept off the event loop. */
export interface FairnessStatsTask {
  kind: 'fairness-stats';
  input: FairnessInput;
  options: FairnessOptions;
}

/** SVG to PNG (resvg): tens of milliseconds per chart, kept off the event loop. */
export interface PngTask {
  kind: 'png';
  svg: string;
}

export type Task = PredictTask | ExplainTask | ImportanceTask | FairnessStatsTask | PngTask;

export type TaskResult<T extends Task> = T extends ExplainTask
  ? Explanation
  : T extends ImportanceTask
    ? Importance
    : T extends FairnessStatsTask
      ? FairnessReport
      : T extends PngTask
        ? Uint8Array
        : Float32Array;

/** Where a task finds its model: the registry of this thread (inline) or the worker's own copy. */
export type ModelSource = (name: string, version: string) => Promise<ServedModel>;

/** A registry's models (read at each call: a registry may be swapped), refusing a version other than the one asked for. */
export function registrySource(registry: { models: Map<string, ServedModel> }): ModelSource {
  return async (name, version) => {
    const m = registry.models.get(name);
    if (!m) throw new ServiceError('MODEL_NOT_FOUND', `model "${name}" is not loaded here`);
    if (m.version !== version) {
      // The folder changed between the caller's load and this one: refuse rather than mix versions.
      throw new ServiceError(
        'MODEL_NOT_FOUND',
        `model "${name}" version ${version} is not the version loaded here (${m.version}); reload the service`,
      );
    }
    return m;
  };
}

/**
 * Carries out a task. `stop` bounds it: the hard deadline, the AbortSignal (inline) and the
 * cancellation flag (worker threads) are checked before it starts and before every model call (the
 * model is wrapped by service/guard.ts), and between bootstrap replicates.
 */
export async function runTask(models: ModelSource, task: Task, stop: TaskStop = {}): Promise<TaskResult<Task>> {
  checkStop(stop);
  const signal = stop.signal;
  const guarded = async (t: ModelTask) => {
    const m = await models(t.model, t.version);
    return { m, model: guardModel(m.model, stop).model };
  };
  switch (task.kind) {
    case 'fairness-stats':
      return fairnessReport(task.input, { ...task.options, checkpoint: () => checkStop(stop, Date.now, 'the fairness bootstrap') });
    case 'png':
      return new Uint8Array(svgToPng(task.svg));
    case 'predict':
      return (await guarded(task)).model.predict(task.rows);
    case 'explain': {
      const { m, model } = await guarded(task);
      return runMethod(task, model, task.rows, m.space, signal);
    }
    case 'importance': {
      const { m, model } = await guarded(task);
      let data = task.data;
      let labels = task.labels;
      if (!data || !labels) {
        if (!m.reference)
          throw new ServiceError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send data and labels`);
        data = m.reference.rows;
        labels = m.reference.labels;
      }
      return permutationImportance(model, data, labels, { ...task.options, space: m.space, signal });
    }
  }
}
