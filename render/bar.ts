/**
 * Attributions of one instance as bars from zero, sorted by |attribution|, with ± stderr whiskers when
 * the explainer estimated one (Kernel SHAP does; exact enumeration and IG do not). A note under the
 * axis says that "± s" is one standard error.
 */
import * as d3 from 'd3';
import type { Explanation } from '../explainers/types.js';
import { createSvg, docOf, serializeSvg, type RenderOptions } from './document.js';
import { rowFrame } from './layout.js';
import { axisX, ruleX } from './marks/axis.js';
import { barPath, whiskerPath } from './marks/bars.js';
import { header, HEADER_HEIGHT, label, labelWidth, rowLabel } from './marks/labels.js';
import { valueDomain } from './scales.js';
import { headerText, impactOn, items, methodName, pick, topK, type PickOptions } from './select.js';
import { fmt, fmtSigned, textWidth } from './text.js';
import { signColour, signTextColour, theme } from './theme.js';

export interface BarOptions extends RenderOptions, PickOptions {
  /** Features drawn on their own row; the rest are summed into one. Default 10. */
  topK?: number;
}

export function renderBar(explanation: Explanation, options: BarOptions = {}): string {
  const out = pick(explanation, options);
  const rows = topK(items(out, options.context), options.topK ?? 10);
  const hasErr = rows.some((r) => r.stderr !== undefined && r.stderr > 0);
  const texts = rows.map((r) => fmtSigned(r.attribution) + (r.stderr ? ` ± ${fmt(r.stderr)}` : ''));
  const room = Math.max(0, ...texts.map((t) => textWidth(t, theme.smallFontSize))) + 10;
  const frame = rowFrame({
    width: options.width,
    rows: rows.length,
    labelWidth: labelWidth(rows.map((r) => ({ name: r.label, value: r.valueText }))),
    above: HEADER_HEIGHT,
    below: hasErr ? 70 : 52,
    padLeft: rows.some((r) => r.attribution < 0) ? room : 0,
    padRight: rows.some((r) => r.attribution >= 0) ? room : 0,
  });
  const ends = rows.flatMap((r) => [r.attribution - (r.stderr ?? 0), r.attribution + (r.stderr ?? 0)]);
  const x = d3.scaleLinear(valueDomain(ends, true), [frame.plotLeft, frame.plotRight]);

  const what = methodName(explanation);
  const top = rows.find((r) => r.count === 1);
  const svg = createSvg(docOf(options), {
    width: frame.width,
    height: frame.height,
    title: `${what} for output ${out.output}, instance ${options.instance ?? 0}`,
    desc:
      `${headerText(explanation, out, options)}. Bar chart of ${what} for output ${out.output}, largest |value| first` +
      (top ? `; largest: ${top.label} (${fmtSigned(top.attribution)})` : '') +
      (hasErr ? '; whiskers and "± s" show one standard error of each estimate.' : '.'),
  });
  const g = svg.append('g');
  header(g, theme.margin.left, theme.margin.top + 6, headerText(explanation, out, options), frame.width - theme.margin.left - theme.margin.right);
  const axisY = frame.rowsBottom + 6;
  axisX(g, x, { y: axisY, gridTop: frame.rowsTop, title: `${what} (impact on ${impactOn(explanation, out)})` });
  if (hasErr) {
    const note = '± s: one standard error of the estimate (the whiskers)';
    label(g, (frame.plotLeft + frame.plotRight) / 2, axisY + 50, note, { anchor: 'middle', size: theme.smallFontSize, fill: theme.mutedText });
  }
  const barH = frame.rowHeight * 0.62;
  rows.forEach((row, i) => {
    const y = frame.rowY(i);
    const r = g.append('g').attr('class', 'row').attr('data-attribution', row.attribution);
    if (row.feature !== undefined) r.attr('data-feature', row.feature);
    r.append('path').attr('d', barPath(x(0), x(row.attribution), y, barH)).attr('fill', signColour(row.attribution));
    let end = x(row.attribution);
    if (row.stderr) {
      const lo = x(row.attribution - row.stderr);
      const hi = x(row.attribution + row.stderr);
      r.append('path').attr('d', whiskerPath(lo, hi, y, barH * 0.6)).attr('stroke', theme.rule).attr('fill', 'none');
      end = row.attribution < 0 ? lo : hi;
    }
    const style = { fill: signTextColour(row.attribution), size: theme.smallFontSize };
    if (row.attribution < 0) label(r, end - 5, y, texts[i], { ...style, anchor: 'end' });
    else label(r, end + 5, y, texts[i], style);
    rowLabel(r, frame.labelRight, y, row.label, row.valueText, frame.labelRight - theme.margin.left, row.feature ? {} : { fill: theme.mutedText });
  });
  ruleX(g, x(0), frame.rowsTop, axisY);
  return serializeSvg(svg);
}
