/**
 * The one jsdom document the renderers draw on. A new JSDOM costs ~14 ms; creating it once and
 * building each chart on a detached <svg> of the shared document costs ~2-3 ms per chart. Renderers
 * accept any `Document` (Observable Plot's `document` option is the model), so a browser or another
 * jsdom works too.
 */
import * as d3 from 'd3';
import { JSDOM } from 'jsdom';
import { theme } from './theme.js';

export const SVG_NS = 'http://www.w3.org/2000/svg';

let shared: Document | undefined;

/** The lazily created, process-wide jsdom document. Nothing is ever appended to it. */
export function sharedDocument(): Document {
  shared ??= new JSDOM('<!DOCTYPE html><html><head></head><body></body></html>').window.document;
  return shared;
}

export interface RenderOptions {
  /** The document to create elements with; default: `sharedDocument()`. */
  document?: Document;
  /** Chart width in pixels; the height follows from the content. */
  width?: number;
}

export type Svg = d3.Selection<SVGSVGElement, unknown, null, undefined>;
export type G = d3.Selection<SVGGElement, unknown, null, undefined>;

export interface SvgFrame {
  width: number;
  height: number;
  /** Accessible name (<title>) and longer summary (<desc>): what the chart shows, in words. */
  title: string;
  desc: string;
}

/** A detached <svg> with the attributes and accessible text every chart carries. */
export function createSvg(doc: Document, frame: SvgFrame): Svg {
  const node = doc.createElementNS(SVG_NS, 'svg') as SVGSVGElement;
  const w = round(frame.width);
  const h = round(frame.height);
  const svg = d3
    .select(node)
    .attr('width', w)
    .attr('height', h)
    .attr('viewBox', `0 0 ${w} ${h}`)
    .attr('role', 'img')
    .attr('font-family', theme.fontFamily)
    .attr('font-size', theme.fontSize)
    .attr('fill', theme.text);
  svg.append('title').text(frame.title);
  svg.append('desc').text(frame.desc);
  // A white ground so the PNG (and dark-mode pages) show the chart as designed.
  svg.append('rect').attr('width', w).attr('height', h).attr('fill', theme.background);
  return svg;
}

/**
 * The SVG as an XML string. This writes exactly what the DOM's XMLSerializer writes for the trees the
 * renderers build (SVG-namespace elements, plain attributes, text; test/render.test.ts checks the
 * bytes are identical), at about 2.5x its speed in jsdom, where XMLSerializer's namespace bookkeeping
 * was half the time of a chart. Unlike XMLSerializer it also replaces characters XML 1.0 forbids
 * (control characters, lone surrogates) with U+FFFD: feature names are user input, and one such
 * character would make the whole SVG unparseable. Like XMLSerializer, and unlike `outerHTML`, it
 * writes U+00A0 as a character, not as `&nbsp;`, which XML does not know. Any other kind of node
 * falls back to XMLSerializer.
 */
export function serializeSvg(svg: Svg): string {
  const node = svg.node()!;
  const parts: string[] = [];
  return writeElement(node, parts, true) ? parts.join('') : serializeWithXmlSerializer(svg);
}

/** The DOM's own XMLSerializer, for the fallback and for checking `serializeSvg` against. */
export function serializeWithXmlSerializer(svg: Svg): string {
  const node = svg.node()!;
  const view = node.ownerDocument.defaultView as (Window & typeof globalThis) | null;
  const Serializer = view?.XMLSerializer ?? globalThis.XMLSerializer;
  return new Serializer().serializeToString(node);
}

// XML 1.0 Char excludes C0 controls other than tab/LF/CR, U+FFFE/U+FFFF and unpaired surrogates.
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const NOT_XML = /[\0-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };
const ATTR_ESCAPES: Record<string, string> = { ...TEXT_ESCAPES, '"': '&quot;', '\t': '&#x9;', '\n': '&#xA;', '\r': '&#xD;' };

// One scan to find out whether a string needs any work: path data (most of the bytes) never does.
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_WORK = /[&<>"\0-\x1F\uD800-\uDFFF\uFFFE\uFFFF]/;

function escapeText(s: string): string {
  if (!NEEDS_WORK.test(s)) return s;
  return s.replace(NOT_XML, '\uFFFD').replace(/[&<>]/g, (c) => TEXT_ESCAPES[c]);
}

function escapeAttr(s: string): string {
  if (!NEEDS_WORK.test(s)) return s;
  return s.replace(NOT_XML, '\uFFFD').replace(/[&<>"\t\n\r]/g, (c) => ATTR_ESCAPES[c]);
}

/** Appends `el` to `out`; false when the tree holds something this writer does not handle. */
function writeElement(el: Element, out: string[], root: boolean): boolean {
  if (el.namespaceURI !== SVG_NS || el.prefix) return false;
  out.push('<', el.localName);
  if (root) out.push(` xmlns="${SVG_NS}"`);
  // getAttributeNames: jsdom builds no Attr wrappers for it, ~6x faster than walking `attributes`.
  for (const name of el.getAttributeNames()) {
    if (name.includes(':') || name === 'xmlns') return false; // namespaced: leave to XMLSerializer
    out.push(' ', name, '="', escapeAttr(el.getAttribute(name)!), '"');
  }
  if (!el.firstChild) {
    out.push('/>');
    return true;
  }
  out.push('>');
  for (let c: ChildNode | null = el.firstChild; c; c = c.nextSibling) {
    if (c.nodeType === 1) {
      if (!writeElement(c as Element, out, false)) return false;
    } else if (c.nodeType === 3) {
      out.push(escapeText(c.nodeValue ?? ''));
    } else {
      return false;
    }
  }
  out.push('</', el.localName, '>');
  return true;
}

/** Two decimals are far below a pixel and keep the output short and byte-stable. */
export function round(v: number): number {
  return Math.round(v * 100) / 100;
}

export function docOf(options: RenderOptions | undefined): Document {
  return options?.document ?? sharedDocument();
}
