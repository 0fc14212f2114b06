/**
 * Summaries over many explanations of one output: the beeswarm (one row per feature, a dot per
 * instance placed by its attribution and coloured by the feature's value) and the mean |attribution|
 * bar. Rows are the top k features (one-hot groups as one row) by mean |attribution|.
 *
 * Instances may explain different outputs (a classifier explains each row's predicted class by
 * default): a summary is of one output, over the instances that explain it, and says how many of
 * all it covers. Attributions to different outputs are never mixed in one row.
 */
import * as d3 from 'd3';
import type { Explanation, InstanceExplanation, OutputExplanation } from '../explainers/types.js';
import { createSvg, docOf, round, serializeSvg, type RenderOptions } from './document.js';
import { rowFrame } from './layout.js';
import { axisX, ruleX } from './marks/axis.js';
import { barPath } from './marks/bars.js';
import { dodge, dotsPath } from './marks/dots.js';
import { header, HEADER_HEIGHT, label, labelWidth, rowLabel } from './marks/labels.js';
import { rampLegend } from './marks/legend.js';
import { valueDomain } from './scales.js';
import { impactOn as impactPhrase, items, pickOutput, type ChartContext } from './select.js';
import { fmt, textWidth } from './text.js';
import { featureValueInterpolator, theme } from './theme.js';

export interface SummaryOptions extends RenderOptions {
  /** Which explained output (position in each instance's `outputs`, or a name). Default 0. */
  output?: number | string;
  /** Rows drawn; default 10 for the beeswarm, 10 (+ one fold row) for the mean |attribution| bar. */
  topK?: number;
  /** Axis wording, e.g. 'SHAP value'; default from the method when an Explanation is given. */
  valueName?: string;
  context?: ChartContext;
  /** The chart's title (its accessible name); default says what it shows. */
  title?: string;
}

interface Table {
  output: string;
  /** Explanations of this output, and all the explanations given. */
  n: number;
  total: number;
  names: string[];
  /** attributions[j][i]: feature j, instance i; values likewise. */
  attributions: Float64Array[];
  values: Float64Array[];
  meanAbs: number[];
}

/**
 * Pulls one output of every instance that explains it into per-row columns (one-hot groups as one
 * row, valued NaN: they have no low-to-high order), checking they describe the same features. The
 * output: a name, or a position in the first instance's outputs (its name is then looked up in each).
 */
function table(input: InstanceExplanation[] | Explanation, output: number | string = 0, context?: ChartContext): Table {
  const instances = Array.isArray(input) ? input : input.explanations;
  if (instances.length === 0) throw new RangeError('a summary needs at least one explanation');
  const name = typeof output === 'string' ? output : pickOutput(instances[0].outputs, output).output;
  const outs: OutputExplanation[] = instances.flatMap((e) => e.outputs.filter((o) => o.output === name));
  if (outs.length === 0) throw new RangeError(`no explanation explains output "${name}"`);
  const rows = outs.map((o) => items(o, context));
  const names = rows[0].map((r) => r.name);
  const n = outs.length;
  const attributions = names.map(() => new Float64Array(n));
  const values = names.map(() => new Float64Array(n));
  rows.forEach((r, i) => {
    if (r.length !== names.length) throw new RangeError(`explanation ${i} has ${r.length} rows, the first has ${names.length}`);
    r.forEach((a, j) => {
      attributions[j][i] = a.attribution;
      values[j][i] = a.value ?? NaN;
    });
  });
  const meanAbs = attributions.map((col) => d3.mean(col, Math.abs) ?? 0);
  return { output: name, n, total: instances.length, names, attributions, values, meanAbs };
}

/** "Class Gentoo · 34 of 100 explanations (the rows whose predicted class it is)". */
function summaryHeader(t: Table, context?: ChartContext): string {
  const what = context?.classifier ? `Class ${t.output}` : `Output ${t.output}`;
  if (t.n === t.total) return `${what} · ${t.n} explanation${t.n === 1 ? '' : 's'}`;
  const which = context?.outputSelection === 'predicted-class' ? 'the rows predicted to be in this class' : 'those that explain this output';
  return `${what} · ${t.n} of ${t.total} explanations (${which})`;
}

/** The output's name with its link scale noted, when the input says what link it used. */
function impactOn(input: InstanceExplanation[] | Explanation, output: string): string {
  return Array.isArray(input) ? output : impactPhrase(input, output);
}

