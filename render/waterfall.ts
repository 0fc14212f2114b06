/**
 * SHAP-style waterfall: from the baseline (E[f(X)] for Kernel SHAP, f(x') for IG) at the bottom, each
 * feature's attribution moves the output until the top bar ends at f(x). Features are sorted by
 * |attribution|, the largest at the top; the features below the top k share one row.
 */
import * as d3 from 'd3';
import type { Explanation } from '../explainers/types.js';
import { createSvg, docOf, round, serializeSvg, type G, type RenderOptions } from './document.js';
import { rowFrame } from './layout.js';
import { axisX, ruleX } from './marks/axis.js';
import { arrowPath } from './marks/bars.js';
import { header, HEADER_HEIGHT, label, labelWidth, rowLabel, textGroup, type LabelStyle } from './marks/labels.js';
import { baselineName, headerText, items, methodName, outputTitle, pick, topK, type PickOptions } from './select.js';
import { fmt, fmtSigned, textWidth } from './text.js';
import { inkOn, signColour, signTextColour, theme } from './theme.js';
import { clampLabel, valueDomain } from './scales.js';

export interface WaterfallOptions extends RenderOptions, PickOptions {
  /** Features drawn on their own row; the rest are summed into one. Default 10. */
  topK?: number;
}

export function renderWaterfall(explanation: Explanation, options: WaterfallOptions = {}): string {
  const out = pick(explanation, options);
  const all = items(out, options.context);
  const rows = topK(all, options.topK ?? 10);
  const base = out.baselineOutputValue;
  const fx = out.instanceOutputValue;
  const n = rows.length;

  // The chain runs bottom-up: the last row starts at the baseline.
  const starts = new Array<number>(n);
  const ends = new Array<number>(n);
  let cum = base;
  for (let i = n - 1; i >= 0; i--) {
    starts[i] = cum;
    cum += rows[i].attribution;
    ends[i] = cum;
  }
  const chainEnd = cum;

  const size = theme.smallFontSize;
  const texts = rows.map((r) => fmtSigned(r.attribution));
  const valueRoom = Math.max(...texts.map((v) => textWidth(v, size)), 0) + 12;
  const frame = rowFrame({
    width: options.width,
    rows: n,
    labelWidth: labelWidth(rows.map((r) => ({ name: r.label, value: r.valueText }))),
    above: 26 + HEADER_HEIGHT,
    below: 74,
    padLeft: valueRoom,
    padRight: valueRoom,
  });
  const x = d3.scaleLinear(valueDomain([base, fx, ...starts, ...ends]), [frame.plotLeft, frame.plotRight]);

  const bName = baselineName(explanation);
  const name = outputTitle(explanation, out);
  const svg = createSvg(docOf(options), {
    width: frame.width,
    height: frame.height,
    title: `Waterfall of ${methodName(explanation)} for output ${out.output}, instance ${options.instance ?? 0}`,
    desc: `${headerText(explanation, out, options)}. ${describe(explanation, out.output, bName, base, fx, chainEnd, rows, all.length)}`,
  });
  const g = svg.append('g');
  header(g, theme.margin.left, theme.margin.top + 6, headerText(explanation, out, options), frame.width - theme.margin.left - theme.margin.right);
  const axisY = frame.rowsBottom + 6;
  const barH = frame.rowHeight * 0.72;

  // Row guides first, so the bars draw over them.
  const guides = rows.map((_, i) => `M${round(frame.plotLeft - valueRoom)},${round(frame.rowY(i))}H${round(frame.plotRight + valueRoom)}`);
  g.append('path').attr('d', guides.join('')).attr('stroke', theme.grid).attr('stroke-dasharray', '1 3').attr('fill', 'none');
  axisX(g, x, { y: axisY, gridTop: frame.rowsTop - 4, title: `Model output: ${name}`, titleOffset: 56 });

  // Connectors: each bar's end is where the bar above starts.
  const links: string[] = [];
  for (let i = n - 1; i >= 1; i--) links.push(`M${round(x(ends[i]))},${round(frame.rowY(i) - barH / 2)}V${round(frame.rowY(i - 1) + barH / 2)}`);
  g.append('path').attr('d', links.join('')).attr('stroke', theme.axis).attr('stroke-dasharray', '2 2').attr('fill', 'none');

  // Bars, value labels and row labels each in one group that carries their shared style.
  const bars = g.append('g').attr('class', 'bars');
  const [values, valueStyle] = textGroup(g, { size: theme.smallFontSize }, 'values');
  const [names, nameStyle] = textGroup(g, { anchor: 'end' }, 'labels');
  rows.forEach((row, i) => {
    const y = frame.rowY(i);
    const fill = signColour(row.attribution);
    const bar = bars
      .append('path')
      .attr('class', 'bar')
      .attr('d', arrowPath(x(starts[i]), x(ends[i]), y, barH))
      .attr('fill', fill)
      .attr('data-start', starts[i])
      .attr('data-end', ends[i])
      .attr('data-attribution', row.attribution);
    if (row.feature !== undefined) bar.attr('data-feature', row.feature);
    else bar.attr('data-count', row.count);
    valueLabel(values, valueStyle, x(starts[i]), x(ends[i]), y, texts[i], row.attribution, fill);
    rowLabel(names, frame.labelRight, y, row.label, row.valueText, frame.labelRight - theme.margin.left, row.feature ? {} : { fill: theme.mutedText }, nameStyle);
  });

  // The two ends of the story: the baseline under the chart, f(x) above it.
  const bottomBar = frame.rowY(n - 1) + barH / 2;
  ruleX(g, x(base), bottomBar, axisY, { stroke: theme.axis, dash: '4 3' });
  const bText = `${bName} = ${fmt(base)}`;
  label(g, clampLabel(x(base), bText, theme.fontSize, 0, frame.width), axisY + 34, bText, { anchor: 'middle', fill: theme.mutedText });
  ruleX(g, x(fx), frame.rowsTop - 8, frame.rowY(0) - barH / 2, { stroke: theme.axis, dash: '4 3' });
  const fText = `f(x) = ${fmt(fx)}`;
  label(g, clampLabel(x(fx), fText, theme.fontSize, 0, frame.width, true), frame.rowsTop - 16, fText, { anchor: 'middle', bold: true });
  return serializeSvg(svg);
}

