/**
 * The typed results of a fairness assessment (monitoring/fairness/report.ts computes them): per
 * outcome, per breakdown (a sensitive feature or an intersection), per group and metric an Estimate
 * with its bootstrap interval, Fairlearn's disparities, the named criteria and the flags.
 */
import type { BootstrapOptions } from '../../stats/bootstrap.js';
import type { Grouping } from './groups.js';
import type { GroupMetric } from './metrics.js';

export type FairnessTask = 'binary-classification' | 'multiclass-classification' | 'regression';

/** A point estimate with its bootstrap interval (absent when the bootstrap is off). Null: undefined. */
export interface Estimate {
  value: number | null;
  lo?: number | null;
  hi?: number | null;
}

export interface Disparity {
  differenceBetweenGroups: Estimate;
  differenceToOverall: Estimate;
  ratioBetweenGroups: Estimate;
  ratioToOverall: Estimate;
  /** Highest minus lowest group on the full data (labels fixed), and lowest / highest. */
  gap: {
    higher: string;
    lower: string;
    difference: Estimate;
    ratio: Estimate;
    /**
     * The difference's interval that flags test: Bonferroni-widened over the gap criteria tested in
     * the breakdown (confidence 1 - (1 - c) / k), present for those criteria when bootstrapping.
     */
    flagInterval?: { confidence: number; lo: number | null; hi: number | null };
  } | null;
}

export interface FairnessFlag {
  kind:
    | 'four-fifths-rule'
    | 'selection-rate-gap'
    | 'true-positive-rate-gap'
    | 'false-positive-rate-gap'
    | 'mean-prediction-gap'
    | 'uses-sensitive-feature'
    | 'proxy';
  /** The breakdown's sensitive features; for 'proxy': [proxy, sensitive feature]. */
  features: string[];
  /** The outcome's positive class (classification), else null. */
  positiveClass: number | null;
  message: string;
  value: number;
  lo?: number | null;
  hi?: number | null;
}

export interface GroupResult {
  label: string;
  key: Record<string, number | string>;
  count: number;
  metrics: Partial<Record<GroupMetric, Estimate>>;
}

export interface Breakdown {
  /** One sensitive feature, or two for an intersection. */
  features: string[];
  groups: GroupResult[];
  disparities: Partial<Record<GroupMetric, Disparity>>;
  /** Classification only: the named criteria, read from `disparities`. */
  criteria?: {
    demographicParity: DisparitySummary;
    equalOpportunity: DisparitySummary;
    equalizedOdds: DisparitySummary;
    disparateImpact: { ratio: Estimate; lowest: string | null; highest: string | null; threshold: number; passes: boolean | null };
  };
  flags: FairnessFlag[];
}

export interface DisparitySummary {
  difference: Estimate;
  ratio: Estimate;
  differenceToOverall: Estimate;
  ratioToOverall: Estimate;
}

export interface FairnessOutcome {
  /** Classification: the class treated as the favourable/positive decision. Regression: null. */
  positiveClass: number | null;
  positiveClassName?: string;
  /** The model output the decision or prediction is read from. */
  output: number;
  overall: { count: number; metrics: Partial<Record<GroupMetric, Estimate>> };
  breakdowns: Breakdown[];
  flags: FairnessFlag[];
  /** Kernel SHAP attributions by group and proxies, when computed (monitoring/fairness/attributions.ts). */
  attributions?: GroupAttributionReport;
}

export interface FairnessReport {
  task: FairnessTask;
  rows: number;
  labelled: boolean;
  sensitiveFeatures: string[];
  threshold: number | null;
  fourFifthsThreshold: number;
  bootstrap: BootstrapOptions | null;
  outcomes: FairnessOutcome[];
  /** Every outcome's flags in one list. */
  flags: FairnessFlag[];
}

export interface FairnessOptions {
  task: FairnessTask;
  /** Binary: predicted positive when score > threshold. Default 0.5. */
  threshold?: number;
  /** Classification: the positive class (binary default 1; multiclass default: every class in turn). */
  positiveClass?: number;
  classNames?: string[];
  /** Regression: the output column. Default 0. */
  output?: number;
  bootstrap?: Partial<BootstrapOptions>;
  /** Disparate impact below this fails the four-fifths rule. Default 0.8. */
  fourFifths?: number;
  /** Called between bootstrap replicates; throws to stop (a deadline, a cancelled request). */
  checkpoint?: () => void;
}

export interface FairnessInput {
  /** n x nOutputs model outputs (probabilities for classifiers), row-major. */
  predictions: ArrayLike<number>;
  nOutputs: number;
  n: number;
  /** Class indices (classification) or target values (regression); absent: label-free metrics only. */
  labels?: ArrayLike<number>;
  /** One grouping per sensitive feature, then intersections. */
  groupings: Grouping[];
}

// Attributions by group (monitoring/fairness/attributions.ts).

export interface AttributionSummary {
  feature: string;
  /** Member columns, for a one-hot group. */
  features?: string[];
  meanAttribution: number;
  meanAbsAttribution: number;
  /** meanAbsAttribution / the sum of every player's meanAbsAttribution. */
  share: number;
}

export interface Association {
  sensitiveFeature: string;
  feature: string;
  measure: 'cramers-v' | 'correlation-ratio';
  association: number;
  normalizedMutualInformation: number;
  attributionShare: number;
  /** Mean attribution of the feature within each group of the sensitive attribute. */
  meanAttributionByGroup: Record<string, number>;
  proxy: boolean;
}

export interface GroupAttributionReport {
  method: 'kernel-shap';
  output: string;
  outputIndex: number;
  /** Rows explained (a seeded sample of the data). */
  rows: number;
  overall: AttributionSummary[];
  byGroup: { features: string[]; groups: { label: string; count: number; attributions: AttributionSummary[] }[] }[];
  sensitive: { feature: string; meanAbsAttribution: number; share: number; used: boolean }[];
  associations: Association[];
  proxies: Association[];
  thresholds: { minAssociation: number; minShare: number };
  flags: FairnessFlag[];
  /** Kernel SHAP facts: link, nSamples, seed, converged instances. */
  diagnostics: Record<string, unknown>;
}

export interface ProxyOptions {
  minAssociation?: number;
  minShare?: number;
}
