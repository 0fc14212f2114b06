/**
 * Drift charts and report sections: PSI per feature (or output) as bars with the warn and alert
 * thresholds as dashed rules, bars coloured by status and marked when the KS test is significant;
 * attribution drift as reference vs current mean |attribution| side by side.
 */
import * as d3 from 'd3';
import type { ColumnDrift, DriftReport } from '../monitoring/drift/index.js';
import { createSvg, docOf, serializeSvg, type RenderOptions } from './document.js';
import { renderGroupComparison, type GroupComparison } from './groups.js';
import { renderHtmlReport, type Section } from './html.js';
import { rowFrame } from './layout.js';
import { axisX, ruleX, ruleXAround, type Box } from './marks/axis.js';
import { arrowPath, barPath } from './marks/bars.js';
import { label, labelWidth, rowLabel } from './marks/labels.js';
import { swatches } from './marks/legend.js';
import type { ModelInfo } from './report.js';
import { fmt, textWidth } from './text.js';
import { theme } from './theme.js';

export const DRIFT_PLOTS = ['psi', 'predictions', 'attributions'] as const;
export type DriftPlot = (typeof DRIFT_PLOTS)[number];

export interface DriftChartOptions extends RenderOptions {
  /** Rows drawn, largest PSI first; default 20. */
  topK?: number;
  /** Attribution chart: which output (index into report.attributions); default 0. */
  output?: number;
}

const STATUS_COLOUR = { ok: theme.markLight, warn: theme.categorical[1], alert: theme.positive } as const;

/**
 * PSI beyond this is off the scale: one category the reference never saw can push PSI past 5, which
 * would squash every other bar against the thresholds. Such bars end in an arrow at the edge and
 * their label carries the value.
 */
const PSI_AXIS_CAP = 1;

