/** Text marks: plain labels, and the "name = value" row labels whose names are user input. */
import { round, type G } from '../document.js';
import { fmtValue, textWidth, truncate } from '../text.js';
import { theme } from '../theme.js';

export interface LabelStyle {
  anchor?: 'start' | 'middle' | 'end';
  fill?: string;
  size?: number;
  bold?: boolean;
  /** Vertical alignment of `y`: the middle of the text (default) or its baseline. */
  baseline?: 'middle' | 'alphabetic';
}

/**
 * A text mark. The text goes through `.text()`, so the serializer escapes it. Style attributes are
 * written only where they differ from `inherited` (what an enclosing `textGroup` already sets): each
 * attribute costs jsdom an object, and a chart has hundreds of labels. Vertical centring is a
 * computed y (0.35 em below the middle) rather than a `dy` attribute, for the same reason.
 */
export function label(g: G, x: number, y: number, text: string, style: LabelStyle = {}, inherited: LabelStyle = {}) {
  const size = style.size ?? inherited.size ?? theme.fontSize;
  const t = g
    .append('text')
    .attr('x', round(x))
    .attr('y', round(style.baseline === 'alphabetic' ? y : y + 0.35 * size));
  const anchor = style.anchor ?? 'start';
  if (anchor !== (inherited.anchor ?? 'start')) t.attr('text-anchor', anchor);
  if (style.fill !== undefined && style.fill !== inherited.fill) t.attr('fill', style.fill);
  if (style.size !== undefined && style.size !== inherited.size) t.attr('font-size', style.size);
  if (style.bold && !inherited.bold) t.attr('font-weight', 'bold');
  return t.text(text);
}

/** A <g> that sets text style for the labels inside it; pass the returned style as their `inherited`. */
export function textGroup(g: G, style: LabelStyle, className?: string): [G, LabelStyle] {
  const group = g.append('g');
  if (className) group.attr('class', className);
  if (style.anchor && style.anchor !== 'start') group.attr('text-anchor', style.anchor);
  if (style.fill) group.attr('fill', style.fill);
  if (style.size) group.attr('font-size', style.size);
  if (style.bold) group.attr('font-weight', 'bold');
  return [group, style];
}

/** "name = value" for a feature row; `value` omitted for rows that stand for several features. */
export function featureText(name: string, value?: number): string {
  return value === undefined ? name : `${name} = ${fmtValue(value)}`;
}

/**
 * A right-aligned row label that fits `maxWidth`: the name part is truncated first (the value is the
 * part that changes between instances, so it stays), and the full name goes into a <title> child,
 * which browsers show as a tooltip.
 */
export function rowLabel(
  g: G,
  x: number,
  y: number,
  name: string,
  value: number | undefined,
  maxWidth: number,
  style: LabelStyle = {},
  inherited: LabelStyle = {},
) {
  const size = style.size ?? inherited.size ?? theme.fontSize;
  const full = featureText(name, value);
  let text = full;
  if (textWidth(full, size, style.bold) > maxWidth) {
    const suffix = value === undefined ? '' : ` = ${fmtValue(value)}`;
    const room = Math.max(maxWidth - textWidth(suffix, size, style.bold), maxWidth / 3);
    text = truncate(name, room, size, style.bold) + suffix;
  }
  const t = label(g, x, y, text, { anchor: 'end', ...style }, inherited);
  if (text !== full) t.append('title').text(full);
  return t;
}

/** Width the row labels need, capped at the theme's maximum. */
export function labelWidth(rows: { name: string; value?: number }[], size = theme.fontSize, max: number = theme.maxLabelWidth): number {
  let w = 0;
  for (const r of rows) w = Math.max(w, textWidth(featureText(r.name, r.value), size));
  return Math.min(w, max);
}
