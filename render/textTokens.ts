/**
 * Token attributions of a text model, as shap's text plot: the tokens in reading order, each on a
 * background coloured by its attribution (blue against, vermillion for the explained output, with a
 * light middle so every token stays legible), wrapped to the chart width, with a legend and the
 * output explained. As SVG (for <img>, PNG) and as an HTML fragment (selectable text, a tooltip per
 * token). Tokens are user input: they go through text nodes / escaping only.
 */
import type { Explanation, FeatureAttribution } from '../explainers/types.js';
import { createSvg, docOf, round, serializeSvg, type RenderOptions } from './document.js';
import { escapeHtml } from './html.js';
import { header, label } from './marks/labels.js';
import { rampLegend } from './marks/legend.js';
import { methodTitle } from './imageOverlay.js';
import { headerText, pick, type PickOptions } from './select.js';
import { fmt, fmtSigned, textWidth, truncate } from './text.js';
import { divergingInterpolator, inkOn, theme } from './theme.js';

export interface TextTokensOptions extends RenderOptions, PickOptions {
  title?: string;
}

interface Token {
  a: FeatureAttribution;
  fill: string;
  ink: string;
}

function tokens(explanation: Explanation, options: PickOptions): { out: ReturnType<typeof pick>; list: Token[]; scale: number } {
  const out = pick(explanation, options);
  const list = [...out.attributions].sort((x, y) => (x.position ?? 0) - (y.position ?? 0));
  const scale = Math.max(1e-12, ...list.map((a) => Math.abs(a.attribution)));
  return {
    out,
    scale,
    list: list.map((a) => {
      const fill = divergingInterpolator((a.attribution / scale + 1) / 2);
      return { a, fill, ink: inkOn(fill) };
    }),
  };
}

/** SVG: tokens as coloured chips in reading order, wrapped, with a legend. */
export function renderTextTokens(explanation: Explanation, options: TextTokensOptions = {}): string {
  const doc = docOf(options);
  const { out, list, scale } = tokens(explanation, options);
  const width = options.width ?? theme.width;
  const m = theme.margin;
  const size = 15;
  const lineH = 30;
  const pad = 5;
  // Lay out the chips first: the height follows from the number of lines.
  const placed: { t: Token; x: number; line: number; w: number; text: string }[] = [];
  let x = m.left;
  let line = 0;
  for (const t of list) {
    const text = truncate(t.a.feature, width - m.left - m.right - 2 * pad, size);
    const w = textWidth(text, size) + 2 * pad;
    if (x + w > width - m.right && x > m.left) {
      line++;
      x = m.left;
    }
    placed.push({ t, x, line, w, text });
    x += w + 4;
  }
  const top = m.top + 54;
  const height = top + (line + 1) * lineH + 70;
  const title = options.title ?? `${methodTitle(explanation)} for “${out.output}”`;
  // Which instance and output, and the model's value for it ("explaining class positive (predicted), p = 0.93").
  const said = headerText(explanation, out, options);
  const svg = createSvg(doc, {
    width,
    height,
    title,
    desc: `${title}. ${said}: ${list.length} tokens coloured by attribution; f(x) = ${fmt(out.instanceOutputValue)}, baseline ${fmt(out.baselineOutputValue)}. Largest: ${[...list].sort((a, b) => b.a.attribution - a.a.attribution)[0]?.a.feature ?? ''}.`,
  });
  const g = svg.append('g');
  label(g, m.left, m.top + 6, title, { bold: true, size: theme.titleFontSize });
  header(g, m.left, m.top + 22, said, width - m.left - m.right);
  label(g, m.left, m.top + 40, `f(x) = ${fmt(out.instanceOutputValue)} · baseline ${fmt(out.baselineOutputValue)} · ${list.length} tokens`, { fill: theme.mutedText, size: theme.smallFontSize });
  const chips = g.append('g').attr('class', 'tokens').attr('font-size', size);
  for (const p of placed) {
    const y = top + p.line * lineH;
    const chip = chips.append('g').attr('class', 'token');
    chip.append('title').text(`${p.t.a.feature} (position ${p.t.a.position ?? '?'}): ${fmtSigned(p.t.a.attribution)}${p.t.a.stderr !== undefined ? ` ± ${fmt(p.t.a.stderr)}` : ''}`);
    chip.append('rect').attr('x', round(p.x)).attr('y', round(y)).attr('width', round(p.w)).attr('height', lineH - 6).attr('rx', 3).attr('fill', p.t.fill);
    label(chip, p.x + pad, y + (lineH - 6) / 2, p.text, { fill: p.t.ink }, { size });
  }
  rampLegend(g, {
    x: Math.max(m.left, (width - 260) / 2),
    y: top + (line + 1) * lineH + 22,
    length: 260,
    colour: divergingInterpolator,
    labels: [`−${fmt(scale)}`, `+${fmt(scale)}`, '0'],
    title: `attribution to “${out.output}”`,
  });
  return serializeSvg(svg);
}

/** HTML fragment: the text with each token highlighted and a tooltip, and a legend; no scripts. */
export function renderTextTokensHtml(explanation: Explanation, options: PickOptions & { title?: string } = {}): string {
  const { out, list, scale } = tokens(explanation, options);
  const title = options.title ?? `${methodTitle(explanation)} for “${out.output}”`;
  const spans = list
    .map(
      (t) =>
        `<span class="token" style="background:${t.fill};color:${t.ink};padding:1px 4px;margin:1px;border-radius:3px;display:inline-block" title="${escapeHtml(`position ${t.a.position ?? '?'}: ${fmtSigned(t.a.attribution)}`)}">${escapeHtml(t.a.feature)}</span>`,
    )
    .join(' ');
  const stops = [0, 0.25, 0.5, 0.75, 1].map((s) => `${divergingInterpolator(s)} ${s * 100}%`).join(', ');
  return [
    `<figure class="text-attributions" style="font-family:${escapeHtml(theme.fontFamily)};margin:0">`,
    `<figcaption style="font-weight:bold">${escapeHtml(title)}</figcaption>`,
    `<p style="color:${theme.mutedText};font-size:${theme.smallFontSize}px;margin:4px 0">f(x) = ${escapeHtml(fmt(out.instanceOutputValue))} · baseline ${escapeHtml(fmt(out.baselineOutputValue))}</p>`,
    `<p style="font-size:15px;line-height:1.9;margin:6px 0">${spans}</p>`,
    `<div class="legend" style="display:flex;align-items:center;gap:6px;font-size:${theme.smallFontSize}px;color:${theme.mutedText}">`,
    `<span>−${escapeHtml(fmt(scale))}</span><span style="display:inline-block;width:200px;height:10px;background:linear-gradient(to right, ${stops})"></span><span>+${escapeHtml(fmt(scale))}</span>`,
    `<span>attribution to “${escapeHtml(out.output)}”</span></div>`,
    `</figure>`,
  ].join('\n');
}
