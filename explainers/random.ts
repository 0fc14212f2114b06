/**
 * The explainers' seeded randomness is the project's one generator, in stats/random.ts; this module
 * keeps the explainers' import path stable.
 */
export * from '../stats/random.js';
