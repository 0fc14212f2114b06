/**
 * What the global-effect explainers (partial dependence, ICE, ALE, SHAP dependence) return: plain,
 * JSON-serialisable records with the grid and the effect values as parallel arrays, one record per
 * (feature, output). Shared by the explainers, computeEffects, the charts and (later) the API.
 */
import type { LinkName } from '../link.js';

export type EffectKind = 'pd' | 'ice' | 'ale' | 'dependence';
export const EFFECT_KINDS: readonly EffectKind[] = ['pd', 'ice', 'ale', 'dependence'];

/**
 * How a feature's values are treated. `numeric`: a line over a grid of values. `categorical`: one
 * column whose values are category codes (metadata type categorical or binary). `one-hot`: a group of
 * columns (FeatureSpace.groups) of which one is 1; its categories are the member columns, plus
 * "(none)" when the data hold rows with every member 0.
 */
export type FeatureKind = 'numeric' | 'categorical' | 'one-hot';

interface EffectCommon {
  feature: string;
  featureKind: FeatureKind;
  /** Output name and index. */
  output: string;
  outputIndex: number;
  /** The space the values are in: model outputs (identity) or their log-odds (logit). */
  link: LinkName;
  /**
   * Grid points along the feature, parallel to `values`. Numeric: feature values. Categorical: the
   * category codes. One-hot: category positions (0..k-1 = member columns, k = "(none)").
   */
  grid: number[];
  /** Categorical and one-hot: a readable label per grid point. */
  categories?: string[];
  /** Data rows the effect was computed over. */
  rows: number;
  /**
   * Model rows evaluated for this feature (or feature pair). Effects that share evaluations report
   * the same count: one evaluation yields every output, and every feature of a dependence request
   * shares one Kernel SHAP run. The total of a call is EffectsResult.modelEvaluations.
   */
  modelEvaluations: number;
}

/** Partial dependence: values[k] = mean over rows of link(f(row with the feature set to grid[k])). */
export interface PartialDependenceEffect extends EffectCommon {
  kind: 'pd';
  values: number[];
  /** Numeric features: the deciles (10%..90%) of the feature in the data, for a rug. */
  deciles?: number[];
  /** Categorical features: rows of the data in each grid category (0 for categories the data lack). */
  counts?: number[];
}

/** ICE: one curve per row; `values` is their mean (the partial dependence, centred when the curves are). */
export interface IceEffect extends EffectCommon {
  kind: 'ice';
  values: number[];
  /** curves[i][k]: row rowIndices[i] with the feature set to grid[k]. */
  curves: number[][];
  /** Which data rows the curves are (indices into the data given). */
  rowIndices: number[];
  /** True when every curve has its value at grid[0] subtracted (c-ICE, sklearn's `centered`). */
  centered: boolean;
  /** The feature's value in each curve's row (for marking where the row sits on its curve). */
  rowValues: number[];
  deciles?: number[];
  counts?: number[];
}

/**
 * Accumulated local effects, centred so the effect averages 0 over the data. Numeric: `grid` holds
 * the bin edges and `values` the effect at each edge (linear in between). Categorical and one-hot:
 * `grid` holds the categories in the order the effect accumulates along (see `categoryOrder`).
 */
export interface AleEffect extends EffectCommon {
  kind: 'ale';
  values: number[];
  /** Numeric: rows per bin (length grid.length - 1). Categorical: rows per category. */
  counts: number[];
  /** Numeric: each bin's [lower edge, upper edge]. Categorical: absent. */
  intervals?: [number, number][];
  /**
   * Standard error of each value, from the spread of the local differences within the bins
   * accumulated up to it (bins treated as independent; the centring constant taken as known).
   */
  stderr: number[];
  /** values -/+ z * stderr at `confidence` (0.95, z = 1.96). */
  lower: number[];
  upper: number[];
  confidence: number;
  /** The constant subtracted to centre the accumulated effect (alibi's ale0). */
  offset: number;
  /** Categorical: how the categories were ordered ('similarity': 1-D MDS of category distances; 'value'). */
  categoryOrder?: 'similarity' | 'value';
}

/** Two features at once: values[i][j] at (grid[i], grid2[j]). */
interface Effect2dCommon extends EffectCommon {
  feature2: string;
  featureKind2: FeatureKind;
  grid2: number[];
  categories2?: string[];
  values: number[][];
}

export interface PartialDependence2dEffect extends Effect2dCommon {
  kind: 'pd';
}

/**
 * Second-order ALE (Apley & Zhu 2020, eq. 13-ish): the pure interaction, with both features' own
 * first-order effects removed and centred; grid and grid2 are the bin edges.
 */
export interface Ale2dEffect extends Effect2dCommon {
  kind: 'ale';
  /** counts[i][j]: rows in bin (i, j) (length grid.length - 1 by grid2.length - 1). */
  counts: number[][];
}

/**
 * SHAP dependence: each row's attribution for the feature against the feature's value, as
 * shap.plots.scatter draws it. `grid`/`values` are a trend: the mean attribution of the rows in each
 * of up to `bins` quantile bins of the feature (grid = bin midpoints), or per category.
 */
export interface DependenceEffect extends EffectCommon {
  kind: 'dependence';
  values: number[];
  points: {
    /** The feature's value per row (category position for one-hot groups). */
    values: number[];
    attributions: number[];
    /** The interacting feature's value per row (colours the scatter). */
    interaction?: number[];
    /** Exact mode: the Shapley interaction value Φ(feature, interacting feature) per row. */
    interactionValues?: number[];
  };
  /** The feature that colours the scatter, chosen or given; null when no other feature varies. */
  interaction: { feature: string; kind: FeatureKind; categories?: string[]; score: number } | null;
  /** Every other feature's interaction score, largest first. */
  interactionScores: { feature: string; score: number }[];
  /**
   * approximate: shap's approximate_interactions over Kernel SHAP (or given) attributions; exact:
   * mean |Φ_ij| over exact Shapley interaction values.
   */
  interactionMethod: 'approximate' | 'exact' | 'given';
  /** Where the attributions came from. */
  attributionMethod: 'kernel-shap' | 'exact' | 'given';
}

export type Effect1d = PartialDependenceEffect | IceEffect | AleEffect | DependenceEffect;
export type Effect2d = PartialDependence2dEffect | Ale2dEffect;
export type Effect = Effect1d | Effect2d;

export function is2d(e: Effect): e is Effect2d {
  return 'feature2' in e;
}

export interface EffectsResult {
  kind: EffectKind;
  effects: Effect[];
  /** Model rows evaluated by the whole call (every feature, every output). */
  modelEvaluations: number;
  computeMs: number;
  /** Data rows used (after subsampling to maxRows). */
  rows: number;
  link: LinkName;
  /** The parameters after defaults, for echoing and caching. */
  parameters: Record<string, unknown>;
}
