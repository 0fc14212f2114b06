/**
 * Image attributions as overlays a person can read: the attribution map blended over the image with
 * a diverging colour map (blue negative, vermillion positive) whose opacity grows with |attribution|,
 * or a sequential map for non-negative methods (Grad-CAM, XRAI, squared SmoothGrad). Small inputs are
 * upsampled by whole pixels to about `size` px; superpixel explanations get their segment outlines.
 * `renderImageComparison` puts several methods side by side for one image, each scaled to its own
 * largest value (methods differ in units), after the original image.
 */
import type { Explanation, OutputExplanation } from '../explainers/types.js';
import { createSvg, docOf, round, serializeSvg, type G, type RenderOptions } from './document.js';
import { header, label } from './marks/labels.js';
import { rampLegend } from './marks/legend.js';
import { blendOverlay, drawOutlines, imageRaster, overlayColour, pngDataUri, upsample, type OverlayKind } from './raster.js';
import { headerText, pickInstance, pickOutput, type PickOptions } from './select.js';
import { fmt, textWidth } from './text.js';
import { theme } from './theme.js';

export interface ImageOverlayOptions extends RenderOptions, PickOptions {
  /** The input image, flat [h, w, c]; default the attributions' `value`s. */
  image?: ArrayLike<number>;
  /** [h, w, c] or [h, w]; default `explanation.inputShape`. */
  shape?: number[];
  /** Panel side in pixels the image is upsampled towards (whole factors only). Default 224. */
  size?: number;
  /** Segment labels over h x w to outline; default the explanation's superpixels, if any. */
  outlines?: ArrayLike<number> | false;
  /** 'signed' or 'positive'; default by method (grad-cam, xrai, squared/variance SmoothGrad: positive). */
  kind?: OverlayKind;
  /** Share of pixels allowed above the colour scale, so one hot pixel does not wash out the rest. Default 0.005. */
  clip?: number;
  title?: string;
}

interface Panel {
  dataUri: string;
  side: [number, number];
  scale: number;
  kind: OverlayKind;
  out: OutputExplanation;
}

const METHOD_TITLES: Record<string, string> = {
  'kernel-shap': 'Kernel SHAP',
  'integrated-gradients': 'Integrated Gradients',
  smoothgrad: 'SmoothGrad',
  'expected-gradients': 'Expected Gradients',
  occlusion: 'Occlusion',
  'grad-cam': 'Grad-CAM',
  'partition-shap': 'Partition SHAP',
  xrai: 'XRAI',
};

export function methodTitle(e: Explanation): string {
  const base = METHOD_TITLES[e.method] ?? e.method;
  const d = e.diagnostics ?? {};
  if (e.method === 'smoothgrad' && d.form && d.form !== 'mean') return `${base} (${String(d.form)})`;
  if (d.superpixels && e.method === 'kernel-shap') return 'Kernel SHAP (superpixels)';
  return base;
}

function defaultKind(e: Explanation): OverlayKind {
  if (e.method === 'grad-cam' || e.method === 'xrai') return 'positive';
  if (e.method === 'smoothgrad' && e.diagnostics?.form !== undefined && e.diagnostics.form !== 'mean') return 'positive';
  return 'signed';
}

function shapeOf(e: Explanation, o: { shape?: number[] }): [number, number, number] {
  const s = o.shape ?? e.inputShape;
  if (!s || s.length < 2) throw new RangeError('image charts need the [height, width, channels] input shape (explanation.inputShape or options.shape)');
  return [s[0], s[1], s[2] ?? 1];
}

function panel(e: Explanation, o: ImageOverlayOptions): Panel {
  const inst = pickInstance(e, o.instance);
  const out = pickOutput(inst.outputs, o.output);
  const [h, w, c] = shapeOf(e, o);
  if (out.attributions.length !== h * w * c) throw new RangeError(`${out.attributions.length} attributions do not fit the image shape [${h}, ${w}, ${c}]`);
  const image = o.image ?? out.attributions.map((a) => a.value);
  const map = new Float64Array(h * w);
  for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) map[p] += out.attributions[p * c + ch].attribution;
  const kind = o.kind ?? defaultKind(e);
  const sorted = Float64Array.from(map, Math.abs).sort();
  const scale = sorted[Math.min(sorted.length - 1, Math.floor((1 - (o.clip ?? 0.005)) * sorted.length))] || sorted[sorted.length - 1] || 1;
  const f = Math.max(1, Math.floor((o.size ?? 224) / Math.max(h, w)));
  let raster = upsample(blendOverlay(imageRaster(image, h, w, c), map, scale, kind), f);
  const segs = o.outlines === false ? undefined : (o.outlines ?? (inst.diagnostics?.segments as { labels?: number[] } | undefined)?.labels);
  if (segs && segs.length === h * w) raster = drawOutlines(raster, segs, h, w, f);
  return { dataUri: pngDataUri(raster), side: [raster.width, raster.height], scale, kind, out };
}

function drawPanel(g: G, x: number, y: number, p: { dataUri: string; side: [number, number] }, caption: string, sub?: string): void {
  g.append('image')
    .attr('x', round(x))
    .attr('y', round(y))
    .attr('width', p.side[0])
    .attr('height', p.side[1])
    .attr('href', p.dataUri)
    .attr('style', 'image-rendering:pixelated');
  g.append('rect').attr('x', round(x)).attr('y', round(y)).attr('width', p.side[0]).attr('height', p.side[1]).attr('fill', 'none').attr('stroke', theme.grid);
  label(g, x + p.side[0] / 2, y + p.side[1] + 14, caption, { anchor: 'middle', bold: true });
  if (sub) label(g, x + p.side[0] / 2, y + p.side[1] + 30, sub, { anchor: 'middle', fill: theme.mutedText, size: theme.smallFontSize });
}

