/**
 * One entry point for "a chart of this explanation, by name", for the API's `?plot=` and the CLI.
 * Image models default to the heatmap, text models to the highlighted tokens, everything else to the
 * waterfall. `overlay` is the attribution map blended over the image (segment outlines for superpixel
 * methods), `tokens` the text with each token coloured by its attribution.
 */
import type { Explanation } from '../explainers/types.js';
import { renderBar } from './bar.js';
import { renderBeeswarm, renderMeanAbs } from './beeswarm.js';
import type { RenderOptions } from './document.js';
import { renderForce } from './force.js';
import { renderImageAttribution } from './image.js';
import { renderImageOverlay } from './imageOverlay.js';
import { renderTextTokens } from './textTokens.js';
import type { PickOptions } from './select.js';
import { renderWaterfall } from './waterfall.js';

export const EXPLANATION_PLOTS = ['waterfall', 'bar', 'force', 'beeswarm', 'mean-abs', 'image', 'overlay', 'tokens'] as const;
export type ExplanationPlot = (typeof EXPLANATION_PLOTS)[number];

export interface PlotOptions extends RenderOptions, PickOptions {
  topK?: number;
}

export function isExplanationPlot(name: string): name is ExplanationPlot {
  return (EXPLANATION_PLOTS as readonly string[]).includes(name);
}

/** What an explanation's attributions are over: image pixels (by its inputShape), text tokens (they carry positions), or features. */
export function explanationKind(explanation: Explanation): 'image' | 'text' | 'tabular' {
  const s = explanation.inputShape;
  if (s && (s.length === 2 || s.length === 3) && s[0] > 1 && s[1] > 1) return 'image';
  const first = explanation.explanations[0]?.outputs[0]?.attributions[0];
  return first?.position !== undefined ? 'text' : 'tabular';
}

/** The plot a caller gets without asking: the heatmap for images, the tokens for text, else the waterfall. */
export function defaultPlot(explanation: Explanation): ExplanationPlot {
  const kind = explanationKind(explanation);
  return kind === 'image' ? 'image' : kind === 'text' ? 'tokens' : 'waterfall';
}

/** Why `plot` cannot show this explanation (image plots need an image, `tokens` text), or undefined. */
export function plotMismatch(explanation: Explanation, plot: ExplanationPlot): string | undefined {
  const kind = explanationKind(explanation);
  if ((plot === 'image' || plot === 'overlay') && kind !== 'image') return `plot=${plot} shows image explanations; this one is ${kind}`;
  if (plot === 'tokens' && kind !== 'text') return `plot=tokens shows text explanations; this one is ${kind}`;
  return undefined;
}

/** The plots that can show this explanation, in EXPLANATION_PLOTS order (for messages naming the alternatives). */
export function fittingPlots(explanation: Explanation): ExplanationPlot[] {
  return EXPLANATION_PLOTS.filter((p) => plotMismatch(explanation, p) === undefined);
}

export function renderExplanationPlot(explanation: Explanation, plot: ExplanationPlot = defaultPlot(explanation), options: PlotOptions = {}): string {
  switch (plot) {
    case 'waterfall':
      return renderWaterfall(explanation, options);
    case 'bar':
      return renderBar(explanation, options);
    case 'force':
      return renderForce(explanation, options);
    case 'beeswarm':
      return renderBeeswarm(explanation, options);
    case 'mean-abs':
      return renderMeanAbs(explanation, options);
    case 'image':
      return renderImageAttribution(explanation, options);
    case 'overlay':
      return renderImageOverlay(explanation, options);
    case 'tokens':
      return renderTextTokens(explanation, options);
  }
}
