/**
 * The work an explanation request turns into, as plain structured-cloneable data, and the one
 * function that carries it out against a registry of models. The same function runs inline (tests,
 * WORKERS=0) and inside the worker threads of server/pool.ts.
 */
import { kernelShap, type KernelShapOptions } from '../explainers/kernelShap.js';
import { integratedGradients, type IntegratedGradientsOptions } from '../explainers/integratedGradients.js';
import { permutationImportance, type PermutationImportanceOptions } from '../explainers/permutationImportance.js';
import type { Explanation, Importance, Rows } from '../explainers/types.js';
import { ApiError } from './errors.js';
import type { Registry, ServedModel } from './registry.js';

/** An explainer's options without `space`: the worker has the model's own. */
type Without<T> = Omit<T, 'space' | 'signal'>;

export type ExplainTask = {
  kind: 'explain';
  model: string;
  version: string;
  rows: Rows;
} & (
  | { method: 'kernel-shap'; options: Without<KernelShapOptions> }
  | { method: 'integrated-gradients'; options: Without<IntegratedGradientsOptions> }
);

export interface ImportanceTask {
  kind: 'importance';
  model: string;
  version: string;
  /** Absent: the model's reference set. */
  data?: Rows;
  labels?: Float32Array;
  options: Without<PermutationImportanceOptions>;
}

export interface PredictTask {
  kind: 'predict';
  model: string;
  version: string;
  rows: Rows;
}

export type Task = ExplainTask | ImportanceTask | PredictTask;
export type TaskResult<T extends Task> = T extends ExplainTask ? Explanation : T extends ImportanceTask ? Importance : Float32Array;

function modelFor(registry: Registry, task: Task): ServedModel {
  const m = registry.models.get(task.model);
  if (!m) throw new ApiError('MODEL_NOT_FOUND', `model "${task.model}" is not loaded in this worker`);
  if (m.version !== task.version) {
    // The folder changed between the main thread's load and this worker's: refuse rather than mix versions.
    throw new ApiError(
      'MODEL_NOT_FOUND',
      `model "${task.model}" version ${task.version} is not the version loaded here (${m.version}); reload the service`,
    );
  }
  return m;
}

export async function runTask(registry: Registry, task: Task): Promise<Explanation | Importance | Float32Array> {
  const m = modelFor(registry, task);
  switch (task.kind) {
    case 'predict':
      return m.model.predict(task.rows);
    case 'explain': {
      return task.method === 'kernel-shap'
        ? kernelShap(m.model, task.rows, { ...task.options, space: m.space })
        : integratedGradients(m.model, task.rows, { ...task.options, space: m.space });
    }
    case 'importance': {
      let data = task.data;
      let labels = task.labels;
      if (!data || !labels) {
        if (!m.reference)
          throw new ApiError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send data and labels`);
        data = m.reference.rows;
        labels = m.reference.labels;
      }
      return permutationImportance(m.model, data, labels, { ...task.options, space: m.space });
    }
  }
}

/** Runs tasks somewhere: inline on this thread, or on a pool of worker threads. */
export interface Executor {
  readonly kind: 'inline' | 'pool';
  run<T extends Task>(task: T): Promise<TaskResult<T>>;
  stats(): { threads: number; queued: number; running: number; maxQueue: number };
  /** Called with the seconds each task waited for a thread (set by the metrics). */
  observeWait?: (kind: Task['kind'], seconds: number) => void;
  close(): Promise<void>;
}

export function inlineExecutor(registry: Registry): Executor {
  let running = 0;
  return {
    kind: 'inline',
    async run<T extends Task>(task: T) {
      running++;
      try {
        return (await runTask(registry, task)) as TaskResult<T>;
      } finally {
        running--;
      }
    },
    stats: () => ({ threads: 0, queued: 0, running, maxQueue: 0 }),
    close: async () => undefined,
  };
}
