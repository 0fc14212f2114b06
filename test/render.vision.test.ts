/**
 * Image overlays and text token charts: well-formed, byte-stable (snapshots), escaped, and drawn as
 * intended (resvg renders the SVG with its embedded PNG; pixels are read back), plus a Chromium check.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import { JSDOM } from 'jsdom';
import type { Browser } from 'playwright-core';
import type { Explanation } from '../explainers/types.js';
import { renderHtmlReport, renderImageComparison, renderImageOverlay, renderTextTokens, renderTextTokensHtml, svgToPng } from '../render/index.js';
import { launchChromium } from './helpers/browser.js';

const SNAPSHOTS = join(dirname(fileURLToPath(import.meta.url)), '__snapshots__', 'render');
const window = new JSDOM('').window;

function parseSvg(svg: string): Document {
  const doc = new window.DOMParser().parseFromString(svg, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, `not well-formed XML:\n${svg.slice(0, 300)}`);
  return doc;
}

function matchSnapshot(name: string, actual: string) {
  const file = join(SNAPSHOTS, name);
  if (process.env.UPDATE_SNAPSHOTS === '1' || !existsSync(file)) {
    mkdirSync(SNAPSHOTS, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.ok(actual === readFileSync(file, 'utf8'), `${name} differs from its snapshot (UPDATE_SNAPSHOTS=1 rewrites it after a deliberate change)`);
}

/** An 8x8 grey image: a bright square at rows 2..4, cols 2..4 with positive attribution, a negative pixel at (6, 6). */
function imageExplanation(method: Explanation['method'], withSegments = false): Explanation {
  const attributions = Array.from({ length: 64 }, (_, p) => {
    const y = Math.floor(p / 8);
    const x = p % 8;
    const inSquare = y >= 2 && y <= 4 && x >= 2 && x <= 4;
    const attribution = inSquare ? 1 : y === 6 && x === 6 ? (method === 'grad-cam' ? 0 : -1) : 0;
    return { feature: `p${y}_${x}`, value: inSquare ? 0.9 : 0.1, attribution };
  });
  return {
    method,
    inputShape: [8, 8, 1],
    explanations: [
      {
        outputs: [{ output: 'square', outputIndex: 0, baselineOutputValue: 0.2, instanceOutputValue: 0.9, attributions, approximationError: 0 }],
        converged: true,
        modelEvaluations: 1,
        computeMs: 1,
        ...(withSegments ? { diagnostics: { segments: { count: 2, labels: Array.from({ length: 64 }, (_, p) => (p % 8 < 4 ? 0 : 1)) } } } : {}),
      },
    ],
  };
}

function textExplanation(): Explanation {
  const words = ['the', 'film', 'was', 'excellent', '<script>alert(1)</script>', 'and', 'long'];
  const attr = [0.01, -0.02, 0, 0.8, -0.3, 0.02, -0.05];
  return {
    method: 'partition-shap',
    explanations: [
      {
        outputs: [
          {
            output: 'positive',
            outputIndex: 1,
            baselineOutputValue: 0.45,
            instanceOutputValue: 0.91,
            attributions: words.map((w, i) => ({ feature: w, value: i + 3, attribution: attr[i], position: i })),
            approximationError: 0,
          },
        ],
        converged: true,
        modelEvaluations: 30,
        computeMs: 1,
      },
    ],
  };
}

/** RGBA pixels of an SVG rendered by resvg (which decodes our embedded PNG). */
function pixels(svg: string): { width: number; rgba: Uint8Array } {
  const img = new Resvg(svg, { font: { loadSystemFonts: false } }).render();
  return { width: img.width, rgba: img.pixels };
}

