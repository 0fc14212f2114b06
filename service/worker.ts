/**
 * The one worker-thread entry (piscina), for the server's pool, the CLI and `npm run worker`: its
 * own tfjs runtime, and its own copy of the models. With `preload` every model of modelDir loads on
 * the first task (the server answers any of them at once); otherwise each loads on first use (a job
 * directory may hold many models). A task for another version of a loaded model reloads its folder
 * once (a long-running worker outlives model updates); if the folder still holds another version the
 * task is refused, never answered by a different model.
 *
 * A task arrives with its control: a SharedArrayBuffer flag the main thread sets to cancel it (the
 * guarded model checks it before every model call) and its hard deadline. After a task the thread
 * checks itself: when its backend is broken (a wasm abort) or its memory (V8 heap, ArrayBuffers and
 * the wasm heap, which never shrinks) stays above `recycleMb`, it answers and then exits, and the
 * pool starts a fresh thread in its place.
 */
import path from 'node:path';
import v8 from 'node:v8';
import { workerData as rawData } from 'node:worker_threads';
import { backendHeapBytes, selectBackend } from '../models/backend.js';
import { backendFailure } from '../models/backendHealth.js';
import { loadModelFolder, loadModelRepository, MODEL_NAME, type LoadedModel } from '../models/repository.js';
import { ServiceError, toPlainError } from './errors.js';
import { runTask, type ModelSource, type Task } from './tasks.js';

export interface WorkerData {
  modelDir: string;
  backend?: string;
  preload: boolean;
  /** Memory threshold (MB) above which the thread replaces itself after a task; 0: never. */
  recycleMb?: number;
}

/** A task and how to stop it. */
export interface WorkerRequest {
  task: Task;
  control: {
    /** [0]: 1 once the main thread cancelled the task; [1]: set to 1 here when the task starts. */
    flag: Int32Array;
    /** Epoch ms: the hard deadline. */
    deadline?: number;
  };
}

export type WorkerReply = { startedAt: number; recycled?: string } & (
  { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; details?: unknown } }
);

const { modelDir, backend, preload, recycleMb = 0 } = rawData as WorkerData;

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

/** Bytes this thread holds: its V8 heap, its ArrayBuffers and the wasm backend's heap. */
export function threadMemoryBytes(): number {
  const heap = v8.getHeapStatistics();
  return heap.total_heap_size + heap.external_memory + backendHeapBytes();
}

/** Why this thread should be replaced after its task, if it should. */
function recycleReason(): string | undefined {
  if (backendFailure()) return 'backend';
  if (recycleMb > 0 && threadMemoryBytes() > recycleMb * 2 ** 20) {
    // Garbage counts until collected: collect what can be, then measure again.
    (globalThis as { gc?: () => void }).gc?.();
    if (threadMemoryBytes() > recycleMb * 2 ** 20) return 'memory';
  }
  return undefined;
}

let exiting = false;

/** Errors cross the thread boundary as plain objects; the executor turns them back into errors. */
export default async function run(request: WorkerRequest): Promise<WorkerReply> {
  const startedAt = Date.now();
  const { task, control } = request;
  Atomics.store(control.flag, 1, 1);
  let reply: WorkerReply;
  try {
    if (exiting) throw new Error('worker exited: this thread is being replaced');
    const stop = { deadline: control.deadline, cancelled: () => Atomics.load(control.flag, 0) === 1 };
    reply = { ok: true, startedAt, value: await runTask(models, task, stop) };
  } catch (err) {
    const plain = toPlainError(err);
    if (!plain) throw err;
    reply = { ok: false, startedAt, error: plain };
  }
  const why = exiting ? undefined : recycleReason();
  if (why) {
    exiting = true;
    // Answer first; the pool starts a fresh thread when this one exits.
    setTimeout(() => process.exit(0), 10);
    reply.recycled = why;
  }
  return reply;
}
