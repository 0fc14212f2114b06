/**
 * Text measuring and number formatting. jsdom has no layout engine, so label widths come from the
 * advance widths of DejaVu Sans (the font the theme lists first and png.ts loads), read once from the
 * TTF files. Browsers that fall back to a narrower font only get more room.
 */
import * as d3 from 'd3';

// Advance widths in 1/1000 em for U+0020..U+007E, DejaVu Sans Book and Bold.
const REGULAR = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636, 636,
  636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787,
  603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635,
  634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];
const BOLD = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696, 696, 696, 696,
  696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850,
  733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716,
  712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];
// Outside ASCII: the math signs d3-format and our labels use, else a wide guess (CJK is ~1 em).
const OTHER: Record<number, number> = { 0x2212: 838, 0x2026: 1000, 0x2032: 227, 0xd7: 838, 0xb1: 838, 0xa0: 318 };

export function textWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? BOLD : REGULAR;
  let units = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    units += c >= 32 && c < 127 ? table[c - 32] : (OTHER[c] ?? (c >= 0x2e80 ? 1000 : 700));
  }
  return (units / 1000) * fontSize;
}

/** `text` cut with an ellipsis to fit `maxWidth`, or unchanged when it fits. */
export function truncate(text: string, maxWidth: number, fontSize: number, bold = false): string {
  if (textWidth(text, fontSize, bold) <= maxWidth) return text;
  const chars = Array.from(text);
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (textWidth(chars.slice(0, mid).join('') + '…', fontSize, bold) <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return chars.slice(0, lo).join('').trimEnd() + '…';
}

// `r` keeps fixed notation (42,000 rather than `g`'s 4.2e+4); exponents only far from 1.
const fixed = d3.format(',.3~r');
const fixedSigned = d3.format('+,.3~r');
const expo = d3.format('.2~e');
const expoSigned = d3.format('+.2~e');

/** ~3 significant digits, trailing zeros dropped, a true minus sign: 0.213, −1.5, 42,000, 0.000123, 1.23e-7. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-4 && a < 1e9 ? fixed(v) : expo(v);
}

/** As `fmt`, with a sign always shown: +0.31, −0.12. */
export function fmtSigned(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-4 && a < 1e9 ? fixedSigned(v) : expoSigned(v);
}

const grouped = d3.format(',');

/** A feature value as it appears in "name = value" labels: integers in full, else ~3 digits. */
export function fmtValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return grouped(v);
  return fmt(v);
}
