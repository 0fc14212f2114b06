/**
 * Attributions of an image model (Integrated Gradients, typically) as three panels: the grayscale
 * input, the attribution heatmap on a diverging scale symmetric around 0, and the heatmap laid
 * semi-transparently over the input, with a colour legend. Cells of equal colour along an image row
 * are merged into one run, and all runs of a colour share one <path>, so a 28x28 image costs about a
 * hundred elements rather than thousands.
 */
import * as d3 from 'd3';
import type { Explanation } from '../explainers/types.js';
import { createSvg, docOf, round, serializeSvg, type G, type RenderOptions } from './document.js';
import { header, HEADER_HEIGHT, label } from './marks/labels.js';
import { rampLegend } from './marks/legend.js';
import { baselineName, headerText, pick, type PickOptions } from './select.js';
import { fmt, fmtSigned } from './text.js';
import { divergingInterpolator, theme } from './theme.js';

export interface ImageAttributionOptions extends RenderOptions, PickOptions {
  /** The input image, flat in row-major [h, w, c] order; default: the attributions' `value`s. */
  image?: Float32Array | number[];
  /** [h, w, c] (or [h, w]); default: `explanation.inputShape`. */
  shape?: number[];
  /** Larger images are block-averaged down to at most this many cells a side. Default 64. */
  maxCells?: number;
  /** Share of pixels whose |attribution| may exceed the colour scale (clipped), so one hot pixel does not wash out the rest. Default 0.01. */
  clip?: number;
}

interface Grid {
  h: number;
  w: number;
  gray: Float64Array;
  attr: Float64Array;
  /** Source pixels per cell side. */
  block: number;
}

const GRAY_LEVELS = 32;
const HEAT_LEVELS = 10; // per side

export function renderImageAttribution(explanation: Explanation, options: ImageAttributionOptions = {}): string {
  const out = pick(explanation, options);
  const grid = toGrid(out.attributions.map((a) => a.attribution), options.image ?? out.attributions.map((a) => a.value), options.shape ?? explanation.inputShape, options.maxCells ?? 64);
  const absSorted = Float64Array.from(grid.attr, Math.abs).sort();
  const maxAbs = absSorted[absSorted.length - 1] || 1;
  const scaleMax = d3.quantile(absSorted, 1 - (options.clip ?? 0.01)) || maxAbs;
  const clipped = scaleMax < maxAbs;

  const width = options.width ?? theme.width;
  const m = theme.margin;
  const gapX = 24;
  const panel = (width - m.left - m.right - 2 * gapX) / 3;
  const cell = Math.max(1, Math.min(24, Math.floor(Math.min(panel / grid.w, 320 / grid.h) * 100) / 100));
  const pw = cell * grid.w;
  const ph = cell * grid.h;
  const top = m.top + HEADER_HEIGHT + 22;
  const height = top + ph + 70;
  const x0 = (width - 3 * pw - 2 * gapX) / 2;

  const sum = d3.sum(grid.attr);
  const peak = d3.maxIndex(grid.attr, Math.abs);
  const bName = baselineName(explanation);
  const method = explanation.method === 'integrated-gradients' ? 'Integrated Gradients' : 'SHAP';
  const svg = createSvg(docOf(options), {
    width,
    height,
    title: `${method} attribution heatmap for output ${out.output}, instance ${options.instance ?? 0}`,
    desc:
      `${headerText(explanation, out, options)}. ${method} attributions for output ${out.output} on a ${grid.h * grid.block}×${grid.w * grid.block} image` +
      (grid.block > 1 ? ` (shown as ${grid.h}×${grid.w} cells of ${grid.block}×${grid.block} pixels)` : '') +
      `: from ${bName} = ${fmt(out.baselineOutputValue)} to f(x) = ${fmt(out.instanceOutputValue)}; attributions sum to ${fmtSigned(sum)}; ` +
      `strongest cell at row ${Math.floor(peak / grid.w)}, column ${peak % grid.w}: ${fmtSigned(grid.attr[peak])}. ` +
      `Left: the input in grayscale; middle: the attributions, blue negative and orange positive, symmetric around 0; right: the attributions over the input.`,
  });
  const g = svg.append('g').attr('data-scale-max', scaleMax).attr('data-sum', sum);
  header(g, m.left, m.top + 6, headerText(explanation, out, options), width - m.left - m.right);
  const heat = (a: number) => Math.max(-HEAT_LEVELS, Math.min(HEAT_LEVELS, Math.round((a / scaleMax) * HEAT_LEVELS)));
  const heatColour = (level: number) => divergingInterpolator((level / HEAT_LEVELS + 1) / 2);
  const grayLevel = grayScale(grid.gray);

  const panels: [string, (p: G) => void][] = [
    ['Input', (p) => cells(p, grid, cell, grayLevel, (l) => d3.interpolateGreys(1 - l / (GRAY_LEVELS - 1)))],
    ['Attribution', (p) => cells(p, grid, cell, (i) => heat(grid.attr[i]), heatColour, true)],
    [
      'Attribution over input',
      (p) => {
        // The input fades to mid-grey .. white under the overlay so the colours stay readable.
        cells(p, grid, cell, grayLevel, (l) => d3.interpolateGreys(0.5 - (0.5 * l) / (GRAY_LEVELS - 1)));
        cells(p, grid, cell, (i) => heat(grid.attr[i]), heatColour, true, (level) => round((0.85 * Math.abs(level)) / HEAT_LEVELS));
      },
    ],
  ];
  panels.forEach(([name, draw], k) => {
    const px = x0 + k * (pw + gapX);
    label(g, px + pw / 2, top - 12, name, { anchor: 'middle', bold: true });
    const p = g.append('g').attr('class', 'panel').attr('transform', `translate(${round(px)},${round(top)})`).attr('shape-rendering', 'crispEdges');
    draw(p);
    p.append('rect').attr('width', round(pw)).attr('height', round(ph)).attr('fill', 'none').attr('stroke', theme.axis);
  });

  const lx = x0 + pw + gapX;
  rampLegend(g, {
    x: lx,
    y: top + ph + 28,
    length: 2 * pw + gapX,
    colour: (t) => heatColour(Math.round((t * 2 - 1) * HEAT_LEVELS)),
    steps: 2 * HEAT_LEVELS + 1,
    labels: [`${clipped ? '≤ ' : ''}${fmtSigned(-scaleMax)}`, `${clipped ? '≥ ' : ''}${fmtSigned(scaleMax)}`, '0'],
    title: `Attribution per ${grid.block > 1 ? `${grid.block}×${grid.block} block` : 'pixel'} (output: ${out.output})`,
  });
  return serializeSvg(svg);
}

