/** The render API: pure functions from explainer results to SVG / HTML strings, and SVG to PNG. */
export { sharedDocument, type RenderOptions } from './document.js';
export { theme } from './theme.js';
export type { PickOptions, ChartContext, FeatureFacts } from './select.js';
export { renderWaterfall, type WaterfallOptions } from './waterfall.js';
export { renderForce, type ForceOptions } from './force.js';
export { renderBar, type BarOptions } from './bar.js';
export { renderBeeswarm, renderMeanAbs, type SummaryOptions } from './beeswarm.js';
export { renderImportance, type ImportanceOptions } from './importance.js';
export { renderImageAttribution, type ImageAttributionOptions } from './image.js';
export { renderGroupComparison, type GroupComparison, type GroupValue, type GroupComparisonOptions } from './groups.js';
export { svgToPng, type PngOptions } from './png.js';
export { renderHtmlReport, escapeHtml, type HtmlReport, type Section, type Table, type Cell } from './html.js';
export { renderExplanationReport, renderImportanceReport, type ModelInfo, type ExplanationReportOptions } from './report.js';
export {
  renderExplanationPlot,
  defaultPlot,
  explanationKind,
  plotMismatch,
  isExplanationPlot,
  EXPLANATION_PLOTS,
  type ExplanationPlot,
  type PlotOptions,
} from './plots.js';
export {
  renderFairnessGroups,
  renderGroupAttributions,
  renderFairnessChart,
  fairnessSections,
  renderFairnessReport,
  FAIRNESS_PLOTS,
  type FairnessPlot,
  type FairnessChartOptions,
} from './fairness.js';
export {
  renderPsi,
  renderAttributionDrift,
  renderDriftChart,
  driftSections,
  renderDriftReport,
  DRIFT_PLOTS,
  type DriftPlot,
  type DriftChartOptions,
} from './drift.js';
export { renderErrorSvg } from './error.js';
export { renderImageOverlay, renderImageComparison, methodTitle, type ImageOverlayOptions, type ImageComparisonOptions } from './imageOverlay.js';
export { renderTextTokens, renderTextTokensHtml, type TextTokensOptions } from './textTokens.js';
export { encodePng, type Raster } from './raster.js';
export {
  renderCounterfactuals,
  renderRecourseBurden,
  recourseSections,
  type CounterfactualChartOptions,
  type RecourseChartOptions,
} from './counterfactuals.js';
export {
  renderEffect,
  renderPartialDependence,
  renderAle,
  renderEffectHeatmap,
  renderDependence,
  type EffectChartOptions,
} from './effects.js';
