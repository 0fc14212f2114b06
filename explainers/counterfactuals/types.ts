/**
 * Counterfactual explanations: the options a caller passes and the plain, JSON-serialisable result.
 * Feature constraints are keyed by feature (or one-hot group) name so that they read the same in
 * metadata.json, in a request and here.
 */
import type { FeatureSpace, Rows } from '../types.js';

/** Per-feature (or per one-hot group) constraints on what a counterfactual may change. */
export interface FeatureConstraint {
  /** Type of the column. Absent: binary when the reference holds only 0/1, integer when only integers, else numeric. */
  type?: 'numeric' | 'integer' | 'binary' | 'categorical';
  /** Never changed (e.g. sex, a date of birth). On a one-hot group, or any of its columns, freezes the group. */
  immutable?: boolean;
  /** May only grow (age, education level) or only shrink. For categorical codes: in code order. */
  monotone?: 'increasing' | 'decreasing';
  /** Bounds on the new value, intersected with the range seen in the reference set. */
  min?: number;
  max?: number;
  /** Readable names of a categorical or binary column's codes (or, on a one-hot column, of its category). */
  categories?: { value: number; label: string }[];
}

/**
 * The outcome a counterfactual must reach. `class`: a class index of a classifier, or "opposite" for a
 * binary classifier (the class it does not predict now). `range`: an output's value within [lo, hi]
 * (either end may be ±Infinity, sent as null in JSON) for regression or for a probability.
 */
export type DesiredOutcome = { class: number | 'opposite' } | { range: [number, number]; output?: number };

export type CounterfactualTask = 'binary-classification' | 'multiclass-classification' | 'regression';

export interface CounterfactualOptions {
  space: FeatureSpace;
  /**
   * Rows from the data distribution (a model's reference or background set): it gives the scales
   * (MAD), the ranges a counterfactual stays within, the categories seen, the plausibility check and
   * the prototypes the search starts from.
   */
  reference: Rows;
  /** Default: the opposite class for a binary classifier; required for other tasks. */
  desired?: DesiredOutcome;
  /** Default: from the outputs (1 output: binary classification; more: multiclass) unless desired is a range. */
  task?: CounterfactualTask;
  /** Binary classifiers: class 1 when output >= threshold. Default 0.5. */
  threshold?: number;
  /** By feature or one-hot group name. */
  constraints?: Record<string, FeatureConstraint>;
  /** Names of space.groups, in order (metadata's group names); default: the members' common prefix. */
  groupNames?: string[];
  /** Counterfactuals per instance, at most. Default 3. */
  k?: number;
  /** Default 0. The same seed gives the same answer (unless the deadline cuts it short). */
  seed?: number;
  /** Model evaluations (predicted rows) per instance for the search, at most (plus k to re-predict the answer); default 5000. */
  maxEvaluations?: number;
  /** Changed features (a one-hot group counts once) per counterfactual, at most. Default: no limit. */
  maxChangedFeatures?: number;
  /**
   * Counterfactuals less plausible than this are dropped (plausibility: the share of reference rows that
   * are at least as far from their own nearest neighbours as the counterfactual is from its nearest
   * reference rows; 1 = in the densest part of the data, 0 = farther out than any reference row).
   * Default 0.01.
   */
  minPlausibility?: number;
  /** Neighbours in the plausibility check; default 5. */
  neighbours?: number;
  /** Follow the model's input gradients as one more search path when it has them. Default true. */
  useGradients?: boolean;
  /** Predictions of `reference` by this model, when the caller has them already (n x nOutputs). */
  referencePredictions?: Float32Array;
  /** Epoch milliseconds: the search stops between model calls and returns what it has found. */
  deadline?: number;
  signal?: AbortSignal;
}

export interface FeatureChange {
  feature: string;
  from: number;
  to: number;
  /** The one-hot group the column belongs to. */
  group?: string;
  /** Category names of categorical/binary codes (or of a one-hot column's category) when declared. */
  fromLabel?: string;
  toLabel?: string;
}

export type CounterfactualSource = 'coordinate' | 'gradient' | 'prototype' | 'sphere';

export interface Counterfactual {
  /** The whole row, in the model's feature order. */
  values: number[];
  /** Only the columns that differ from the instance. */
  changes: FeatureChange[];
  /** Type-aware L1 distance to the instance: sum of |change| / MAD over numeric columns, plus 1 per changed categorical feature or one-hot group. */
  distance: number;
  /** Number of changed features, a one-hot group counting once. */
  sparsity: number;
  /** See CounterfactualOptions.minPlausibility: in [0, 1], higher is more typical of the data. */
  plausibility: number;
  /** Mean distance (same metric) to the nearest reference rows. */
  neighbourDistance: number;
  /** Re-predicted: the model's output for `values` meets the desired outcome. */
  valid: boolean;
  /** The model's outputs for `values`. */
  prediction: number[];
  /** Which search path found it before refinement. */
  source: CounterfactualSource;
}

/** `complete`: every search path ran; `budget`: maxEvaluations was spent; `deadline`: cut short by the deadline. */
export type CounterfactualStopReason = 'complete' | 'budget' | 'deadline';

export interface InstanceCounterfactuals {
  /** True when at least one valid counterfactual is returned (or the instance already has the desired outcome). */
  found: boolean;
  /** `already-desired`: the instance itself meets the outcome (returned as the only, zero-distance, counterfactual). */
  status: 'found' | 'not-found' | 'already-desired';
  stopReason: CounterfactualStopReason;
  /** The model's outputs for the instance. */
  prediction: number[];
  /** The outcome sought, resolved ("opposite" becomes a class index). */
  desired: { class: number } | { range: [number, number]; output: number };
  /** Cheapest first; diverse beyond the first. */
  counterfactuals: Counterfactual[];
  /**
   * Of the returned set (2 or more): DiCE's determinantal diversity det(K), K_ij = 1 / (1 + dist(c_i, c_j)),
   * and the mean pairwise distance.
   */
  diversity?: { dpp: number; meanPairwiseDistance: number };
  /** Predicted rows for this instance (its share of the reference predictions excluded). */
  modelEvaluations: number;
  /** Rows whose input gradients were computed. */
  gradientEvaluations: number;
  computeMs: number;
  diagnostics: {
    /** Valid candidates per search path, before refinement. */
    validBySource: Record<CounterfactualSource, number>;
    candidatesEvaluated: number;
    /** Candidates dropped as implausible (below minPlausibility) while choosing (only those considered are checked). */
    implausible: number;
  };
}

export interface FeatureScale {
  feature: string;
  kind: 'numeric' | 'integer' | 'categorical' | 'one-hot';
  /** MAD (numeric and integer; a fallback when MAD is 0, see scaleSource); 1 for categorical features. */
  scale: number;
  scaleSource: 'mad' | 'mean-absolute-deviation' | 'unit';
  mutable: boolean;
}

export interface CounterfactualResult {
  instances: InstanceCounterfactuals[];
  /** How each feature's distance is measured (groups named once). */
  scales: FeatureScale[];
  /** Rows of the reference set predicted for the prototypes (once for all instances); 0 when given, or remembered from an earlier call with the same model and reference object. */
  referenceEvaluations: number;
  computeMs: number;
}
