/**
 * A small SVG that shows an error, for image URLs: an <img> tag shows what went wrong instead of a
 * broken-image icon. Built with the charts' document and serializer, so text from the request (a
 * query with a NUL, a feature name) comes out as valid XML.
 */
import { createSvg, docOf, serializeSvg, type RenderOptions } from './document.js';
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

export function renderErrorSvg(status: number, code: string, message: string, options: RenderOptions = {}): string {
  const lines = wrap(message, 70);
  const h = 56 + lines.length * 18;
  const svg = createSvg(docOf(options), { width: 560, height: h, title: `Error ${status} ${code}`, desc: message });
  svg.select('rect').attr('fill', '#fff7f2');
  svg
    .append('rect')
    .attr('x', 0.5)
    .attr('y', 0.5)
    .attr('width', 559)
    .attr('height', h - 1)
    .attr('fill', 'none')
    .attr('stroke', '#D55E00');
  svg
    .append('text')
    .attr('x', 16)
    .attr('y', 30)
    .attr('font-size', 15)
    .attr('font-weight', 'bold')
    .attr('fill', '#A63F00')
    .text(`${status} ${code}`);
  lines.forEach((l, i) =>
    svg
      .append('text')
      .attr('x', 16)
      .attr('y', 58 + i * 18)
      .attr('font-size', 13)
      .attr('fill', theme.text)
      .text(l),
  );
  return serializeSvg(svg);
}
