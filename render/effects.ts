/**
 * Charts of global effects (explainers/effects): partial dependence with ICE curves behind it and a
 * rug of the data, ALE with its confidence band, 2-D PD/ALE as a heatmap with a legend, and the SHAP
 * dependence scatter coloured by the interacting feature (as shap.plots.scatter). Pure functions
 * `effect -> SVG string` on the shared document, built from the shared marks and theme.
 */
import * as d3 from 'd3';
import type {
  AleEffect,
  DependenceEffect,
  Effect,
  Effect2d,
  EffectKind,
  IceEffect,
  PartialDependenceEffect,
} from '../explainers/effects/types.js';
import type { Section } from './html.js';
import { createSvg, docOf, round, serializeSvg, type G, type RenderOptions } from './document.js';
import { axisX } from './marks/axis.js';
import { axisPoints, axisY, yTicks } from './marks/axisY.js';
import { dotsPath } from './marks/dots.js';
import { label } from './marks/labels.js';
import { rampLegend, swatches } from './marks/legend.js';
import { valueDomain } from './scales.js';
import { plainIntegers, valueText, type ChartContext, type FeatureFacts } from './select.js';
import { fmt, fmtValue, textWidth, truncate } from './text.js';
import { divergingInterpolator, featureValueInterpolator, theme } from './theme.js';

export interface EffectChartOptions extends RenderOptions {
  /** Chart height in pixels. Default 420. */
  height?: number;
  /** PD/ICE: show curves centred at the first grid point (c-ICE). Default: as computed. */
  centered?: boolean;
  /** ICE: curves drawn at most (evenly thinned over the rows). Default 50. */
  maxCurves?: number;
  /**
   * What the model's metadata says of its features: integer features (years, counts) read without
   * thousands separators on the axes (Year 1970, not 1,970), coded values by their category labels.
   */
  context?: ChartContext;
}

function factsOf(options: EffectChartOptions, feature: string): FeatureFacts | undefined {
  return options.context?.features?.[feature];
}

type Ys = d3.ScaleLinear<number, number>;

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

const HEADING = 30;

/** Plot area inside the chart: room on the left for the y tick labels and title, below for the x axis and a legend row. */
function frame(options: EffectChartOptions, yLabelWidth: number, legendRight = 0, legendBelow = true): Frame {
  const width = options.width ?? theme.width;
  const height = options.height ?? 420;
  const left = theme.margin.left + 18 + yLabelWidth + 10;
  const right = width - theme.margin.right - legendRight;
  const top = theme.margin.top + HEADING;
  const bottom = height - (legendBelow ? 72 : 52);
  return { width, height, left, right: Math.max(right, left + 40), top, bottom: Math.max(bottom, top + 40) };
}

function outputTitle(e: Effect): string {
  return e.link === 'logit' ? `log-odds of ${e.output}` : e.output;
}

function heading(g: G, f: Frame, text: string): void {
  label(g, f.left, theme.margin.top + 8, truncate(text, f.width - f.left - theme.margin.right, theme.titleFontSize, true), { bold: true, size: theme.titleFontSize });
}

function yScale(values: number[], f: Frame, includeZero = false): Ys {
  return d3.scaleLinear(valueDomain(values, includeZero), [f.bottom, f.top]).nice();
}

/** The y scale first (its tick labels size the left margin), then the frame. */
function layout(values: number[], options: EffectChartOptions, includeZero = false, legendRight = 0, legendBelow = true): { f: Frame; y: Ys } {
  const probe = d3.scaleLinear(valueDomain(values, includeZero), [1, 0]).nice();
  const f = frame(options, yTicks(probe).width, legendRight, legendBelow);
  return { f, y: yScale(values, f, includeZero) };
}

/** Evenly spread indices, at most k of n. */
function thin(n: number, k: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: k }, (_, j) => Math.round((j * (n - 1)) / Math.max(k - 1, 1)));
}

function categoryNames(e: { grid: number[]; categories?: string[] }, facts?: FeatureFacts): string[] {
  return e.categories ?? e.grid.map((v) => valueText(v, facts));
}

function pointScale(names: string[], f: Frame): { x: (k: number) => number; step: number } {
  const s = d3.scalePoint<number>(d3.range(names.length), [f.left, f.right]).padding(0.5);
  return { x: (k) => s(k)!, step: s.step() };
}

