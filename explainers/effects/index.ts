/** Global effects: partial dependence, ICE, accumulated local effects, SHAP dependence, Shapley interactions. */
export * from './types.js';
export { computeEffects, planEffects, DEFAULT_EFFECTS_LIMITS, type EffectsRequest, type EffectsParameters, type EffectsContext, type EffectsLimits } from './compute.js';
export {
  partialDependence,
  individualConditionalExpectation,
  partialDependence2d,
  type EffectOptions,
  type PartialDependenceOptions,
  type IceOptions,
  type PartialDependence2dOptions,
} from './partialDependence.js';
export { accumulatedLocalEffects, accumulatedLocalEffects2d, type AleOptions, type Ale2dOptions } from './ale.js';
export { shapDependence, approximateInteractions, type ShapDependenceOptions, type ShapDependenceResult } from './dependence.js';
export { shapleyInteractionValues, interactionsFromGame, MAX_INTERACTION_PLAYERS, type ShapleyInteractionOptions, type InteractionValues, type InteractionOutput } from './interactions.js';
export { orderBySimilarity, categoryDistances, classicalMds1d } from './categoryOrder.js';
export { featureCatalogue, type EffectFeature, type FeatureInfo } from './features.js';
