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

/**
 * "name = value" for a feature row; `value` omitted for rows that stand for several features. A
 * number is formatted by fmtValue; a string (render/select.ts valueText: category labels, integers
 * without separators) is used as it is.
 */
export function featureText(name: string, value?: number | string): string {
  return value === undefined ? name : `${name} = ${typeof value === 'number' ? fmtValue(value) : value}`;
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
  value: number | string | undefined,
  maxWidth: number,
  style: LabelStyle = {},
  inherited: LabelStyle = {},
) {
  const size = style.size ?? inherited.size ?? theme.fontSize;
  const full = featureText(name, value);
  let text = full;
  // Half a pixel of slack: a label measured to fit exactly must not be cut by rounding in the layout.
  if (textWidth(full, size, style.bold) > maxWidth + 0.5) {
    const suffix = value === undefined ? '' : featureText('', value);
    const room = Math.max(maxWidth - textWidth(suffix, size, style.bold), maxWidth / 3);
    text = truncate(name, room, size, style.bold) + suffix;
  }
  const t = label(g, x, y, text, { anchor: 'end', ...style }, inherited);
  if (text !== full) t.append('title').text(full);
  return t;
}

/** Width the row labels need, capped at the theme's maximum. */
export function labelWidth(rows: { name: string; value?: number | string }[], size = theme.fontSize, max: number = theme.maxLabelWidth): number {
  let w = 0;
  for (const r of rows) w = Math.max(w, textWidth(featureText(r.name, r.value), size));
  return Math.min(w, max);
}

/** Height a chart reserves above its content for the header line. */
export const HEADER_HEIGHT = 22;

/**
 * The chart's header line (which instance and output it explains, and the model's value), at the top
 * left; cut to `maxWidth` with the full text in a tooltip.
 */
export function header(g: G, x: number, y: number, text: string, maxWidth: number) {
  const shown = truncate(text, maxWidth, theme.fontSize, true);
  const t = label(g, x, y, shown, { bold: true }).attr('class', 'header');
  if (shown !== text) t.append('title').text(text);
  return t;
}
