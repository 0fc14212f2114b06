/**
 * A horizontal value axis, leaner than d3-axis: one path for all grid lines and one <text> per tick
 * (d3-axis makes a <g>, <line> and <text> per tick, and jsdom pays for every element).
 */
import * as d3 from 'd3';
import { round, type G } from '../document.js';
import { textWidth } from '../text.js';
import { theme } from '../theme.js';

export interface AxisXOptions {
  /** Where the tick labels hang from (the bottom of the plot). */
  y: number;
  /** Grid lines span [gridTop, y]; omit for no grid. */
  gridTop?: number;
  /** Roughly how many ticks; default one per ~90 px. */
  ticks?: number;
  title?: string;
  /** Title baseline offset below the axis; default 30. */
  titleOffset?: number;
  /** Ticks above the line instead of below (force plot). */
  top?: boolean;
  /** Pixel xs of rules that cross the tick labels: labels there are left out. */
  avoid?: number[];
  /**
   * Values that always get a tick and a label (thresholds drawn as rules, e.g. PSI's 0.10 and 0.25),
   * with their text; regular tick labels that would overlap them are left out.
   */
  marked?: { value: number; text: string }[];
  /** Whole-number ticks of an integer feature (years, counts) labelled without thousands separators: 1970, not 1,970. */
  plainIntegers?: boolean;
}

export function axisX(g: G, x: d3.ScaleLinear<number, number>, options: AxisXOptions): void {
  const [r0, r1] = x.range();
  const count = options.ticks ?? Math.max(2, Math.round(Math.abs(r1 - r0) / 90));
  const ticks = x.ticks(count);
  const format = x.tickFormat(count);
  const axis = g
    .append('g')
    .attr('class', 'axis')
    .attr('font-size', theme.smallFontSize)
    .attr('fill', theme.mutedText)
    .attr('text-anchor', 'middle');
  if (options.gridTop !== undefined) {
    const grid = ticks.map((t) => `M${round(x(t))},${round(options.gridTop!)}V${round(options.y)}`).join('');
    axis.append('path').attr('d', grid).attr('stroke', theme.grid).attr('fill', 'none');
  }
  const dir = options.top ? -1 : 1;
  const marked = options.marked ?? [];
  const marks = [...ticks, ...marked.map((m) => m.value)].map((t) => `M${round(x(t))},${round(options.y)}v${dir * 4}`).join('');
  axis
    .append('path')
    .attr('d', `M${round(Math.min(r0, r1))},${round(options.y)}H${round(Math.max(r0, r1))}${marks}`)
    .attr('stroke', theme.axis)
    .attr('fill', 'none');
  // Baselines: 0.8 em below the line for bottom ticks, 7 px above it for top ones.
  const labelY = options.top ? options.y - 7 : options.y + 7 + 0.8 * theme.smallFontSize;
  const markedHalf = marked.map((m) => ({ at: x(m.value), half: textWidth(m.text, theme.smallFontSize, true) / 2 + 3 }));
  for (const t of ticks) {
    const text = options.plainIntegers && Number.isInteger(t) ? String(t).replace('-', '−') : format(t);
    const half = textWidth(text, theme.smallFontSize) / 2 + 3;
    // A tick label a rule would cut through is left out; the rule's own label carries the value.
    if (options.avoid?.some((a) => Math.abs(a - x(t)) < half)) continue;
    if (markedHalf.some((m) => Math.abs(m.at - x(t)) < half + m.half + 6)) continue;
    axis.append('text').attr('x', round(x(t))).attr('y', round(labelY)).text(text);
  }
  for (const m of marked) {
    axis.append('text').attr('x', round(x(m.value))).attr('y', round(labelY)).attr('fill', theme.text).attr('font-weight', 'bold').text(m.text);
  }
  if (options.title) {
    axis
      .append('text')
      .attr('x', round((r0 + r1) / 2))
      .attr('y', round(options.y + dir * (options.titleOffset ?? 32)))
      .attr('fill', theme.text)
      .attr('font-size', theme.fontSize)
      .text(options.title);
  }
}

/** A vertical rule, e.g. the zero line or a reference threshold. */
export function ruleX(g: G, x: number, y0: number, y1: number, style: { stroke?: string; dash?: string; width?: number } = {}) {
  const line = g
    .append('path')
    .attr('d', `M${round(x)},${round(y0)}V${round(y1)}`)
    .attr('stroke', style.stroke ?? theme.rule)
    .attr('fill', 'none');
  if (style.width !== undefined) line.attr('stroke-width', style.width);
  if (style.dash) line.attr('stroke-dasharray', style.dash);
  return line;
}

/** A label's box, for rules that must not run through it. */
export interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/**
 * A vertical rule that leaves a gap wherever it would cross one of `boxes` (value labels): the line
 * stops short of each label it meets and resumes past it, so no label is struck through.
 */
export function ruleXAround(g: G, x: number, y0: number, y1: number, boxes: Box[], style: { stroke?: string; dash?: string; width?: number } = {}) {
  const gaps = boxes
    .filter((b) => x >= b.x0 - 3 && x <= b.x1 + 3)
    .map((b) => [b.y0 - 2, b.y1 + 2] as const)
    .sort((a, b) => a[0] - b[0]);
  let from = y0;
  for (const [g0, g1] of gaps) {
    if (g0 > from) ruleX(g, x, from, g0, style);
    from = Math.max(from, g1);
  }
  if (from < y1) ruleX(g, x, from, y1, style);
}