/** Rug: short ticks rising from the bottom of the plot at each value. */
function rug(g: G, all: number[], f: Frame, cls: string, opacity = 1): void {
  // Values beyond the grid (ICE rows outside the 5-95% range) would fall outside the axis.
  const xs = all.filter((x) => x >= f.left - 0.5 && x <= f.right + 0.5);
  if (xs.length === 0) return;
  const path = g
    .append('path')
    .attr('class', cls)
    .attr('d', xs.map((x) => `M${round(x)},${round(f.bottom)}v-8`).join(''))
    .attr('stroke', theme.rule)
    .attr('fill', 'none');
  if (opacity < 1) path.attr('stroke-opacity', opacity);
}

function legendBelow(g: G, f: Frame, items: { label: string; colour: string }[]): void {
  swatches(g, f.left, f.height - 14, items, (s) => textWidth(s, theme.smallFontSize));
}

function polyline(xs: number[], ys: number[]): string {
  return xs.map((x, k) => `${k === 0 ? 'M' : 'L'}${round(x)},${round(ys[k])}`).join('');
}

export function renderPartialDependence(effect: PartialDependenceEffect | IceEffect, options: EffectChartOptions = {}): string {
  const ice = effect.kind === 'ice' ? effect : undefined;
  const centre = options.centered ?? (ice ? ice.centered : false);
  // Curves (and the PD) re-centred at the first grid point when asked for and not centred already.
  let curves = ice?.curves ?? [];
  if (centre && ice && !ice.centered) curves = curves.map((c) => c.map((v) => v - c[0]));
  let pd = effect.values;
  if (centre && !(ice && ice.centered)) pd = ice ? effect.grid.map((_, k) => d3.mean(curves, (c) => c[k]) ?? 0) : pd.map((v) => v - pd[0]);
  const shown = thin(curves.length, options.maxCurves ?? 50);
  const all = [...pd, ...shown.flatMap((i) => curves[i])];
  const { f, y } = layout(all, options);
  const what = ice ? 'ICE curves and partial dependence' : 'Partial dependence';
  const yTitle = `${centre ? 'centred ' : ''}${outputTitle(effect)}`;
  const svg = createSvg(docOf(options), {
    width: f.width,
    height: f.height,
    title: `${what} of ${effect.output} on ${effect.feature}`,
    desc:
      `${what} of ${outputTitle(effect)} on ${effect.feature} over ${effect.rows} rows, ${effect.grid.length} grid points` +
      (ice ? `; ${shown.length} of ${curves.length} individual curves drawn behind the average` : '') +
      `; the average runs from ${fmt(pd[0])} to ${fmt(pd[pd.length - 1])} (min ${fmt(d3.min(pd) ?? 0)}, max ${fmt(d3.max(pd) ?? 0)}).`,
  });
  const g = svg.append('g').attr('class', 'effect').attr('data-feature', effect.feature).attr('data-output', effect.output);
  heading(g, f, `${what}: ${effect.feature}`);
  axisY(g, y, { x: f.left, gridRight: f.right, title: yTitle });
  const iceColour = theme.neutral;
  if (effect.featureKind === 'numeric') {
    const x = d3.scaleLinear(valueDomain([...effect.grid, ...(effect.deciles ?? [])]), [f.left, f.right]);
    axisX(g, x, { y: f.bottom, title: effect.feature, plainIntegers: plainIntegers(factsOf(options, effect.feature)) });
    const xs = effect.grid.map((v) => x(v));
    if (shown.length) {
      g.append('path')
        .attr('class', 'ice')
        .attr('d', shown.map((i) => polyline(xs, curves[i].map((v) => y(v)))).join(''))
        .attr('stroke', iceColour)
        .attr('stroke-opacity', 0.35)
        .attr('stroke-width', 0.8)
        .attr('fill', 'none');
    }
    g.append('path').attr('class', 'pd').attr('d', polyline(xs, pd.map((v) => y(v)))).attr('stroke', theme.mark).attr('stroke-width', 2.5).attr('fill', 'none');
    if (ice) rug(g, ice.rowValues.map((v) => x(v)), f, 'rug', 0.25);
    else rug(g, (effect.deciles ?? []).map((v) => x(v)), f, 'rug');
  } else {
    const names = categoryNames(effect, factsOf(options, effect.feature));
    const { x, step } = pointScale(names, f);
    axisPoints(g, names.map((_, k) => x(k)), names, { side: 'bottom', at: f.bottom, room: step - 4, title: effect.feature });
    if (shown.length) {
      const pts = shown.flatMap((i) => curves[i].map((v, k) => [x(k), y(v)] as [number, number]));
      g.append('path').attr('class', 'ice').attr('d', dotsPath(pts, 1.8)).attr('fill', iceColour).attr('fill-opacity', 0.35);
    }
    const half = Math.min(step * 0.3, 40);
    g.append('path')
      .attr('class', 'pd')
      .attr('d', pd.map((v, k) => `M${round(x(k) - half)},${round(y(v))}h${round(2 * half)}`).join(''))
      .attr('stroke', theme.mark)
      .attr('stroke-width', 3)
      .attr('fill', 'none');
  }
  const items: { label: string; colour: string }[] = [{ label: centre ? 'average (centred PD)' : 'average (PD)', colour: theme.mark }];
  if (ice) items.push({ label: `${shown.length} of ${curves.length} rows (ICE)`, colour: iceColour });
  items.push({ label: ice ? 'rug: the rows’ values' : 'rug: deciles of the data', colour: theme.rule });
  if (effect.featureKind !== 'numeric') items.pop();
  legendBelow(g, f, items);
  return serializeSvg(svg);
}

