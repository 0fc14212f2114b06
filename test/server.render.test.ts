/**
 * Charts and reports served by content negotiation, and the model report opened in a real browser.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { JSDOM } from 'jsdom';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { asText, launchChromium } from './helpers/browser.js';
import { createApp } from '../server/app.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

function parsesAsSvg(text: string): Document {
  const doc = new new JSDOM('').window.DOMParser().parseFromString(text, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, 'SVG parses as XML');
  assert.equal(doc.documentElement.tagName, 'svg');
  return doc;
}

const binary = (res: any, cb: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
};

describe('server: charts and reports', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let app: ReturnType<typeof createApp>;
  const row = [27, 77300, 0.278, 4, 0, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6];

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
  });

  it('explain answers Accept: image/svg+xml with a waterfall, and ?plot= picks another chart', async () => {
    const res = await request(app)
      .post('/v1/models/credit/explain')
      .set('Accept', 'image/svg+xml')
      .buffer(true)
      .parse(asText)
      .send({ instances: [row] });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /image\/svg\+xml/);
    assert.ok(res.headers.etag);
    const doc = parsesAsSvg(res.body);
    assert.match(doc.querySelector('title')!.textContent!, /aterfall/);
    const bar = await request(app)
      .post('/v1/models/credit/explain?plot=bar')
      .set('Accept', 'image/svg+xml')
      .buffer(true)
      .parse(asText)
      .send({ instances: [row] });
    parsesAsSvg(bar.body);
    assert.notEqual(bar.body, res.body);
    const bad = await request(app)
      .post('/v1/models/credit/explain?plot=pie')
      .set('Accept', 'image/svg+xml')
      .buffer(true)
      .parse(asText)
      .send({ instances: [row] });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).error.code, 'BAD_PARAMETER');
  });

  it('explain answers text/html with a report and image/png with a PNG', async () => {
    const html = await request(app)
      .post('/v1/models/credit/explain')
      .set('Accept', 'text/html')
      .buffer(true)
      .parse(asText)
      .send({ instances: [row] });
    assert.match(html.headers['content-type'], /text\/html/);
    assert.match(html.body, /<svg/);
    const png = await request(app)
      .post('/v1/models/credit/explain?format=png')
      .send({ instances: [row] })
      .buffer(true)
      .parse(binary);
    assert.equal(png.status, 200);
    assert.deepEqual([...(png.body as Buffer).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const no = await request(app)
      .post('/v1/models/credit/explain')
      .set('Accept', 'application/pdf')
      .send({ instances: [row] });
    assert.equal(no.status, 406);
    assert.equal(no.body.error.code, 'NOT_ACCEPTABLE');
  });

  it('an image model gets its heatmap by default', async () => {
    const ref = repo.models.get('shapes')!.reference!.rows;
    const res = await request(app)
      .post('/v1/models/shapes/explain')
      .set('Accept', 'image/svg+xml')
      .buffer(true)
      .parse(asText)
      .send({
        instances: [Array.from(ref.data.subarray(0, 256))],
        method: 'integrated-gradients',
        outputs: [0],
        parameters: { baseline: 'zeros' },
      });
    assert.equal(res.status, 200, res.body.slice(0, 300));
    parsesAsSvg(res.body);
  });

  it('importance answers SVG and HTML', async () => {
    const svg = await request(app)
      .post('/v1/models/penguins/importance')
      .set('Accept', 'image/svg+xml')
      .buffer(true)
      .parse(asText)
      .send({ repeats: 3 });
    assert.equal(svg.status, 200);
    parsesAsSvg(svg.body);
    const html = await request(app)
      .post('/v1/models/penguins/importance')
      .set('Accept', 'text/html')
      .buffer(true)
      .parse(asText)
      .send({ repeats: 3 });
    assert.match(html.body, /<!doctype html>/i);
  });

  it('a hostile feature name comes out escaped in the served SVG and HTML', async () => {
    const { linearModel, served } = await import('./helpers/jsModels.js');
    const evil = '<script>alert(1)</script>&"';
    const m = served('evil', linearModel([1, 2]), {
      space: { featureNames: [evil, 'ok'], outputNames: ['y'] },
      background: { data: new Float32Array([0, 0, 1, 1]), n: 2, d: 2 },
    });
    const a = createApp({ registry: { models: new Map([['evil', m]]), errors: [] }, config: testConfig({}), backend: 'js' });
    for (const accept of ['image/svg+xml', 'text/html']) {
      const res = await request(a)
        .post('/v1/models/evil/explain')
        .set('Accept', accept)
        .buffer(true)
        .parse(asText)
        .send({ instances: [[3, 4]] });
      assert.equal(res.status, 200);
      assert.ok(!res.body.includes('<script>alert(1)'), `${accept}: no live script`);
      assert.ok(res.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;&amp;'), `${accept}: the name is escaped`);
    }
  });

  it('the model report opens in Chromium with no console errors and visible charts', async function () {
    const browser = await launchChromium();
    if (!browser) return this.skip();
    const server = app.listen(0, '127.0.0.1');
    try {
      await new Promise((r) => server.once('listening', r));
      const port = (server.address() as AddressInfo).port;
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      for (const name of ['credit', 'shapes']) {
        const res = await page.goto(`http://127.0.0.1:${port}/v1/models/${name}/report`);
        assert.equal(res?.status(), 200);
        const boxes = await page.$$eval('svg', (els) => els.map((e) => e.getBoundingClientRect()).map((r) => [r.width, r.height]));
        assert.ok(boxes.length >= 2, `${name}: charts on the page`);
        for (const [w, h] of boxes) assert.ok(w > 50 && h > 50, `${name}: a chart of ${w}x${h}`);
        mkdirSync('test-artifacts', { recursive: true });
        await page.screenshot({ path: `test-artifacts/model-report-${name}.png`, fullPage: true });
      }
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      server.close();
    }
  });
});
