/**
 * Charts of a comparison between two model versions (monitoring/versions.ts): the distribution of
 * the prediction changes as a histogram around a zero rule, mean |attribution| per feature before
 * and after (dumbbells, with rank changes and sign flips named), and fairness disparities before and
 * after; and the report sections that gather them.
 */
import * as d3 from 'd3';
import type { AttributionShift, PredictionShift, VersionComparison, VersionRef } from '../monitoring/versions.js';
import { createSvg, docOf, round, serializeSvg, type RenderOptions } from './document.js';
import { renderGroupComparison, type GroupComparison } from './groups.js';
import { renderHtmlReport, type Section } from './html.js';
import { rowFrame } from './layout.js';
import { axisX, ruleX } from './marks/axis.js';
import { axisY } from './marks/axisY.js';
import { label, labelWidth, rowLabel } from './marks/labels.js';
import { swatches } from './marks/legend.js';
import { fmt, fmtSigned, textWidth } from './text.js';
import { theme } from './theme.js';

export const COMPARE_PLOTS = ['predictions', 'attributions', 'fairness'] as const;
export type ComparePlot = (typeof COMPARE_PLOTS)[number];

export interface CompareChartOptions extends RenderOptions {
  /** Which output (index) the predictions and attributions charts show; default 0. */
  output?: number;
  /** Attribution rows drawn, largest first; default 12. */
  topK?: number;
}

export function versionName(v: VersionRef): string {
  return v.label ?? v.version.slice(0, 8);
}

const FROM_COLOUR = theme.categorical[1];
const TO_COLOUR = theme.categorical[0];

/** Histogram of to - from over the rows for one output, with the zero rule and the mean change. */
export function renderPredictionShift(c: VersionComparison, options: CompareChartOptions = {}): string {
  const s: PredictionShift | undefined = c.predictions.shifts[options.output ?? 0];
  if (!s) throw new RangeError(`the comparison has no output ${options.output ?? 0}`);
  const width = options.width ?? theme.width;
  const m = theme.margin;
  const counts = s.histogram.counts;
  const edges = s.histogram.edges;
  const y = d3.scaleLinear([0, Math.max(1, ...counts)], [0, 0]).nice();
  const left = m.left + 48;
  const right = width - m.right - 10;
  const top = m.top + 44;
  const bottom = top + 200;
  y.range([bottom, top]);
  const lo = Math.min(edges[0], 0);
  const hi = Math.max(edges[edges.length - 1], 0);
  const x = d3.scaleLinear(lo === hi ? [lo - 1, hi + 1] : [lo, hi], [left, right]).nice();
  const from = versionName(c.from);
  const to = versionName(c.to);
  const agreement = c.predictions.agreement;
  const title = `Change of ${s.output} from version ${from} to ${to} over ${c.data.rows} ${c.data.source} rows`;
  const svg = createSvg(docOf(options), {
    width,
    height: bottom + 56,
    title,
    desc:
      `Histogram of the per-row change (to minus from) of ${s.output}: mean ${fmtSigned(s.meanDifference)}, mean absolute ${fmt(s.meanAbsDifference)}, ` +
      `largest absolute ${fmt(s.maxAbsDifference)}.` +
      (agreement ? ` The two versions decide the same for ${fmt(agreement.rate * 100)}% of the rows (${agreement.agreeing} of ${agreement.rows}).` : ''),
  });
  const g = svg.append('g');
  label(g, m.left, m.top + 6, title, { bold: true });
  label(
    g,
    m.left,
    m.top + 24,
    `mean change ${fmtSigned(s.meanDifference)} · mean |change| ${fmt(s.meanAbsDifference)} · largest |change| ${fmt(s.maxAbsDifference)}` +
      (agreement ? ` · same decision ${fmt(agreement.rate * 100)}%` : ''),
    { size: theme.smallFontSize, fill: theme.mutedText },
  );
  axisX(g, x, { y: bottom, gridTop: top, title: `${s.output}: version ${to} minus version ${from}` });
  axisY(g, y, { x: left, title: 'rows' });
  const bars = g.append('g').attr('class', 'bins').attr('fill', TO_COLOUR);
  counts.forEach((n, i) => {
    // A single bin (every row changed by the same amount) gets a visible width.
    const x0 = edges.length > 2 || edges[1] > edges[0] ? x(edges[i]) : x(edges[0]) - 3;
    const x1 = edges.length > 2 || edges[1] > edges[0] ? x(edges[i + 1]) : x(edges[0]) + 3;
    bars
      .append('rect')
      .attr('data-count', n)
      .attr('data-lo', edges[i])
      .attr('data-hi', edges[i + 1])
      .attr('x', round(Math.min(x0, x1) + 0.5))
      .attr('y', round(y(n)))
      .attr('width', round(Math.max(1, Math.abs(x1 - x0) - 1)))
      .attr('height', round(bottom - y(n)));
  });
  ruleX(g, x(0), top - 4, bottom, { stroke: theme.text, dash: '4 3' });
  label(g, x(0) + 4, top - 8, 'no change', { size: theme.smallFontSize, fill: theme.mutedText });
  return serializeSvg(svg);
}

