/**
 * A worker thread of the jobs pool (jobs/threads.ts): its own tfjs runtime, and only the models its
 * tasks name, each loaded from its folder on first use. A task for another version of a loaded
 * model reloads the folder once (a long-running worker process outlives model updates).
 */
import path from 'node:path';
import { workerData } from 'node:worker_threads';
import { ExplainerInputError } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, MODEL_NAME } from '../models/repository.js';
import { ApiError } from '../server/errors.js';
import type { Registry, ServedModel } from '../server/registry.js';
import { runTask, type Task } from '../server/tasks.js';

const { modelDir, backend } = workerData as { modelDir: string; backend?: string };

const registry: Registry = { models: new Map(), errors: [] };
let backendReady: Promise<string> | undefined;
const loading = new Map<string, Promise<ServedModel>>();

async function load(name: string): Promise<ServedModel> {
  try {
    const m = (await loadModelFolder(name, path.join(modelDir, name))) as unknown as ServedModel;
    registry.models.set(name, m);
    return m;
  } catch (e) {
    loading.delete(name);
    throw new ApiError(
      'MODEL_NOT_FOUND',
      `model "${name}" cannot be loaded from ${modelDir}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

async function ensure(name: string, version: string): Promise<void> {
  backendReady ??= selectBackend(backend);
  await backendReady;
  if (!MODEL_NAME.test(name)) throw new ApiError('MODEL_NOT_FOUND', `"${name}" is not a valid model name`);
  let p = loading.get(name);
  if (!p) loading.set(name, (p = load(name)));
  const m = await p;
  if (m.version !== version && loading.get(name) === p) {
    (m.model as { dispose?: () => void }).dispose?.();
    registry.models.delete(name);
    const again = load(name);
    loading.set(name, again);
    await again;
  }
}

export default async function run(task: Task) {
  const startedAt = Date.now();
  try {
    await ensure(task.model, task.version);
    return { ok: true as const, startedAt, value: await runTask(registry, task) };
  } catch (err) {
    if (err instanceof ApiError || err instanceof ExplainerInputError) {
      return { ok: false as const, startedAt, error: { code: err.code, message: err.message, details: err.details } };
    }
    throw err;
  }
}
