/** The thresholds a drift report flags by (monitoring/drift/report.ts explains each). */
export interface DriftThresholds {
  psiWarn: number;
  psiAlert: number;
  /** Significance level for the Bonferroni-corrected KS p-value. */
  ksAlpha: number;
  /** Attribution drift is flagged when NDCG falls below this. */
  ndcg: number;
}

export const DEFAULT_THRESHOLDS: DriftThresholds = { psiWarn: 0.1, psiAlert: 0.25, ksAlpha: 0.01, ndcg: 0.9 };

/**
 * Fewer rows than this on either side make PSI and KS too noisy to flag anything: the report still
 * gives every statistic, marks itself `lowConfidence`, and flags nothing. The live window's minimum too.
 */
export const MIN_DRIFT_ROWS = 50;

/** Additive smoothing of PSI's bin shares: (count + 0.5) / (n + 0.5 x bins) on both sides (Jeffreys). */
export const PSI_SMOOTHING = 0.5;
