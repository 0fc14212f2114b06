/**
 * The shared vocabulary of every explainer: the `Model` they call, the matrix form they see, and the
 * one `Explanation` shape they return. Plain data, JSON-serialisable, no tfjs and no HTTP.
 */

/** Row-major matrix of `n` rows by `d` columns. Explainers only ever see this form. */
export interface Rows {
  data: Float32Array;
  n: number;
  d: number;
}

/**
 * What an explainer needs from a model. Rows are flattened (an image of shape [h, w, c] is one row
 * of h*w*c values). Implementations batch internally; callers may pass any number of rows.
 */
export interface Model {
  /** Values per input row (product of the input shape). */
  readonly nFeatures: number;
  /** Values per output row. */
  readonly nOutputs: number;
  /** Outputs for `rows` (n x nFeatures), returned as n x nOutputs, row-major. */
  predict(rows: Rows): Promise<Float32Array>;
  /** d output[output] / d input, for every row: n x nFeatures. Absent for black-box models. */
  inputGradients?(rows: Rows, output: number): Promise<Float32Array>;
  /**
   * For networks whose hidden activations are piecewise linear (Dense/Conv with ReLU-family or
   * linear activations): the sorted alphas in (0, 1) where some hidden activation changes regime
   * along from + alpha * (to - from). Between two breakpoints the pre-activation of the output layer
   * is affine in alpha; `affineBetween` is true when the output activation is linear too (so the
   * output itself is affine between breakpoints), false for a smooth output activation (sigmoid,
   * softmax, tanh). Absent when the model is not of this kind.
   */
  pathBreakpoints?(from: Float32Array, to: Float32Array): Promise<{ alphas: number[]; affineBetween: boolean }>;
  /**
   * For models whose output is a known activation of a vector z of the same length (y = z,
   * softmax(z), or sigmoid / tanh elementwise): z and its whole Jacobian d z / d x for every row,
   * from one pass, so an explainer gets every output's gradient at once (J_act(z) times it). When
   * the model also has pathBreakpoints, z is the output layer's pre-activation that is affine
   * between breakpoints (or the output itself when the activation is 'linear').
   */
  logitJacobian?(rows: Rows): Promise<LogitJacobian>;
  /** Layers reachable by layerActivations / layerGradients, in model order (absent: no layer access). */
  readonly layers?: readonly ModelLayer[];
  /** Output values of `layer` for every row: n x (product of the layer's shape). */
  layerActivations?(rows: Rows, layer: string): Promise<Float32Array>;
  /**
   * The activations of `layer` and d output[output] / d activations, each n x size. With
   * `activations` (n x size) the layer's output is replaced by those values while the rest of the
   * model still sees `rows`: gradients along a path in the layer's space (Grad-CAM uses the plain
   * form, Integrated Gradients on an embedding layer the replaced one).
   */
  layerGradients?(
    rows: Rows,
    layer: string,
    output: number,
    activations?: Float32Array,
  ): Promise<{ shape: number[]; activations: Float32Array; gradients: Float32Array }>;
  /**
   * Masked rows formed and evaluated by the model itself (Kernel SHAP's rows: background rows with a
   * coalition's features set to the instance), against these background rows; null when it cannot
   * (then the caller builds the rows and calls predict). Absent for models that never can. The answer
   * must not depend on what the model did before (results must not depend on call history).
   */
  maskedRows?(background: Rows): Promise<MaskedRowsEvaluator | null>;
}

/**
 * The masked rows of one instance x: coalition k has G = rows.length rows; its row g is background
 * row rows[g] with the coalition's players set to x. Coalition k lists its smaller side, base players
 * cIdx[cStart[k] .. cStart[k + 1]): the coalition itself when small[k] is 1 (the other players keep
 * the background row's values), its complement when 0 (those keep the background's values, every
 * other column is x's). Base player j is column cols[j * sj + g * sg] in row g (sg = 0: the same
 * column in every row); with `players`, cols holds players instead, player p being the columns
 * idx[start[p] .. start[p + 1]) (feature groups).
 */
export interface MaskedRowsSpec {
  x: Float32Array;
  rows: Int32Array;
  cols: Int32Array;
  sj: number;
  sg: number;
  players?: { start: Int32Array; idx: Int32Array };
  /** Base players (every cIdx value is below M). */
  M: number;
  cStart: Int32Array;
  cIdx: Int32Array;
  small: Int32Array;
}

/** See Model.maskedRows. */
export interface MaskedRowsEvaluator {
  /**
   * 'rows': the rows are built and evaluated exactly as predict would evaluate them (same bits);
   * 'first-layer': the first Dense layer's pre-activation is the background row's (or x's) plus the
   * changed columns' weights times the change: equal to predict up to float rounding.
   */
  readonly mode: 'rows' | 'first-layer';
  /**
   * Outputs of n masked rows of `spec`, from row `row0` of coalition k0 on (running into the next
   * coalitions), into out from row `at` (n x nOutputs values, row-major).
   */
  predict(spec: MaskedRowsSpec, k0: number, row0: number, n: number, out: Float32Array, at: number): Promise<void>;
}

