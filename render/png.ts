/**
 * SVG -> PNG with resvg, offline. resvg draws no text when it has no font (silently), so the DejaVu
 * fonts the theme names first are loaded from the dejavu-fonts-ttf package, never from the system:
 * the same bytes come out on every machine.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';

// Only the faces the theme uses: resvg parses every file on each render, so each extra face costs time.
const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'];

let fontFiles: string[] | undefined;

function fonts(): string[] {
  if (!fontFiles) {
    const dir = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
    fontFiles = FONT_FILES.map((f) => join(dir, f));
  }
  return fontFiles;
}

export interface PngOptions {
  /** Output width in pixels; the height keeps the aspect ratio. Default: the SVG's own width. */
  width?: number;
  /** Fill behind the chart; default white (charts draw their own white ground too). */
  background?: string;
}

export function svgToPng(svg: string, options: PngOptions = {}): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: options.width ? { mode: 'width', value: Math.round(options.width) } : { mode: 'original' },
    background: options.background ?? '#ffffff',
    font: { fontFiles: fonts(), loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
