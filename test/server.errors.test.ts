import { strict as assert } from 'node:assert';
import request from 'supertest';
import { createApp } from '../server/app.js';
import { testConfig } from './helpers/config.js';
import { linearModel, served } from './helpers/jsModels.js';

function app(env: Record<string, string> = {}) {
  const w = [1, -2, 0.5, 3];
  const bg = { data: Float32Array.from({ length: 40 }, (_, i) => (i * 7) % 5), n: 10, d: 4 };
  const m = served('lin', linearModel(w, 1), { background: bg });
  return createApp({
    registry: { models: new Map([['lin', m]]), errors: [{ name: 'broken', message: 'model.json is not valid JSON' }] },
    config: testConfig(env),
    backend: 'test',
  });
}

function expectError(res: request.Response, status: number, code: string, pattern?: RegExp) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error.code, code, JSON.stringify(res.body));
  assert.equal(typeof res.body.error.message, 'string');
  if (pattern) assert.match(res.body.error.message, pattern);
  assert.ok(!/at .*\.ts:\d+/.test(JSON.stringify(res.body)), 'no stack trace');
}

describe('server: bad input gets a clear 4xx', () => {
  const a = app();

  it('predicts for good rows, as arrays or objects by name', async () => {
    const res = await request(a)
      .post('/v1/models/lin/predict')
      .send({ instances: [[1, 1, 1, 1], { x0: 0, x1: 0, x2: 0, x3: 0 }] });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.predictions, [[1 - 2 + 0.5 + 3 + 1], [1]]);
  });
  it('unknown model: 404 naming the served ones', async () => {
    expectError(
      await request(a)
        .post('/v1/models/nope/predict')
        .send({ instances: [[1, 2, 3, 4]] }),
      404,
      'MODEL_NOT_FOUND',
      /lin/,
    );
  });
  it('a model that failed to load says why', async () => {
    expectError(await request(a).get('/v1/models/broken'), 404, 'MODEL_NOT_FOUND', /not valid JSON/);
  });
  it('wrong row length names the row', async () => {
    expectError(
      await request(a)
        .post('/v1/models/lin/predict')
        .send({
          instances: [
            [1, 2, 3, 4],
            [1, 2, 3],
          ],
        }),
      400,
      'BAD_INSTANCE',
      /instances\[1\].*expected 4 values.*got 3/,
    );
  });
  it('strings and nulls name the row and column', async () => {
    expectError(
      await request(a)
        .post('/v1/models/lin/predict')
        .send({ instances: [[1, 2, 'NaN', 4]] }),
      400,
      'BAD_INSTANCE',
      /instances\[0\], column 2 \("x2"\).*string/,
    );
    expectError(
      await request(a)
        .post('/v1/models/lin/predict')
        .send({ instances: [[1, null, 3, 4]] }),
      400,
      'BAD_INSTANCE',
      /column 1.*null/,
    );
  });
  it('Infinity (1e999 in JSON) is rejected', async () => {
    const res = await request(a)
      .post('/v1/models/lin/predict')
      .set('Content-Type', 'application/json')
      .send('{"instances": [[1, 2, 1e999, 4]]}');
    expectError(res, 400, 'BAD_INSTANCE', /column 2.*not a finite number/);
  });
  it('NaN literal is malformed JSON', async () => {
    const res = await request(a)
      .post('/v1/models/lin/predict')
      .set('Content-Type', 'application/json')
      .send('{"instances": [[1, 2, NaN, 4]]}');
    expectError(res, 400, 'MALFORMED_JSON');
  });
  it('unknown and missing feature names are listed', async () => {
    expectError(
      await request(a)
        .post('/v1/models/lin/predict')
        .send({ instances: [{ x0: 1, x1: 2, x2: 3, x3: 4, age: 5 }] }),
      400,
      'UNKNOWN_FEATURE',
      /"age"/,
    );
    expectError(
      await request(a)
        .post('/v1/models/lin/predict')
        .send({ instances: [{ x0: 1, x1: 2 }] }),
      400,
      'MISSING_FEATURE',
      /"x2", "x3"/,
    );
  });
  it('empty and missing instances', async () => {
    expectError(await request(a).post('/v1/models/lin/predict').send({ instances: [] }), 400, 'INVALID_REQUEST', /instances/);
    expectError(await request(a).post('/v1/models/lin/predict').send({}), 400, 'INVALID_REQUEST', /instances/);
  });
  it('unexpected body fields are named', async () => {
    expectError(
      await request(a)
        .post('/v1/models/lin/predict')
        .send({ instances: [[1, 2, 3, 4]], instance: 1 }),
      400,
      'INVALID_REQUEST',
      /instance/,
    );
  });
  it('too many instances', async () => {
    const small = app({ MAX_INSTANCES: '3' });
    expectError(
      await request(small)
        .post('/v1/models/lin/predict')
        .send({
          instances: [
            [1, 2, 3, 4],
            [1, 2, 3, 4],
            [1, 2, 3, 4],
            [1, 2, 3, 4],
          ],
        }),
      400,
      'INVALID_REQUEST',
      /at most 3/,
    );
  });
  it('huge payloads get 413', async () => {
    const small = app({ BODY_LIMIT: '1kb' });
    const rows = Array.from({ length: 200 }, () => [1, 2, 3, 4]);
    expectError(await request(small).post('/v1/models/lin/predict').send({ instances: rows }), 413, 'PAYLOAD_TOO_LARGE', /limit/);
  });
  it('unknown routes get 404 in the error shape', async () => {
    expectError(await request(a).get('/v2/nothing'), 404, 'NOT_FOUND');
  });
  it('unknown method, output and parameter', async () => {
    expectError(
      await request(a)
        .post('/v1/models/lin/explain')
        .send({ instances: [[1, 2, 3, 4]], method: 'lime' }),
      400,
      'UNKNOWN_METHOD',
      /kernel-shap/,
    );
    expectError(
      await request(a)
        .post('/v1/models/lin/explain')
        .send({ instances: [[1, 2, 3, 4]], outputs: ['z'] }),
      400,
      'UNKNOWN_OUTPUT',
      /y0/,
    );
    expectError(
      await request(a)
        .post('/v1/models/lin/explain')
        .send({ instances: [[1, 2, 3, 4]], outputs: [3] }),
      400,
      'UNKNOWN_OUTPUT',
    );
    expectError(
      await request(a)
        .post('/v1/models/lin/explain')
        .send({ instances: [[1, 2, 3, 4]], parameters: { nSamples: 1e9 } }),
      400,
      'BAD_PARAMETER',
      /nSamples/,
    );
    expectError(
      await request(a)
        .post('/v1/models/lin/explain')
        .send({ instances: [[1, 2, 3, 4]], parameters: { steps: 5 } }),
      400,
      'BAD_PARAMETER',
      /steps/,
    );
    expectError(
      await request(a)
        .post('/v1/models/lin/explain')
        .send({ instances: [[1, 2, 3, 4]], method: 'integrated-gradients', parameters: { steps: 1e6 } }),
      400,
      'BAD_PARAMETER',
      /steps may be at most/,
    );
  });
  it('a background with the wrong width names the row', async () => {
    expectError(
      await request(a)
        .post('/v1/models/lin/explain')
        .send({ instances: [[1, 2, 3, 4]], parameters: { background: [[1, 2, 3]] } }),
      400,
      'BAD_INSTANCE',
      /parameters\.background\[0\]/,
    );
  });
  it('importance without a reference set says what to send', async () => {
    expectError(await request(a).post('/v1/models/lin/importance').send({}), 400, 'NO_REFERENCE_DATA', /send data and labels/);
    expectError(
      await request(a)
        .post('/v1/models/lin/importance')
        .send({ data: [[1, 2, 3, 4]], labels: [1, 2] }),
      400,
      'BAD_LABELS',
      /2 entries but data has 1/,
    );
    expectError(
      await request(a)
        .post('/v1/models/lin/importance')
        .send({ data: [[1, 2, 3, 4]], labels: [1], repeats: 10_000 }),
      400,
      'INVALID_REQUEST',
      /repeats/,
    );
  });
});