export function renderAle(effect: AleEffect, options: EffectChartOptions = {}): string {
  const { f, y } = layout([...effect.values, ...effect.lower, ...effect.upper], options, true);
  const pct = Math.round(effect.confidence * 100);
  const svg = createSvg(docOf(options), {
    width: f.width,
    height: f.height,
    title: `Accumulated local effects of ${effect.feature} on ${effect.output}`,
    desc:
      `Accumulated local effect (centred to mean 0) of ${effect.feature} on ${outputTitle(effect)} over ${effect.rows} rows in ${effect.counts.length} ` +
      `${effect.featureKind === 'numeric' ? 'bins' : 'categories'}, with a ${pct}% band; from ${fmt(effect.values[0])} to ${fmt(effect.values[effect.values.length - 1])} ` +
      `(min ${fmt(d3.min(effect.values) ?? 0)}, max ${fmt(d3.max(effect.values) ?? 0)}).`,
  });
  const g = svg.append('g').attr('class', 'effect').attr('data-feature', effect.feature).attr('data-output', effect.output);
  heading(g, f, `Accumulated local effects: ${effect.feature}`);
  axisY(g, y, { x: f.left, gridRight: f.right, title: `ALE of ${outputTitle(effect)}` });
  g.append('path')
    .attr('d', `M${round(f.left)},${round(y(0))}H${round(f.right)}`)
    .attr('stroke', theme.axis)
    .attr('stroke-dasharray', '4 3')
    .attr('fill', 'none');
  if (effect.featureKind === 'numeric') {
    const x = d3.scaleLinear(valueDomain(effect.grid), [f.left, f.right]);
    axisX(g, x, { y: f.bottom, title: effect.feature, plainIntegers: plainIntegers(factsOf(options, effect.feature)) });
    const xs = effect.grid.map((v) => x(v));
    const band = polyline(xs, effect.upper.map((v) => y(v))) + polyline([...xs].reverse(), [...effect.lower].reverse().map((v) => y(v))).replace(/^M/, 'L') + 'Z';
    g.append('path').attr('class', 'band').attr('d', band).attr('fill', theme.markLight).attr('fill-opacity', 0.45);
    g.append('path').attr('class', 'ale').attr('d', polyline(xs, effect.values.map((v) => y(v)))).attr('stroke', theme.mark).attr('stroke-width', 2.5).attr('fill', 'none');
    // The bin edges are quantiles of the data: their density is the data's.
    rug(g, xs, f, 'rug');
  } else {
    const names = categoryNames(effect, factsOf(options, effect.feature)).map((n, k) => `${n} (${effect.counts[k]})`);
    const { x, step } = pointScale(names, f);
    axisPoints(g, names.map((_, k) => x(k)), names, { side: 'bottom', at: f.bottom, room: step - 4, title: effect.feature });
    const whiskers = effect.values.map((_, k) => `M${round(x(k))},${round(y(effect.lower[k]))}V${round(y(effect.upper[k]))}M${round(x(k) - 5)},${round(y(effect.lower[k]))}h10M${round(x(k) - 5)},${round(y(effect.upper[k]))}h10`);
    g.append('path').attr('class', 'band').attr('d', whiskers.join('')).attr('stroke', theme.markLight).attr('stroke-width', 2).attr('fill', 'none');
    g.append('path').attr('class', 'ale').attr('d', polyline(effect.values.map((_, k) => x(k)), effect.values.map((v) => y(v)))).attr('stroke', theme.mark).attr('stroke-width', 1.5).attr('stroke-dasharray', '2 3').attr('fill', 'none');
    g.append('path').attr('class', 'ale-points').attr('d', dotsPath(effect.values.map((v, k) => [x(k), y(v)] as [number, number]), 4)).attr('fill', theme.mark);
  }
  const items: { label: string; colour: string }[] = [
    { label: 'ALE (centred)', colour: theme.mark },
    { label: `${pct}% band`, colour: theme.markLight },
  ];
  if (effect.featureKind === 'numeric') items.push({ label: 'rug: bin edges (quantiles)', colour: theme.rule });
  legendBelow(g, f, items);
  return serializeSvg(svg);
}