describe('render: image overlays and text tokens', () => {
  it('an overlay upsamples a small image cleanly and colours positive vermillion, negative blue', () => {
    const svg = renderImageOverlay(imageExplanation('integrated-gradients'));
    const doc = parseSvg(svg);
    const image = doc.getElementsByTagName('image')[0];
    assert.equal(image.getAttribute('width'), '224'); // 8 px x 28
    assert.match(image.getAttribute('href') ?? '', /^data:image\/png;base64,iVBORw0KGgo/);
    matchSnapshot('image-overlay.svg', svg);
    const { width, rgba } = pixels(svg);
    const x0 = Number(image.getAttribute('x'));
    const y0 = Number(image.getAttribute('y'));
    const at = (row: number, col: number) => {
      const i = ((y0 + row * 28 + 14) * width + (x0 + col * 28 + 14)) * 4;
      return [rgba[i], rgba[i + 1], rgba[i + 2]];
    };
    const [r1, g1, b1] = at(3, 3); // positive: vermillion dominates
    assert.ok(r1 > 150 && r1 > b1 + 60, `positive pixel ${[r1, g1, b1]}`);
    const [r2, , b2] = at(6, 6); // negative: blue dominates
    assert.ok(b2 > r2 + 40, `negative pixel ${[r2, b2]}`);
    const [r3, g3, b3] = at(0, 0); // no attribution: the grey image shows through
    assert.ok(Math.abs(r3 - g3) < 3 && Math.abs(g3 - b3) < 3, `neutral pixel ${[r3, g3, b3]}`);
  });

  it('superpixel explanations get segment outlines; grad-cam uses the sequential map', () => {
    const svg = renderImageOverlay(imageExplanation('partition-shap', true));
    const doc = parseSvg(svg);
    const image = doc.getElementsByTagName('image')[0];
    const { width, rgba } = pixels(svg);
    const x0 = Number(image.getAttribute('x'));
    const y0 = Number(image.getAttribute('y'));
    const boundary = ((y0 + 10) * width + (x0 + 4 * 28 - 1)) * 4; // last column of block x = 3, between segments 0 and 1
    assert.deepEqual([rgba[boundary], rgba[boundary + 1], rgba[boundary + 2]], [255, 212, 0]);
    const cam = renderImageOverlay(imageExplanation('grad-cam'));
    matchSnapshot('image-gradcam.svg', cam);
    assert.match(cam, /relevance/);
  });

  it('several methods side by side, one panel each plus the input, and PNG export', () => {
    const svg = renderImageComparison([
      { explanation: imageExplanation('integrated-gradients') },
      { explanation: imageExplanation('grad-cam') },
      { explanation: imageExplanation('partition-shap', true), label: 'Partition SHAP (blur)' },
    ]);
    const doc = parseSvg(svg);
    assert.equal(doc.getElementsByTagName('image').length, 4);
    assert.ok(svg.includes('Grad-CAM') && svg.includes('Partition SHAP (blur)'));
    matchSnapshot('image-comparison.svg', svg);
    const png = svgToPng(svg);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
  });

  it('text tokens: in order, coloured by sign, hostile tokens escaped, as SVG and HTML', () => {
    const e = textExplanation();
    const svg = renderTextTokens(e);
    const doc = parseSvg(svg);
    const texts = Array.from(doc.querySelectorAll('g.token text')).map((t) => t.textContent);
    assert.deepEqual(texts, ['the', 'film', 'was', 'excellent', '<script>alert(1)</script>', 'and', 'long']);
    assert.ok(!svg.includes('<script>'));
    matchSnapshot('text-tokens.svg', svg);
    const html = renderTextTokensHtml(e);
    assert.ok(!html.includes('<script>') && html.includes('&lt;script&gt;'));
    const frag = new JSDOM(html).window.document;
    const spans = Array.from(frag.querySelectorAll('span.token'));
    assert.equal(spans.length, 7);
    assert.match(spans[3].getAttribute('style') ?? '', /background:rgb\(2[0-9]{2}, /); // "excellent": the vermillion end
    matchSnapshot('text-tokens.html', html);
  });
});

describe('render: image and text charts in Chromium', function () {
  this.timeout(120_000);
  let browser: Browser | undefined;
  before(async function () {
    browser = await launchChromium();
    if (!browser) this.skip();
  });
  after(async () => browser?.close());

  it('draws the overlay, the comparison and the text charts with no errors, and the SVG images decode', async () => {
    const overlay = renderImageOverlay(imageExplanation('integrated-gradients'));
    const page = await browser!.newPage({ viewport: { width: 900, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    const html = renderHtmlReport({
      title: 'Image and text charts',
      sections: [
        { heading: 'Overlay', svg: overlay },
        { heading: 'Methods side by side', svg: renderImageComparison([{ explanation: imageExplanation('integrated-gradients') }, { explanation: imageExplanation('grad-cam') }]) },
        { heading: 'Tokens (SVG)', svg: renderTextTokens(textExplanation()) },
        { heading: 'Tokens (HTML)', html: renderTextTokensHtml(textExplanation()) },
        { heading: 'As an <img>', html: `<img id="as-img" src="data:image/svg+xml;base64,${Buffer.from(overlay).toString('base64')}">` },
      ],
    });
    await page.setContent(html, { waitUntil: 'load' });
    const boxes = await page.$$eval('svg', (svgs) => svgs.map((s) => s.getBoundingClientRect()).map((r) => [r.width, r.height]));
    assert.equal(boxes.length, 3);
    for (const [w, h] of boxes) assert.ok(w > 200 && h > 100);
    const img = await page.$eval('#as-img', (i) => [(i as HTMLImageElement).complete, (i as HTMLImageElement).naturalWidth]);
    assert.deepEqual(img, [true, 300]);
    assert.equal(await page.$$eval('span.token', (s) => s.length), 7);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
