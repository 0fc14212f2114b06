/**
 * Classifiers explain each instance's predicted class by default (Vertex AI's convention): on the
 * sample classifiers (penguins: softmax over 3 species; shapes: an image classifier) and on a model
 * with no metadata whose last layer is a softmax. `outputs: "all"` explains every output; explicit
 * outputs are unchanged; the cache never serves a default-class answer for another output; charts
 * say which output they explain and the model's probability for it; `?outputs=` is honoured on chart
 * URLs and permalinks; jobs explain each row's predicted class too. The image and text methods follow
 * the same default (each row's class read back from POST /predict), while data jobs (effects,
 * counterfactuals) keep their own output semantics.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import type { Model, Rows } from '../explainers/types.js';
import { LocalJobRunner } from '../jobs/runner.js';
import type { ResultRecord } from '../jobs/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { inlineExecutor } from '../service/executor.js';
import { isClassifier } from '../service/outputs.js';
import { testConfig } from './helpers/config.js';
import { served } from './helpers/jsModels.js';

const SAMPLES = path.resolve('samples/models');
const text = (res: request.Response, done: (e: Error | null, b: string) => void) => {
  let t = '';
  res.on('data', (c: Buffer) => (t += c));
  res.on('end', () => done(null, t));
};

function argmax(v: number[]): number {
  return v.reduce((best, x, i) => (x > v[best] ? i : best), 0);
}

describe('default outputs: a classifier explains each instance its predicted class', function () {
  this.timeout(180_000);
  let repo: ModelRepository;
  let app: ReturnType<typeof createApp>;
  let runner: LocalJobRunner;
  let dir: string;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    dir = await mkdtemp(path.join(os.tmpdir(), 'outputs-'));
    runner = new LocalJobRunner({ dir, executor: inlineExecutor(repo) });
    await runner.start();
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', jobRunner: runner });
  });
  after(async () => {
    await runner.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** n reference rows of penguins spread evenly over the set (it is ordered by species), so every species is there. */
  function penguinRows(n: number): number[][] {
    const r = repo.models.get('penguins')!.reference!.rows;
    return Array.from({ length: n }, (_, k) => {
      const i = Math.floor((k * r.n) / n);
      return Array.from(r.data.subarray(i * r.d, (i + 1) * r.d));
    });
  }

  async function predictions(name: string, rows: unknown[]): Promise<number[][]> {
    const res = await request(app).post(`/v1/models/${name}/predict`).send({ instances: rows });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.predictions;
  }

  it('penguins: each row explains its own predicted class; the values equal an explicit request for that class', async () => {
    const rows = penguinRows(40);
    const p = await predictions('penguins', rows);
    const classes = p.map(argmax);
    assert.ok(new Set(classes).size === 3, `rows cover the three species: ${classes}`);
    const res = await request(app).post('/v1/models/penguins/explain').send({ instances: rows, parameters: { nSamples: 200 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.outputSelection, 'predicted-class');
    res.body.explanations.forEach((inst: { outputs: { outputIndex: number; output: string }[] }, i: number) => {
      assert.equal(inst.outputs.length, 1);
      assert.equal(inst.outputs[0].outputIndex, classes[i], `row ${i}`);
      assert.equal(inst.outputs[0].output, repo.models.get('penguins')!.space.outputNames[classes[i]]);
    });
    for (const c of [0, 1, 2]) {
      const i = classes.indexOf(c);
      const explicit = await request(app)
        .post('/v1/models/penguins/explain')
        .send({ instances: [rows[i]], outputs: [c], parameters: { nSamples: 200 } });
      assert.equal(explicit.body.outputSelection, 'requested');
      assert.deepEqual(explicit.body.explanations[0].outputs, res.body.explanations[i].outputs);
    }
  });

  it('the cache never serves the default-class answer for another output; "all" explains every output', async () => {
    const rows = penguinRows(6);
    const classes = (await predictions('penguins', rows)).map(argmax);
    const body = { instances: rows, parameters: { nSamples: 150, seed: 5 } };
    const first = await request(app).post('/v1/models/penguins/explain').send(body);
    assert.equal(first.headers['x-cache'], 'MISS');
    const again = await request(app).post('/v1/models/penguins/explain').send(body);
    assert.equal(again.headers['x-cache'], 'HIT');
    // Output 0 for every row: rows predicted 0 could share the work, the others must not get their class's answer.
    const zero = await request(app).post('/v1/models/penguins/explain').send({ ...body, outputs: [0] });
    assert.notEqual(zero.headers['x-cache'], 'HIT');
    for (const inst of zero.body.explanations) assert.deepEqual(inst.outputs.map((o: { outputIndex: number }) => o.outputIndex), [0]);
    const all = await request(app).post('/v1/models/penguins/explain').send({ ...body, outputs: 'all' });
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.outputSelection, 'all');
    all.body.explanations.forEach((inst: { outputs: { outputIndex: number }[] }, i: number) => {
      assert.deepEqual(inst.outputs.map((o) => o.outputIndex), [0, 1, 2]);
      // The predicted class's attributions in "all" explain the same game as the default (same seed, same output).
      assert.ok(inst.outputs.some((o) => o.outputIndex === classes[i]));
    });
    const bad = await request(app).post('/v1/models/penguins/explain').send({ ...body, outputs: 'every' });
    assert.equal(bad.status, 400);
  });

  it('regression models and single-output classifiers explain their one output as before', async () => {
    const cars = await request(app).post('/v1/models/cars/explain').send({ instances: [[8, 454, 220, 4354, 9, 1970, 1, 0, 0]] });
    assert.equal(cars.body.outputSelection, 'all');
    assert.deepEqual(cars.body.explanations[0].outputs.map((o: { output: string }) => o.output), ['mpg']);
    const credit = await request(app)
      .post('/v1/models/credit/explain')
      .send({ instances: [[27, 77300, 0.278, 4, 0, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6]], parameters: { nSamples: 200 } });
    assert.equal(credit.body.outputSelection, 'all');
    assert.deepEqual(credit.body.explanations[0].outputs.map((o: { output: string }) => o.output), ['approved']);
  });

  it('shapes: integrated gradients explain the class the image is predicted as (square, not output 0)', async () => {
    const ref = repo.models.get('shapes')!.reference!;
    const rows = Array.from({ length: 6 }, (_, i) => Array.from(ref.rows.data.subarray(i * ref.rows.d, (i + 1) * ref.rows.d)));
    const classes = (await predictions('shapes', rows)).map(argmax);
    const res = await request(app).post('/v1/models/shapes/explain').send({ instances: rows, method: 'integrated-gradients' });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    res.body.explanations.forEach((inst: { outputs: { outputIndex: number }[] }, i: number) =>
      assert.deepEqual(inst.outputs.map((o) => o.outputIndex), [classes[i]]),
    );
    assert.ok(classes.some((c) => c !== 0), `some image is not predicted as output 0: ${classes}`);
  });

  it('image and text methods explain the predicted class too (grad-cam, occlusion; partition-shap over tokens)', async () => {
    const ref = repo.models.get('shapes')!.reference!;
    const rows = Array.from({ length: 6 }, (_, i) => Array.from(ref.rows.data.subarray(i * ref.rows.d, (i + 1) * ref.rows.d)));
    const classes = (await predictions('shapes', rows)).map(argmax);
    assert.ok(classes.some((c) => c !== 0), `some image is not predicted as output 0: ${classes}`);
    for (const method of ['grad-cam', 'occlusion']) {
      const res = await request(app).post('/v1/models/shapes/explain').send({ instances: rows, method });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.outputSelection, 'predicted-class', method);
      res.body.explanations.forEach((inst: { outputs: { outputIndex: number }[] }, i: number) =>
        assert.deepEqual(inst.outputs.map((o) => o.outputIndex), [classes[i]], `${method} row ${i}`),
      );
      // The default answer equals an explicit request for the row's class.
      const i = classes.findIndex((c) => c !== 0);
      const explicit = await request(app).post('/v1/models/shapes/explain').send({ instances: [rows[i]], method, outputs: [classes[i]] });
      assert.equal(explicit.body.outputSelection, 'requested');
      assert.deepEqual(explicit.body.explanations[0].outputs, res.body.explanations[i].outputs, method);
    }
    const texts = ['what a superb film', 'a boring plot and dull acting', 'superb acting, a wonderful story'];
    const textClasses = (await predictions('text', texts)).map(argmax);
    const res = await request(app).post('/v1/models/text/explain').send({ instances: texts, method: 'partition-shap' });
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    assert.equal(res.body.outputSelection, 'predicted-class');
    res.body.explanations.forEach((inst: { outputs: { outputIndex: number; attributions: { feature: string; position?: number }[] }[] }, i: number) => {
      assert.deepEqual(inst.outputs.map((o) => o.outputIndex), [textClasses[i]], `text ${i}`);
      // Still named by the words as sent, with their positions.
      assert.ok(inst.outputs[0].attributions.every((a) => Number.isInteger(a.position)));
      assert.ok(inst.outputs[0].attributions.some((a) => texts[i].includes(a.feature)), JSON.stringify(inst.outputs[0].attributions.slice(0, 3)));
    });
    const k = textClasses.findIndex((c) => c !== textClasses[0]);
    assert.ok(k > 0, `the texts are predicted as both classes: ${textClasses}`);
    const explicit = await request(app).post('/v1/models/text/explain').send({ instances: [texts[k]], method: 'partition-shap', outputs: [textClasses[k]] });
    assert.deepEqual(explicit.body.explanations[0].outputs, res.body.explanations[k].outputs);
  });

  it('data jobs keep their own outputs: an effects job covers every output, "all" too; a counterfactuals job takes none', async () => {
    const rows = penguinRows(9);
    const curves = async (extra: Record<string, unknown>) => {
      const sub = await request(app)
        .post('/v1/jobs')
        .send({ model: 'penguins', method: 'effects', instances: rows, parameters: { features: ['bill_length_mm'], resolution: 5 }, ...extra });
      assert.equal(sub.status, 202, JSON.stringify(sub.body));
      await runner.waitFor(sub.body.id);
      const lines = (await request(app).get(`/v1/jobs/${sub.body.id}/results`).buffer(true).parse(text)).body as string;
      const recs = lines.trim().split('\n').map((l) => JSON.parse(l) as { effects: { output: string }[] });
      assert.equal(recs.length, 9);
      return recs.map((r) => r.effects.map((e) => e.output));
    };
    const every = ['Adelie', 'Chinstrap', 'Gentoo'];
    assert.deepEqual(await curves({}), rows.map(() => every));
    assert.deepEqual(await curves({ outputs: 'all' }), rows.map(() => every));
    assert.deepEqual(await curves({ outputs: ['Gentoo'] }), rows.map(() => ['Gentoo']));
    const cf = await request(app).post('/v1/jobs').send({ model: 'penguins', method: 'counterfactuals', instances: rows, outputs: 'all', parameters: { desired: { class: 'Gentoo' } } });
    assert.equal(cf.status, 400, JSON.stringify(cf.body));
    assert.equal(cf.body.error.code, 'BAD_PARAMETER');
    assert.match(cf.body.error.message, /takes no outputs/);
  });

  it('charts say which output they explain and the probability: "explaining class Gentoo (predicted), p = 0.xx"', async () => {
    const rows = penguinRows(40);
    const p = await predictions('penguins', rows);
    const i = p.findIndex((v) => argmax(v) === 2);
    const res = await request(app)
      .post('/v1/models/penguins/explain')
      .set('accept', 'image/svg+xml')
      .send({ instances: [rows[i]], parameters: { nSamples: 200 } })
      .buffer(true)
      .parse(text);
    assert.equal(res.status, 200);
    assert.ok((res.body as string).includes(`Explaining class Gentoo (predicted), p = ${p[i][2].toFixed(2)}`), (res.body as string).slice(0, 600));
    // Several rows without instance=: the chart says which one it shows.
    const multi = await request(app)
      .post('/v1/models/penguins/explain?plot=bar')
      .set('accept', 'image/svg+xml')
      .send({ instances: rows.slice(0, 3), parameters: { nSamples: 200 } })
      .buffer(true)
      .parse(text);
    assert.match(multi.body as string, /Instance 0 of 3 · explaining class \w+ \(predicted\), p = \d\.\d\d/);
    // A regression output: f(x).
    const cars = await request(app).get('/v1/models/cars/explain.svg?Horsepower=130').buffer(true).parse(text);
    assert.match(cars.body as string, /Explaining mpg, f\(x\) = [\d.]+/);
  });

  it('?outputs= is honoured: chart URLs explain it, permalinks chart it or say it was not explained', async () => {
    const chart = await request(app).get('/v1/models/penguins/explain.json?bill_length_mm=47&flipper_length_mm=215&outputs=Adelie');
    assert.equal(chart.status, 200, JSON.stringify(chart.body));
    assert.deepEqual(chart.body.explanations[0].outputs.map((o: { output: string }) => o.output), ['Adelie']);
    const svg = await request(app).get('/v1/models/penguins/explain.svg?bill_length_mm=47&flipper_length_mm=215&outputs=Adelie').buffer(true).parse(text);
    assert.match(svg.body as string, /Explaining class Adelie, p = /);
    const all = await request(app).get('/v1/models/penguins/explain.json?bill_length_mm=47&outputs=all');
    assert.equal(all.body.explanations[0].outputs.length, 3);

    const rows = penguinRows(40);
    const classes = (await predictions('penguins', rows)).map(argmax);
    const i = classes.indexOf(2);
    const made = await request(app).post('/v1/models/penguins/explain').send({ instances: [rows[i]], outputs: 'all', parameters: { nSamples: 120 } });
    const gentoo = await request(app).get(`/v1/explanations/${made.body.id}.svg?outputs=Chinstrap`).buffer(true).parse(text);
    assert.equal(gentoo.status, 200);
    assert.match(gentoo.body as string, /Explaining class Chinstrap, p = /);
    const byIndex = await request(app).get(`/v1/explanations/${made.body.id}.svg?outputs=0`).buffer(true).parse(text);
    assert.match(byIndex.body as string, /Explaining class Adelie, p = /);
    // A default (predicted-class) explanation has only the predicted class to chart.
    const dflt = await request(app).post('/v1/models/penguins/explain').send({ instances: [rows[i]], parameters: { nSamples: 120 } });
    const missing = await request(app).get(`/v1/explanations/${dflt.body.id}.json?outputs=Adelie`);
    assert.equal(missing.status, 400);
    const present = await request(app).get(`/v1/explanations/${dflt.body.id}.json?outputs=Gentoo`);
    assert.equal(present.status, 200);
    assert.deepEqual(present.body.explanations[0].outputs.map((o: { output: string }) => o.output), ['Gentoo']);
    const viaSvg = await request(app).get(`/v1/explanations/${dflt.body.id}.svg?outputs=Adelie`).set('accept', 'application/json');
    assert.equal(viaSvg.status, 400);
    const json = await request(app).get(`/v1/explanations/${dflt.body.id}.html?outputs=Adelie`);
    assert.equal(json.status, 400);
    assert.match(json.body.error.message, /explains Gentoo \(its predicted class.*"outputs": \["Adelie"\]/);
  });

  it('a model without metadata whose last layer is a softmax is a classifier; metadata task wins', async () => {
    assert.equal(isClassifier({ outputKind: 'softmax' }), true);
    assert.equal(isClassifier({ outputKind: 'sigmoid' }), true);
    assert.equal(isClassifier({ outputKind: 'linear' }), false);
    assert.equal(isClassifier({}), false);
    assert.equal(isClassifier({ outputKind: 'softmax', metadata: { task: 'regression' } as never }), false);
    assert.equal(isClassifier({ outputKind: 'linear', metadata: { task: 'multiclass-classification' } as never }), true);
    assert.equal(repo.models.get('penguins')!.outputKind, 'softmax');
    assert.equal(repo.models.get('cars')!.outputKind, 'linear');
    // softmax(W x): class c's logit is x_c, so the predicted class is the largest input.
    const softmax: Model = {
      nFeatures: 3,
      nOutputs: 3,
      async predict(rows: Rows) {
        const out = new Float32Array(rows.n * 3);
        for (let i = 0; i < rows.n; i++) {
          const z = [0, 1, 2].map((c) => Math.exp(rows.data[i * 3 + c]));
          const s = z[0] + z[1] + z[2];
          for (let c = 0; c < 3; c++) out[i * 3 + c] = z[c] / s;
        }
        return out;
      },
    };
    const bg = { data: Float32Array.from({ length: 30 }, (_, i) => (i * 7) % 3), n: 10, d: 3 };
    const m = { ...served('soft', softmax, { background: bg }), outputKind: 'softmax' as const };
    const a = createApp({ registry: { models: new Map([['soft', m]]), errors: [] }, config: testConfig({}), backend: 'test' });
    const res = await request(a).post('/v1/models/soft/explain').send({ instances: [[3, 0, 0], [0, 0, 2], [0, 5, 1]] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.explanations.map((e: { outputs: { outputIndex: number }[] }) => e.outputs[0].outputIndex), [0, 2, 1]);
  });

  it('jobs explain each row its predicted class by default, and say so', async () => {
    const rows = penguinRows(20);
    const classes = (await predictions('penguins', rows)).map(argmax);
    const sub = await request(app).post('/v1/jobs').send({ model: 'penguins', instances: rows, parameters: { nSamples: 100 }, chunkSize: 7 });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    assert.equal(sub.body.outputSelection, 'predicted-class');
    await runner.waitFor(sub.body.id);
    const lines = (await request(app).get(`/v1/jobs/${sub.body.id}/results`).buffer(true).parse(text)).body as string;
    const recs = lines.trim().split('\n').map((l) => JSON.parse(l) as ResultRecord & { outputs: { outputIndex: number }[] });
    assert.deepEqual(recs.map((r) => r.outputs.map((o) => o.outputIndex)), classes.map((c) => [c]));
    // The summary charts one class at a time, over the rows that explain it.
    const svg = await request(app).get(`/v1/jobs/${sub.body.id}/summary.svg?output=Gentoo`).buffer(true).parse(text);
    const gentoo = classes.filter((c) => c === 2).length;
    assert.ok((svg.body as string).includes(`Class Gentoo · ${gentoo} of 20 explanations (the rows predicted to be in this class)`), (svg.body as string).slice(0, 500));
    const html = await request(app).get(`/v1/jobs/${sub.body.id}/report.html`);
    assert.equal(html.status, 200);
    for (const name of ['Adelie', 'Chinstrap', 'Gentoo']) assert.match(html.text, new RegExp(`Mean \\|attribution\\|: ${name}`));
  });
});
