/**
 * The work requests turn into, as plain structured-cloneable data, and the one function that
 * carries a task out. The same function runs inline (tests, WORKERS=0) and inside the worker threads
 * of service/worker.ts, which the server's pool, the CLI's pool and `npm run worker` all use.
 *
 * Adding a task kind: add its type to `Task` and `TaskResult`, and its case to `runTask`. A kind that
 * needs no model (fairness statistics, PNG rendering) leaves `model` out.
 */
import { permutationImportance, type PermutationImportanceOptions } from '../explainers/permutationImportance.js';
import type { Explanation, Importance, InstanceExplanation, Rows } from '../explainers/types.js';
import { findVersion, type Registry, type ServedModel } from '../models/served.js';
import { fairnessReport } from '../monitoring/fairness/report.js';
import { svgToPng } from '../render/png.js';
import type { FairnessInput, FairnessOptions, FairnessReport } from '../monitoring/fairness/types.js';
import { ServiceError } from './errors.js';
import { checkStop, guardModel, type TaskStop } from './guard.js';
import { runMethod, type ExplainCall } from './methods/index.js';
import type { TaskOptions } from './methods/types.js';
import { withGroupAttributions } from './groups.js';
import { withShortestValues } from './values.js';
import { argmaxRows, groupRows, pickRowsAt } from './outputs.js';
import { withStopReasons } from './stopReason.js';
import type { EffectsLimits, EffectsRequest, EffectsResult } from '../explainers/effects/index.js';
import type { CounterfactualResult } from '../explainers/counterfactuals/types.js';
import type { RecourseBurden } from '../monitoring/fairness/recourse.js';
import { runCounterfactuals, runRecourse, type CounterfactualTaskOptions, type RecourseRequest } from './counterfactualsTask.js';
import { runEffects } from './effectsTask.js';

interface ModelTask {
  model: string;
  /** The version the caller resolved (any version served or draining); one no longer there is refused (MODEL_VERSION_GONE). */
  version: string;
}

export type PredictTask = ModelTask & { kind: 'predict'; rows: Rows };

export type ExplainTask = ModelTask & {
  kind: 'explain';
  rows: Rows;
  /**
   * Explain each row's predicted class (argmax of the model's outputs) instead of `options.outputs`:
   * rows are grouped by class and each group is explained with `outputs: [class]`, so a row's answer
   * equals an explicit request for its class.
   */
  predictedClass?: boolean;
} & ExplainCall;

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

/** Global effects (PD, ICE, ALE, SHAP dependence); data absent: the model's reference, else background, rows. */
export type EffectsTask = ModelTask & {
  kind: 'effects';
  request: EffectsRequest;
  limits?: Partial<EffectsLimits>;
  deadline?: number;
};

/** Counterfactuals of `rows`, on the model's own reference (else background) data. */
export type CounterfactualsTask = ModelTask & {
  kind: 'counterfactuals';
  rows: Rows;
  options: CounterfactualTaskOptions;
};

/** Recourse burden by a sensitive group over `rows` (absent: the model's reference, else background, rows). */
export type RecourseTask = ModelTask & { kind: 'recourse'; rows?: Rows; request: RecourseRequest };

export type Task =
  PredictTask | ExplainTask | ImportanceTask | FairnessStatsTask | PngTask | EffectsTask | CounterfactualsTask | RecourseTask;

export type TaskResult<T extends Task> = T extends ExplainTask
  ? Explanation
  : T extends ImportanceTask
    ? Importance
    : T extends FairnessStatsTask
      ? FairnessReport
      : T extends PngTask
        ? Uint8Array
        : T extends EffectsTask
          ? EffectsResult
          : T extends CounterfactualsTask
            ? CounterfactualResult
            : T extends RecourseTask
              ? RecourseBurden
              : Float32Array;

/** Where a task finds its model: the registry of this thread (inline) or the worker's own copy. */
export type ModelSource = (name: string, version: string) => Promise<ServedModel>;

