/**
 * The one theme every chart uses. Colours are chosen to stay distinguishable under the common colour
 * vision deficiencies: the diverging pair is Okabe-Ito blue (#0072B2) for negative contributions and
 * Okabe-Ito vermillion (#D55E00) for positive ones. Blue/orange differ along the blue-yellow axis,
 * which protanopes and deuteranopes keep, and also differ in lightness, so they survive grayscale print.
 */
import * as d3 from 'd3';

export const theme = {
  /** DejaVu Sans first: resvg draws text only with a loaded font, and png.ts loads exactly this one. */
  fontFamily: "'DejaVu Sans', Verdana, 'Helvetica Neue', Arial, sans-serif",
  fontSize: 12,
  smallFontSize: 10.5,
  titleFontSize: 13,

  negative: '#0072B2',
  positive: '#D55E00',
  /** Lighter tints of the pair, for fills under the stronger strokes/labels. */
  negativeLight: '#7FB8D8',
  positiveLight: '#EAAE7F',
  /** Darker shades of the pair for text on white (contrast 6.9:1 and 5.7:1, WCAG AA). */
  negativeText: '#005F94',
  positiveText: '#A94A00',
  neutral: '#8C8C8C',
  /** Bars that are not signed (importances, mean |attribution|). */
  mark: '#0072B2',
  markLight: '#7FB8D8',
  neutralLight: '#C8C8C8',

  text: '#1A1A1A',
  mutedText: '#555555',
  axis: '#6E6E6E',
  grid: '#E6E6E6',
  rule: '#333333',
  background: '#FFFFFF',

  /** Okabe-Ito without yellow first (yellow on white is hard to read); for categories. */
  categorical: ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#000000', '#F0E442'],

  width: 720,
  rowHeight: 24,
  margin: { top: 16, right: 24, bottom: 44, left: 16 },
  /**
   * Longest feature label (pixels) before a name is truncated with an ellipsis; the row frame also
   * keeps a third of the chart for the bars, so labels are cut only when the chart has no room left.
   */
  maxLabelWidth: 360,
} as const;

export type Theme = typeof theme;

export const signColour = (v: number): string => (v < 0 ? theme.negative : theme.positive);

/**
 * Diverging colour for signed values (image attributions): blue through near-white to vermillion,
 * interpolated in Lab so the lightness ramps evenly on both sides.
 */
export const divergingInterpolator = d3.piecewise(d3.interpolateLab, [theme.negative, '#F4F4F4', theme.positive]);

/**
 * Low -> high colour for feature values (beeswarm). No light middle: every dot must stay visible on
 * white. HCL takes the short way round the hue circle (blue -> magenta -> orange), with near-constant
 * lightness, so it reads as one ramp under deuteranopia/protanopia too (blue -> grey -> yellow).
 */
export const featureValueInterpolator = d3.interpolateHcl(theme.negative, theme.positive);

export const signTextColour = (v: number): string => (v < 0 ? theme.negativeText : theme.positiveText);

/** White or near-black, whichever contrasts more with `fill` (white on the blue, dark on vermillion). */
export function inkOn(fill: string): string {
  const lum = (hex: string) => {
    const c = d3.rgb(hex);
    const lin = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  };
  const l = lum(fill);
  return (1.05 / (l + 0.05) >= (l + 0.05) / (lum(theme.text) + 0.05)) ? '#FFFFFF' : theme.text;
}
