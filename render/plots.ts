/**
 * One entry point for "a chart of this explanation, by name", for the API's `?plot=` and the CLI.
 * Image models default to the heatmap, everything else to the waterfall.
 */
import type { Explanation } from '../explainers/types.js';
import { renderBar } from './bar.js';
import { renderBeeswarm, renderMeanAbs } from './beeswarm.js';
import type { RenderOptions } from './document.js';
import { renderForce } from './force.js';
import { renderImageAttribution } from './image.js';
import type { PickOptions } from './select.js';
import { renderWaterfall } from './waterfall.js';

export const EXPLANATION_PLOTS = ['waterfall', 'bar', 'force', 'beeswarm', 'mean-abs', 'image'] as const;
export type ExplanationPlot = (typeof EXPLANATION_PLOTS)[number];

export interface PlotOptions extends RenderOptions, PickOptions {
  topK?: number;
}

export function isExplanationPlot(name: string): name is ExplanationPlot {
  return (EXPLANATION_PLOTS as readonly string[]).includes(name);
}

/** Whether the explanation is of an image (an input shape [h, w] or [h, w, c]): only those have the heatmap. */
export function isImageExplanation(explanation: Explanation): boolean {
  const s = explanation.inputShape;
  return !!s && (s.length === 2 || s.length === 3) && s[0] > 1 && s[1] > 1;
}

/** The plot a caller gets without asking: the heatmap when the input shape is an image's. */
export function defaultPlot(explanation: Explanation): ExplanationPlot {
  return isImageExplanation(explanation) ? 'image' : 'waterfall';
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
  }
}