/** Inside the bar when it fits (white on blue, dark on vermillion), else just past its point. */
function valueLabel(g: G, inherited: LabelStyle, x0: number, x1: number, y: number, text: string, v: number, fill: string) {
  const room = Math.abs(x1 - x0) - 7 - 6;
  if (textWidth(text, theme.smallFontSize) <= room) {
    const cx = (x0 + x1) / 2 - Math.sign(x1 - x0) * 3.5;
    label(g, cx, y, text, { anchor: 'middle', fill: inkOn(fill) }, inherited);
  } else if (x1 >= x0) {
    label(g, x1 + 4, y, text, { fill: signTextColour(v) }, inherited);
  } else {
    label(g, x1 - 4, y, text, { anchor: 'end', fill: signTextColour(v) }, inherited);
  }
}

function describe(
  explanation: Explanation,
  output: string,
  bName: string,
  base: number,
  fx: number,
  chainEnd: number,
  rows: ReturnType<typeof topK>,
  total: number,
): string {
  const top = rows.find((r) => r.count === 1);
  const parts = [`Waterfall of ${methodName(explanation)} for output ${output}: from ${bName} = ${fmt(base)} to f(x) = ${fmt(fx)}`];
  if (top) parts.push(`largest push: ${top.label} (${fmtSigned(top.attribution)})`);
  const shown = rows.filter((r) => r.count === 1).length;
  parts.push(shown < total ? `${shown} of ${total} features shown, the other ${total - shown} sum to ${fmtSigned(rows[rows.length - 1].attribution)}` : `${total} features`);
  // Kernel SHAP sums exactly by construction; IG may not, and a reader should know by how much.
  const gap = chainEnd - fx;
  if (Math.abs(gap) > 1e-6 * Math.max(1, Math.abs(fx))) parts.push(`attributions sum to ${fmtSigned(chainEnd - base)}, leaving ${fmtSigned(-gap)} unexplained`);
  return parts.join('; ') + '.';
}
