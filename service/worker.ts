/**
 * The one worker-thread entry (piscina), for the server's pool, the CLI and `npm run worker`: its
 * own tfjs runtime, and its own copy of the models. With `preload` every model of modelDir (every
 * version) loads on the first task (the server answers any of them at once); otherwise each loads on
 * first use (a job directory may hold many models). Tasks name a model and the version the caller
 * resolved; a thread finds that version among the model's folders (`<model>/` or
 * `<model>/versions/<label>/`) by content hash, so a long-running thread follows new versions
 * without a restart and never answers with a different one. It keeps a few versions per model
 * (the least recently used beyond that are freed); a version no longer in MODEL_DIR is refused
 * (MODEL_VERSION_GONE).
 *
 * A task arrives with its control: a SharedArrayBuffer flag the main thread sets to cancel it (the
 * guarded model checks it before every model call) and its hard deadline.
 *
 * Memory after a task: a heavy task leaves its garbage in this thread's heap, and an idle worker
 * thread's heap is not shrunk by V8 on its own. So after a task that left the thread's V8 heap and
 * ArrayBuffers more than GC_SLACK_MB above what it held when its models were loaded, the thread
 * collects (a full GC, which gives empty pages back). If even then it holds more than `recycleMb`
 * above that level, or its wasm heap (which never shrinks) is above `recycleMb`, or its tfjs
 * backend failed for good (a wasm abort: its reply says so, and the executor answers 503
 * BACKEND_FAILURE), it asks to be replaced: the executor ends it and the pool starts a fresh thread
 * in its place. Until then it runs no task: one that reaches it is handed back to run elsewhere.
 */
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { parentPort, threadId, workerData as rawData } from 'node:worker_threads';
import { backendHeapBytes, selectBackend } from '../models/backend.js';
import { backendFailure, isFatalBackendError } from '../models/backendHealth.js';
import { loadModelFolder, loadModelRepository, MODEL_NAME, versionFolders, type LoadedModel } from '../models/repository.js';
import { contentVersion, folderSignature } from '../models/version.js';
import { ServiceError, toPlainError } from './errors.js';
import { runTask, type ModelSource, type Task } from './tasks.js';

