/** Colour legends: a stepped ramp for continuous scales (no gradient ids to collide when several SVGs share one HTML page) and swatches for categories. */
import { round, type G } from '../document.js';
import { theme } from '../theme.js';
import { label } from './labels.js';

export interface RampOptions {
  x: number;
  y: number;
  /** Length along the ramp and its thickness. */
  length: number;
  thickness?: number;
  /** t in [0, 1] -> colour. */
  colour: (t: number) => string;
  steps?: number;
  /** Labels at the start and end (and middle, if given) of the ramp. */
  labels: [string, string] | [string, string, string];
  title?: string;
  vertical?: boolean;
  /** Opacity of each step (the image overlay is translucent, so its legend is too). */
  opacity?: (t: number) => number;
}

export function rampLegend(g: G, o: RampOptions): void {
  const steps = o.steps ?? 32;
  const th = o.thickness ?? 10;
  const legend = g.append('g').attr('class', 'legend').attr('font-size', theme.smallFontSize);
  const step = o.length / steps;
  for (let i = 0; i < steps; i++) {
    const t = (i + 0.5) / steps;
    // Vertical ramps run low at the bottom to high at the top, as a value axis does.
    const rect = o.vertical
      ? legend.append('rect').attr('x', round(o.x)).attr('y', round(o.y + o.length - (i + 1) * step)).attr('width', th).attr('height', round(step + 0.3))
      : legend.append('rect').attr('x', round(o.x + i * step)).attr('y', round(o.y)).attr('width', round(step + 0.3)).attr('height', th);
    rect.attr('fill', o.colour(t));
    if (o.opacity) rect.attr('fill-opacity', round(o.opacity(t)));
  }
  const [first, last, middle] = o.labels;
  const muted = { fill: theme.mutedText };
  const small = { size: theme.smallFontSize }; // set once on the legend group
  if (o.vertical) {
    label(legend, o.x + th / 2, o.y + o.length + 10, first, { ...muted, anchor: 'middle' }, small);
    label(legend, o.x + th / 2, o.y - 10, last, { ...muted, anchor: 'middle' }, small);
    if (o.title) {
      label(legend, o.x + th + 14, o.y + o.length / 2, o.title, { ...muted, anchor: 'middle' }, small).attr(
        'transform',
        `rotate(-90 ${round(o.x + th + 14)} ${round(o.y + o.length / 2)})`,
      );
    }
  } else {
    label(legend, o.x, o.y + th + 10, first, { ...muted, anchor: 'start' }, small);
    label(legend, o.x + o.length, o.y + th + 10, last, { ...muted, anchor: 'end' }, small);
    if (middle !== undefined) label(legend, o.x + o.length / 2, o.y + th + 10, middle, { ...muted, anchor: 'middle' }, small);
    if (o.title) label(legend, o.x + o.length / 2, o.y - 9, o.title, { ...muted, anchor: 'middle' }, small);
  }
}

/** A row of colour swatches with their labels; returns the width used. */
export function swatches(g: G, x: number, y: number, items: { label: string; colour: string }[], widthOf: (s: string) => number): number {
  const legend = g.append('g').attr('class', 'legend').attr('font-size', theme.smallFontSize);
  let cx = x;
  for (const item of items) {
    legend.append('rect').attr('x', round(cx)).attr('y', round(y - 5)).attr('width', 10).attr('height', 10).attr('fill', item.colour);
    label(legend, cx + 14, y, item.label, { fill: theme.mutedText }, { size: theme.smallFontSize });
    cx += 14 + widthOf(item.label) + 16;
  }
  return cx - x;
}
