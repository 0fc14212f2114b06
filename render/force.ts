/**
 * SHAP-style force plot: one horizontal band where the features that raise the output push from the
 * left up to f(x) and those that lower it push back from the right, so the band shows how the
 * baseline became f(x). The largest pushes sit nearest f(x); features below the top k are folded per
 * side. Labels hang below the band, spread so they never overlap, with leader lines to their segment.
 */
import * as d3 from 'd3';
import type { Explanation } from '../explainers/types.js';
import { createSvg, docOf, round, serializeSvg, type G, type RenderOptions } from './document.js';
import { axisX, ruleX } from './marks/axis.js';
import { chevronPath } from './marks/bars.js';
import { featureText, header, HEADER_HEIGHT, label } from './marks/labels.js';
import { swatches } from './marks/legend.js';
import { clampLabel, valueDomain } from './scales.js';
import { baselineName, headerText, items, methodName, outputTitle, pick, type Item, type PickOptions } from './select.js';
import { fmt, fmtSigned, textWidth, truncate } from './text.js';
import { signTextColour, theme } from './theme.js';

export interface ForceOptions extends RenderOptions, PickOptions {
  /** Features drawn as their own segment; the rest are folded, one fold per side. Default 10. */
  topK?: number;
}

interface Segment {
  name: string;
  valueText?: string;
  attribution: number;
  count: number;
  x0: number;
  x1: number;
}

export function renderForce(explanation: Explanation, options: ForceOptions = {}): string {
  const out = pick(explanation, options);
  const base = out.baselineOutputValue;
  const fx = out.instanceOutputValue;
  const k = options.topK ?? 10;
  const sorted = items(out, options.context)
    .map((a, i) => ({ a, i }))
    .sort((p, q) => Math.abs(q.a.attribution) - Math.abs(p.a.attribution) || p.i - q.i)
    .map((p) => p.a);
  const kept = sorted.length <= k + 1 ? sorted : sorted.slice(0, k);
  const rest = sorted.slice(kept.length);
  const up = stack(kept.filter((a) => a.attribution > 0), rest.filter((a) => a.attribution > 0), fx, -1);
  const down = stack(kept.filter((a) => a.attribution < 0), rest.filter((a) => a.attribution < 0), fx, 1);
  const segments = [...up, ...down];

  const width = options.width ?? theme.width;
  const m = theme.margin;
  const left = m.left + 8;
  const right = width - m.right - 8;
  const x = d3.scaleLinear(valueDomain([base, fx, ...segments.flatMap((s) => [s.x0, s.x1])]), [left, right]);

  const bName = baselineName(explanation);
  const fText = `f(x) = ${fmt(fx)}`;
  const bText = `${bName} = ${fmt(base)}`;
  // The two markers share a line unless they would overlap.
  const apart = Math.abs(x(fx) - x(base)) > (textWidth(fText, theme.fontSize, true) + textWidth(bText, theme.fontSize)) / 2 + 10;
  const top = m.top + HEADER_HEIGHT;
  const markerY = top + 34;
  const axisY = markerY + (apart ? 0 : 16) + 30;
  const bandTop = axisY + 6;
  const bandH = 26;
  const labelTop = bandTop + bandH + 26;
  const height = labelTop + 3 * 14 + 14;

  const what = methodName(explanation);
  const svg = createSvg(docOf(options), {
    width,
    height,
    title: `Force plot of ${what} for output ${out.output}, instance ${options.instance ?? 0}`,
    desc: `${headerText(explanation, out, options)}. ${describe(what, out.output, bName, base, fx, up, down)}`,
  });
  const g = svg.append('g');
  header(g, m.left, m.top + 6, headerText(explanation, out, options), width - m.left - m.right);
  swatches(g, left, top + 6, [
    { label: `raises ${outputTitle(explanation, out)}`, colour: theme.positive },
    { label: 'lowers it', colour: theme.negative },
  ], (s) => textWidth(s, theme.smallFontSize));
  // Marker rules first, so the band draws over them; tick labels they would cross are dropped.
  ruleX(g, x(fx), markerY + 6, bandTop, { stroke: theme.text, width: 1.5 });
  ruleX(g, x(base), markerY + (apart ? 6 : 22), bandTop, { stroke: theme.axis, dash: '4 3' });
  axisX(g, x, { y: axisY, top: true, avoid: [x(fx), x(base)] });

  const band = g.append('g').attr('stroke', theme.background).attr('stroke-width', 1);
  for (const s of segments) {
    const seg = band.append('path').attr('class', 'segment').attr('data-attribution', s.attribution);
    if (s.count === 1) seg.attr('data-feature', s.name);
    const fill = s.count > 1 ? (s.attribution > 0 ? theme.positiveLight : theme.negativeLight) : s.attribution > 0 ? theme.positive : theme.negative;
    seg.attr('d', chevronPath(x(s.x0), x(s.x1), bandTop + bandH / 2, bandH, 6)).attr('fill', fill);
    seg.append('title').text(`${featureText(s.name, s.valueText)}: ${fmtSigned(s.attribution)}`);
  }

  label(g, clampLabel(x(fx), fText, theme.fontSize, 0, width, true), markerY, fText, { anchor: 'middle', bold: true });
  label(g, clampLabel(x(base), bText, theme.fontSize, 0, width), markerY + (apart ? 0 : 16), bText, { anchor: 'middle', fill: theme.mutedText });

  placeLabels(g, segments, x, left - 8, right + 8, bandTop + bandH, labelTop);
  return serializeSvg(svg);
}

