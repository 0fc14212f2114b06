/**
 * The one worker-thread entry (piscina), for the server's pool, the CLI and `npm run worker`: its
 * own tfjs runtime, and its own copy of the models. With `preload` every model of modelDir loads on
 * the first task (the server answers any of them at once); otherwise each loads on first use (a job
 * directory may hold many models). A task for another version of a loaded model reloads its folder
 * once (a long-running worker outlives model updates); if the folder still holds another version the
 * task is refused, never answered by a different model.
 *
 * A task arrives with its control: a SharedArrayBuffer flag the main thread sets to cancel it (the
 * guarded model checks it before every model call) and its hard deadline.
 *
 * Memory after a task: a heavy task leaves its garbage in this thread's heap, and an idle worker
 * thread's heap is not shrunk by V8 on its own. So after a task that left the thread's V8 heap and
 * ArrayBuffers more than GC_SLACK_MB above what it held when its models were loaded, the thread
 * collects (a full GC, which gives empty pages back). If even then it holds more than `recycleMb`
 * above that level, or its wasm heap (which never shrinks) is above `recycleMb`, or its backend is
 * broken (a wasm abort), it answers and then exits, and the pool starts a fresh thread in its place.
 */
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parentPort, workerData as rawData } from 'node:worker_threads';
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
  /** Nice increment of the thread (Linux): below the main thread; 0: same priority. */
  nice?: number;
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

/** Posted by a thread that is about to replace itself (memory, or a broken backend). */
export interface RecycleNotice {
  recycled: string;
}

export type WorkerReply = { startedAt: number } & (
  { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; details?: unknown } }
);

const { modelDir, backend, preload, recycleMb = 0, nice = 0 } = rawData as WorkerData;

// Below the main thread: when explanations saturate the cores, the HTTP thread (health checks,
// cached answers, refusals) still gets the CPU first. On Linux a nice value is per thread, so this
// lowers this worker thread only; elsewhere it may apply to the process, so it is Linux-only.
if (nice > 0 && os.platform() === 'linux') {
  try {
    os.setPriority(0, Math.min(19, os.getPriority(0) + nice));
  } catch {
    /* not permitted: run at the default priority */
  }
}

let ready: Promise<void> | undefined;
const loading = new Map<string, Promise<LoadedModel>>();
/** The thread's V8 heap and ArrayBuffers when its models were last loaded (after a collection): what a task should leave behind. */
let baseline: number | undefined;
/** A model was loaded during the task: measure the baseline again after it. */
let rebase = true;

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
  rebase = true;
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

/** Extra bytes a task may leave in the V8 heap before the thread collects. */
const GC_SLACK_MB = 32;
const MB = 2 ** 20;

/** Bytes of this thread's V8 heap and ArrayBuffers (the wasm heap is apart: it never shrinks). */
export function heapBytes(): number {
  const heap = v8.getHeapStatistics();
  return heap.total_heap_size + heap.external_memory;
}

/** A full collection in this thread's isolate (V8's gc, exposed in a fresh context). */
const collect: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

/** After a task: collect if the task left too much, and say why this thread should be replaced, if it should. */
function afterTask(): string | undefined {
  if (backendFailure()) return 'backend';
  if (rebase) {
    collect();
    baseline = heapBytes();
    rebase = false;
    return undefined;
  }
  if (baseline !== undefined && heapBytes() > baseline + GC_SLACK_MB * MB) collect();
  if (recycleMb > 0) {
    if (backendHeapBytes() > recycleMb * MB) return 'memory';
    if (baseline !== undefined && heapBytes() > baseline + recycleMb * MB) return 'memory';
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
    const stop = { deadline: control.deadline, cancelled: () => Atomics.load(control.flag, 0) === 1 };
    reply = { ok: true, startedAt, value: await runTask(models, task, stop) };
  } catch (err) {
    const plain = toPlainError(err);
    if (!plain) throw err;
    reply = { ok: false, startedAt, error: plain };
  }
  // After the answer has gone (the check phase runs before the next task's message is read):
  // collect, and replace this thread if it must be.
  setImmediate(() => {
    if (exiting) return;
    const why = afterTask();
    if (why) {
      exiting = true;
      parentPort?.postMessage({ recycled: why } satisfies RecycleNotice);
      // Now, between tasks: a task already on its way here is reported lost by the pool and run again.
      process.exit(0);
    }
  });
  return reply;
}