/** PSI bars with the warn/alert rules; `columns` are report.features or report.predictions. */
export function renderPsi(report: DriftReport, options: DriftChartOptions & { which?: 'features' | 'predictions' } = {}): string {
  const which = options.which ?? 'features';
  const columns: ColumnDrift[] = which === 'predictions' ? report.predictions : report.features;
  const order = columns
    .map((c, i) => ({ c, i }))
    .sort((a, b) => b.c.psi - a.c.psi || a.i - b.i)
    .map((x) => x.c);
  const k = options.topK ?? 20;
  const shown = order.length <= k + 1 ? order : order.slice(0, k);
  const hidden = order.length - shown.length;
  const texts = shown.map((c) => `${fmt(c.psi)}${c.ks.significant ? ' · KS' : ''}`);
  const room = Math.max(0, ...texts.map((t) => textWidth(t, theme.smallFontSize))) + 10;
  const { psiWarn, psiAlert } = report.thresholds;
  const low = report.summary.lowConfidence;
  const frame = rowFrame({
    width: options.width,
    rows: shown.length + (hidden ? 1 : 0),
    labelWidth: labelWidth(shown.map((c) => ({ name: c.feature }))),
    above: low ? 58 : 40,
    below: 52,
    padRight: room,
  });
  const max = Math.min(Math.max(psiAlert * 1.2, ...shown.map((c) => c.psi)), Math.max(PSI_AXIS_CAP, psiAlert * 1.2));
  const x = d3.scaleLinear([0, max], [frame.plotLeft, frame.plotRight]).nice();
  const top = x.domain()[1];
  const alerts = columns.filter((c) => c.drifted).map((c) => c.feature);
  const what = which === 'predictions' ? 'model output' : 'feature';
  const svg = createSvg(docOf(options), {
    width: frame.width,
    height: frame.height,
    title: `Population stability index per ${what} (${report.current.rows} current vs ${report.reference.rows} reference rows)`,
    desc:
      `Bars show PSI per ${what}, largest first; dashed rules at ${fmt(psiWarn)} (warn) and ${fmt(psiAlert)} (alert); ` +
      `"KS" marks a Bonferroni-corrected Kolmogorov-Smirnov p below ${fmt(report.thresholds.ksAlpha)}. ` +
      (low ? `${lowText(report)}. ` : '') +
      (alerts.length ? `Drifted: ${alerts.join(', ')}.` : 'Nothing drifted.'),
  });
  const g = svg.append('g');
  const axisY = frame.rowsBottom + 6;
  // The thresholds are ticks of their own, labelled with two decimals (0.10, 0.25), on top of the rules' labels.
  axisX(g, x, {
    y: axisY,
    gridTop: frame.rowsTop,
    title: 'Population stability index (PSI)',
    marked: [psiWarn, psiAlert].map((v) => ({ value: v, text: v.toFixed(2) })),
  });
  // Where the value labels go (past the bar's end, unless the bar is clipped): the rules leave them a gap.
  const half = theme.smallFontSize * 0.6;
  const boxes: Box[] = shown.flatMap((c, i) => {
    if (c.psi > top) return [];
    const lx = x(c.psi) + 5;
    return [{ x0: lx, x1: lx + textWidth(texts[i], theme.smallFontSize, c.drifted), y0: frame.rowY(i) - half, y1: frame.rowY(i) + half }];
  });
  // Threshold rules first, so bars and labels draw over them.
  for (const [v, name] of [
    [psiWarn, 'warn'],
    [psiAlert, 'alert'],
  ] as const) {
    ruleXAround(g, x(v), frame.rowsTop - 4, axisY, boxes, { stroke: theme.text, dash: '5 3', width: 1.2 });
    // The two rules are close: warn's label sits left of its rule, alert's right of its own.
    const t = `${name} ${v.toFixed(2)}`;
    const left = name === 'warn';
    label(g, x(v) + (left ? -3 : 3), frame.rowsTop - 10, t, { anchor: left ? 'end' : 'start', size: theme.smallFontSize });
  }
  const barH = frame.rowHeight * 0.62;
  shown.forEach((c, i) => {
    const y = frame.rowY(i);
    const r = g.append('g').attr('class', 'row').attr('data-feature', c.feature).attr('data-psi', c.psi).attr('data-status', c.status);
    const clipped = c.psi > top;
    const end = x(Math.min(c.psi, top));
    r.append('path')
      .attr('d', clipped ? arrowPath(x(0), end, y, barH, 9) : barPath(x(0), end, y, barH))
      .attr('fill', STATUS_COLOUR[c.status]);
    const style = { size: theme.smallFontSize, fill: c.drifted ? theme.positiveText : theme.mutedText, bold: c.drifted };
    // A clipped bar reaches the edge: its label goes inside, in white.
    if (clipped) label(r, end - 12, y, texts[i], { ...style, anchor: 'end', fill: theme.background });
    else
      label(r, end + 5, y, texts[i], style)
        .attr('stroke', theme.background)
        .attr('stroke-width', 3)
        .attr('paint-order', 'stroke');
    rowLabel(r, frame.labelRight, y, c.feature, undefined, frame.labelRight - theme.margin.left);
  });
  if (hidden) {
    label(g, frame.plotLeft, frame.rowY(shown.length), `${hidden} more with smaller PSI`, {
      fill: theme.mutedText,
      size: theme.smallFontSize,
    });
  }
  ruleX(g, x(0), frame.rowsTop, axisY);
  if (low) label(g, frame.plotLeft, theme.margin.top + 24, lowText(report), { size: theme.smallFontSize, fill: theme.positiveText, bold: true });
  swatches(
    g,
    frame.plotLeft,
    theme.margin.top + 4,
    [
      { label: 'stable', colour: STATUS_COLOUR.ok },
      { label: 'warn', colour: STATUS_COLOUR.warn },
      { label: 'drifted', colour: STATUS_COLOUR.alert },
    ],
    (s) => textWidth(s, theme.smallFontSize),
  );
  return serializeSvg(svg);
}

function lowText(report: DriftReport): string {
  return `Too few rows to flag drift: ${Math.min(report.current.rows, report.reference.rows)} (at least ${report.summary.minimumRows} needed)`;
}

/** Reference vs current mean |attribution| per feature, side by side, largest reference first. */
export function renderAttributionDrift(report: DriftReport, options: DriftChartOptions = {}): string {
  const a = report.attributions?.[options.output ?? 0];
  if (!a) throw new RangeError('the report has no attribution drift (it needs a background set and a tabular model)');
  const k = options.topK ?? 12;
  const order = a.features
    .map((f, i) => ({ f, i }))
    .sort((p, q) => Math.max(q.f.reference, q.f.current) - Math.max(p.f.reference, p.f.current) || p.i - q.i)
    .slice(0, k);
  const groups: GroupComparison[] = order.map(({ f }) => ({
    group: f.feature,
    values: [
      { label: 'reference', value: f.reference },
      { label: 'current', value: f.current },
    ],
  }));
  return renderGroupComparison(groups, {
    document: options.document,
    width: options.width,
    valueLabel: `Mean |attribution| to ${a.output}`,
    title: `Attribution drift of ${a.output}: NDCG ${fmt(a.ndcg)}${a.flagged ? ' (below ' + fmt(report.thresholds.ndcg) + ': drift)' : ''}`,
  });
}