/** Segments stacked away from f(x) in `dir` (-1: leftwards, for the positive pushes), largest first. */
function stack(kept: Item[], folded: Item[], fx: number, dir: number): Segment[] {
  const segments: Segment[] = [];
  let at = fx;
  const push = (name: string, valueText: string | undefined, a: number, count: number) => {
    const far = at + dir * Math.abs(a);
    // Each segment points towards f(x): from its far end to its near end.
    segments.push({ name, valueText, attribution: a, count, x0: far, x1: at });
    at = far;
  };
  for (const a of kept) push(a.name, a.valueText, a.attribution, 1);
  if (folded.length > 0) push(`${folded.length} other features`, undefined, d3.sum(folded, (a) => a.attribution), folded.length);
  return segments;
}

interface Placed {
  s: Segment;
  lines: string[];
  w: number;
  want: number;
  at: number;
}

/**
 * Three-line labels (name, value, push) under the band, in segment order, pushed apart so none
 * overlap and pulled back inside the chart; when they cannot all fit, the smallest pushes lose theirs
 * (their segment keeps a tooltip).
 */
function placeLabels(g: G, segments: Segment[], x: d3.ScaleLinear<number, number>, left: number, right: number, bandBottom: number, top: number) {
  const size = theme.smallFontSize;
  const gap = 10;
  let items: Placed[] = segments
    .map((s) => {
      const lines = [truncate(s.name, 130, size, true), s.valueText === undefined ? '' : `= ${s.valueText}`, fmtSigned(s.attribution)].filter((l) => l);
      const w = Math.max(...lines.map((l, i) => textWidth(l, size, i === 0)));
      return { s, lines, w, want: (x(s.x0) + x(s.x1)) / 2, at: 0 };
    })
    .filter((p) => Math.abs(x(p.s.x1) - x(p.s.x0)) >= 1)
    .sort((a, b) => a.want - b.want);
  for (;;) {
    for (let i = 0; i < items.length; i++) {
      const min = i === 0 ? left + items[i].w / 2 : items[i - 1].at + (items[i - 1].w + items[i].w) / 2 + gap;
      items[i].at = Math.max(items[i].want, min);
    }
    for (let i = items.length - 1; i >= 0; i--) {
      const max = i === items.length - 1 ? right - items[i].w / 2 : items[i + 1].at - (items[i].w + items[i + 1].w) / 2 - gap;
      items[i].at = Math.min(items[i].at, max);
    }
    if (items.length === 0 || items[0].at >= left + items[0].w / 2 - 0.01) break;
    // Drop the least important label (folds first, then the smallest push) and lay out again.
    const worst = items.reduce((a, b) => (importance(b.s) < importance(a.s) ? b : a));
    items = items.filter((p) => p !== worst);
  }
  const labels = g.append('g').attr('class', 'labels').attr('font-size', size);
  const leaders = items.map((p) => `M${round(p.want)},${round(bandBottom + 2)}L${round(p.at)},${round(top - 12)}`);
  labels.append('path').attr('d', leaders.join('')).attr('stroke', theme.axis).attr('fill', 'none');
  for (const p of items) {
    const t = labels.append('g').attr('class', 'label');
    p.lines.forEach((line, i) => {
      const last = i === p.lines.length - 1;
      const fill = last ? signTextColour(p.s.attribution) : i === 0 ? theme.text : theme.mutedText;
      label(t, p.at, top + i * 14 - 4, line, { anchor: 'middle', bold: i === 0, fill }, { size });
    });
    if (p.lines[0] !== p.s.name) t.append('title').text(p.s.name);
  }
}

function importance(s: Segment): number {
  return s.count > 1 ? -1 : Math.abs(s.attribution);
}

function describe(what: string, output: string, bName: string, base: number, fx: number, up: Segment[], down: Segment[]): string {
  const parts = [`Force plot of ${what} for output ${output}: from ${bName} = ${fmt(base)} to f(x) = ${fmt(fx)}`];
  const list = (ss: Segment[]) => ss.slice(0, 3).map((s) => `${s.name} (${fmtSigned(s.attribution)})`).join(', ');
  if (up.length) parts.push(`raised by ${list(up)}`);
  if (down.length) parts.push(`lowered by ${list(down)}`);
  return parts.join('; ') + '.';
}
