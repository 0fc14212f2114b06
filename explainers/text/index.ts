/** Text explainers: token attributions over id rows (tokenized by models/tokenizer.ts). */
export { tokenIntegratedGradients, tokenShap, maskedTokenModel, type TokenIgOptions, type TokenShapOptions, type TextOptions } from './tokenAttributions.js';
