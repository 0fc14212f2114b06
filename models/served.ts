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
  description?: string | null;
  classes?: string[];
  link?: 'identity' | 'logit';
  tokenizer?: { maxLength: number; vocabularySize: number };
}

export interface ServedModel<M extends Model = Model> {
  name: string;
  /** Content hash of the model's files: a new version never serves an old answer. */
  version: string;
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

/** The served models by name, and the folders that failed to load (with why). */
export interface Registry<S extends ServedModel = ServedModel> {
  models: Map<string, S>;
  errors: { name: string; message: string }[];
}
