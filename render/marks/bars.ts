/** Bar-like shapes as path strings (d3-shape style: geometry without a DOM), rounded to 0.01 px. */
import { round } from '../document.js';

/** A rectangle from x0 to x1 (either order), centred on y. */
export function barPath(x0: number, x1: number, y: number, h: number): string {
  const a = Math.min(x0, x1);
  const w = Math.max(Math.abs(x1 - x0), 0.5); // a zero bar stays visible as a hairline
  return `M${round(a)},${round(y - h / 2)}h${round(w)}v${round(h)}h${round(-w)}Z`;
}

/**
 * A SHAP-style arrow from x0 to x1: a bar whose end at x1 is pointed, so the direction of the push
 * reads without colour. The head never takes more than the whole bar.
 */
export function arrowPath(x0: number, x1: number, y: number, h: number, head = 7): string {
  const dir = x1 >= x0 ? 1 : -1;
  const len = Math.abs(x1 - x0);
  const hd = Math.min(head, len);
  const neck = x1 - dir * hd;
  const t = round(y - h / 2);
  const b = round(y + h / 2);
  if (len < 0.5) return barPath(x0, x1, y, h);
  return `M${round(x0)},${t}H${round(neck)}L${round(x1)},${round(y)}L${round(neck)},${b}H${round(x0)}Z`;
}

/**
 * A chevron segment for the force plot: pointed at x1 and notched at x0, so consecutive segments of
 * a stack nest into each other.
 */
export function chevronPath(x0: number, x1: number, y: number, h: number, head = 6): string {
  const dir = x1 >= x0 ? 1 : -1;
  const len = Math.abs(x1 - x0);
  const hd = Math.min(head, len / 2);
  const t = round(y - h / 2);
  const b = round(y + h / 2);
  return (
    `M${round(x0)},${t}H${round(x1 - dir * hd)}L${round(x1)},${round(y)}L${round(x1 - dir * hd)},${b}` +
    `H${round(x0)}L${round(x0 + dir * hd)},${round(y)}Z`
  );
}

/** An error bar from lo to hi with end caps of height `cap`. */
export function whiskerPath(lo: number, hi: number, y: number, cap = 8): string {
  const c = round(cap / 2);
  return `M${round(lo)},${round(y)}H${round(hi)}M${round(lo)},${round(y - c)}v${round(2 * c)}M${round(hi)},${round(y - c)}v${round(2 * c)}`;
}
