/**
 * Defaults and option names the explainers share with their callers (request schemas, jobs, the
 * CLI), defined once. The explainers apply these same values when an option is absent.
 */
import { METRICS, type MetricName } from './metrics.js';
import { QUADRATURE_RULES } from './quadrature.js';

/** Kernel SHAP: stop once max stderr <= tolerance x the attributions' range. */
export const DEFAULT_TOLERANCE = 0.01;
/**
 * Integrated Gradients: every attribution's estimated error <= tolerance x the largest |attribution|
 * (and |delta| <= tolerance x |f(x) - f(x')|).
 */
export const IG_DEFAULT_TOLERANCE = 1e-3;
/** Integrated Gradients' stopping tests: every attribution's error, or the completeness sum only. */
export const IG_CRITERIA = ['attributions', 'completeness'] as const;
/** Kernel SHAP: larger backgrounds are summarised by weighted k-means to this many rows. */
export const DEFAULT_MAX_BACKGROUND = 100;
/** Permutation importance: shuffles per feature. */
export const DEFAULT_REPEATS = 5;

/** Integrated Gradients' integration rules: the quadratures, and exact integration for piecewise-linear networks. */
export const IG_RULES = [...QUADRATURE_RULES, 'exact'] as const;

/** Metric names of permutation importance. */
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];
