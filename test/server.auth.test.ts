import { strict as assert } from 'node:assert';
import request from 'supertest';
import { createApp } from '../server/app.js';
import { findKey, parseApiKeys } from '../server/auth.js';
import { testConfig } from './helpers/config.js';
import { linearModel, served } from './helpers/jsModels.js';

function app(keys: string) {
  const bg = { data: new Float32Array([0, 0, 1, 1]), n: 2, d: 2 };
  const models = new Map([
    ['a', served('a', linearModel([1, 2]), { background: bg })],
    ['b', served('b', linearModel([3, 4]), { background: bg })],
  ]);
  return createApp({ registry: { models, errors: [] }, config: testConfig({ API_KEYS: keys }), backend: 'js' });
}

describe('server: API keys', () => {
  const a = app('all-models-key-1,only-a-key-2:a');
  const body = { instances: [[1, 2]] };

  it('401 without a key or with a wrong one, saying how to send one', async () => {
    const none = await request(a).post('/v1/models/a/predict').send(body);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'UNAUTHORIZED');
    assert.match(none.body.error.message, /Authorization: Bearer/);
    const wrong = await request(a).post('/v1/models/a/predict').set('Authorization', 'Bearer all-models-key-2').send(body);
    assert.equal(wrong.status, 401);
    const prefix = await request(a).post('/v1/models/a/predict').set('X-API-Key', 'all-models-key').send(body);
    assert.equal(prefix.status, 401);
  });

  it('a valid key works in either header', async () => {
    assert.equal((await request(a).post('/v1/models/b/predict').set('Authorization', 'Bearer all-models-key-1').send(body)).status, 200);
    assert.equal((await request(a).post('/v1/models/b/predict').set('X-API-Key', 'all-models-key-1').send(body)).status, 200);
  });

  it("403 for a model outside the key's scope, and the listing shows only its models", async () => {
    const res = await request(a).post('/v1/models/b/explain').set('X-API-Key', 'only-a-key-2').send(body);
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'FORBIDDEN');
    assert.equal((await request(a).post('/v1/models/a/predict').set('X-API-Key', 'only-a-key-2').send(body)).status, 200);
    const list = await request(a).get('/v1/models').set('X-API-Key', 'only-a-key-2');
    assert.deepEqual(
      list.body.models.map((m: any) => m.name),
      ['a'],
    );
  });

  it('health, readiness and the API docs stay open; /healthz says only its status without a key', async () => {
    for (const p of ['/healthz', '/readyz', '/openapi.json', '/docs']) assert.equal((await request(a).get(p)).status, 200, p);
    const anonymous = await request(a).get('/healthz');
    assert.deepEqual(anonymous.body, { status: 'ok' });
    const keyed = await request(a).get('/healthz').set('X-API-Key', 'only-a-key-2');
    assert.equal(keyed.body.status, 'ok');
    assert.equal(keyed.body.models, 2);
    assert.ok(Array.isArray(keyed.body.loadErrors));
    assert.deepEqual((await request(a).get('/readyz')).body, { ready: true, models: [] });
    assert.deepEqual((await request(a).get('/readyz').set('X-API-Key', 'only-a-key-2')).body, { ready: true, models: ['a', 'b'] });
    // Not ready: the reason goes to a key only.
    const empty = createApp({ registry: { models: new Map(), errors: [] }, config: testConfig({ API_KEYS: 'k-000000001' }), backend: 'js' });
    const notReady = await request(empty).get('/readyz');
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.body, { ready: false, models: [] });
    const told = await request(empty).get('/readyz').set('X-API-Key', 'k-000000001');
    assert.equal(told.status, 503);
    assert.deepEqual(told.body, { ready: false, models: [], reason: 'no model is served' });
    // A wrong key on an open path is no error, and reveals nothing.
    assert.deepEqual((await request(a).get('/healthz').set('X-API-Key', 'not-a-key-000')).body, { status: 'ok' });
  });

  it('/metrics needs an API key when keys are on, or METRICS_KEY when set; open when neither is', async () => {
    const none = await request(a).get('/metrics');
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'UNAUTHORIZED');
    assert.doesNotMatch(none.text, /http_request_duration_seconds/);
    const keyed = await request(a).get('/metrics').set('Authorization', 'Bearer only-a-key-2');
    assert.equal(keyed.status, 200);
    assert.match(keyed.text, /http_request_duration_seconds/);

    const bg = { data: new Float32Array([0, 0, 1, 1]), n: 2, d: 2 };
    const models = new Map([['a', served('a', linearModel([1, 2]), { background: bg })]]);
    const scraped = createApp({
      registry: { models, errors: [] },
      config: testConfig({ API_KEYS: 'all-models-key-1', METRICS_KEY: 'scraper-secret-1' }),
      backend: 'js',
    });
    assert.equal((await request(scraped).get('/metrics').set('Authorization', 'Bearer scraper-secret-1')).status, 200);
    assert.equal((await request(scraped).get('/metrics').set('Authorization', 'Bearer all-models-key-1')).status, 200);
    assert.equal((await request(scraped).get('/metrics').set('Authorization', 'Bearer scraper-secret-2')).status, 401);
    // The metrics key opens nothing else.
    assert.equal(
      (await request(scraped).post('/v1/models/a/predict').set('Authorization', 'Bearer scraper-secret-1').send(body)).status,
      401,
    );
    const onlyMetricsKey = createApp({
      registry: { models, errors: [] },
      config: testConfig({ METRICS_KEY: 'scraper-secret-1' }),
      backend: 'js',
    });
    assert.equal((await request(onlyMetricsKey).get('/metrics')).status, 401);
    assert.equal((await request(onlyMetricsKey).get('/metrics').set('X-API-Key', 'scraper-secret-1')).status, 200);
    assert.equal((await request(onlyMetricsKey).post('/v1/models/a/predict').send(body)).status, 200);
    assert.equal((await request(app('')).get('/metrics')).status, 200);
  });

  it('no keys configured: open', async () => {
    assert.equal((await request(app('')).post('/v1/models/a/predict').send(body)).status, 200);
  });

  it('findKey compares every key and rejects short keys at start', () => {
    const keys = parseApiKeys('k-one-12345,k-two-12345:x|y');
    assert.equal(findKey(keys, 'k-two-12345'), keys[1]);
    assert.deepEqual([...keys[1].models!], ['x', 'y']);
    assert.equal(findKey(keys, 'k-two-1234'), undefined);
    assert.throws(() => parseApiKeys('short'), /at least 8/);
  });

  it('model names are names, never paths', async () => {
    const open = app('');
    for (const p of ['/v1/models/..%2F..%2Fetc%2Fpasswd', '/v1/models/%2e%2e/predict', '/v1/models/a%00/predict']) {
      const res = await request(open).post(p).send(body);
      assert.ok(res.status === 404, `${p}: ${res.status}`);
      assert.ok(!JSON.stringify(res.body).includes('/work'), 'no server paths in errors');
    }
  });
});
