/**
 * Group fairness of a model's decisions (Fairlearn's metrics, disparities and bootstrap intervals),
 * attributions by group and proxies of sensitive features.
 */
export * from './types.js';
export * from './metrics.js';
export * from './disparities.js';
export * from './groups.js';
export * from './report.js';
export * from './attributions.js';
export * from './assess.js';
export * from './fairlearn.js';