const HEAT_COLOURS = 32;

export function renderEffectHeatmap(effect: Effect2d, options: EffectChartOptions = {}): string {
  const width = options.width ?? theme.width;
  // Grid values by what the metadata says of the feature (integers whole: 1975, not ~3 digits' 1,980), else ~3 digits.
  const gridName = (feature: string) => {
    const facts = factsOf(options, feature);
    return (v: number) => (facts ? valueText(v, facts) : fmt(v));
  };
  const names1 = effect.categories ?? effect.grid.map(gridName(effect.feature));
  const names2 = effect.categories2 ?? effect.grid2.map(gridName(effect.feature2));
  const labelRoom = Math.min(Math.max(...names2.map((s) => textWidth(s, theme.smallFontSize))), 120);
  const legendRight = 70;
  const left = theme.margin.left + 18 + labelRoom + 12;
  const top = theme.margin.top + HEADING;
  const size = Math.max(80, Math.min(width - left - theme.margin.right - legendRight, (options.height ?? 460) - top - 56));
  // A square plot; the chart is no wider than the square and its legend.
  const f: Frame = { width: Math.min(width, left + size + legendRight + theme.margin.right), height: top + size + 56, left, right: left + size, top, bottom: top + size };
  const flat = effect.values.flat();
  const ale = effect.kind === 'ale';
  let lo = d3.min(flat) ?? 0;
  let hi = d3.max(flat) ?? 0;
  if (ale) {
    // ALE is centred: a diverging scale around 0, symmetric so equal colours mean equal magnitudes.
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    [lo, hi] = [-m, m];
  } else if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const interpolate = ale ? divergingInterpolator : featureValueInterpolator;
  const colours = d3.quantize(interpolate, HEAT_COLOURS);
  const bucket = (v: number) => Math.min(HEAT_COLOURS - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * HEAT_COLOURS)));
  const what = ale ? 'Second-order accumulated local effects (interaction)' : 'Two-way partial dependence';
  const svg = createSvg(docOf(options), {
    width: f.width,
    height: f.height,
    title: `${what} of ${effect.output} on ${effect.feature} and ${effect.feature2}`,
    desc:
      `Heatmap of ${ale ? 'the pure interaction effect (ALE, first-order effects removed, centred)' : 'partial dependence'} of ${outputTitle(effect)} ` +
      `on ${effect.feature} (x, ${effect.grid.length} points) and ${effect.feature2} (y, ${effect.grid2.length} points) over ${effect.rows} rows; ` +
      `values from ${fmt(d3.min(flat) ?? 0)} to ${fmt(d3.max(flat) ?? 0)}.`,
  });
  const g = svg.append('g').attr('class', 'effect').attr('data-feature', effect.feature).attr('data-feature2', effect.feature2).attr('data-output', effect.output);
  heading(g, f, `${ale ? 'ALE interaction' : 'Partial dependence'}: ${effect.feature} × ${effect.feature2}`);
  const cw = size / effect.grid.length;
  const ch = size / effect.grid2.length;
  const paths: string[][] = colours.map(() => []);
  effect.values.forEach((row, i) =>
    row.forEach((v, j) => {
      // grid2 runs up the y axis: j = 0 at the bottom.
      const x0 = f.left + i * cw;
      const y0 = f.bottom - (j + 1) * ch;
      paths[bucket(v)].push(`M${round(x0)},${round(y0)}h${round(cw)}v${round(ch)}h${round(-cw)}Z`);
    }),
  );
  const cells = g.append('g').attr('class', 'cells');
  paths.forEach((p, k) => {
    if (p.length) cells.append('path').attr('d', p.join('')).attr('fill', colours[k]).attr('stroke', colours[k]).attr('stroke-width', 0.5);
  });
  axisPoints(g, effect.grid.map((_, i) => f.left + (i + 0.5) * cw), names1, { side: 'bottom', at: f.bottom, room: 70, title: effect.feature });
  axisPoints(g, effect.grid2.map((_, j) => f.bottom - (j + 0.5) * ch), names2, { side: 'left', at: f.left, room: labelRoom, title: effect.feature2, titleOffset: labelRoom + 18 });
  rampLegend(g, {
    x: f.right + 24,
    y: f.top + 14,
    length: Math.max(60, size - 28),
    colour: interpolate,
    labels: [fmt(lo), fmt(hi)],
    title: ale ? `ALE of ${outputTitle(effect)}` : outputTitle(effect),
    vertical: true,
  });
  return serializeSvg(svg);
}