/** Mean |attribution| per feature before (orange) and after (blue), largest first, ranks and sign flips named. */
export function renderAttributionShift(c: VersionComparison, options: CompareChartOptions = {}): string {
  const a: AttributionShift | undefined = c.attributions?.outputs[options.output ?? 0];
  if (!a) throw new RangeError('the comparison has no attribution differences (they need a tabular model with a background set)');
  const k = options.topK ?? 12;
  const order = a.features
    .map((f, i) => ({ f, i }))
    .sort((p, q) => Math.max(q.f.meanAbsFrom, q.f.meanAbsTo) - Math.max(p.f.meanAbsFrom, p.f.meanAbsTo) || p.i - q.i);
  const shown = order.slice(0, k).map((o) => o.f);
  const hidden = order.length - shown.length;
  const notes = shown.map((f) => `#${f.rankFrom} → #${f.rankTo}${f.signFlipped ? ' · sign flipped' : ''}`);
  const room = Math.max(0, ...notes.map((t) => textWidth(t, theme.smallFontSize))) + 12;
  const frame = rowFrame({
    width: options.width,
    rows: shown.length + (hidden ? 1 : 0),
    labelWidth: labelWidth(shown.map((f) => ({ name: f.feature }))),
    above: 58,
    below: 52,
    padRight: room,
  });
  const x = d3.scaleLinear([0, Math.max(1e-12, ...shown.flatMap((f) => [f.meanAbsFrom, f.meanAbsTo]))], [frame.plotLeft, frame.plotRight]).nice();
  const from = versionName(c.from);
  const to = versionName(c.to);
  const title = `What ${a.output} relies on: version ${from} vs ${to} (NDCG ${fmt(a.ndcg)})`;
  const svg = createSvg(docOf(options), {
    width: frame.width,
    height: frame.height,
    title,
    desc:
      `Mean |attribution| per feature (Kernel SHAP on the same ${a.rows} rows with the same background), version ${from} in orange and ${to} in blue; ` +
      `ranks before and after at the right. NDCG of the new ranking against the old: ${fmt(a.ndcg)}. ` +
      (a.signFlips.length ? `Attribution changed sign on most rows: ${a.signFlips.join(', ')}.` : 'No attribution changed sign on most rows.'),
  });
  const g = svg.append('g');
  label(g, theme.margin.left, theme.margin.top + 6, title, { bold: true });
  swatches(
    g,
    frame.plotLeft,
    theme.margin.top + 30,
    [
      { label: `version ${from}`, colour: FROM_COLOUR },
      { label: `version ${to}`, colour: TO_COLOUR },
    ],
    (s) => textWidth(s, theme.smallFontSize),
  );
  axisX(g, x, { y: frame.rowsBottom + 6, gridTop: frame.rowsTop, title: `Mean |attribution| to ${a.output}` });
  shown.forEach((f, i) => {
    const cy = frame.rowY(i);
    const r = g
      .append('g')
      .attr('class', 'row')
      .attr('data-feature', f.feature)
      .attr('data-from', f.meanAbsFrom)
      .attr('data-to', f.meanAbsTo)
      .attr('data-sign-flipped', String(f.signFlipped));
    r.append('path')
      .attr('d', `M${round(x(f.meanAbsFrom))},${round(cy)}H${round(x(f.meanAbsTo))}`)
      .attr('stroke', theme.rule)
      .attr('stroke-width', 2);
    r.append('circle').attr('cx', round(x(f.meanAbsFrom))).attr('cy', round(cy)).attr('r', 5).attr('fill', FROM_COLOUR);
    r.append('circle').attr('cx', round(x(f.meanAbsTo))).attr('cy', round(cy)).attr('r', 5).attr('fill', TO_COLOUR);
    label(r, frame.plotRight + 12, cy, notes[i], {
      size: theme.smallFontSize,
      fill: f.signFlipped ? theme.positiveText : theme.mutedText,
      bold: f.signFlipped,
    });
    rowLabel(r, frame.labelRight, cy, f.feature, undefined, frame.labelRight - theme.margin.left);
  });
  if (hidden) label(g, frame.plotLeft, frame.rowY(shown.length), `${hidden} more with smaller attributions`, { fill: theme.mutedText, size: theme.smallFontSize });
  return serializeSvg(svg);
}

