/**
 * One-hot groups are one attribution row, named by the group and the instance's category, in the
 * JSON (`groups` per explained output, next to the per-column `attributions`, which keep their
 * feature order) and in every chart; GET chart URLs that leave a group out fill it with the
 * background's most frequent category (a row that can exist), never per-column medians.
 *
 * Oracle: a linear model f(x) = w . x. Its interventional Shapley value for a group of columns, played
 * as one player, is sum_{c in group} w_c (x_c - E[x_c]) (closed form, independent of our code); IG's
 * per-column value from baseline b is w_c (x_c - b_c).
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import type { Metadata } from '../models/metadata.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { testConfig } from './helpers/config.js';
import { linearModel, served } from './helpers/jsModels.js';

const SAMPLES = path.resolve('samples/models');
const text = (res: request.Response, done: (e: Error | null, b: string) => void) => {
  let t = '';
  res.on('data', (c: Buffer) => (t += c));
  res.on('end', () => done(null, t));
};

describe('one-hot groups: one attribution row, named by the active category', function () {
  this.timeout(120_000);

  describe('on a linear model with a closed form', () => {
    // x0 numeric; colour_red, colour_green, colour_blue one-hot; x4 numeric.
    const w = [2, 1.5, -0.5, 3, -1];
    const names = ['x0', 'colour_red', 'colour_green', 'colour_blue', 'x4'];
    const bgRows = [
      [0, 1, 0, 0, 1],
      [1, 0, 1, 0, 0],
      [2, 0, 0, 1, 2],
      [3, 1, 0, 0, 1],
      [4, 0, 1, 0, 3],
      [5, 1, 0, 0, 0],
    ];
    const background = { data: Float32Array.from(bgRows.flat()), n: bgRows.length, d: 5 };
    const metadata = {
      task: 'regression',
      features: [
        { name: 'x0', type: 'numeric' },
        { name: 'colour_red', type: 'one-hot', group: 'colour', categories: [{ value: 1, label: 'red' }] },
        { name: 'colour_green', type: 'one-hot', group: 'colour' },
        { name: 'colour_blue', type: 'one-hot', group: 'colour', categories: [{ value: 1, label: 'navy blue' }] },
        { name: 'x4', type: 'integer' },
      ],
      outputs: [{ name: 'y' }],
      sensitiveFeatures: [],
    } as unknown as Metadata;
    const m = served('lin', linearModel(w, 0.5), {
      background,
      metadata,
      space: { featureNames: names, outputNames: ['y'], groups: [[1, 2, 3]] },
    });
    const app = createApp({ registry: { models: new Map([['lin', m]]), errors: [] }, config: testConfig({}), backend: 'test' });
    const mean = names.map((_, j) => bgRows.reduce((s, r) => s + r[j], 0) / bgRows.length);
    const x = [1.5, 0, 0, 1, 2];

    it('Kernel SHAP: the group is one player; its value is sum w_c (x_c - mean_c), split equally over the columns', async () => {
      const res = await request(app).post('/v1/models/lin/explain').send({ instances: [x] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const out = res.body.explanations[0].outputs[0];
      assert.deepEqual(out.attributions.map((a: { feature: string }) => a.feature), names, 'per-column attributions keep feature order');
      const expected = [1, 2, 3].reduce((s, c) => s + w[c] * (x[c] - mean[c]), 0);
      assert.equal(out.groups.length, 1);
      const g = out.groups[0];
      assert.equal(g.group, 'colour');
      assert.deepEqual(g.members, ['colour_red', 'colour_green', 'colour_blue']);
      assert.equal(g.active, 'navy blue');
      assert.equal(g.activeFeature, 'colour_blue');
      assert.ok(Math.abs(g.attribution - expected) < 1e-5, `${g.attribution} vs ${expected}`);
      const members = out.attributions.slice(1, 4).map((a: { attribution: number }) => a.attribution);
      for (const v of members) assert.ok(Math.abs(v - expected / 3) < 1e-6, 'one player: its value split equally');
      assert.ok(g.stderr !== undefined && g.stderr >= 0);
      // Features alone keep their closed forms.
      assert.ok(Math.abs(out.attributions[0].attribution - w[0] * (x[0] - mean[0])) < 1e-5);
    });

    it('IG: the columns keep their own values w_c (x_c - b_c), the group row is their sum', async () => {
      const baseline = [0, 1, 0, 0, 0];
      const res = await request(app).post('/v1/models/lin/explain').send({ instances: [x], method: 'integrated-gradients', parameters: { baseline: [baseline] } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const out = res.body.explanations[0].outputs[0];
      [1, 2, 3].forEach((c) => assert.ok(Math.abs(out.attributions[c].attribution - w[c] * (x[c] - baseline[c])) < 1e-5));
      const g = out.groups[0];
      assert.ok(Math.abs(g.attribution - [1, 2, 3].reduce((s, c) => s + w[c] * (x[c] - baseline[c]), 0)) < 1e-5);
      assert.equal(g.stderr, undefined);
    });

    it('a row with no member 1 says so (active null); a member without a label is named by its column', async () => {
      const none = await request(app).post('/v1/models/lin/explain').send({ instances: [[1, 0, 0, 0, 1], [1, 0, 1, 0, 1]] });
      assert.equal(none.body.explanations[0].outputs[0].groups[0].active, null);
      assert.equal(none.body.explanations[1].outputs[0].groups[0].active, 'green');
    });

    it('a GET chart URL that leaves the group out takes the most frequent category (red here), never medians', async () => {
      const res = await request(app).get('/v1/models/lin/explain.json?x0=2');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const values = res.body.explanations[0].outputs[0].attributions.map((a: { value: number }) => a.value);
      // Medians would give 0 for all three colour columns: a row that cannot exist.
      assert.deepEqual(values.slice(1, 4), [1, 0, 0]);
      assert.match(res.headers['x-defaulted-features'], /colour_red,colour_green,colour_blue/);
      const given = await request(app).get('/v1/models/lin/explain.json?x0=2&colour_green=1');
      assert.deepEqual(given.body.explanations[0].outputs[0].attributions.slice(1, 4).map((a: { value: number }) => a.value), [0, 1, 0]);
      const zero = await request(app).get('/v1/models/lin/explain.json?x0=2&colour_red=0');
      // Red ruled out: the most frequent of the others (green, 2 rows, over blue, 1).
      assert.deepEqual(zero.body.explanations[0].outputs[0].attributions.slice(1, 4).map((a: { value: number }) => a.value), [0, 1, 0]);
      const byName = await request(app).get('/v1/models/lin/explain.json?x0=2&colour=navy%20blue');
      assert.equal(byName.status, 200, JSON.stringify(byName.body));
      assert.deepEqual(byName.body.explanations[0].outputs[0].attributions.slice(1, 4).map((a: { value: number }) => a.value), [0, 0, 1]);
      assert.equal(byName.body.explanations[0].outputs[0].groups[0].active, 'navy blue');
      const bad = await request(app).get('/v1/models/lin/explain.json?x0=2&colour=purple');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'BAD_INSTANCE');
      assert.match(bad.body.error.message, /"purple" is not a category of group "colour"; its categories are red, green, navy blue/);
    });
  });

  describe('on the credit sample', () => {
    let repo: ModelRepository;
    let app: ReturnType<typeof createApp>;
    const row = [27, 77300, 0.278, 4, 0, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6];

    before(async () => {
      await selectBackend(process.env.TFJS_BACKEND);
      repo = await loadModelRepository(SAMPLES);
      app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    });

    it('the JSON has housing = mortgage as one group row; every chart shows it, and no housing column', async () => {
      const res = await request(app).post('/v1/models/credit/explain').send({ instances: [row], parameters: { nSamples: 300 } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const out = res.body.explanations[0].outputs[0];
      assert.equal(out.attributions.length, 14);
      const g = out.groups.find((x: { group: string }) => x.group === 'housing');
      assert.equal(g.active, 'mortgage');
      const sum = out.attributions.slice(8, 11).reduce((s: number, a: { attribution: number }) => s + a.attribution, 0);
      assert.ok(Math.abs(g.attribution - sum) < 1e-12);
      for (const plot of ['waterfall', 'bar', 'force']) {
        const svg = (await request(app).get(`/v1/explanations/${res.body.id}.svg?plot=${plot}&topK=20`).buffer(true).parse(text)).body as string;
        assert.ok(svg.includes('housing = mortgage') || svg.includes('= mortgage'), `${plot}: ${svg.slice(0, 300)}`);
        assert.ok(!/housing_(rent|own|mortgage)/.test(svg), `${plot} shows a housing column`);
      }
      const many = await request(app).post('/v1/models/credit/explain?plot=beeswarm').set('accept', 'image/svg+xml').send({
        instances: [row, row.map((v, j) => (j === 8 ? 1 : j === 10 ? 0 : v))],
        parameters: { nSamples: 300 },
      }).buffer(true).parse(text);
      assert.match(many.body as string, /data-feature="housing"/);
      assert.ok(!/housing_(rent|own|mortgage)/.test(many.body as string));
    });

    it('inputs are echoed as sent (the shortest decimal of their float32): 0.278, not 0.27799999713897705', async () => {
      const res = await request(app).post('/v1/models/credit/explain').send({ instances: [row], parameters: { nSamples: 300 } });
      const values = res.body.explanations[0].outputs[0].attributions.map((a: { value: number }) => a.value);
      assert.deepEqual(values, row);
      const raw = JSON.stringify(res.body);
      assert.ok(!raw.includes('0.27799999713897705'));
    });
  });
});