/** Colour bins of the interacting feature (5th-95th percentile, as the beeswarm and shap's scatter). */
const SCATTER_BINS = 24;

export function renderDependence(effect: DependenceEffect, options: EffectChartOptions = {}): string {
  const { values: xv, attributions } = effect.points;
  const n = xv.length;
  const partner = effect.interaction;
  const swatchLegend = partner !== null && partner.kind !== 'numeric' && (partner.categories?.length ?? 99) <= theme.categorical.length;
  const swatchWidth = Math.max(textWidth(partner?.feature ?? '', theme.smallFontSize), ...(partner?.categories ?? []).map((c) => textWidth(c, theme.smallFontSize) + 14));
  const legendRight = !partner ? 0 : swatchLegend ? Math.min(Math.max(swatchWidth + 16, 64), 180) : 64;
  const { f, y } = layout(attributions, options, true, legendRight, false);
  const r = n <= 200 ? 3 : n <= 1000 ? 2.4 : 1.8;
  const svg = createSvg(docOf(options), {
    width: f.width,
    height: f.height,
    title: `SHAP dependence of ${effect.output} on ${effect.feature}${partner ? `, coloured by ${partner.feature}` : ''}`,
    desc:
      `Scatter of each row's SHAP value for ${effect.feature} (impact on ${outputTitle(effect)}) against its value, ${n} rows` +
      (partner ? `; colour shows ${partner.feature}, the feature it interacts with most (${effect.interactionMethod} score ${fmt(partner.score)})` : '') +
      `; attributions from ${fmt(d3.min(attributions) ?? 0)} to ${fmt(d3.max(attributions) ?? 0)}.`,
  });
  const g = svg.append('g').attr('class', 'effect').attr('data-feature', effect.feature).attr('data-output', effect.output);
  if (partner) g.attr('data-interaction', partner.feature);
  heading(g, f, `SHAP dependence: ${effect.feature}`);
  axisY(g, y, { x: f.left, gridRight: f.right, title: `SHAP value for ${effect.feature}` });
  let xs: number[];
  if (effect.featureKind === 'numeric') {
    const x = d3.scaleLinear(valueDomain(xv), [f.left, f.right]).nice();
    axisX(g, x, { y: f.bottom, title: effect.feature, plainIntegers: plainIntegers(factsOf(options, effect.feature)) });
    xs = xv.map((v) => x(v));
  } else {
    const names = categoryNames(effect, factsOf(options, effect.feature));
    const { x, step } = pointScale(names, f);
    axisPoints(g, names.map((_, k) => x(k)), names, { side: 'bottom', at: f.bottom, room: step - 4, title: effect.feature });
    const at = new Map(effect.grid.map((v, k) => [v, k]));
    // Deterministic jitter (golden-ratio sequence) so the dots of one category spread sideways.
    xs = xv.map((v, i) => x(at.get(v) ?? 0) + (((i * 0.6180339887) % 1) - 0.5) * step * 0.5);
  }
  g.append('path')
    .attr('d', `M${round(f.left)},${round(y(0))}H${round(f.right)}`)
    .attr('stroke', theme.axis)
    .attr('stroke-dasharray', '4 3')
    .attr('fill', 'none');
  const dots = g.append('g').attr('class', 'dots');
  const iv = effect.points.interaction;
  if (!partner || !iv) {
    dots.append('path').attr('d', dotsPath(xs.map((x, i) => [x, y(attributions[i])] as [number, number]), r)).attr('fill', theme.mark);
    return serializeSvg(svg);
  }
  if (swatchLegend) {
    const cats = [...new Set(iv)].sort((a, b) => a - b);
    const names = partner.categories ?? cats.map((c) => valueText(c, factsOf(options, partner.feature)));
    cats.forEach((c, k) => {
      const pts = xs.flatMap((x, i) => (iv[i] === c ? [[x, y(attributions[i])] as [number, number]] : []));
      dots.append('path').attr('d', dotsPath(pts, r)).attr('fill', theme.categorical[k]).attr('fill-opacity', 0.85);
    });
    const legend = g.append('g').attr('class', 'legend').attr('font-size', theme.smallFontSize);
    label(legend, f.right + 12, f.top, truncate(partner.feature, legendRight + theme.margin.right - 14, theme.smallFontSize), { fill: theme.mutedText }, { size: theme.smallFontSize });
    cats.forEach((_, k) => {
      const ly = f.top + 18 + k * 16;
      legend.append('rect').attr('x', round(f.right + 12)).attr('y', round(ly - 5)).attr('width', 10).attr('height', 10).attr('fill', theme.categorical[k]);
      label(legend, f.right + 26, ly, truncate(names[k] ?? fmtValue(cats[k]), legendRight + theme.margin.right - 28, theme.smallFontSize), { fill: theme.mutedText }, { size: theme.smallFontSize });
    });
  } else {
    const sortedIv = [...iv].sort((a, b) => a - b);
    let lo = d3.quantileSorted(sortedIv, 0.05) ?? 0;
    let hi = d3.quantileSorted(sortedIv, 0.95) ?? 0;
    if (hi <= lo) [lo, hi] = [sortedIv[0] ?? 0, sortedIv[sortedIv.length - 1] ?? 0];
    const bin = (v: number) => (hi > lo ? Math.min(SCATTER_BINS - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * SCATTER_BINS))) : SCATTER_BINS >> 1);
    const colours = d3.quantize(featureValueInterpolator, SCATTER_BINS);
    const buckets: [number, number][][] = colours.map(() => []);
    xs.forEach((x, i) => buckets[bin(iv[i])].push([x, y(attributions[i])]));
    buckets.forEach((pts, k) => {
      if (pts.length) dots.append('path').attr('d', dotsPath(pts, r)).attr('fill', colours[k]).attr('fill-opacity', 0.85);
    });
    rampLegend(g, {
      x: f.right + 20,
      y: f.top + 14,
      length: Math.max(60, f.bottom - f.top - 28),
      colour: featureValueInterpolator,
      labels: [fmt(lo), fmt(hi)],
      title: partner.feature,
      vertical: true,
    });
  }
  return serializeSvg(svg);
}

