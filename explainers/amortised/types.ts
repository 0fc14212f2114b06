/**
 * What an amortised Shapley explainer is, seen from the explainers: a trained function from rows to
 * per-player estimates of one game (game.ts), tied to one model version, with its validated error.
 * The trained network itself lives with the tfjs runtime (models/amortised/); explainers only call
 * `estimate` and see plain arrays.
 */
import type { Rows } from '../types.js';
import type { AmortisedGame } from './game.js';

/** Error of attributions against a reference, over held-out rows (one figure per row and output). */
export interface ErrorStats {
  /** Row-output pairs the figures are over. */
  count: number;
  /** Mean and 95th percentile over rows of max_j |φ_j - φ*_j|, in the game's (link) units. */
  meanAbs: number;
  p95Abs: number;
  /** The same, each row's max |error| divided by that row's attribution range max_j φ*_j - min_j φ*_j. */
  meanRelative: number;
  p95Relative: number;
}

export interface AmortisedValidation {
  /** 'exact': every coalition enumerated; 'kernel-shap': Kernel SHAP at `referenceSamples` coalitions. */
  reference: 'exact' | 'kernel-shap';
  referenceSamples: number;
  /**
   * With a sampled reference: the mean over held-out rows and outputs of the reference's largest
   * standard error, in link units. Every error below includes the reference's own of about this size.
   */
  referenceStdErr?: number;
  /** Held-out rows compared (never used in training or early stopping). */
  rows: number;
  players: number;
  /** The amortised explainer's error, pooled over explained outputs, and per explained output. */
  amortised: ErrorStats;
  amortisedPerOutput: ErrorStats[];
  /**
   * Kernel SHAP's own error on the same rows at `kernelShapSamples` coalitions, against the same
   * reference; `ratioToKernelShap` = amortised.meanAbs / kernelShap.meanAbs. Absent when that budget
   * covers every coalition (Kernel SHAP is then exact: no error to compare with).
   */
  kernelShap?: ErrorStats & { nSamples: number };
  ratioToKernelShap?: number;
  /**
   * The same comparison with shap's KernelExplainer sampling scheme (its size enumeration, weighted
   * draws and weights, explainers/coalitions.ts 'shap') at the same budget, on the same rows:
   * `ratioToShapKernelExplainer` = amortised.meanAbs / shapKernelExplainer.meanAbs.
   */
  shapKernelExplainer?: ErrorStats & { nSamples: number };
  ratioToShapKernelExplainer?: number;
  /** Model rows evaluated for the validation (reference, Kernel SHAP comparison, amortised). */
  modelEvaluations: number;
  computeMs: number;
}

export interface AmortisedExplainer {
  /** The game the explainer was trained on: players, link, explained outputs, background. */
  readonly game: AmortisedGame;
  /** Name and content version of the model it explains; serving another version is refused. */
  readonly modelName: string;
  readonly modelVersion: string;
  /** Present once validated on held-out rows (always, for an explainer loaded from disk). */
  readonly validation?: AmortisedValidation;
  /** True when the network also takes each row's probe values (game.ts, endpointValues). */
  readonly probes: boolean;
  /**
   * Per-player estimates before the efficiency normalisation, in link units: rows x explained
   * outputs x players, row-major. One forward pass for all rows. `probes` (rows x outputs x 2M,
   * from endpointValues) is required when `this.probes` is true.
   */
  estimate(rows: Rows, probes?: Float32Array): Promise<Float32Array>;
}
