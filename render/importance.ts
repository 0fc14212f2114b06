/**
 * Permutation importance: per feature, a bar for the mean over the repeats, a ± std whisker, and a dot
 * per repeat, so both the size and the spread of each importance are visible. Sorted by mean,
 * largest first.
 */
import * as d3 from 'd3';
import type { Importance } from '../explainers/types.js';
import { createSvg, docOf, serializeSvg, type RenderOptions } from './document.js';
import { rowFrame } from './layout.js';
import { axisX, ruleX } from './marks/axis.js';
import { barPath, whiskerPath } from './marks/bars.js';
import { dotsPath } from './marks/dots.js';
import { label, labelWidth, rowLabel } from './marks/labels.js';
import { valueDomain } from './scales.js';
import { fmt, textWidth } from './text.js';
import { theme } from './theme.js';

export interface ImportanceOptions extends RenderOptions {
  /** Rows drawn; the rest are counted in a note row (importances do not add up, so no sum). Default 20. */
  topK?: number;
  /** Which metric: the main one (default) or a key of `importance.others`. */
  metric?: string;
}

export function renderImportance(importance: Importance, options: ImportanceOptions = {}): string {
  const { metric, baselineScore, importances } = pickMetric(importance, options.metric);
  const order = importances.map((f, i) => ({ f, i })).sort((a, b) => b.f.mean - a.f.mean || a.i - b.i).map((p) => p.f);
  const k = options.topK ?? 20;
  const shown = order.length <= k + 1 ? order : order.slice(0, k);
  const hidden = order.slice(shown.length);
  const texts = shown.map((f) => `${fmt(f.mean)} ± ${fmt(f.std)}`);
  const room = Math.max(0, ...texts.map((s) => textWidth(s, theme.smallFontSize))) + 10;
  const frame = rowFrame({
    width: options.width,
    rows: shown.length + (hidden.length ? 1 : 0),
    labelWidth: labelWidth(shown.map((f) => ({ name: f.feature }))),
    below: 70,
    padRight: room,
  });
  const x = d3.scaleLinear(
    valueDomain(shown.flatMap((f) => [f.mean - f.std, f.mean + f.std, ...f.values]), true),
    [frame.plotLeft, frame.plotRight],
  );
  const top = shown[0];
  const svg = createSvg(docOf(options), {
    width: frame.width,
    height: frame.height,
    title: `Permutation importance (${metric}) of ${importances.length} features`,
    desc:
      `Permutation importance by ${metric} (baseline ${fmt(baselineScore)}) over ${importance.repeats} repeats on ${importance.nSamples} samples: ` +
      `bars show the mean, whiskers ± one standard deviation, dots each repeat` +
      (top ? `; most important: ${top.feature} (${fmt(top.mean)} ± ${fmt(top.std)})` : '') +
      (hidden.length ? `; ${hidden.length} features with smaller importance not shown.` : '.'),
  });
  const g = svg.append('g');
  const axisY = frame.rowsBottom + 6;
  axisX(g, x, { y: axisY, gridTop: frame.rowsTop, title: `Importance: change in ${metric} when shuffled (baseline ${fmt(baselineScore)})` });
  const note = `± s: standard deviation over the ${importance.repeats} repeats (the whiskers); dots: each repeat`;
  label(g, (frame.plotLeft + frame.plotRight) / 2, axisY + 50, note, { anchor: 'middle', size: theme.smallFontSize, fill: theme.mutedText });
  const barH = frame.rowHeight * 0.62;
  shown.forEach((f, i) => {
    const y = frame.rowY(i);
    const r = g.append('g').attr('class', 'row').attr('data-feature', f.feature).attr('data-mean', f.mean).attr('data-std', f.std);
    // Unsigned bars in the mark colour; a negative mean (shuffling helped: noise) in grey.
    r.append('path').attr('d', barPath(x(0), x(f.mean), y, barH)).attr('fill', f.mean >= 0 ? theme.markLight : theme.neutralLight);
    r.append('path').attr('d', whiskerPath(x(f.mean - f.std), x(f.mean + f.std), y, barH * 0.7)).attr('stroke', theme.rule).attr('fill', 'none');
    // Repeats spread over the bar's height in order, so equal values stay visible side by side.
    const pts = f.values.map((v, j) => [x(v), y + (f.values.length > 1 ? (j / (f.values.length - 1) - 0.5) * barH * 0.6 : 0)] as [number, number]);
    r.append('path').attr('d', dotsPath(pts, 2)).attr('fill', theme.text).attr('fill-opacity', 0.55);
    const end = Math.max(x(f.mean + f.std), ...pts.map((p) => p[0] + 2));
    label(r, end + 6, y, texts[i], { size: theme.smallFontSize, fill: theme.mutedText });
    rowLabel(r, frame.labelRight, y, f.feature, undefined, frame.labelRight - theme.margin.left);
  });
  if (hidden.length) {
    const lo = Math.min(...hidden.map((f) => f.mean));
    const hi = Math.max(...hidden.map((f) => f.mean));
    label(g, frame.plotLeft, frame.rowY(shown.length), `${hidden.length} more features, mean importance ${fmt(lo)} to ${fmt(hi)}`, {
      fill: theme.mutedText,
      size: theme.smallFontSize,
    });
  }
  ruleX(g, x(0), frame.rowsTop, axisY);
  return serializeSvg(svg);
}

function pickMetric(importance: Importance, metric?: string) {
  if (metric === undefined || metric === importance.metric) return importance;
  const other = importance.others?.[metric];
  if (!other) {
    const known = [importance.metric, ...Object.keys(importance.others ?? {})].join(', ');
    throw new RangeError(`no importances for metric "${metric}"; computed: ${known}`);
  }
  return { metric, ...other };
}
