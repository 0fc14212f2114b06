/**
 * Requests an attacker (or a careless client) sends: bodies before keys, the wrong media types,
 * compressed bodies, malformed paths, odd chart queries, non-Latin-1 feature names, floods of
 * distinct unauthenticated paths. Every answer is a 4xx with a stable code (never a 5xx), no body
 * carries a stack trace or a file path, CORS headers reach allowed origins on early errors, and the
 * metrics' label sets do not grow with the paths requested.
 */
import { strict as assert } from 'node:assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { createApp } from '../server/app.js';
import { ERROR_STATUS } from '../service/errors.js';
import { testConfig } from './helpers/config.js';
import { LEAK } from './helpers/leak.js';
import { linearModel, served } from './helpers/jsModels.js';

function leakFree(res: request.Response, what: string): void {
  const body = res.text ?? (Buffer.isBuffer(res.body) ? res.body.toString('latin1') : JSON.stringify(res.body));
  assert.doesNotMatch(body, LEAK, `${what}: ${body.slice(0, 300)}`);
}

function expectError(res: request.Response, status: number, code: string, what: string): void {
  assert.equal(res.status, status, `${what}: ${res.status} ${(res.text ?? '').slice(0, 300)}`);
  if (res.type === 'application/json') assert.equal(res.body.error.code, code, what);
  assert.ok(Object.hasOwn(ERROR_STATUS, code));
  leakFree(res, what);
}

const bg = { data: Float32Array.from({ length: 30 }, (_, i) => (i * 13) % 7), n: 10, d: 3 };
const models = () =>
  new Map([
    [
      'lin',
      served('lin', linearModel([1, -2, 0.5], 0.3), { background: bg, reference: { rows: bg, labels: new Float32Array(10).fill(1) } }),
    ],
    [
      'intl',
      served('intl', linearModel([1, 2, 3]), {
        space: { featureNames: ['年龄', 'σ_noise', 'income'], outputNames: ['y'] },
        background: bg,
      }),
    ],
  ]);

/** A request with a raw byte body (supertest would re-encode a Buffer sent as JSON). */
async function raw(app: ReturnType<typeof createApp>, path: string, headers: Record<string, string>, body: Buffer) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body: new Uint8Array(body) });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, type: res.headers.get('content-type') ?? '', text, body: json } as unknown as request.Response;
  } finally {
    server.close();
  }
}