/** The output activation y = act(z) of a model that offers Model.logitJacobian. */
export type OutputActivation = 'linear' | 'softmax' | 'sigmoid' | 'tanh';

/** What Model.logitJacobian returns for n rows of d features and k outputs. */
export interface LogitJacobian {
  activation: OutputActivation;
  /** z, n x k, row-major. */
  logits: Float32Array;
  /** d z_c / d x_j, n x k x d (row, logit, feature), row-major. */
  jacobian: Float32Array;
}

export interface ModelLayer {
  name: string;
  /** Keras class name: Conv2D, DepthwiseConv2D, Embedding, Dense ... */
  className: string;
  /** Per-row output shape, e.g. [h, w, channels]. */
  shape: number[];
}

/** Names and structure that turn indices into something a person reads. */
export interface FeatureSpace {
  featureNames: string[];
  outputNames: string[];
  /** Sets of feature indices that move together (one-hot columns). Features in no group stand alone. */
  groups?: number[][];
  /** For image models: the input shape, e.g. [h, w, c]; attributions stay flat in row-major order. */
  inputShape?: number[];
}

export interface FeatureAttribution {
  feature: string;
  value: number;
  attribution: number;
  stderr?: number;
  /** Text: the token's position in the tokenized instance (features are the instance's tokens). */
  position?: number;
}

/**
 * A one-hot group (one categorical variable spread over several columns) as one attribution: the sum
 * of its members', with the category the instance has. Added by the service for models whose
 * metadata declares groups; the per-column `attributions` stay as they are.
 */
export interface GroupAttribution {
  group: string;
  /** The member columns' feature names, in column order. */
  members: string[];
  /** The instance's category (the member whose value is 1), by its label; null when none is 1. */
  active: string | null;
  /** The feature name of that member; null when none is 1. */
  activeFeature: string | null;
  attribution: number;
  stderr?: number;
}

export interface OutputExplanation {
  output: string;
  outputIndex: number;
  /** f(baseline): E f(background) for Kernel SHAP (in link space), f(x') for IG. */
  baselineOutputValue: number;
  instanceOutputValue: number;
  attributions: FeatureAttribution[];
  /**
   * How far the attributions are from what they approximate. Kernel SHAP: the largest stderr of
   * any attribution (0 when enumerated exactly). IG: the completeness delta
   * sum(attributions) - (f(x) - f(x')).
   */
  approximationError: number;
  /** One-hot groups as one attribution each (see GroupAttribution); absent for models without groups. */
  groups?: GroupAttribution[];
}

/**
 * Why an instance's computation stopped. `exact`: enumerated or integrated exactly; `tolerance`: the
 * error estimate met the requested tolerance; `budget`: the whole requested budget was spent without
 * meeting it (still a complete, reproducible answer: cacheable); `deadline`: cut short by the deadline
 * (best estimate so far; never cached); `amortised`: one forward pass of a trained amortised explainer.
 */
export type StopReason = 'exact' | 'tolerance' | 'budget' | 'deadline' | 'amortised';

export interface InstanceExplanation {
  outputs: OutputExplanation[];
  converged: boolean;
  /** Why the computation stopped (see StopReason); `converged` is true for exact, tolerance and amortised. */
  stopReason?: StopReason;
  modelEvaluations: number;
  computeMs: number;
  /** Facts about this instance's computation (rounds, steps used, coalitions ...). */
  diagnostics?: Record<string, unknown>;
}

/** The methods of POST /explain (service/methods), tabular, image and text models alike. */
export type ExplainMethod =
  | 'kernel-shap'
  | 'integrated-gradients'
  | 'smoothgrad'
  | 'expected-gradients'
  | 'occlusion'
  | 'grad-cam'
  | 'partition-shap'
  | 'xrai'
  | 'amortised-shap';

/** Every method an Explanation may come from (all of them are served). */
export type AttributionMethod = ExplainMethod;

export interface Explanation {
  /** 'amortised-shap' (explainers/amortised/) answers in Kernel SHAP's terms from a trained explainer. */
  method: AttributionMethod | 'amortised-shap';
  explanations: InstanceExplanation[];
  /** Method-specific facts a reader may need (k-means summary of the background, steps used, link ...). */
  diagnostics?: Record<string, unknown>;
  inputShape?: number[];
}

export interface FeatureImportance {
  feature: string;
  mean: number;
  std: number;
  values: number[];
}

export interface Importance {
  metric: string;
  baselineScore: number;
  importances: FeatureImportance[];
  /** Other metrics computed in the same pass, keyed by metric name. */
  others?: Record<string, { baselineScore: number; importances: FeatureImportance[] }>;
  nSamples: number;
  repeats: number;
  modelEvaluations: number;
  computeMs: number;
}

/** Errors that come from what the caller asked for. The server maps them to 4xx. */
export class ExplainerInputError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ExplainerInputError';
  }
}

/** Options every method shares. */
export interface CommonOptions {
  space: FeatureSpace;
  /** Output indices to explain; default: all outputs. */
  outputs?: number[];
  /** Epoch milliseconds after which a method returns its best estimate with converged: false. */
  deadline?: number;
  signal?: AbortSignal;
}
