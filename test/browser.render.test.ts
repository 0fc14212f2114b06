import { strict as assert } from 'node:assert';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import {
  renderBar,
  renderBeeswarm,
  renderForce,
  renderGroupComparison,
  renderHtmlReport,
  renderImageAttribution,
  renderImportance,
  renderMeanAbs,
  renderWaterfall,
} from '../render/index.js';
import { launchChromium } from './helpers/browser.js';
import { exampleExplanation, exampleGroups, exampleImageExplanation, exampleImportance } from '../render/examples.js';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts');

/** A report page holding one of every chart, as a person would open it. */
export function reportWithEveryChart(): string {
  const one = exampleExplanation({ features: 20 });
  const many = exampleExplanation({ features: 20, instances: 300 });
  const img = exampleImageExplanation();
  const sections = [
    { heading: 'Waterfall', svg: renderWaterfall(one) },
    { heading: 'Force plot', svg: renderForce(one) },
    { heading: 'Attributions with standard errors', svg: renderBar(one) },
    { heading: 'Beeswarm over 300 explanations', svg: renderBeeswarm(many) },
    { heading: 'Mean |SHAP value|', svg: renderMeanAbs(many) },
    { heading: 'Permutation importance', svg: renderImportance(exampleImportance()) },
    { heading: 'Integrated Gradients on an image', svg: renderImageAttribution(img.explanation, { image: img.image, shape: img.shape }) },
    {
      heading: 'Selection rate by group',
      svg: renderGroupComparison(exampleGroups(), {
        valueLabel: 'Rate',
        reference: { value: 0.8 * 0.42, label: 'four-fifths of the highest selection rate' },
      }),
    },
  ];
  return renderHtmlReport({ title: 'Every chart', subtitle: 'render/ in a real browser', sections });
}

describe('render: in Chromium', function () {
  this.timeout(120_000);
  let browser: Browser | undefined;

  before(async function () {
    browser = await launchChromium();
    if (!browser) this.skip();
  });

  after(async () => {
    await browser?.close();
  });

  it('shows a report with every chart: no console errors, every SVG has a size; saves a screenshot', async () => {
    const page = await browser!.newPage({ viewport: { width: 900, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('request', (r) => {
      if (!r.url().startsWith('data:') && r.url() !== 'about:blank') errors.push(`request: ${r.url()}`);
    });
    await page.setContent(reportWithEveryChart(), { waitUntil: 'load' });
    const boxes = await page.$$eval('svg', (svgs) =>
      svgs.map((s) => {
        const r = s.getBoundingClientRect();
        return { w: r.width, h: r.height, title: s.querySelector('title')?.textContent ?? '' };
      }),
    );
    assert.equal(boxes.length, 8);
    for (const b of boxes) assert.ok(b.w > 100 && b.h > 50, `${b.title}: ${b.w}x${b.h}`);
    // Text really laid out (with transforms, in the browser's fonts) stays inside its chart.
    const overflow = await page.$$eval('svg', (svgs) =>
      svgs.flatMap((s) => {
        const box = s.getBoundingClientRect();
        return Array.from(s.querySelectorAll('text'))
          .map((t) => ({ r: t.getBoundingClientRect(), text: t.textContent }))
          .filter(({ r }) => r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
          .map(
            ({ r, text }) =>
              `${s.querySelector('title')?.textContent}: "${text}" at ${r.left - box.left}..${r.right - box.left} of ${box.width}`,
          );
      }),
    );
    assert.deepEqual(overflow, [], 'no text runs off its chart');
    assert.deepEqual(errors, []);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
    // One image per chart as well: the full page is too tall to look at in one go.
    const sections = await page.$$('section');
    for (let i = 0; i < sections.length; i++) await sections[i].screenshot({ path: join(ARTIFACTS, `report-${i + 1}.png`) });
    await page.close();
  });
});