export function renderDriftChart(report: DriftReport, plot: DriftPlot = 'psi', options: DriftChartOptions = {}): string {
  if (plot === 'attributions') return renderAttributionDrift(report, options);
  return renderPsi(report, { ...options, which: plot === 'predictions' ? 'predictions' : 'features' });
}

function columnRows(columns: ColumnDrift[]) {
  return columns.map((c) => [c.feature, c.kind, c.psi, c.ks.statistic, c.ks.pValueAdjusted, c.referenceMean, c.currentMean, c.status]);
}
const COLUMN_HEADERS = ['column', 'bins', 'PSI', 'KS D', 'KS p (Bonferroni)', 'reference mean', 'current mean', 'status'];

/** Report sections: summary with flags, PSI chart and table, outputs, labels, attribution drift. */
export function driftSections(report: DriftReport & { notes?: string[] }, options: RenderOptions = {}): Section[] {
  const common = { document: options.document, width: options.width };
  const t = report.thresholds;
  const sections: Section[] = [
    {
      heading: 'Drift summary',
      text:
        `${report.current.rows} current rows against ${report.reference.rows} reference rows. PSI on ${report.bins} reference-quantile bins ` +
        `(categories for categorical columns): warn at ${fmt(t.psiWarn)}, alert at ${fmt(t.psiAlert)}; two-sample KS with Bonferroni-corrected p below ${fmt(t.ksAlpha)} also alerts. ` +
        (report.summary.drifted.length ? `Drifted features: ${report.summary.drifted.join(', ')}.` : 'No feature drifted.') +
        (report.summary.warned.length ? ` Warnings: ${report.summary.warned.join(', ')}.` : '') +
        (report.notes?.length ? ` Notes: ${report.notes.join('; ')}.` : ''),
      ...(report.flags.length
        ? { table: { columns: ['flag', 'column', 'detail'], rows: report.flags.map((f) => [f.kind, f.feature ?? '', f.message]) } }
        : {}),
    },
    {
      heading: 'Input drift',
      svg: renderPsi(report, { ...common, which: 'features' }),
      table: { columns: COLUMN_HEADERS, rows: columnRows(report.features) },
    },
  ];
  if (report.predictions.length) {
    sections.push({
      heading: 'Prediction drift',
      svg: renderPsi(report, { ...common, which: 'predictions' }),
      table: { columns: COLUMN_HEADERS, rows: columnRows(report.predictions) },
    });
  }
  if (report.labels || report.performance) {
    sections.push({
      heading: 'Labels and performance',
      table: {
        columns: ['', 'reference', 'current', 'change / status'],
        rows: [
          ...(report.labels ? [['label PSI', null, report.labels.psi, report.labels.status]] : []),
          ...(report.performance
            ? [[report.performance.metric, report.performance.reference, report.performance.current, report.performance.change]]
            : []),
        ],
      },
    });
  }
  (report.attributions ?? []).forEach((a, i) => {
    sections.push({
      heading: `Attribution drift: ${a.output}`,
      text:
        `Global mean |attribution| (Kernel SHAP on ${a.referenceRows} reference and ${a.currentRows} current rows). ` +
        `NDCG of the current ranking against the reference ranking is ${fmt(a.ndcg)}` +
        (a.flagged ? `, below ${fmt(t.ndcg)}: what the model relies on has changed.` : `; at or above ${fmt(t.ndcg)}.`),
      svg: renderAttributionDrift(report, { ...common, output: i }),
      table: {
        columns: ['feature', 'reference', 'current', 'change', 'relative change', 'reference rank', 'current rank'],
        rows: a.features.map((f) => [f.feature, f.reference, f.current, f.change, f.relativeChange, f.referenceRank, f.currentRank]),
      },
    });
  });
  return sections;
}

export function renderDriftReport(report: DriftReport & { notes?: string[] }, model: ModelInfo, options: RenderOptions = {}): string {
  return renderHtmlReport({
    title: `Drift: ${model.name}`,
    subtitle: model.version ? `version ${model.version}` : undefined,
    sections: driftSections(report, options),
  });
}