describe('server: hostile and careless requests', function () {
  this.timeout(120_000);
  const open = createApp({ registry: { models: models(), errors: [] }, config: testConfig({ BODY_LIMIT: '64kb' }), backend: 'js' });
  const keyed = createApp({
    registry: { models: models(), errors: [] },
    config: testConfig({ API_KEYS: 'the-only-key-1', CORS_ORIGINS: 'https://tool.example', BODY_LIMIT: '64kb' }),
    backend: 'js',
  });
  const row = { instances: [[1, 2, 3]] };

  it('a large body without a key is refused before it is read, and the connection is closed', async () => {
    const server = keyed.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const port = (server.address() as AddressInfo).port;
      // Announce 94 MB, send 16 bytes, and wait: a server that parsed first would wait for the rest.
      const res = await new Promise<http.IncomingMessage & { text: string }>((resolve, reject) => {
        const req = http.request(
          {
            port,
            host: '127.0.0.1',
            path: '/v1/jobs',
            method: 'POST',
            headers: { 'content-type': 'application/json', 'content-length': String(94 * 2 ** 20) },
          },
          (r) => {
            let text = '';
            r.on('data', (c) => (text += c));
            r.on('end', () => resolve(Object.assign(r, { text })));
          },
        );
        req.on('error', reject);
        req.write('{"model":"lin","');
      });
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers.connection, 'close');
      assert.equal(JSON.parse(res.text).error.code, 'UNAUTHORIZED');
      // Same for a body sent to no route at all.
      const nowhere = await request(keyed).post('/v1/nothing/here').set('X-API-Key', 'the-only-key-1').send(row);
      expectError(nowhere, 404, 'NOT_FOUND', 'unknown route');
    } finally {
      server.close();
    }
  });

  it('POST bodies must be JSON (or a job upload type): text/plain, forms and untyped bodies get 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/csv']) {
      const res = await request(open).post('/v1/models/lin/predict').set('Content-Type', type).send(JSON.stringify(row));
      expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE', type);
      assert.match(res.body.error.message, /application\/json/);
    }
    const plainJob = await request(open).post('/v1/jobs').set('Content-Type', 'text/plain').send('{"model":"lin"}');
    expectError(plainJob, 415, 'UNSUPPORTED_MEDIA_TYPE', 'text/plain job');
    // No Content-Type at all, with a body.
    const server = open.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const untyped = await fetch(`http://127.0.0.1:${port}/v1/models/lin/predict`, {
        method: 'POST',
        body: new Blob([JSON.stringify(row)]),
      });
      assert.equal(untyped.status, 415);
    } finally {
      server.close();
    }
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/vnd.api+json']) {
      const res = await request(open).post('/v1/models/lin/predict').set('Content-Type', type).send(JSON.stringify(row));
      assert.equal(res.status, 200, type);
    }
    // A POST without a body needs no type.
    assert.equal((await request(open).post('/v1/models/lin/importance')).status, 200);
  });

  it('Content-Encoding: gzip works under the limit; a bomb is 413, a broken stream 400, an unknown encoding 415', async () => {
    const post = (encoding: string, body: Buffer) =>
      raw(open, '/v1/models/lin/predict', { 'content-type': 'application/json', 'content-encoding': encoding }, body);
    const gz = await post('gzip', gzipSync(JSON.stringify(row)));
    assert.equal(gz.status, 200, gz.text);
    assert.equal(gz.body.predictions.length, 1);
    // 4 MB of spaces, ~4 kB compressed; the limit (64 kB) applies to the decompressed body.
    const big = await post('gzip', gzipSync(Buffer.alloc(4 * 2 ** 20, 32)));
    expectError(big, 413, 'PAYLOAD_TOO_LARGE', 'gzip bomb');
    assert.doesNotMatch(big.body.error.message, /undefined/);
    expectError(await post('gzip', Buffer.from('this is not gzip')), 400, 'BAD_ENCODING', 'not gzip');
    expectError(await post('br', Buffer.from('{}')), 400, 'BAD_ENCODING', 'not brotli');
    expectError(await post('x-custom', Buffer.from('{}')), 415, 'UNSUPPORTED_MEDIA_TYPE', 'unknown encoding');
  });

  it('the 500s found before are 4xx now: bad percent-encoding, plot=image on a tabular model, a NUL in a chart query', async () => {
    expectError(await request(open).get('/v1/models/%zz'), 400, 'INVALID_REQUEST', '/v1/models/%zz');
    expectError(await request(open).get('/v1/models/%zz/explain.svg?x0=1'), 400, 'INVALID_REQUEST', '%zz chart');
    const image = await request(open).get('/v1/models/lin/explain.svg?x0=1&plot=image');
    expectError(image, 400, 'BAD_PARAMETER', 'plot=image');
    assert.equal(image.type, 'image/svg+xml');
    const imagePng = await request(open).get('/v1/models/lin/explain.png?x0=1&plot=image');
    assert.equal(imagePng.status, 400);
    assert.equal(imagePng.type, 'image/png');
    for (const ext of ['svg', 'png']) {
      const nul = await request(open)
        .get(`/v1/models/lin/explain.${ext}?x0=3%00&plot=bar`)
        .buffer(true)
        .parse((res, cb) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => cb(null, Buffer.concat(chunks)));
        });
      assert.equal(nul.status, 400, ext);
      const bytes = nul.body as Buffer;
      if (ext === 'svg') {
        assert.ok(!bytes.includes(0), 'the error SVG holds no NUL');
        assert.match(bytes.toString('utf8'), /^<svg[\s\S]*<\/svg>$/);
      } else assert.deepEqual([...bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      assert.doesNotMatch(bytes.toString('latin1'), LEAK);
    }
  });

  it('feature names outside Latin-1 reach X-Defaulted-Features percent-encoded', async () => {
    const res = await request(open).get(`/v1/models/intl/explain.svg?${encodeURIComponent('年龄')}=30`);
    assert.equal(res.status, 200, res.text?.slice(0, 300));
    const header = String(res.headers['x-defaulted-features']);
    assert.deepEqual(header.split(',').map(decodeURIComponent), ['σ_noise', 'income']);
    assert.match(header, /^[\x21-\x7e]+$/);
  });

  it('CORS headers reach allowed origins on early errors (401, 413, 415)', async () => {
    const origin = 'https://tool.example';
    const unauth = await request(keyed).post('/v1/models/lin/predict').set('Origin', origin).send(row);
    assert.equal(unauth.status, 401);
    assert.equal(unauth.headers['access-control-allow-origin'], origin);
    const big = await request(keyed)
      .post('/v1/models/lin/predict')
      .set('Origin', origin)
      .set('X-API-Key', 'the-only-key-1')
      .send({ instances: Array.from({ length: 20000 }, () => [1, 2, 3]) });
    assert.equal(big.status, 413);
    assert.equal(big.headers['access-control-allow-origin'], origin);
    const plain = await request(keyed)
      .post('/v1/models/lin/predict')
      .set('Origin', origin)
      .set('X-API-Key', 'the-only-key-1')
      .set('Content-Type', 'text/plain')
      .send('{}');
    assert.equal(plain.status, 415);
    assert.equal(plain.headers['access-control-allow-origin'], origin);
    const other = await request(keyed).post('/v1/models/lin/predict').set('Origin', 'https://evil.example').send(row);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  it('metrics label sets do not grow with 3,000 unauthenticated requests to distinct paths', async () => {
    const series = async () => {
      const text = (await request(keyed).get('/metrics').set('X-API-Key', 'the-only-key-1')).text;
      return { text, labels: new Set(text.split('\n').filter((l) => l.startsWith('http_request_duration_seconds_count'))) };
    };
    const hit = (i: number) =>
      i % 3 === 0
        ? request(keyed).get(`/v1/models/m${i}/explain.svg?x=${i}`)
        : i % 3 === 1
          ? request(keyed).post(`/v1/p${i}/q`).set('Content-Type', 'text/plain').send('x')
          : request(keyed).get(`/x${i}`);
    for (let i = 0; i < 100; i++) await hit(i);
    await series(); // /metrics itself appears from its second scrape on
    const before = await series();
    for (let i = 100; i < 3000; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => hit(i + k)));
    const after = await series();
    const keys = (s: Set<string>) => new Set([...s].map((l) => l.replace(/ \d+$/, '')));
    assert.deepEqual(keys(after.labels), keys(before.labels));
    assert.doesNotMatch(after.text, /m2997|\/x2999|p2998/);
    assert.ok(after.text.length < before.text.length + 4000, `${before.text.length} -> ${after.text.length} bytes`);
  });
});
