/**
 * The one served-model type: what the service, the worker threads, the jobs and the routes know of a
 * loaded model. models/repository.ts loads tfjs folders into it (LoadedModel is this type with its
 * TfjsModel); tests may serve any `Model` through it.
 */
import type { FeatureSpace, Model, Rows } from '../explainers/types.js';
import type { Metadata } from './metadata.js';
import type { Tokenizer } from './tokenizer.js';

/** The JSON of GET /v1/models (one entry). */
export interface ModelDescription {
  name: string;
  version: string;
  format?: 'layers' | 'graph';
  inputShape: number[];
  task?: Metadata['task'] | null;
  features: {
    name: string;
    type?: string;
    group?: string;
    description?: string;
    unit?: string;
    /** Counterfactual constraints and readable codes, as declared in metadata.json. */
    immutable?: boolean;
    monotone?: 'increasing' | 'decreasing';
    min?: number;
    max?: number;
    categories?: { value: number; label: string }[];
  }[];
  outputs: { name: string; description?: string }[];
  sensitiveFeatures?: string[];
  groups?: { name: string; features: string[] }[];
  hasBackground?: boolean;
  hasReference?: boolean;
  backgroundRows?: number;
  referenceRows?: number;
  /** The version's folder name under `<model>/versions/`, when the model uses that layout. */
  versionLabel?: string;
  description?: string | null;
  classes?: string[];
  link?: 'identity' | 'logit';
  tokenizer?: { maxLength: number; vocabularySize: number };
}

export interface ServedModel<M extends Model = Model> {
  name: string;
  /** Content hash of the model's files: a new version never serves an old answer. */
  version: string;
  /** The folder name under `<model>/versions/` this version was loaded from (that layout only). */
  versionLabel?: string;
  model: M;
  space: FeatureSpace;
  /** [d] for tabular models, [h, w, c] for images. */
  inputShape: number[];
  metadata?: Metadata;
  /** Rows for Kernel SHAP's background and IG's mean baseline. */
  background?: Rows;
  /** Labelled rows for permutation importance, fairness and drift. */
  reference?: { rows: Rows; labels: Float32Array; labelNames?: string[] };
  /** The output layer's activation, when known: softmax or sigmoid outputs are class probabilities. */
  outputKind?: 'softmax' | 'sigmoid' | 'linear' | 'other';
  /** Text models: the folder's tokenizer.json (instances may then be strings). */
  tokenizer?: Tokenizer;
  describe(): ModelDescription;
}

/** One served version of a model. */
export interface ServedVersion<S extends ServedModel = ServedModel> {
  /** The content hash (ServedModel.version). */
  version: string;
  /** The folder name under `<model>/versions/` (absent for a model folder without versions/). */
  label?: string;
  model: S;
  /**
   * serving: pinned requests reach it (the default version also takes unpinned ones); draining: it
   * left MODEL_DIR (or was replaced in place) and still answers pinned requests and permalinks until
   * `retiresAt`, then it is gone (410).
   */
  state: 'serving' | 'draining';
  loadedAt: number;
  retiresAt?: number;
}

/** A folder (or one version of it) that failed to load, and why. */
export interface LoadError {
  name: string;
  /** The version folder's label, for `<model>/versions/<label>/`. */
  version?: string;
  message: string;
}

/** The served models by name, and the folders that failed to load (with why). */
export interface Registry<S extends ServedModel = ServedModel> {
  /** Each model's default version: what requests that pin no version get. */
  models: Map<string, S>;
  errors: LoadError[];
  /**
   * Every version of each model that requests may pin, the default first, then newest first;
   * models/watcher.ts swaps this and `models` together. Absent: one version per model (`models`).
   */
  versions?: Map<string, ServedVersion<S>[]>;
  /** Versions no longer served, per model (bounded), so their links answer 410 rather than 404. */
  retired?: Map<string, Set<string>>;
}

/** The versions of a model that requests may pin (the default first); [] when the model is not served. */
export function servedVersions<S extends ServedModel>(registry: Pick<Registry<S>, 'models' | 'versions'>, name: string): ServedVersion<S>[] {
  const listed = registry.versions?.get(name) ?? [];
  const m = registry.models.get(name);
  // `models` is the authority: a `versions` list that does not start with its default is stale (a
  // registry whose `models` was swapped by hand), and only the default is served.
  if (m && listed[0]?.model !== m) return [{ version: m.version, model: m, state: 'serving', loadedAt: 0 }];
  return listed;
}

/** A served (or draining) version of a model by content hash or by label; undefined when there is none. */
export function findVersion<S extends ServedModel>(
  registry: Pick<Registry<S>, 'models' | 'versions'>,
  name: string,
  version: string,
): ServedVersion<S> | undefined {
  const all = servedVersions(registry, name);
  return all.find((v) => v.version === version) ?? all.find((v) => v.label === version);
}

/**
 * The model of exactly that content hash (a version recorded with a job or a stored explanation),
 * while it is served or draining; undefined once it is gone.
 */
export function modelOfVersion<S extends ServedModel>(registry: Pick<Registry<S>, 'models' | 'versions'>, name: string, version: string): S | undefined {
  return servedVersions(registry, name).find((v) => v.version === version)?.model;
}