function legend(g: G, x: number, y: number, length: number, kind: OverlayKind): void {
  rampLegend(g, {
    x,
    y,
    length,
    colour: (t) => overlayColour(kind, kind === 'signed' ? 2 * t - 1 : t),
    labels: kind === 'signed' ? ['− (against)', '+ (for)', '0'] : ['0', 'max'],
    title: kind === 'signed' ? 'attribution, scaled to each panel’s largest |value|' : 'relevance, scaled to each panel’s largest value',
  });
}

/** One image with its attribution overlay, the output explained and a legend. */
export function renderImageOverlay(explanation: Explanation, options: ImageOverlayOptions = {}): string {
  const doc = docOf(options);
  const p = panel(explanation, options);
  const m = theme.margin;
  // Which instance and output, and the model's value for it ("explaining class cat (predicted), p = 0.91").
  const said = headerText(explanation, p.out, options);
  // Wide enough for the header line to be read whole.
  const width = Math.max(options.width ?? 0, p.side[0] + m.left + m.right, 300, Math.ceil(textWidth(said, theme.fontSize, true)) + m.left + m.right);
  const top = m.top + 42;
  const height = top + p.side[1] + 40 + 44;
  const title = options.title ?? `${methodTitle(explanation)} for “${p.out.output}”`;
  const svg = createSvg(doc, {
    width,
    height,
    title,
    desc: `${title}. ${said}: attributions laid over the ${p.side[0]}x${p.side[1]} px image; f(x) = ${fmt(p.out.instanceOutputValue)}, baseline ${fmt(p.out.baselineOutputValue)}.`,
  });
  const g = svg.append('g');
  label(g, m.left, m.top + 6, title, { bold: true, size: theme.titleFontSize });
  header(g, m.left, m.top + 24, said, width - m.left - m.right);
  const x0 = (width - p.side[0]) / 2;
  drawPanel(g, x0, top, p, `f(x) = ${fmt(p.out.instanceOutputValue)}`, `baseline ${fmt(p.out.baselineOutputValue)} · scale ±${fmt(p.scale)}`);
  legend(g, Math.max(m.left, (width - 240) / 2), top + p.side[1] + 56, 240, p.kind);
  return serializeSvg(svg);
}

export interface ImageComparisonOptions extends RenderOptions, PickOptions {
  image?: ArrayLike<number>;
  shape?: number[];
  /** Panel side in pixels. Default 160. */
  size?: number;
  /** Panels per row (the original image counts as one). Default 4. */
  columns?: number;
  title?: string;
}

/** The image and several methods' overlays side by side, each labelled with its method. */
export function renderImageComparison(items: { label?: string; explanation: Explanation }[], options: ImageComparisonOptions = {}): string {
  if (items.length === 0) throw new RangeError('renderImageComparison needs at least one explanation');
  const doc = docOf(options);
  const first = items[0].explanation;
  const [h, w, c] = shapeOf(first, options);
  const firstOut = pickOutput(pickInstance(first, options.instance).outputs, options.output);
  const image = options.image ?? firstOut.attributions.map((a) => a.value);
  const size = options.size ?? 160;
  const f = Math.max(1, Math.floor(size / Math.max(h, w)));
  const original = upsample(imageRaster(image, h, w, c), f);
  const panels = items.map((it) => ({ it, p: panel(it.explanation, { ...options, image, size }) }));
  const cols = Math.max(1, options.columns ?? 4);
  const cellW = Math.max(original.width, 120) + 24;
  const cellH = original.height + 52;
  const n = panels.length + 1;
  const rows = Math.ceil(n / cols);
  const m = theme.margin;
  const top = m.top + 42;
  const width = Math.max(options.width ?? 0, m.left + m.right + Math.min(n, cols) * cellW, 420);
  const height = top + rows * cellH + 76;
  const title = options.title ?? `Attributions for “${firstOut.output}”, ${items.length} method${items.length > 1 ? 's' : ''}`;
  const said = headerText(first, firstOut, options);
  const svg = createSvg(doc, {
    width,
    height,
    title,
    desc: `${title}. ${said}: the input image, then ${items.map((i) => i.label ?? methodTitle(i.explanation)).join(', ')}.`,
  });
  const g = svg.append('g');
  label(g, m.left, m.top + 6, title, { bold: true, size: theme.titleFontSize });
  header(g, m.left, m.top + 24, said, width - m.left - m.right);
  const at = (k: number): [number, number] => [m.left + (k % cols) * cellW + (cellW - original.width) / 2, top + Math.floor(k / cols) * cellH];
  drawPanel(g, ...at(0), { dataUri: pngDataUri(original), side: [original.width, original.height] }, 'input', `${h}×${w}×${c}`);
  panels.forEach(({ it, p }, k) => drawPanel(g, ...at(k + 1), p, it.label ?? methodTitle(it.explanation), `scale ${p.kind === 'signed' ? '±' : ''}${fmt(p.scale)}`));
  const lx = Math.max(m.left, width / 2 - 250);
  legend(g, lx, top + rows * cellH + 18, 220, 'signed');
  legend(g, lx + 280, top + rows * cellH + 18, 220, 'positive');
  return serializeSvg(svg);
}
