/**
 * Self-contained HTML5 pages: inline CSS, SVGs inline, no scripts and no external assets (a CSP meta
 * tag forbids them, so even a mistake elsewhere cannot make the page fetch or run anything). Every
 * piece of text is escaped here; only `svg` and `html` section fields are inserted as they are, and
 * those must come from our own renderers, never from a request.
 */
import { fmtValue } from './text.js';
import { theme } from './theme.js';

export type Cell = string | number | boolean | null | undefined;

export interface Table {
  columns: string[];
  rows: Cell[][];
  caption?: string;
}

export interface Section {
  heading: string;
  /** A paragraph of plain text (escaped). */
  text?: string;
  /** An SVG string from one of the renderers (trusted: inserted as is). */
  svg?: string;
  /** Trusted HTML from our own code (inserted as is). */
  html?: string;
  table?: Table;
}

export interface HtmlReport {
  title: string;
  /** A line under the title, e.g. the model and version (escaped). */
  subtitle?: string;
  sections: Section[];
  /** Small print at the bottom (escaped). */
  footer?: string;
  lang?: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Integers in full, other numbers to ~3 significant digits, booleans as yes/no, missing as an en dash. */
function cellText(v: Cell): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return fmtValue(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return v;
}

function renderTable(t: Table): string {
  const numeric = t.columns.map((_, j) => t.rows.length > 0 && t.rows.every((r) => typeof r[j] === 'number' || r[j] == null));
  const head = t.columns.map((c, j) => `<th scope="col"${numeric[j] ? ' class="num"' : ''}>${escapeHtml(c)}</th>`).join('');
  const body = t.rows
    .map((r) => `<tr>${t.columns.map((_, j) => `<td${numeric[j] ? ' class="num"' : ''}>${escapeHtml(cellText(r[j]))}</td>`).join('')}</tr>`)
    .join('\n');
  const caption = t.caption ? `<caption>${escapeHtml(t.caption)}</caption>` : '';
  // All-empty column names make a key/value table: no header row.
  const thead = t.columns.every((c) => c === '') ? '' : `<thead><tr>${head}</tr></thead>`;
  return `<div class="table"><table>${caption}${thead}\n<tbody>\n${body}\n</tbody></table></div>`;
}

function renderSection(s: Section): string {
  const parts = [`<h2>${escapeHtml(s.heading)}</h2>`];
  if (s.text) parts.push(`<p>${escapeHtml(s.text)}</p>`);
  if (s.svg) parts.push(`<figure>${stripXmlDeclaration(s.svg)}</figure>`);
  if (s.html) parts.push(s.html);
  if (s.table) parts.push(renderTable(s.table));
  return `<section>\n${parts.join('\n')}\n</section>`;
}

function stripXmlDeclaration(svg: string): string {
  return svg.replace(/^<\?xml[^>]*\?>\s*/, '');
}

const CSS = `
:root { color-scheme: light; }
body { margin: 0; background: #f6f6f4; color: ${theme.text}; font: 14px/1.45 ${theme.fontFamily}; }
main { max-width: 800px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
.subtitle { color: ${theme.mutedText}; margin: 0 0 20px; }
section { background: #fff; border: 1px solid #e2e2de; border-radius: 6px; padding: 16px 20px; margin: 0 0 18px; }
h2 { font-size: 16px; margin: 0 0 10px; }
figure { margin: 0 0 12px; }
svg { display: block; max-width: 100%; height: auto; }
.table { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; min-width: 50%; }
caption { text-align: left; color: ${theme.mutedText}; padding: 0 0 6px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ececea; text-align: left; vertical-align: top; }
th { font-weight: 600; border-bottom-color: #bbb; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { color: ${theme.mutedText}; font-size: 12px; }
`.trim();

export function renderHtmlReport(report: HtmlReport): string {
  return [
    '<!DOCTYPE html>',
    `<html lang="${escapeHtml(report.lang ?? 'en')}">`,
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    `<title>${escapeHtml(report.title)}</title>`,
    `<style>\n${CSS}\n</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>${escapeHtml(report.title)}</h1>`,
    report.subtitle ? `<p class="subtitle">${escapeHtml(report.subtitle)}</p>` : '',
    ...report.sections.map(renderSection),
    report.footer ? `<footer>${escapeHtml(report.footer)}</footer>` : '',
    '</main>',
    '</body>',
    '</html>',
  ]
    .filter((l) => l !== '')
    .join('\n') + '\n';
}