function valueName(input: InstanceExplanation[] | Explanation, options: SummaryOptions): string {
  if (options.valueName) return options.valueName;
  if (Array.isArray(input)) return 'Attribution';
  return input.method === 'kernel-shap' ? 'SHAP value' : 'IG attribution';
}

/** Feature indices by mean |attribution|, largest first; ties keep feature order. */
function ranking(t: Table): number[] {
  return t.names.map((_, j) => j).sort((a, b) => t.meanAbs[b] - t.meanAbs[a] || a - b);
}

/** Colour bins for feature values: one path per bin and row keeps the element count small. */
const BINS = 24;

export function renderBeeswarm(input: InstanceExplanation[] | Explanation, options: SummaryOptions = {}): string {
  const t = table(input, options.output, options.context);
  const rows = ranking(t).slice(0, options.topK ?? 10);
  const what = valueName(input, options);
  const rowHeight = 40;
  const frame = rowFrame({
    width: options.width,
    rows: rows.length,
    labelWidth: labelWidth(rows.map((j) => ({ name: t.names[j] }))),
    rowHeight,
    above: HEADER_HEIGHT,
    below: 52,
    legendWidth: 56,
  });
  const all = rows.flatMap((j) => Array.from(t.attributions[j]));
  const x = d3.scaleLinear(valueDomain(all, true), [frame.plotLeft, frame.plotRight]).nice();
  // Fewer, smaller dots as the instances grow, so a row stays a readable swarm rather than a smear.
  const r = t.n <= 100 ? 3.5 : t.n <= 500 ? 2.8 : t.n <= 2000 ? 2.2 : 1.6;
  const half = rowHeight / 2 - 2;

  const svg = createSvg(docOf(options), {
    width: frame.width,
    height: frame.height,
    title: `Beeswarm of ${what}s for output ${t.output} over ${t.n} explanations`,
    desc:
      `${summaryHeader(t, options.context)}. Beeswarm summary of ${what}s for output ${t.output}: one row per feature (top ${rows.length} of ${t.names.length} by mean |${what}|), ` +
      `one dot per explanation (${t.n}), placed by its ${what} and coloured by the feature's value from low (blue) to high (orange). ` +
      `Most important: ${rows.slice(0, 3).map((j) => `${t.names[j]} (mean |${what}| ${fmt(t.meanAbs[j])})`).join(', ')}.`,
  });
  const g = svg.append('g');
  header(g, theme.margin.left, theme.margin.top + 6, summaryHeader(t, options.context), frame.width - theme.margin.left - theme.margin.right);
  const axisY = frame.rowsBottom + 6;
  axisX(g, x, { y: axisY, gridTop: frame.rowsTop, title: `${what} (impact on ${impactOn(input, t.output)})` });
  ruleX(g, x(0), frame.rowsTop, axisY, { stroke: theme.axis });
  const guides = rows.map((_, i) => `M${round(frame.plotLeft)},${round(frame.rowY(i))}H${round(frame.plotRight)}`).join('');
  g.append('path').attr('d', guides).attr('stroke', theme.grid).attr('stroke-dasharray', '1 3').attr('fill', 'none');

  const colour = d3.quantize(featureValueInterpolator, BINS);
  rows.forEach((j, i) => {
    const cy = frame.rowY(i);
    const row = g.append('g').attr('class', 'row').attr('data-feature', t.names[j]).attr('data-mean-abs', t.meanAbs[j]);
    rowLabel(row, frame.labelRight, cy, t.names[j], undefined, frame.labelRight - theme.margin.left);
    const xs = Float64Array.from(t.attributions[j], (a) => x(a));
    const ys = dodge(xs, r);
    // A dense row is squeezed to its height rather than spilling into its neighbours.
    const extent = d3.max(ys, Math.abs) ?? 0;
    const squeeze = extent > half ? half / extent : 1;
    const bin = binner(t.values[j]);
    const buckets: [number, number][][] = Array.from({ length: BINS + 1 }, () => []);
    for (let i2 = 0; i2 < t.n; i2++) buckets[bin(t.values[j][i2])].push([xs[i2], cy + ys[i2] * squeeze]);
    buckets.forEach((pts, b) => {
      if (pts.length === 0) return;
      row.append('path').attr('d', dotsPath(pts, r)).attr('fill', b === BINS ? theme.neutral : colour[b]);
    });
  });

  const legendX = frame.width - theme.margin.right - 30;
  const legendLength = Math.max(60, Math.min(160, frame.rowsBottom - frame.rowsTop - 28));
  rampLegend(g, {
    x: legendX,
    y: frame.rowsTop + 14,
    length: legendLength,
    colour: featureValueInterpolator,
    labels: ['Low', 'High'],
    title: 'Feature value',
    vertical: true,
  });
  // One-hot groups have categories, not a low-to-high value: their dots are grey.
  if (rows.some((j) => t.values[j].some((v) => !Number.isFinite(v)))) {
    const y = frame.rowsTop + 14 + legendLength + 26;
    g.append('circle').attr('cx', legendX + 5).attr('cy', y).attr('r', 3.5).attr('fill', theme.neutral);
    label(g, legendX + 5, y + 13, 'category', { anchor: 'middle', size: theme.smallFontSize, fill: theme.mutedText });
  }
  return serializeSvg(svg);
}