export interface WorkerData {
  modelDir: string;
  backend?: string;
  preload: boolean;
  /** Memory threshold (MB) above which the thread asks to be replaced after a task; 0: never. */
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

/** Why a thread asks to be replaced. */
export type RecycleReason = 'memory' | 'backend';

/** Posted by a thread that asks to be replaced after a task it answered (memory, or a backend that broke without failing the task). */
export interface RecycleNotice {
  recycled: RecycleReason;
  threadId: number;
}

export type WorkerReply = { startedAt: number } & (
  | { ok: true; value: unknown }
  | { ok: false; error: { code: string; message: string; details?: unknown } }
  /**
   * Thread `threadId` must be replaced (`reason` backend: its tfjs backend failed for good, a wasm
   * abort, models/backendHealth.ts; memory: it asked after an earlier task). `before`: the task did
   * not run here (the thread was done for before it arrived), so it may run again on another thread.
   */
  | { ok: false; recycle: true; threadId: number; before: boolean; reason: RecycleReason; message: string }
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

/** Versions of one model kept loaded per thread; the least recently used beyond this are freed. */
const VERSIONS_PER_MODEL = 4;

let ready: Promise<void> | undefined;
/** name -> version -> the loaded model (Map order = least recently used first). */
const loaded = new Map<string, Map<string, Promise<LoadedModel>>>();
/** folder -> its signature and content version, so a search hashes only folders that changed. */
const folderVersions = new Map<string, { signature: string; version: string }>();
/** The thread's V8 heap and ArrayBuffers when its models were last loaded (after a collection): what a task should leave behind. */
let baseline: number | undefined;
/** A model was loaded or freed during the task: measure the baseline again after it. */
let rebase = true;

function start(): Promise<void> {
  ready ??= (async () => {
    await selectBackend(backend);
    if (preload) {
      const repo = await loadModelRepository(modelDir);
      for (const [name, list] of repo.versions ?? []) {
        const byVersion = new Map<string, Promise<LoadedModel>>();
        for (const v of [...list].reverse()) byVersion.set(v.version, Promise.resolve(v.model));
        loaded.set(name, byVersion);
      }
    }
  })();
  return ready;
}

async function versionOf(folder: string): Promise<string> {
  const signature = await folderSignature(folder);
  const known = folderVersions.get(folder);
  if (known?.signature === signature) return known.version;
  const version = await contentVersion(folder);
  folderVersions.set(folder, { signature, version });
  return version;
}

/** Finds the folder holding that version of the model and loads it; throws saying what is there instead. */
async function load(name: string, version: string): Promise<LoadedModel> {
  const folder = path.join(modelDir, name);
  let found: string[] = [];
  try {
    const layout = await versionFolders(folder);
    for (const v of [...layout.folders].reverse()) {
      const hash = await versionOf(v.folder).catch(() => undefined);
      if (hash === version) {
        rebase = true;
        return await loadModelFolder(name, v.folder, {}, v.label);
      }
      if (hash) found.push(v.label ? `${v.label} (${hash})` : hash);
    }
  } catch (e) {
    if (e instanceof ServiceError) throw e;
    throw new ServiceError(
      'MODEL_NOT_FOUND',
      `model "${name}" cannot be loaded from ${modelDir}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  if (!found.length) found = ['none'];
  throw new ServiceError(
    'MODEL_VERSION_GONE',
    `model "${name}" version ${version} is no longer in the model repository (versions there: ${found.join(', ')})`,
    { version },
  );
}

const models: ModelSource = async (name, version) => {
  await start();
  if (!MODEL_NAME.test(name)) throw new ServiceError('MODEL_NOT_FOUND', `"${name}" is not a valid model name`);
  let byVersion = loaded.get(name);
  if (!byVersion) loaded.set(name, (byVersion = new Map()));
  let p = byVersion.get(version);
  if (p) {
    // Most recently used last.
    byVersion.delete(version);
    byVersion.set(version, p);
    return p;
  }
  p = load(name, version);
  byVersion.set(version, p);
  p.catch(() => byVersion.delete(version));
  const m = await p;
  while (byVersion.size > VERSIONS_PER_MODEL) {
    const [oldest, q] = byVersion.entries().next().value!;
    byVersion.delete(oldest);
    // Tasks run one at a time per thread: nothing else is using it now.
    void q.then((old) => old.model.dispose()).catch(() => undefined);
    rebase = true;
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
function afterTask(): RecycleReason | undefined {
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

/** Why this thread has asked to be replaced (it runs no task after that), or undefined. */
let exiting: RecycleReason | undefined;

/** Errors cross the thread boundary as plain objects; the executor turns them back into errors. */
export default async function run(request: WorkerRequest): Promise<WorkerReply> {
  const startedAt = Date.now();
  const { task, control } = request;
  const broken = backendFailure();
  if (broken || exiting) {
    const reason = exiting ?? 'backend';
    exiting = reason;
    const message = broken?.message ?? 'this worker thread is being replaced';
    return { ok: false, recycle: true, threadId, before: true, reason, startedAt, message };
  }
  Atomics.store(control.flag, 1, 1);
  let reply: WorkerReply;
  try {
    const stop = { deadline: control.deadline, cancelled: () => Atomics.load(control.flag, 0) === 1 };
    reply = { ok: true, startedAt, value: await runTask(models, task, stop) };
  } catch (err) {
    // After a wasm abort any error may be its echo: the thread is done for.
    const failed = backendFailure() ?? (isFatalBackendError(err) ? err : undefined);
    if (failed) {
      exiting = 'backend';
      const message = failed instanceof Error ? failed.message : String(failed);
      return { ok: false, recycle: true, threadId, before: false, reason: 'backend', startedAt, message };
    }
    const plain = toPlainError(err);
    if (!plain) throw err;
    reply = { ok: false, startedAt, error: plain };
  }
  // After the answer has gone (the check phase runs after the reply is posted): collect, and ask to
  // be replaced if this thread must be.
  setImmediate(() => {
    if (exiting) return;
    const why = afterTask();
    if (why) {
      exiting = why;
      parentPort?.postMessage({ recycled: why, threadId } satisfies RecycleNotice);
    }
  });
  return reply;
}
