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