/**
 * Value -> colour bin, normalised per feature between its 5th and 95th percentiles (so one outlier
 * does not wash out the rest, as shap's summary plot also does), falling back to min..max for
 * features that are nearly constant. Non-finite values go to the grey bin BINS.
 */
function binner(values: Float64Array): (v: number) => number {
  const finite = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  let lo = d3.quantileSorted(finite, 0.05) ?? 0;
  let hi = d3.quantileSorted(finite, 0.95) ?? 0;
  if (hi <= lo) [lo, hi] = [finite[0] ?? 0, finite[finite.length - 1] ?? 0];
  if (hi <= lo) return (v) => (Number.isFinite(v) ? BINS >> 1 : BINS);
  return (v) => (Number.isFinite(v) ? Math.min(BINS - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * BINS))) : BINS);
}

export function renderMeanAbs(input: InstanceExplanation[] | Explanation, options: SummaryOptions = {}): string {
  const t = table(input, options.output, options.context);
  const order = ranking(t);
  const k = options.topK ?? 10;
  const shown = order.length <= k + 1 ? order : order.slice(0, k);
  const rest = order.slice(shown.length);
  const rows = shown.map((j) => ({ label: t.names[j], feature: t.names[j] as string | undefined, v: t.meanAbs[j] }));
  if (rest.length) rows.push({ label: `Sum of ${rest.length} other features`, feature: undefined, v: d3.sum(rest, (j) => t.meanAbs[j]) });
  const what = valueName(input, options);
  const texts = rows.map((r) => fmt(r.v));
  const frame = rowFrame({
    width: options.width,
    rows: rows.length,
    labelWidth: labelWidth(rows.map((r) => ({ name: r.label }))),
    above: HEADER_HEIGHT,
    below: 52,
    padRight: Math.max(...texts.map((s) => textWidth(s, theme.smallFontSize))) + 10,
  });
  const x = d3.scaleLinear(valueDomain(rows.map((r) => r.v), true), [frame.plotLeft, frame.plotRight]);
  const svg = createSvg(docOf(options), {
    width: frame.width,
    height: frame.height,
    title: options.title ?? `Mean |${what}| per feature for output ${t.output} over ${t.n} explanations`,
    desc:
      `${summaryHeader(t, options.context)}. Bar chart of mean absolute ${what} per feature for output ${t.output} over ${t.n} explanations, largest first: ` +
      rows.slice(0, 3).map((r) => `${r.label} ${fmt(r.v)}`).join(', ') + '.',
  });
  const g = svg.append('g');
  header(g, theme.margin.left, theme.margin.top + 6, summaryHeader(t, options.context), frame.width - theme.margin.left - theme.margin.right);
  const axisY = frame.rowsBottom + 6;
  axisX(g, x, { y: axisY, gridTop: frame.rowsTop, title: `mean(|${what}|) (average impact on ${impactOn(input, t.output)})` });
  rows.forEach((row, i) => {
    const y = frame.rowY(i);
    const r = g.append('g').attr('class', 'row').attr('data-value', row.v);
    if (row.feature !== undefined) r.attr('data-feature', row.feature);
    r.append('path').attr('d', barPath(x(0), x(row.v), y, frame.rowHeight * 0.62)).attr('fill', row.feature ? theme.mark : theme.neutral);
    label(r, x(row.v) + 5, y, texts[i], { size: theme.smallFontSize, fill: theme.mutedText });
    rowLabel(r, frame.labelRight, y, row.label, undefined, frame.labelRight - theme.margin.left, row.feature ? {} : { fill: theme.mutedText });
  });
  ruleX(g, x(0), frame.rowsTop, axisY);
  return serializeSvg(svg);
}
