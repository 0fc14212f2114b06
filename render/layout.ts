/**
 * The frame shared by the ranked-row charts (waterfall, bar, mean |attribution|, importance): row
 * labels on the left, one row per feature, a value axis at the bottom. Dimensions first, then scales,
 * then marks, as Observable Plot composes a chart.
 */
import { theme } from './theme.js';

export interface RowFrame {
  width: number;
  height: number;
  /** Right edge of the row labels. */
  labelRight: number;
  /** Pixel range of the value scale. */
  plotLeft: number;
  plotRight: number;
  /** Top of the first row and bottom of the last (where the axis sits). */
  rowsTop: number;
  rowsBottom: number;
  rowHeight: number;
  /** Centre line of row i. */
  rowY(i: number): number;
}

export interface RowFrameOptions {
  width?: number;
  rows: number;
  labelWidth: number;
  rowHeight?: number;
  /** Space above the rows (for labels like f(x) = ...) and below the axis line. */
  above?: number;
  below?: number;
  /** Pixels kept free at each end of the value range, for labels drawn beyond the bars. */
  padLeft?: number;
  padRight?: number;
  /** Pixels kept free at the right edge of the chart (e.g. a legend). */
  legendWidth?: number;
}

export function rowFrame(o: RowFrameOptions): RowFrame {
  const width = o.width ?? theme.width;
  const rowHeight = o.rowHeight ?? theme.rowHeight;
  const m = theme.margin;
  const padLeft = o.padLeft ?? 0;
  const padRight = o.padRight ?? 0;
  // Keep at least a third of the chart for the bars: on narrow charts the labels give way (they
  // are truncated to the width they get, with the full text in a tooltip).
  const room = width - m.left - m.right - (o.legendWidth ?? 0) - 10 - padLeft - padRight;
  const labelWidth = Math.max(40, Math.min(o.labelWidth, room - width / 3));
  const labelRight = m.left + labelWidth;
  const plotLeft = labelRight + 10 + padLeft;
  const plotRight = Math.max(width - m.right - (o.legendWidth ?? 0) - padRight, plotLeft + 20);
  const rowsTop = m.top + (o.above ?? 0);
  const rowsBottom = rowsTop + o.rows * rowHeight;
  const height = rowsBottom + (o.below ?? m.bottom);
  return {
    width,
    height,
    labelRight,
    plotLeft,
    plotRight,
    rowsTop,
    rowsBottom,
    rowHeight,
    rowY: (i) => rowsTop + (i + 0.5) * rowHeight,
  };
}