/**
 * One <path> per level: runs of equal level along each row. `skipZero` leaves level 0 undrawn (the
 * heatmap's white middle, transparent in the overlay).
 */
function cells(p: G, grid: Grid, cell: number, level: (i: number) => number, colour: (level: number) => string, skipZero = false, opacity?: (level: number) => number) {
  const runs = new Map<number, string>();
  for (let r = 0; r < grid.h; r++) {
    let q = 0;
    while (q < grid.w) {
      const l = level(r * grid.w + q);
      let end = q + 1;
      while (end < grid.w && level(r * grid.w + end) === l) end++;
      if (!(skipZero && l === 0)) {
        runs.set(l, (runs.get(l) ?? '') + `M${round(q * cell)},${round(r * cell)}h${round((end - q) * cell)}v${round(cell)}h${round(-(end - q) * cell)}Z`);
      }
      q = end;
    }
  }
  for (const l of Array.from(runs.keys()).sort((a, b) => a - b)) {
    const path = p.append('path').attr('d', runs.get(l)!).attr('fill', colour(l));
    if (opacity) path.attr('fill-opacity', opacity(l));
  }
}

/** Cell -> gray level 0..GRAY_LEVELS-1, stretched over the image's own min..max. */
function grayScale(gray: Float64Array): (i: number) => number {
  const [lo, hi] = d3.extent(gray) as [number, number];
  const span = hi - lo || 1;
  return (i) => Math.round(((gray[i] - lo) / span) * (GRAY_LEVELS - 1));
}

/** Channels collapsed (mean for the image, sum for attributions, which keeps their total) and large images block-reduced. */
function toGrid(attributions: number[], image: Float32Array | number[], shape: number[] | undefined, maxCells: number): Grid {
  if (!shape || shape.length < 2 || shape.length > 3) {
    throw new RangeError(`an image attribution needs shape [h, w] or [h, w, c]; got ${shape ? `[${shape.join(', ')}]` : 'none'}`);
  }
  const [h, w, c = 1] = shape;
  if (h * w * c !== attributions.length) throw new RangeError(`shape [${shape.join(', ')}] holds ${h * w * c} values but there are ${attributions.length} attributions`);
  if (image.length !== attributions.length) throw new RangeError(`the image has ${image.length} values, the attributions ${attributions.length}`);
  const block = Math.max(1, Math.ceil(Math.max(h, w) / maxCells));
  const gh = Math.ceil(h / block);
  const gw = Math.ceil(w / block);
  const gray = new Float64Array(gh * gw);
  const attr = new Float64Array(gh * gw);
  const count = new Float64Array(gh * gw);
  for (let r = 0; r < h; r++) {
    for (let q = 0; q < w; q++) {
      const cellIndex = Math.floor(r / block) * gw + Math.floor(q / block);
      for (let k = 0; k < c; k++) {
        const i = (r * w + q) * c + k;
        gray[cellIndex] += image[i];
        attr[cellIndex] += attributions[i];
      }
      count[cellIndex] += c;
    }
  }
  for (let i = 0; i < gray.length; i++) gray[i] /= count[i];
  return { h: gh, w: gw, gray, attr, block };
}
