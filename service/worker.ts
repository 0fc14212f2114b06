/**
 * The one worker-thread entry (piscina), for the server's pool, the CLI and `npm run worker`: its
 * own tfjs runtime, and its own copy of the models. With `preload` every model of modelDir loads on
 * the first task (the server answers any of them at once); otherwise each loads on first use (a job
 * directory may hold many models). A task for another version of a loaded model reloads its folder
 * once (a long-running worker outlives model updates); if the folder still holds another version the
 * task is refused, never answered by a different model. A thread whose tfjs backend failed for good
 * (a wasm abort) says so in its reply, and the executor replaces it.
 */
import path from 'node:path';
import { threadId, workerData as rawData } from 'node:worker_threads';
import { selectBackend } from '../models/backend.js';
import { backendFailure, isFatalBackendError } from '../models/backendHealth.js';
import { loadModelFolder, loadModelRepository, MODEL_NAME, type LoadedModel } from '../models/repository.js';
import { ServiceError, toPlainError } from './errors.js';
import { runTask, type ModelSource, type Task } from './tasks.js';

export interface WorkerData {
  modelDir: string;
  backend?: string;
  preload: boolean;
}

export type WorkerReply = { startedAt: number } & (
  | { ok: true; value: unknown }
  | { ok: false; error: { code: string; message: string; details?: unknown } }
  /**
   * The tfjs backend of this thread failed for good (a wasm abort: models/backendHealth.ts): the
   * executor terminates thread `threadId` and piscina starts a fresh one. `before`: it had already
   * failed before this task started, so the task itself may run again on another thread.
   */
  | { ok: false; recycle: true; threadId: number; before: boolean; message: string }
);

const { modelDir, backend, preload } = rawData as WorkerData;

let ready: Promise<void> | undefined;
const loading = new Map<string, Promise<LoadedModel>>();

function start(): Promise<void> {
  ready ??= (async () => {
    await selectBackend(backend);
    if (preload) {
      const repo = await loadModelRepository(modelDir);
      for (const [name, m] of repo.models) loading.set(name, Promise.resolve(m));
    }
  })();
  return ready;
}

function load(name: string): Promise<LoadedModel> {
  const p = loadModelFolder(name, path.join(modelDir, name)).catch((e: unknown) => {
    loading.delete(name);
    throw new ServiceError(
      'MODEL_NOT_FOUND',
      `model "${name}" cannot be loaded from ${modelDir}: ${e instanceof Error ? e.message : String(e)}`,
    );
  });
  loading.set(name, p);
  return p;
}

const models: ModelSource = async (name, version) => {
  await start();
  if (!MODEL_NAME.test(name)) throw new ServiceError('MODEL_NOT_FOUND', `"${name}" is not a valid model name`);
  const first = loading.get(name) ?? load(name);
  let m = await first;
  if (m.version !== version && loading.get(name) === first) {
    m.model.dispose();
    m = await load(name);
  } else if (m.version !== version) {
    m = await loading.get(name)!;
  }
  if (m.version !== version) {
    throw new ServiceError(
      'MODEL_NOT_FOUND',
      `model "${name}" version ${version} is not the version in ${modelDir} (${m.version}); reload the service`,
    );
  }
  return m;
};

/** Errors cross the thread boundary as plain objects; the executor turns them back into errors. */
export default async function run(task: Task): Promise<WorkerReply> {
  const startedAt = Date.now();
  const broken = backendFailure();
  if (broken) return { ok: false, recycle: true, threadId, before: true, startedAt, message: broken.message };
  try {
    return { ok: true, startedAt, value: await runTask(models, task) };
  } catch (err) {
    // After a wasm abort any error may be its echo: the thread is done for.
    const failed = backendFailure() ?? (isFatalBackendError(err) ? err : undefined);
    if (failed) return { ok: false, recycle: true, threadId, before: false, startedAt, message: failed instanceof Error ? failed.message : String(failed) };
    const plain = toPlainError(err);
    if (plain) return { ok: false, startedAt, error: plain };
    throw err;
  }
}
