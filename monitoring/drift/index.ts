/** Drift of inputs, predictions, labels and attributions between a reference and a current data set. */
export * from './thresholds.js';
export * from './report.js';
export * from './attributions.js';
