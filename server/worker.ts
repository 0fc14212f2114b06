/**
 * A worker thread of the explanation pool: its own tfjs runtime and its own copy of the models,
 * loaded once on the first task.
 */
import { workerData } from 'node:worker_threads';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import { ApiError } from './errors.js';
import type { Registry } from './registry.js';
import { runTask, type Task } from './tasks.js';
import { ExplainerInputError } from '../explainers/types.js';

const { modelDir, backend } = workerData as { modelDir: string; backend?: string };

let ready: Promise<Registry> | undefined;
function registry(): Promise<Registry> {
  ready ??= (async () => {
    await selectBackend(backend);
    return (await loadModelRepository(modelDir)) as unknown as Registry;
  })();
  return ready;
}

/** Errors cross the thread boundary as plain objects; the pool turns them back into ApiErrors. */
export default async function run(task: Task) {
  const startedAt = Date.now();
  try {
    return { ok: true as const, startedAt, value: await runTask(await registry(), task) };
  } catch (err) {
    if (err instanceof ApiError || err instanceof ExplainerInputError) {
      return { ok: false as const, startedAt, error: { code: err.code, message: err.message, details: err.details } };
    }
    throw err;
  }
}
