/**
 * Embedding in internal tools: chart URLs for <img> tags, permalinks that survive the cache and a
 * restart, caching headers, CORS, signed URLs, and an example page loaded in Chromium.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { asText, launchChromium } from './helpers/browser.js';
import { createApp } from '../server/app.js';
import { testConfig } from './helpers/config.js';
import { checkSignedUrl, signUrl } from '../server/signing.js';

const SAMPLES = path.resolve('samples/models');

describe('server: embedding', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let dataDir: string;
  const make = (env: Record<string, string> = {}) =>
    createApp({ registry: repo, config: testConfig({ DATA_DIR: dataDir, ...env }), backend: 'wasm' });

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'embed-'));
  });

  it('the GET form equals the POST form, missing features taken from the background median (one-hot groups: its most frequent category)', async () => {
    const app = make();
    const m = repo.models.get('credit')!;
    const bg = m.background!;
    const median = (j: number) => {
      const col = Array.from({ length: bg.n }, (_, i) => bg.data[i * bg.d + j]).sort((a, b) => a - b);
      return (col[bg.n / 2 - 1] + col[bg.n / 2]) / 2;
    };
    const row = m.space.featureNames.map((_, j) => median(j));
    const names = m.space.featureNames;
    row[names.indexOf('income')] = 30000;
    row[names.indexOf('late_payments')] = 3;
    // The housing columns: a valid one-hot row of the background's most frequent category, not three medians.
    const housing = ['housing_rent', 'housing_own', 'housing_mortgage'].map((f) => names.indexOf(f));
    const counts = housing.map((c) => Array.from({ length: bg.n }, (_, i) => bg.data[i * bg.d + c]).filter((v) => v === 1).length);
    const mode = counts.indexOf(Math.max(...counts));
    housing.forEach((c, k) => (row[c] = k === mode ? 1 : 0));
    const get = await request(app).get('/v1/models/credit/explain.json?income=30000&late_payments=3&seed=2');
    assert.equal(get.status, 200, JSON.stringify(get.body));
    assert.ok(get.headers['x-defaulted-features'].includes('debt_ratio'));
    const post = await request(app)
      .post('/v1/models/credit/explain')
      .send({ instances: [row], parameters: { seed: 2 } });
    assert.equal(get.body.id, post.body.id);
    assert.deepEqual(get.body.explanations[0].outputs, post.body.explanations[0].outputs);
  });

  it('an id survives the cache and a restart, and its answer is identical', async () => {
    const first = make();
    const post = await request(first)
      .post('/v1/models/linear/explain')
      .send({ instances: [[1, 500, 0.01, 5, 1, 3]] });
    const { id, links } = post.body;
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(links.svg, `/v1/explanations/${id}.svg`);
    // A new app over the same DATA_DIR: an empty cache, as after a restart.
    const restarted = make();
    const again = await request(restarted).get(links.json);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual(again.body.explanations[0].outputs, post.body.explanations[0].outputs);
    assert.match(again.headers['cache-control'], /immutable/);
    const svg = await request(restarted).get(links.svg).buffer(true).parse(asText);
    assert.equal(svg.status, 200);
    assert.match(svg.body, /^<svg/);
    const missing = await request(restarted).get('/v1/explanations/0123456789abcdef0123456789abcdef.json');
    assert.equal(missing.status, 404);
  });

  it('a link to an old model version says it is gone (410)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'repo-'));
    await cp(path.join(SAMPLES, 'linear'), path.join(dir, 'linear'), { recursive: true });
    const app = createApp({ registry: await loadModelRepository(dir), config: testConfig({ DATA_DIR: dataDir }), backend: 'wasm' });
    const post = await request(app)
      .post('/v1/models/linear/explain')
      .send({ instances: [[1, 500, 0.01, 5, 1, 3]] });
    await writeFile(path.join(dir, 'linear', 'README.txt'), 'a new file: a new version');
    app.context.svc.registry.models = (await loadModelRepository(dir)).models;
    const res = await request(app).get(post.body.links.json);
    assert.equal(res.status, 410);
    assert.equal(res.body.error.code, 'MODEL_VERSION_GONE');
  });

  it('ETag, 304 on If-None-Match, and Cache-Control on chart URLs', async () => {
    const app = make();
    const url = '/v1/models/credit/explain.svg?income=41000';
    const a = await request(app).get(url).buffer(true).parse(asText);
    assert.ok(a.headers.etag);
    assert.match(a.headers['cache-control'], /max-age=300/);
    const b = await request(app).get(url).set('If-None-Match', a.headers.etag);
    assert.equal(b.status, 304);
  });

  it('errors on image URLs are small SVGs with the 4xx status', async () => {
    const app = make();
    const res = await request(app).get('/v1/models/credit/explain.svg?income=lots').buffer(true).parse(asText);
    assert.equal(res.status, 400);
    assert.match(res.headers['content-type'], /image\/svg\+xml/);
    assert.match(res.body, /BAD_INSTANCE/);
    assert.match(res.body, /income/);
    const unknown = await request(app).get('/v1/models/credit/explain.svg?salary=1').buffer(true).parse(asText);
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /UNKNOWN_FEATURE/);
    const noModel = await request(app).get('/v1/models/nope/explain.png');
    assert.equal(noModel.status, 404);
    assert.match(noModel.headers['content-type'], /image\/png/);
  });

  it('CORS headers for configured origins only', async () => {
    const app = make({ CORS_ORIGINS: 'https://tools.example' });
    const ok = await request(app).get('/v1/models').set('Origin', 'https://tools.example');
    assert.equal(ok.headers['access-control-allow-origin'], 'https://tools.example');
    const other = await request(app).get('/v1/models').set('Origin', 'https://evil.example');
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const none = await request(make()).get('/v1/models').set('Origin', 'https://tools.example');
    assert.equal(none.headers['access-control-allow-origin'], undefined);
  });

  it('signed URLs work without a key, and tampered or expired ones do not', async () => {
    const app = make({ API_KEYS: 'reviewer-key-123:credit' });
    const path0 = '/v1/models/credit/explain.svg?income=30000';
    assert.equal((await request(app).get(path0)).status, 401);
    const minted = await request(app).post('/v1/signed-urls').set('X-API-Key', 'reviewer-key-123').send({ path: path0, ttlSeconds: 600 });
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    const ok = await request(app).get(minted.body.url).buffer(true).parse(asText);
    assert.equal(ok.status, 200);
    const tampered = await request(app).get(minted.body.url.replace('income=30000', 'income=90000'));
    assert.equal(tampered.status, 401);
    const forbidden = await request(app)
      .post('/v1/signed-urls')
      .set('X-API-Key', 'reviewer-key-123')
      .send({ path: '/v1/models/penguins/importance.svg' });
    assert.equal(forbidden.status, 403);
    const key = Buffer.from('k');
    const url = signUrl(key, path0, 1000);
    assert.equal(checkSignedUrl(key, url, 999_000), 'valid');
    assert.equal(checkSignedUrl(key, url, 1_001_000), 'expired');
    assert.equal(checkSignedUrl(Buffer.from('other'), url, 999_000), 'invalid');
  });

  it('an example page embedding charts loads in Chromium with every image decoded', async function () {
    const browser = await launchChromium();
    if (!browser) return this.skip();
    const app = make({ API_KEYS: 'dashboard-key-1' });
    const server = app.listen(0, '127.0.0.1');
    try {
      await new Promise((r) => server.once('listening', r));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const auth = { 'X-API-Key': 'dashboard-key-1' };
      const post = await request(app)
        .post('/v1/models/credit/explain')
        .set(auth)
        .send({ instances: [[35, 52000, 0.3, 10, 0, 15000, 5, 9000, 0, 1, 0, 0, 0, 2]] });
      const sign = async (p: string) => (await request(app).post('/v1/signed-urls').set(auth).send({ path: p })).body.url as string;
      const page = (await readFile('test/fixtures/embed/example.html', 'utf8'))
        .replaceAll('{{PERMALINK}}', base + (await sign(post.body.links.svg)).replaceAll('&', '&amp;'))
        .replaceAll('{{SIGNED}}', base + (await sign('/v1/models/credit/explain.svg?income=30000&plot=bar')).replaceAll('&', '&amp;'))
        .replaceAll('{{BASE}}', base);
      // The unsigned URLs in the page need a key: the browser has none, so sign those too.
      const signedPage = await replaceAsync(
        page,
        /src="(http:\/\/127\.0\.0\.1:\d+)(\/v1\/models\/credit\/(?:explain|importance)\.(?:svg|png)[^"]*|\/v1\/models\/credit\/report)"/g,
        async (_m, host, rest) =>
          rest.includes('sig=') || rest.endsWith('/report')
            ? `src="${host}${rest}"`
            : `src="${host}${(await sign(rest.replaceAll('&amp;', '&'))).replaceAll('&', '&amp;')}"`,
      );
      const tab = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      await tab.setContent(signedPage, { waitUntil: 'load' });
      const sizes = await tab.$$eval('img', (imgs) =>
        imgs.map((i) => ({ id: i.id, w: (i as HTMLImageElement).naturalWidth, ok: (i as HTMLImageElement).complete })),
      );
      for (const s of sizes) assert.ok(s.ok && s.w > 0, `${s.id} decoded: ${JSON.stringify(s)}`);
      mkdirSync('test-artifacts', { recursive: true });
      await tab.screenshot({ path: 'test-artifacts/embed-example.png', fullPage: true });
    } finally {
      await browser.close();
      server.close();
    }
  });
});

async function replaceAsync(s: string, re: RegExp, fn: (...m: string[]) => Promise<string>): Promise<string> {
  const parts: Promise<string>[] = [];
  s.replace(re, (...m) => {
    parts.push(fn(...(m as string[])));
    return '';
  });
  const done = await Promise.all(parts);
  let i = 0;
  return s.replace(re, () => done[i++]);
}
