/**
 * Easy requests that used to answer 500: a chart the data does not have is the caller's 400
 * (BAD_PARAMETER) with a message that says what to ask for instead, and an error answered to a client
 * that asked for an image is a real picture or carries its real content type. Every chart URL that
 * promises a PNG has one (the job summary included).
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { inlineExecutor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');
const PNG = [0x89, 0x50, 0x4e, 0x47];
const binary = (res: request.Response, done: (e: Error | null, b: Buffer) => void) => {
  const parts: Buffer[] = [];
  res.on('data', (c: Buffer) => parts.push(c));
  res.on('end', () => done(null, Buffer.concat(parts)));
};

describe('chart requests the data cannot answer: 400, in the format asked for', function () {
  this.timeout(120_000);
  let repo: ModelRepository;
  let app: ReturnType<typeof createApp>;
  let runner: LocalJobRunner;
  let dir: string;
  let explanationId: string;

  const credit = [27, 77300, 0.278, 4, 0, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6];
  const cars = [
    [8, 454, 220, 4354, 9, 1970, 1, 0, 0],
    [4, 97, 88, 2130, 14.5, 1970, 0, 0, 1],
  ];

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    dir = await mkdtemp(path.join(os.tmpdir(), 'chart-errors-'));
    runner = new LocalJobRunner({ dir, executor: inlineExecutor(repo) });
    await runner.start();
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', jobRunner: runner });
    const res = await request(app).post('/v1/models/credit/explain').send({ instances: [credit], parameters: { nSamples: 200 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    explanationId = res.body.id;
  });
  after(async () => {
    await runner.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function isErrorPicture(res: request.Response, status: number, code: string, type: 'png' | 'svg') {
    assert.equal(res.status, status);
    if (type === 'png') {
      assert.match(res.headers['content-type'], /^image\/png/);
      assert.deepEqual([...(res.body as Buffer).subarray(0, 4)], PNG);
    } else {
      assert.match(res.headers['content-type'], /^image\/svg\+xml/);
      const text = (res.body as Buffer).toString('utf8');
      assert.match(text, /^<svg/);
      assert.ok(text.includes(code), text.slice(0, 300));
    }
  }

  it('plot=image on a tabular permalink is 400 BAD_PARAMETER naming the plots that fit (png, svg and json)', async () => {
    for (const ext of ['png', 'svg'] as const) {
      const res = await request(app).get(`/v1/explanations/${explanationId}.${ext}?plot=image`).buffer(true).parse(binary);
      isErrorPicture(res, 400, 'BAD_PARAMETER', ext);
    }
    const json = await request(app).get(`/v1/explanations/${explanationId}.svg?plot=image`).set('accept', 'application/json').buffer(true).parse(binary);
    assert.match((json.body as Buffer).toString('utf8'), /plot=image shows image explanations; this one is tabular; use plot=waterfall, bar, force, beeswarm, mean-abs/);
    // The HTML report draws the charts that fit; plot does not apply to it.
    const html = await request(app).get(`/v1/explanations/${explanationId}.html?plot=image`);
    assert.equal(html.status, 200);
    const get = await request(app).get('/v1/models/credit/explain.svg?income=30000&plot=image&nSamples=200').buffer(true).parse(binary);
    isErrorPicture(get, 400, 'BAD_PARAMETER', 'svg');
  });

  /** An error answered as JSON, labelled as JSON (never with the image type a chart route had chosen). */
  function isJsonError(res: request.Response, status: number, code: string, pattern?: RegExp) {
    assert.equal(res.status, status);
    assert.match(res.headers['content-type'], /^application\/json/);
    const body = JSON.parse(Buffer.isBuffer(res.body) ? res.body.toString('utf8') : res.text);
    assert.equal(body.error.code, code);
    if (pattern) assert.match(body.error.message, pattern);
  }

  it('drift ?plot=attributions with "attributions": false is 400 BAD_PARAMETER saying what to do, labelled as JSON', async () => {
    const body = { current: cars, attributions: false };
    for (const accept of ['image/svg+xml', 'image/png']) {
      const res = await request(app).post('/v1/models/cars/drift?plot=attributions').set('accept', accept).send(body).buffer(true).parse(binary);
      isJsonError(res, 400, 'BAD_PARAMETER', /plot=attributions needs attribution drift.*use plot=psi/);
    }
    const fmt = await request(app).post('/v1/models/cars/drift?plot=attributions&format=png').send(body).buffer(true).parse(binary);
    isJsonError(fmt, 400, 'BAD_PARAMETER');
    // JSON and the HTML report draw no attribution chart, so they need none.
    const json = await request(app).post('/v1/models/cars/drift?plot=attributions').set('accept', 'application/json').send(body);
    assert.equal(json.status, 200);
    const html = await request(app).post('/v1/models/cars/drift?plot=attributions').set('accept', 'text/html').send(body);
    assert.equal(html.status, 200);
  });

  it('fairness ?plot=attributions with "attributions": false is 400 too', async () => {
    const res = await request(app)
      .post('/v1/models/credit/fairness?plot=attributions')
      .set('accept', 'image/svg+xml')
      .send({ bootstrap: { n: 0 }, attributions: false })
      .buffer(true)
      .parse(binary);
    isJsonError(res, 400, 'BAD_PARAMETER', /plot=attributions needs attributions by group/);
  });

  it('an error answered to Accept: image/png is JSON labelled application/json, not image/png', async () => {
    const png = await request(app).post('/v1/models/credit/explain').set('accept', 'image/png').send({ instances: [[1, 2]] }).buffer(true).parse(binary);
    isJsonError(png, 400, 'BAD_INSTANCE');
    // A chart that fails after its handler chose the picture's type.
    const drift = await request(app)
      .post('/v1/models/cars/drift?plot=attributions')
      .set('accept', 'image/png')
      .send({ current: cars, attributions: false })
      .buffer(true)
      .parse(binary);
    isJsonError(drift, 400, 'BAD_PARAMETER');
    // On an image URL the error is a picture of the right type.
    const url = await request(app).get(`/v1/explanations/${explanationId}.png?instance=5`).buffer(true).parse(binary);
    isErrorPicture(url, 400, 'BAD_PARAMETER', 'png');
  });

  it('/v1/jobs/<id>/summary.png exists and is a PNG', async () => {
    const sub = await request(app)
      .post('/v1/jobs')
      .send({ model: 'cars', method: 'kernel-shap', instances: cars, parameters: { nSamples: 200 } });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    await runner.waitFor(sub.body.id);
    const res = await request(app).get(`/v1/jobs/${sub.body.id}/summary.png`).buffer(true).parse(binary);
    assert.equal(res.status, 200, (res.body as Buffer).toString('utf8').slice(0, 200));
    assert.match(res.headers['content-type'], /^image\/png/);
    assert.deepEqual([...(res.body as Buffer).subarray(0, 4)], PNG);
    const missing = await request(app).get('/v1/jobs/no-such-job/summary.png').buffer(true).parse(binary);
    isErrorPicture(missing, 404, 'JOB_NOT_FOUND', 'png');
  });
});