/**
 * A registry's models (read at each call: the watcher swaps them), by the version the caller
 * resolved: the default or any other served or draining version; a version no longer served is
 * refused rather than answered by another.
 */
export function registrySource(registry: Pick<Registry, 'models' | 'versions'>): ModelSource {
  return async (name, version) => {
    const v = findVersion(registry, name, version);
    if (v && v.version === version) return v.model;
    if (!registry.models.has(name) && !registry.versions?.has(name))
      throw new ServiceError('MODEL_NOT_FOUND', `model "${name}" is not loaded here`);
    throw new ServiceError(
      'MODEL_VERSION_GONE',
      `model "${name}" version ${version} is no longer served here (default: ${registry.models.get(name)?.version ?? 'none'})`,
      { version },
    );
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
  // Every kind that calls a model gets it guarded: the served model with its model wrapped.
  const guarded = async (t: ModelTask): Promise<ServedModel> => {
    const m = await models(t.model, t.version);
    return { ...m, model: guardModel(m.model, stop).model };
  };
  switch (task.kind) {
    case 'fairness-stats':
      return fairnessReport(task.input, { ...task.options, checkpoint: () => checkStop(stop, Date.now, 'the fairness bootstrap') });
    case 'png':
      return new Uint8Array(svgToPng(task.svg));
    case 'predict':
      return (await guarded(task)).model.predict(task.rows);
    case 'explain': {
      const m = await guarded(task);
      const e =
        task.predictedClass && m.model.nOutputs > 1 && task.rows.n > 0
          ? await explainPredictedClass(task, m, stop)
          : // Every instance says why it stopped, whether or not its explainer said so.
            withStopReasons(await runMethod(task, m.model, task.rows, m.space, signal, m.tokenizer), task.options.deadline);
      // Inputs as the shortest decimals that read back to the same float32; one-hot groups as one row each.
      return m.inputShape.length > 1 ? e : withGroupAttributions(withShortestValues(e), m);
    }
    case 'importance': {
      const m = await guarded(task);
      let data = task.data;
      let labels = task.labels;
      if (!data || !labels) {
        if (!m.reference)
          throw new ServiceError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send data and labels`);
        data = m.reference.rows;
        labels = m.reference.labels;
      }
      return permutationImportance(m.model, data, labels, { ...task.options, space: m.space, signal });
    }
    case 'effects':
      return runEffects(await guarded(task), task.request, { limits: task.limits, deadline: task.deadline, signal });
    case 'counterfactuals':
      return runCounterfactuals(await guarded(task), task.rows, task.options, signal);
    case 'recourse':
      return runRecourse(await guarded(task), task.request, task.rows, signal);
  }
}

/** Each row's predicted class, explained per class group and put back in row order (see ExplainTask). */
async function explainPredictedClass(task: ExplainTask, m: ServedModel, stop: TaskStop): Promise<Explanation> {
  const signal = stop.signal;
  const { rows } = task;
  const classes = argmaxRows(await m.model.predict(rows), rows.n, m.model.nOutputs);
  const explanations = new Array<InstanceExplanation>(rows.n);
  let common: Explanation | undefined;
  for (const [c, indices] of groupRows(classes)) {
    checkStop(stop);
    const call = { ...task, options: { ...task.options, outputs: [c] } } as ExplainTask;
    const part = withStopReasons(
      await runMethod(call, m.model, pickRowsAt(rows, indices), m.space, signal, m.tokenizer),
      task.options.deadline,
    );
    // Per-instance facts are on the instances already (each explainer puts them there): the parts
    // merge by instance, and the first part's call-wide facts stand for all.
    part.explanations.forEach((inst, j) => {
      // The predict call that chose the class is one more model row for this instance.
      explanations[indices[j]] = { ...inst, modelEvaluations: inst.modelEvaluations + 1 };
    });
    common ??= part;
  }
  return { ...common!, explanations };
}
