/** Image explainers: pure functions over the Model interface, each returning the shared Explanation. */
export { smoothGrad, SMOOTHGRAD_DEFAULTS, type SmoothGradOptions, type SmoothGradBase, type SmoothGradForm } from './smoothGrad.js';
export { expectedGradients, EXPECTED_GRADIENTS_DEFAULTS, type ExpectedGradientsOptions } from './expectedGradients.js';
export { occlusion, type OcclusionOptions } from './occlusion.js';
export { gradCam, defaultGradCamLayer, resizeBilinear, type GradCamOptions } from './gradCam.js';
export { superpixelShap, maskedModel, SUPERPIXEL_DEFAULTS, type SuperpixelShapOptions } from './superpixelShap.js';
export { xrai, rankRegions, type XraiOptions } from './xrai.js';
export { slic, type Segmentation, type SlicOptions } from './segmentation.js';
export { checkMasking, type Masking } from './masking.js';
export { imageShape, pixelSums, type ImageShape } from './common.js';
