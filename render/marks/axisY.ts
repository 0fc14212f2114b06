/**
 * A vertical value axis and an axis of named positions (categories, or grid values on equal-width
 * cells), in the same lean style as axis.ts: one path for the grid, one for the ticks, one <text> per
 * label. Labels go through `.text()`, so category names come out escaped.
 */
import * as d3 from 'd3';
import { round, type G } from '../document.js';
import { textWidth, truncate } from '../text.js';
import { theme } from '../theme.js';

export interface AxisYOptions {
  /** Where the tick labels hang from (the left edge of the plot). */
  x: number;
  /** Grid lines span [x, gridRight]; omit for no grid. */
  gridRight?: number;
  ticks?: number;
  title?: string;
}

/** Tick labels of a vertical linear scale and the width they need (to lay out the left margin first). */
export function yTicks(y: d3.ScaleLinear<number, number>, count = 6): { values: number[]; labels: string[]; width: number } {
  const values = y.ticks(count);
  const format = y.tickFormat(count);
  const labels = values.map((v) => format(v));
  return { values, labels, width: Math.max(0, ...labels.map((s) => textWidth(s, theme.smallFontSize))) };
}

export function axisY(g: G, y: d3.ScaleLinear<number, number>, o: AxisYOptions): void {
  const { values, labels, width } = yTicks(y, o.ticks);
  const [r0, r1] = y.range();
  const axis = g.append('g').attr('class', 'axis axis-y').attr('font-size', theme.smallFontSize).attr('fill', theme.mutedText).attr('text-anchor', 'end');
  if (o.gridRight !== undefined) {
    axis.append('path').attr('d', values.map((v) => `M${round(o.x)},${round(y(v))}H${round(o.gridRight!)}`).join('')).attr('stroke', theme.grid).attr('fill', 'none');
  }
  const marks = values.map((v) => `M${round(o.x)},${round(y(v))}h-4`).join('');
  axis
    .append('path')
    .attr('d', `M${round(o.x)},${round(Math.min(r0, r1))}V${round(Math.max(r0, r1))}${marks}`)
    .attr('stroke', theme.axis)
    .attr('fill', 'none');
  values.forEach((v, k) => axis.append('text').attr('x', round(o.x - 7)).attr('y', round(y(v) + 0.35 * theme.smallFontSize)).text(labels[k]));
  if (o.title) {
    const tx = o.x - width - 16;
    const ty = (r0 + r1) / 2;
    axis
      .append('text')
      .attr('text-anchor', 'middle')
      .attr('fill', theme.text)
      .attr('font-size', theme.fontSize)
      .attr('transform', `translate(${round(tx)},${round(ty)}) rotate(-90)`)
      .text(o.title);
  }
}

export interface AxisPointsOptions {
  /** 'bottom': labels below `at` (a y); 'left': labels left of `at` (an x). */
  side: 'bottom' | 'left';
  at: number;
  /** Pixels available per label (longer labels are cut with an ellipsis, full text in a <title>). */
  room: number;
  title?: string;
  /** Where the title goes: below (bottom) or left (left) of the labels, this far from the axis line. */
  titleOffset?: number;
}

/** Labels at given positions (category names, or grid values on cells); at most ~one per `room` pixels are kept when crowded. */
export function axisPoints(g: G, positions: number[], labels: string[], o: AxisPointsOptions): void {
  const axis = g.append('g').attr('class', 'axis axis-points').attr('font-size', theme.smallFontSize).attr('fill', theme.mutedText);
  axis.attr('text-anchor', o.side === 'bottom' ? 'middle' : 'end');
  const step = positions.length > 1 ? Math.abs(positions[1] - positions[0]) : o.room;
  // Crowded (e.g. 20 grid values on 300 px): keep every k-th label.
  const need = o.side === 'bottom' ? Math.max(...labels.map((s) => Math.min(textWidth(s, theme.smallFontSize), o.room))) + 6 : theme.smallFontSize + 2;
  const every = Math.max(1, Math.ceil(need / Math.max(step, 1)));
  const marks = positions.map((p) => (o.side === 'bottom' ? `M${round(p)},${round(o.at)}v4` : `M${round(o.at)},${round(p)}h-4`)).join('');
  axis.append('path').attr('d', marks).attr('stroke', theme.axis).attr('fill', 'none');
  positions.forEach((p, k) => {
    if (k % every !== 0) return;
    const full = labels[k];
    const text = truncate(full, o.room, theme.smallFontSize);
    const t =
      o.side === 'bottom'
        ? axis.append('text').attr('x', round(p)).attr('y', round(o.at + 7 + 0.8 * theme.smallFontSize))
        : axis.append('text').attr('x', round(o.at - 7)).attr('y', round(p + 0.35 * theme.smallFontSize));
    t.text(text);
    if (text !== full) t.append('title').text(full);
  });
  if (o.title) {
    const t = axis.append('text').attr('fill', theme.text).attr('font-size', theme.fontSize).attr('text-anchor', 'middle');
    const mid = (Math.min(...positions) + Math.max(...positions)) / 2;
    if (o.side === 'bottom') t.attr('x', round(mid)).attr('y', round(o.at + (o.titleOffset ?? 32)));
    else t.attr('transform', `translate(${round(o.at - (o.titleOffset ?? 40))},${round(mid)}) rotate(-90)`);
    t.text(o.title);
  }
}
