/**
 * The one worker-thread entry (piscina), for the server's pool, the CLI and `npm run worker`: its
 * own tfjs runtime, and its own copy of the models. With `preload` every model of modelDir (every
 * version) loads on the first task (the server answers any of them at once); otherwise each loads on
 * first use (a job directory may hold many models). Tasks name a model and the version the caller
 * resolved; a thread finds that version among the model's folders (`<model>/` or
 * `<model>/versions/<label>/`) by content hash, so a long-running thread follows new versions
 * without a restart and never answers with a different one. It keeps a few versions per model
 * (the least recently used beyond that are freed); a version no longer in MODEL_DIR is refused
 * (MODEL_VERSION_GONE). A thread whose tfjs backend failed for good (a wasm abort) says so in its
 * reply, and the executor replaces it.
 */
import path from 'node:path';
import { threadId, workerData as rawData } from 'node:worker_threads';
import { selectBackend } from '../models/backend.js';
import { backendFailure, isFatalBackendError } from '../models/backendHealth.js';
import { loadModelFolder, loadModelRepository, MODEL_NAME, versionFolders, type LoadedModel } from '../models/repository.js';
import { contentVersion, folderSignature } from '../models/version.js';
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

/** Versions of one model kept loaded per thread; the least recently used beyond this are freed. */
const VERSIONS_PER_MODEL = 4;

let ready: Promise<void> | undefined;
/** name -> version -> the loaded model (Map order = least recently used first). */
const loaded = new Map<string, Map<string, Promise<LoadedModel>>>();
/** folder -> its signature and content version, so a search hashes only folders that changed. */
const folderVersions = new Map<string, { signature: string; version: string }>();

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
      if (hash === version) return await loadModelFolder(name, v.folder, {}, v.label);
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
