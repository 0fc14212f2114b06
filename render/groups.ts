/**
 * Grouped horizontal bars with optional confidence intervals: one band per group, one bar per measure
 * inside it. Made for the fairness views (selection rate by group, mean attribution by group ...),
 * with an optional reference line such as the four-fifths threshold.
 */
import * as d3 from 'd3';
import { createSvg, docOf, serializeSvg, type RenderOptions } from './document.js';
import { axisX, ruleX, ruleXAround, type Box } from './marks/axis.js';
import { barPath, whiskerPath } from './marks/bars.js';
import { label, rowLabel } from './marks/labels.js';
import { swatches } from './marks/legend.js';
import { clampLabel, valueDomain } from './scales.js';
import { fmt, textWidth } from './text.js';
import { theme } from './theme.js';

export interface GroupValue {
  label: string;
  value: number;
  /** Confidence interval bounds, drawn as a whisker when both are given. */
  lo?: number;
  hi?: number;
}

export interface GroupComparison {
  group: string;
  values: GroupValue[];
}

export interface GroupComparisonOptions extends RenderOptions {
  /** Axis title, e.g. "Selection rate". */
  valueLabel?: string;
  /** A vertical reference line, e.g. { value: 0.8, label: 'four-fifths rule' }. */
  reference?: { value: number; label: string };
  title?: string;
}

export function renderGroupComparison(groups: GroupComparison[], options: GroupComparisonOptions = {}): string {
  const measures = Array.from(new Set(groups.flatMap((g) => g.values.map((v) => v.label))));
  const colour = d3.scaleOrdinal<string, string>(measures, theme.categorical);
  const bar = 18;
  const bandPad = 14;
  const band = (g: GroupComparison) => Math.max(1, g.values.length) * bar + bandPad;
  const texts = groups.map((g) => g.values.map(valueText));
  const room = Math.max(0, ...texts.flat().map((t) => textWidth(t, theme.smallFontSize))) + 10;

  const width = options.width ?? theme.width;
  const m = theme.margin;
  const legendH = measures.length > 1 || options.reference ? 24 : 0;
  const labelW = Math.min(Math.max(0, ...groups.map((g) => textWidth(g.group, theme.fontSize, true))), theme.maxLabelWidth);
  const negative = groups.some((g) => g.values.some((v) => v.value < 0));
  const left = m.left + labelW + 12 + (negative ? room : 0);
  const right = Math.max(width - m.right - room, left + width / 3);
  const top = m.top + legendH + (options.reference ? 14 : 0);
  const rowsH = d3.sum(groups, band);
  const height = top + rowsH + 52;

  const all = groups.flatMap((g) => g.values.flatMap((v) => [v.value, v.lo ?? v.value, v.hi ?? v.value]));
  if (options.reference) all.push(options.reference.value);
  const x = d3.scaleLinear(valueDomain(all, true), [left, right]).nice();

  const title = options.title ?? `${options.valueLabel ?? 'Values'} by group`;
  const svg = createSvg(docOf(options), { width, height, title, desc: describe(groups, title, options) });
  const g = svg.append('g');
  const axisY = top + rowsH;
  axisX(g, x, { y: axisY, gridTop: top - 4, title: options.valueLabel });

  // Where the value labels are, so the reference line can leave a gap where it would cross one.
  const labelBoxes: Box[] = [];
  let y = top;
  groups.forEach((grp, gi) => {
    const gg = g.append('g').attr('class', 'group').attr('data-group', grp.group);
    const h = band(grp);
    rowLabel(gg, m.left + labelW, y + (h - bandPad) / 2, grp.group, undefined, labelW, { bold: true });
    grp.values.forEach((v, vi) => {
      const cy = y + vi * bar + bar / 2;
      const b = gg.append('g').attr('class', 'bar').attr('data-label', v.label).attr('data-value', v.value);
      b.append('path').attr('d', barPath(x(0), x(v.value), cy, bar - 4)).attr('fill', colour(v.label));
      const ci = v.lo !== undefined && v.hi !== undefined;
      if (ci) b.append('path').attr('d', whiskerPath(x(v.lo!), x(v.hi!), cy, 8)).attr('stroke', theme.rule).attr('fill', 'none');
      // The label goes past the bar's far end (and its interval), on the side the bar points to.
      const style = { size: theme.smallFontSize, fill: theme.mutedText };
      const w = textWidth(texts[gi][vi], theme.smallFontSize);
      const half = theme.smallFontSize * 0.6;
      if (v.value < 0) {
        const lx = Math.min(x(v.value), ci ? x(v.lo!) : Infinity) - 5;
        label(b, lx, cy, texts[gi][vi], { ...style, anchor: 'end' });
        labelBoxes.push({ x0: lx - w, x1: lx, y0: cy - half, y1: cy + half });
      } else {
        const lx = Math.max(x(v.value), ci ? x(v.hi!) : -Infinity) + 5;
        label(b, lx, cy, texts[gi][vi], style);
        labelBoxes.push({ x0: lx, x1: lx + w, y0: cy - half, y1: cy + half });
      }
    });
    y += h;
  });
  ruleX(g, x(0), top - 4, axisY);

  if (measures.length > 1) swatches(g, left, m.top + 6, measures.map((l) => ({ label: l, colour: colour(l) })), (s) => textWidth(s, theme.smallFontSize));
  if (options.reference) {
    const rx = x(options.reference.value);
    // The line stops short of every value label it would run through, and resumes past it.
    ruleXAround(g, rx, top - 8, axisY, labelBoxes, { stroke: theme.text, dash: '5 3', width: 1.5 });
    const t = `${options.reference.label} (${fmt(options.reference.value)})`;
    label(g, clampLabel(rx, t, theme.smallFontSize, left, width), top - 14, t, { anchor: 'middle', size: theme.smallFontSize });
  }
  return serializeSvg(svg);
}

function valueText(v: GroupValue): string {
  return v.lo !== undefined && v.hi !== undefined ? `${fmt(v.value)} [${fmt(v.lo)}, ${fmt(v.hi)}]` : fmt(v.value);
}

function describe(groups: GroupComparison[], title: string, options: GroupComparisonOptions): string {
  const parts = [`Grouped bars: ${title}, ${groups.length} group(s)`];
  const byMeasure = d3.group(groups.flatMap((g) => g.values.map((v) => ({ group: g.group, ...v }))), (v) => v.label);
  for (const [measure, vs] of byMeasure) {
    const lo = d3.least(vs, (v) => v.value)!;
    const hi = d3.greatest(vs, (v) => v.value)!;
    parts.push(`${measure}: lowest ${lo.group} ${fmt(lo.value)}, highest ${hi.group} ${fmt(hi.value)}`);
  }
  if (options.reference) parts.push(`reference line at ${fmt(options.reference.value)} (${options.reference.label})`);
  return parts.join('; ') + '.';
}
