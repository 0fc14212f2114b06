import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import {
  renderBar,
  renderBeeswarm,
  renderForce,
  renderGroupComparison,
  renderImageAttribution,
  renderImportance,
  renderMeanAbs,
  renderWaterfall,
  svgToPng,
} from '../render/index.js';
import { exampleExplanation, exampleGroups, exampleImageExplanation, exampleImportance } from '../render/examples.js';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts', 'png');

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width, height and the inflated (filtered) scanlines: enough to compare pixels without a decoder. */
function decode(png: Buffer): { width: number; height: number; data: Buffer } {
  assert.ok(png.subarray(0, 8).equals(PNG_MAGIC), 'PNG signature');
  let offset = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('ascii', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
    } else if (type === 'IDAT') idat.push(body);
    offset += 12 + length;
  }
  return { width, height, data: inflateSync(Buffer.concat(idat)) };
}

const withoutText = (svg: string) => svg.replace(/<text\b[^>]*>[\s\S]*?<\/text>/g, '');

describe('render: PNG', () => {
  const svg = renderWaterfall(exampleExplanation({ features: 12 }));

  it('svgToPng returns a PNG the size of the SVG, or of the width asked for', () => {
    const png = decode(svgToPng(svg));
    assert.equal(png.width, Number(/width="(\d+)"/.exec(svg)![1]));
    const wide = decode(svgToPng(svg, { width: 1440 }));
    assert.equal(wide.width, 1440);
    assert.ok(Math.abs(wide.height - 2 * png.height) <= 1);
  });

  it('draws the text: the same chart without its <text> elements has other pixels', () => {
    for (const chart of [svg, renderBar(exampleExplanation({ features: 5 }))]) {
      assert.ok(withoutText(chart).length < chart.length, 'the chart has text to remove');
      const a = decode(svgToPng(chart));
      const b = decode(svgToPng(withoutText(chart)));
      assert.equal(a.data.length, b.data.length);
      let differing = 0;
      for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) differing++;
      // Labels cover thousands of pixels; a font that failed to load would leave the two identical.
      assert.ok(differing > 2000, `only ${differing} bytes differ: is the font loaded?`);
    }
  });

  it('is deterministic', () => {
    assert.ok(svgToPng(svg).equals(svgToPng(svg)));
  });

  it('renders every chart (written to test-artifacts/png/ for a look)', () => {
    const many = exampleExplanation({ features: 20, instances: 300 });
    const one = exampleExplanation({ features: 20 });
    const charts: Record<string, string> = {
      waterfall: renderWaterfall(one),
      force: renderForce(one),
      bar: renderBar(one),
      beeswarm: renderBeeswarm(many),
      'mean-abs': renderMeanAbs(many),
      importance: renderImportance(exampleImportance()),
      image: renderImageAttribution(exampleImageExplanation().explanation),
      groups: renderGroupComparison(exampleGroups(), { valueLabel: 'Rate', reference: { value: 0.336, label: 'four-fifths of the highest selection rate' } }),
    };
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const [name, chart] of Object.entries(charts)) {
      const png = svgToPng(chart);
      assert.ok(decode(png).width > 0);
      writeFileSync(join(ARTIFACTS, `${name}.png`), png);
    }
  });
});