/** Any effect by its kind: PD/ICE lines, ALE with band, the 2-D heatmap, or the dependence scatter. */
export function renderEffect(effect: Effect, options: EffectChartOptions = {}): string {
  if ('feature2' in effect) return renderEffectHeatmap(effect, options);
  switch (effect.kind) {
    case 'pd':
    case 'ice':
      return renderPartialDependence(effect, options);
    case 'ale':
      return renderAle(effect, options);
    case 'dependence':
      return renderDependence(effect, options);
  }
}

export const EFFECT_KIND_NAMES: Record<EffectKind, string> = {
  pd: 'Partial dependence',
  ice: 'ICE curves and partial dependence',
  ale: 'Accumulated local effects',
  dependence: 'SHAP dependence',
};

/** "Partial dependence of income × age: approved": what a section or a chart list calls an effect. */
export function effectTitle(e: Effect): string {
  const what = 'feature2' in e ? `${e.feature} × ${e.feature2}` : e.feature;
  return `${EFFECT_KIND_NAMES[e.kind]} of ${what}: ${e.output}`;
}

/** Report sections: one chart per effect, with what it was computed over. */
export function effectsSections(effects: Effect[], options: EffectChartOptions = {}): Section[] {
  return effects.map((e) => {
    const space = e.link === 'logit' ? 'log-odds' : 'model output';
    const extra =
      e.kind === 'dependence' && 'interaction' in e && e.interaction
        ? ` Coloured by ${e.interaction.feature}, the feature it interacts with most (score ${fmt(e.interaction.score)}).`
        : '';
    return {
      heading: effectTitle(e),
      text: `${e.rows} data rows, in ${space} space; ${e.modelEvaluations.toLocaleString('en-US')} model evaluations.${extra}`,
      svg: renderEffect(e, options),
    };
  });
}
