/**
 * Hundreds of malformed requests (fast-check): every one gets a 4xx with a stable code and a
 * message, never a 5xx, and the server still answers afterwards.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import request from 'supertest';
import { createApp } from '../server/app.js';
import { testConfig } from './helpers/config.js';
import { ERROR_STATUS } from '../service/errors.js';
import { linearModel, served } from './helpers/jsModels.js';
import { LEAK } from './helpers/leak.js';

describe('server: fuzzed bad input', function () {
  this.timeout(120_000);
  const bg = { data: Float32Array.from({ length: 30 }, (_, i) => (i * 13) % 7), n: 10, d: 3 };
  const model = served('lin', linearModel([1, -2, 0.5], 0.3), {
    background: bg,
    reference: { rows: bg, labels: new Float32Array(10).fill(1) },
  });
  const app = createApp({
    registry: { models: new Map([['lin', model]]), errors: [] },
    config: testConfig({ MAX_INSTANCES: '50', BODY_LIMIT: '64kb' }),
    backend: 'js',
  });
  const codes = new Set(Object.keys(ERROR_STATUS));

  const check = (res: request.Response, what: string) => {
    assert.ok(res.status < 500, `${what} -> ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    // No answer, error or not, carries a stack trace or a file path.
    assert.doesNotMatch(res.text ?? '', LEAK, `${what}: ${(res.text ?? '').slice(0, 300)}`);
    if (res.status >= 400) {
      assert.ok(codes.has(res.body?.error?.code), `${what}: unknown code ${JSON.stringify(res.body)}`);
      assert.ok(typeof res.body.error.message === 'string' && res.body.error.message.length > 5);
    }
  };

  const number = fc.oneof(fc.double(), fc.integer(), fc.constant(1e308));
  const cell = fc.oneof(
    number,
    fc.string(),
    fc.constant(null),
    fc.boolean(),
    fc.array(number, { maxLength: 3 }),
    fc.object({ maxDepth: 1 }),
  );
  const row = fc.oneof(
    fc.array(cell, { maxLength: 6 }),
    fc.dictionary(fc.oneof(fc.constantFrom('x0', 'x1', 'x2'), fc.string()), cell, { maxKeys: 5 }),
    cell,
  );
  const params = fc.oneof(
    fc.record({ nSamples: fc.oneof(number, fc.string(), fc.constant('auto')), seed: fc.oneof(number, fc.string()) }, { requiredKeys: [] }),
    fc.record(
      { steps: fc.oneof(number, fc.string()), method: fc.string(), baseline: fc.oneof(fc.string(), fc.array(row, { maxLength: 3 })) },
      { requiredKeys: [] },
    ),
    fc.record(
      { background: fc.array(row, { maxLength: 4 }), link: fc.string(), tolerance: number, deadlineMs: number },
      { requiredKeys: [] },
    ),
    fc.anything({ maxDepth: 2 }),
  );
  const body = fc.oneof(
    fc.record(
      {
        instances: fc.oneof(fc.array(row, { maxLength: 4 }), cell),
        method: fc.oneof(fc.constantFrom('kernel-shap', 'integrated-gradients'), fc.string()),
        outputs: fc.oneof(fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 3 }), cell),
        parameters: params,
      },
      { requiredKeys: [] },
    ),
    fc.anything({ maxDepth: 3 }),
  );

  it('JSON bodies of every wrong shape: 4xx, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('predict', 'explain', 'importance'), body, async (route, b) => {
        const res = await request(app)
          .post(`/v1/models/lin/${route}`)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify(b) ?? 'null');
        check(res, `${route} ${JSON.stringify(b)?.slice(0, 200)}`);
      }),
      { numRuns: 300, seed: 42 },
    );
  });

  it('raw bytes that are not JSON: 400 MALFORMED_JSON or 415', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1 }), fc.constantFrom('predict', 'explain', 'importance'), async (text, route) => {
        const res = await request(app).post(`/v1/models/lin/${route}`).set('Content-Type', 'application/json').send(text);
        check(res, `${route} raw ${JSON.stringify(text).slice(0, 100)}`);
      }),
      { numRuns: 150, seed: 7 },
    );
  });

  it('odd paths, methods and query strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string(), fc.constantFrom('get', 'post', 'delete', 'put'), fc.string(), async (seg, verb, q) => {
        const path = `/v1/models/${encodeURIComponent(seg)}/explain?plot=${encodeURIComponent(q)}&topK=${encodeURIComponent(q)}`;
        const res = await (request(app) as any)[verb](path).send({ instances: [[1, 2, 3]] });
        check(res, `${verb} ${path}`);
      }),
      { numRuns: 100, seed: 3 },
    );
  });

  it('hostile headers, encodings and media types: 4xx, never 5xx', async () => {
    const encodings = fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-zip', 'gzip, gzip', '');
    const types = fc.constantFrom(
      'application/json',
      'text/plain',
      'text/csv',
      'application/x-ndjson',
      'application/xml',
      '',
      'application/json; charset=latin-9',
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('predict', 'explain', 'importance', 'fairness', 'drift'),
        types,
        encodings,
        fc.uint8Array({ maxLength: 200 }),
        async (route, type, encoding, bytes) => {
          let req = request(app).post(`/v1/models/lin/${route}`);
          if (type) req = req.set('Content-Type', type);
          if (encoding) req = req.set('Content-Encoding', encoding);
          const res = await req.send(Buffer.from(bytes).toString('latin1'));
          check(res, `${route} ${type} ${encoding} ${bytes.length} bytes`);
        },
      ),
      { numRuns: 200, seed: 11 },
    );
  });

  it('is alive afterwards', async () => {
    const res = await request(app)
      .post('/v1/models/lin/explain')
      .send({ instances: [[1, 2, 3]] });
    assert.equal(res.status, 200);
    assert.equal((await request(app).get('/healthz')).status, 200);
  });
});
