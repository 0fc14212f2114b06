/**
 * Amortised explainers as a thread serves them: loaded once per model (and model version and
 * explainer), kept while requests come, and disposed when a request asks for another version or a
 * retrained explainer (after the requests still using the old one finish). Each worker thread (and
 * the main thread, for the inline executor) has its own copy of this module, hence its own explainers.
 */
import { ServiceError } from '../errors.js';
import type { ServedAmortisedExplainer } from './explainer.js';
import { loadAmortised } from './store.js';

interface Entry {
  dir: string;
  version: string;
  id: string;
  loading: Promise<ServedAmortisedExplainer>;
  users: number;
  retired: boolean;
}

const byModel = new Map<string, Entry>();

export interface Lease {
  explainer: ServedAmortisedExplainer;
  release(): void;
}

function retire(e: Entry): void {
  e.retired = true;
  if (e.users === 0) void e.loading.then((x) => x.dispose(), () => undefined);
}

/** The explainer `id` stored in `dir` for this model version; released by the caller when done. */
export async function leaseAmortised(dir: string, modelName: string, modelVersion: string, id: string): Promise<Lease> {
  let e = byModel.get(modelName);
  if (!e || e.dir !== dir || e.version !== modelVersion || e.id !== id) {
    if (e) retire(e);
    const entry: Entry = { dir, version: modelVersion, id, users: 0, retired: false, loading: loadAmortised(dir, { modelVersion, modelName }) };
    byModel.set(modelName, entry);
    entry.loading.catch(() => {
      if (byModel.get(modelName) === entry) byModel.delete(modelName);
    });
    e = entry;
  }
  const entry = e;
  entry.users++;
  let explainer: ServedAmortisedExplainer;
  try {
    explainer = await entry.loading;
    if (explainer.id !== id) {
      // Retrained between the request's planning and this load: the answer must come from the planned one.
      byModel.delete(modelName);
      retire(entry);
      throw new ServiceError('AMORTISED_NOT_READY', `the amortised explainer of model "${modelName}" was replaced while this request was planned; retry`);
    }
  } catch (err) {
    entry.users--;
    if (entry.retired && entry.users === 0) void entry.loading.then((x) => x.dispose(), () => undefined);
    throw err;
  }
  let released = false;
  return {
    explainer,
    release() {
      if (released) return;
      released = true;
      entry.users--;
      if (entry.retired && entry.users === 0) explainer.dispose();
    },
  };
}

/** Explainers loaded in this thread (tests). */
export function loadedAmortised(): { model: string; version: string; id: string }[] {
  return [...byModel.entries()].map(([model, e]) => ({ model, version: e.version, id: e.id }));
}

/** Disposes every explainer of this thread (tests, shutdown). */
export function disposeAmortised(): void {
  for (const e of byModel.values()) retire(e);
  byModel.clear();
}
