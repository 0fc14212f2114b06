/**
 * The chart readability rules hold on the charts that came with image, text and effects support:
 * the image overlay and the text tokens chart say which class they explain and the model's
 * probability for it ("explaining class square (predicted), p = 0.97", the probability read back
 * from POST /predict), and effect charts of an integer feature read it whole on their axes (cars'
 * Year: 1970, not 1,970). Real sample models over REST.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { asText } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');

function argmax(v: number[]): number {
  return v.reduce((best, x, i) => (x > v[best] ? i : best), 0);
}

/** The text content of every <text> of an SVG (tags stripped; enough for these labels). */
function svgTexts(svg: string): string[] {
  return Array.from(svg.matchAll(/<text[^>]*>([^<]*)</g), (m) => m[1]);
}

describe('chart headers and axes on image, text and effect charts', function () {
  this.timeout(180_000);
  let repo: ModelRepository;
  let app: ReturnType<typeof createApp>;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
  });

  it('the image overlay says which class it explains and the probability the model gives it', async () => {
    const ref = repo.models.get('shapes')!.reference!.rows;
    const row = Array.from(ref.data.subarray(2 * ref.d, 3 * ref.d));
    const p = (await request(app).post('/v1/models/shapes/predict').send({ instances: [row] })).body.predictions[0] as number[];
    const c = argmax(p);
    const name = repo.models.get('shapes')!.space.outputNames[c];
    const svg = await request(app)
      .post('/v1/models/shapes/explain?plot=overlay')
      .set('accept', 'image/svg+xml')
      .send({ instances: [row], method: 'grad-cam' })
      .buffer(true)
      .parse(asText);
    assert.equal(svg.status, 200);
    assert.ok(svgTexts(svg.body as string).includes(`Explaining class ${name} (predicted), p = ${p[c].toFixed(2)}`), svgTexts(svg.body as string).join(' | '));
    // An explicitly requested class is not called the predicted one.
    const other = (c + 1) % p.length;
    const asked = await request(app)
      .post('/v1/models/shapes/explain?plot=overlay')
      .set('accept', 'image/svg+xml')
      .send({ instances: [row], method: 'grad-cam', outputs: [other] })
      .buffer(true)
      .parse(asText);
    const otherName = repo.models.get('shapes')!.space.outputNames[other];
    assert.ok(svgTexts(asked.body as string).includes(`Explaining class ${otherName}, p = ${p[other].toFixed(2)}`), svgTexts(asked.body as string).join(' | '));
  });

  it('the text tokens chart says which class it explains and the probability', async () => {
    const text = 'what a superb film';
    const p = (await request(app).post('/v1/models/text/predict').send({ instances: [text] })).body.predictions[0] as number[];
    const c = argmax(p);
    const name = repo.models.get('text')!.space.outputNames[c];
    const svg = await request(app)
      .get(`/v1/models/text/explain.svg?text=${encodeURIComponent(text)}&method=partition-shap`)
      .buffer(true)
      .parse(asText);
    assert.equal(svg.status, 200, String(svg.body).slice(0, 300));
    assert.ok(svgTexts(svg.body as string).includes(`Explaining class ${name} (predicted), p = ${p[c].toFixed(2)}`), svgTexts(svg.body as string).join(' | '));
  });

  it("effect charts of cars' Year read it whole on the axis (1970, not 1,970)", async () => {
    for (const kind of ['pd', 'ale']) {
      const svg = await request(app).get(`/v1/models/cars/effects.svg?feature=Year&kind=${kind}`).buffer(true).parse(asText);
      assert.equal(svg.status, 200, String(svg.body).slice(0, 300));
      const t = svgTexts(svg.body as string);
      assert.ok(t.some((s) => /^19[78]\d$/.test(s)), `${kind}: ${t.join(' | ')}`);
      assert.ok(!t.some((s) => /1,9[78]\d/.test(s)), `${kind}: ${t.join(' | ')}`);
    }
    // A non-integer feature keeps its separators (Weight_in_lbs).
    const weight = svgTexts((await request(app).get('/v1/models/cars/effects.svg?feature=Weight_in_lbs&kind=pd').buffer(true).parse(asText)).body as string);
    assert.ok(weight.some((s) => /^\d,\d{3}$/.test(s)), weight.join(' | '));
  });
});