/** Between-group differences of the fairness metrics, before and after, per sensitive feature and metric. */
export function renderFairnessShift(c: VersionComparison, options: CompareChartOptions = {}): string {
  const f = c.fairness;
  if (!f || !f.metrics.length) throw new RangeError('the comparison has no fairness metrics (they need sensitive features and a labelled reference set)');
  const from = versionName(c.from);
  const to = versionName(c.to);
  const groups: GroupComparison[] = f.metrics
    .filter((x) => x.differenceFrom !== null || x.differenceTo !== null)
    .map((x) => ({
      group: `${x.metric.replaceAll('_', ' ')} · ${x.features.join(' × ')}${x.positiveClass !== null && x.positiveClass !== 1 ? ` (class ${x.positiveClass})` : ''}`,
      values: [
        { label: `version ${from}`, value: x.differenceFrom ?? 0 },
        { label: `version ${to}`, value: x.differenceTo ?? 0 },
      ],
    }));
  return renderGroupComparison(groups, {
    document: options.document,
    width: options.width,
    valueLabel: 'Difference between groups (highest minus lowest)',
    title: `Fairness: version ${from} vs ${to}`,
  });
}

export function renderComparisonChart(c: VersionComparison, plot: ComparePlot = 'predictions', options: CompareChartOptions = {}): string {
  if (plot === 'attributions') return renderAttributionShift(c, options);
  if (plot === 'fairness') return renderFairnessShift(c, options);
  return renderPredictionShift(c, options);
}

/** Report sections: the prediction changes (with the rows that moved most), attributions and fairness before and after. */
export function comparisonSections(c: VersionComparison, options: RenderOptions = {}): Section[] {
  const common = { document: options.document, width: options.width };
  const from = versionName(c.from);
  const to = versionName(c.to);
  const ag = c.predictions.agreement;
  const sections: Section[] = [
    {
      heading: `Versions ${from} → ${to}`,
      text:
        `Both versions on the same ${c.data.rows} ${c.data.source} rows` +
        (ag ? `: they decide the same for ${fmt(ag.rate * 100)}% of them (${ag.agreeing} of ${ag.rows}).` : '.') +
        (c.notes.length ? ` Notes: ${c.notes.join('; ')}.` : ''),
      table: {
        columns: ['output', `mean (${from})`, `mean (${to})`, 'mean change', 'mean |change|', 'largest |change|'],
        rows: c.predictions.shifts.map((s) => [s.output, s.meanFrom, s.meanTo, s.meanDifference, s.meanAbsDifference, s.maxAbsDifference]),
      },
    },
  ];
  c.predictions.shifts.forEach((s, i) => {
    if (i >= 4) return; // the table above has them all
    sections.push({ heading: `Prediction change: ${s.output}`, svg: renderPredictionShift(c, { ...common, output: i }) });
  });
  sections.push({
    heading: 'Rows that changed most',
    table: {
      columns: ['row', ...c.outputs.map((o) => `${o} (${from} → ${to})`), ...(ag ? ['decision'] : [])],
      rows: c.predictions.largestChanges.map((r) => [
        r.row,
        ...r.from.map((v, j) => `${fmt(v)} → ${fmt(r.to[j])}`),
        ...(ag ? [`${r.fromClass} → ${r.toClass}`] : []),
      ]),
    },
  });
  (c.attributions?.outputs ?? []).forEach((a, i) => {
    sections.push({
      heading: `Attributions: ${a.output}`,
      text:
        `Kernel SHAP (${c.attributions!.nSamples} samples, seed ${c.attributions!.seed}) of the same ${a.rows} rows with the same background under both versions. ` +
        `NDCG of the new ranking against the old: ${fmt(a.ndcg)}. ` +
        (a.signFlips.length ? `Attribution changed sign on most rows: ${a.signFlips.join(', ')}.` : 'No attribution changed sign on most rows.'),
      svg: renderAttributionShift(c, { ...common, output: i }),
      table: {
        columns: ['feature', `mean |attr| (${from})`, `mean |attr| (${to})`, 'rank before', 'rank after', 'mean before', 'mean after', 'rows with sign flipped'],
        rows: a.features.map((f) => [f.feature, f.meanAbsFrom, f.meanAbsTo, f.rankFrom, f.rankTo, f.meanFrom, f.meanTo, f.rowSignFlipRate]),
      },
    });
  });
  if (c.fairness?.metrics.length) {
    sections.push({
      heading: 'Fairness before and after',
      text:
        `Flags before: ${c.fairness.flagsFrom.length ? c.fairness.flagsFrom.join('; ') : 'none'}. ` +
        `Flags after: ${c.fairness.flagsTo.length ? c.fairness.flagsTo.join('; ') : 'none'}.`,
      svg: renderFairnessShift(c, common),
      table: {
        columns: ['sensitive features', 'metric', `difference (${from})`, `difference (${to})`, `ratio (${from})`, `ratio (${to})`],
        rows: c.fairness.metrics.map((x) => [x.features.join(' × '), x.metric, x.differenceFrom, x.differenceTo, x.ratioFrom, x.ratioTo]),
      },
    });
  }
  return sections;
}

export function renderComparisonReport(c: VersionComparison, options: RenderOptions = {}): string {
  return renderHtmlReport({
    title: `${c.model}: version ${versionName(c.from)} → ${versionName(c.to)}`,
    subtitle: `${c.from.version} → ${c.to.version}`,
    sections: comparisonSections(c, options),
  });
}
