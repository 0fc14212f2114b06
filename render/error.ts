/**
 * A small SVG that shows an error, for image URLs: an <img> tag shows what went wrong instead of a
 * broken-image icon.
 */
import { escapeHtml } from './html.js';
import { theme } from './theme.js';

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && (line + ' ' + word).length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.slice(0, 8);
}

export function renderErrorSvg(status: number, code: string, message: string): string {
  const lines = wrap(message, 70);
  const h = 56 + lines.length * 18;
  const text = lines.map((l, i) => `<text x="16" y="${58 + i * 18}" font-size="13">${escapeHtml(l)}</text>`).join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="560" height="${h}" viewBox="0 0 560 ${h}" role="img" font-family="${escapeHtml(theme.fontFamily)}">` +
    `<title>Error ${status} ${escapeHtml(code)}</title><desc>${escapeHtml(message)}</desc>` +
    `<rect x="0.5" y="0.5" width="559" height="${h - 1}" fill="#fff7f2" stroke="#D55E00"/>` +
    `<text x="16" y="30" font-size="15" font-weight="bold" fill="#A63F00">${status} ${escapeHtml(code)}</text>${text}</svg>`
  );
}
