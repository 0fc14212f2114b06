/**
 * Image and text explanations over REST, held to the planted truth of the samples: on held-out
 * shapes images (reference rows with object masks) every image method answers with one attribution
 * per pixel, in input order, and the object outranks the background; on held-out sentences the
 * planted trigger word ranks first, tokens listed in order with their positions. Charts (overlay,
 * tokens, the model reports) are valid SVG / PNG that Chromium draws; bad input gets a 4xx with a
 * stable code; jobs take image and text instances.
 */
import { strict as assert } from 'node:assert';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { JSDOM } from 'jsdom';
import request from 'supertest';
import type { InstanceExplanation } from '../explainers/types.js';
import { LocalJobRunner } from '../jobs/runner.js';
import type { JobView, ResultRecord } from '../jobs/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { inlineExecutor } from '../service/executor.js';
import { asText, launchChromium } from './helpers/browser.js';
import { testConfig } from './helpers/config.js';
import { served } from './helpers/jsModels.js';
import { loadShapes, type ShapesCase } from './helpers/shapes.js';

const SAMPLES = path.resolve('samples/models');

interface Sentence {
  text: string;
  label: number;
  trigger: string;
  triggerPosition: number;
}

function parsesAsSvg(text: string): Document {
  const doc = new new JSDOM('').window.DOMParser().parseFromString(text, 'image/svg+xml');
  assert.equal(doc.getElementsByTagName('parsererror').length, 0, 'SVG parses as XML');
  assert.equal(doc.documentElement.tagName, 'svg');
  return doc;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- supertest types the raw response loosely
const binary = (res: any, cb: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
};

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

type Attribution = { feature: string; value: number; attribution: number; stderr?: number; position?: number };

describe('server: image and text explanations', function () {
  this.timeout(300_000);
  let repo: ModelRepository;
  let app: App;
  let shapes: ShapesCase;
  let held: Sentence[];
  /** Two held-out images per class (reference rows with masks). */
  const picked: number[] = [];
  const image = (i: number) => Array.from(shapes.images.data.subarray(i * 256, (i + 1) * 256));
  /** The same image as a nested [16][16][1] array. */
  const nested = (i: number) => Array.from({ length: 16 }, (_, r) => Array.from({ length: 16 }, (_, c) => [shapes.images.data[i * 256 + r * 16 + c]]));

  before(async () => {
    await selectBackend('wasm');
    repo = await loadModelRepository(SAMPLES);
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    shapes = await loadShapes();
    for (const cls of [0, 1, 2]) picked.push(...shapes.labels.map((l, i) => (l === cls ? i : -1)).filter((i) => i >= 0).slice(0, 2));
    held = (JSON.parse(await readFile(path.join(SAMPLES, 'text', 'sentences.json'), 'utf8')) as { sentences: Sentence[] }).sentences.slice(0, 24);
  });
  after(() => shapes?.loaded.model.dispose());

  // Small budgets: the point is the wiring and the planted truth, not the explainers' accuracy (test/image.test.ts).
  const IMAGE_METHODS: [string, Record<string, unknown>, { topPixel: boolean }][] = [
    ['integrated-gradients', {}, { topPixel: true }],
    ['smoothgrad', { samples: 16, seed: 1 }, { topPixel: false }],
    ['expected-gradients', { samples: 64, seed: 1 }, { topPixel: true }],
    ['occlusion', { window: [2, 2], strides: [1, 1] }, { topPixel: true }],
    ['grad-cam', {}, { topPixel: false }],
    ['partition-shap', { segments: 32, masking: 'mean' }, { topPixel: true }],
    ['kernel-shap', { segments: 32, masking: 'mean', nSamples: 500, seed: 1 }, { topPixel: true }],
    ['xrai', { steps: 32, method: 'gauss-legendre' }, { topPixel: false }],
  ];

  for (const [method, parameters, expect] of IMAGE_METHODS) {
    it(`shapes, ${method}: one attribution per pixel in input order, and the object outranks the background`, async () => {
      const names = shapes.loaded.space.featureNames;
      for (const cls of [0, 1, 2]) {
        const idx = picked.filter((i) => shapes.labels[i] === cls);
        const res = await request(app)
          .post('/v1/models/shapes/explain')
          .send({ instances: idx.map((i, k): unknown => (k === 0 ? nested(i) : image(i))), method, parameters, outputs: [shapes.loaded.space.outputNames[cls]] });
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
        assert.equal(res.body.method, method);
        assert.deepEqual(res.body.inputShape, [16, 16, 1]);
        idx.forEach((i, k) => {
          const inst = res.body.explanations[k];
          assert.equal(inst.outputs.length, 1);
          const out = inst.outputs[0];
          assert.equal(out.outputIndex, cls);
          const attributions = out.attributions as Attribution[];
          assert.deepEqual(
            attributions.map((a) => a.feature),
            names,
          );
          attributions.forEach((a, p) => assert.ok(Math.abs(a.value - shapes.images.data[i * 256 + p]) < 1e-6 && Number.isFinite(a.attribution)));
          const a = attributions.map((x) => x.attribution);
          const mask = shapes.masks[i];
          let on = 0;
          let off = 0;
          let best = 0;
          for (let p = 0; p < 256; p++) {
            if (mask[p]) on += a[p];
            else off += a[p];
            if (a[p] > a[best]) best = p;
          }
          const objectPixels = mask.reduce((s, v) => s + v, 0);
          // measured on all 20 masked images: 20 / 20 for every method
          assert.ok(on / objectPixels > off / (256 - objectPixels), `image ${i}: object ${on / objectPixels} vs background ${off / (256 - objectPixels)}`);
          // measured 20 / 20 for these; grad-cam (13), smoothgrad (14), xrai (4: its map ranks regions) are looser
          if (expect.topPixel) assert.equal(mask[best], 1, `image ${i}: the top pixel ${best} lies on the object`);
        });
      }
    });
  }

  it('call-wide diagnostics stay on the call and per-instance ones on their instance, whatever the number of instances', async () => {
    // Two instances, and call-wide facts that are lists of two (occlusion's window and strides,
    // xrai's scales): the explainers say which is which, nothing is guessed from a list's length.
    const two = picked.slice(0, 2).map(image);
    const occ = await request(app)
      .post('/v1/models/shapes/explain')
      .send({ instances: two, method: 'occlusion', parameters: { window: [2, 2], strides: [1, 1] }, outputs: [0] });
    assert.equal(occ.status, 200, JSON.stringify(occ.body).slice(0, 500));
    assert.deepEqual(occ.body.diagnostics, { window: [2, 2], strides: [1, 1], perChannel: false });
    for (const inst of occ.body.explanations as InstanceExplanation[]) {
      assert.deepEqual(Object.keys(inst.diagnostics ?? {}).sort(), ['completenessGap', 'windows']);
      assert.equal(inst.diagnostics!.windows, 15 * 15);
      assert.equal((inst.diagnostics!.completenessGap as number[]).length, 1, 'one gap per explained output');
    }
    const xr = await request(app)
      .post('/v1/models/shapes/explain')
      .send({ instances: two, method: 'xrai', parameters: { steps: 16, method: 'gauss-legendre', scales: [8, 16] }, outputs: [0] });
    assert.equal(xr.status, 200, JSON.stringify(xr.body).slice(0, 500));
    assert.deepEqual(xr.body.diagnostics, { scales: [8, 16], dilation: xr.body.diagnostics.dilation });
    for (const inst of xr.body.explanations as InstanceExplanation[]) assert.equal(inst.diagnostics!.scales, undefined);
  });

  it('text: IG on the embedding, Partition and Kernel SHAP over tokens put the planted trigger first, tokens in order with positions', async () => {
    for (const [method, parameters] of [
      ['integrated-gradients', {}],
      ['partition-shap', {}],
      ['kernel-shap', { seed: 1 }],
    ] as const) {
      for (const label of [0, 1]) {
        const group = held.filter((s) => s.label === label);
        const res = await request(app)
          .post('/v1/models/text/explain')
          .send({ instances: group.map((s) => s.text), method, parameters, outputs: [label] });
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
        assert.equal(res.body.inputShape, undefined);
        group.forEach((s, k) => {
          const out = res.body.explanations[k].outputs[0];
          const attributions = out.attributions as Attribution[];
          assert.deepEqual(
            attributions.map((a) => a.feature),
            s.text.split(' '),
          );
          assert.deepEqual(
            attributions.map((a) => a.position),
            attributions.map((_, p) => p),
          );
          const best = attributions.reduce((b, x) => (x.attribution > b.attribution ? x : b));
          assert.equal(best.feature, s.trigger, `${method}: ${s.text}`);
          assert.equal(best.position, s.triggerPosition);
          const sum = attributions.reduce((t, x) => t + x.attribution, 0);
          assert.ok(Math.abs(sum - (out.instanceOutputValue - out.baselineOutputValue)) < 1e-3, `${method}: the attributions add up`);
        });
      }
    }
  });

  it('text: words the tokenizer does not know keep their own name; token ids out of the vocabulary are refused; cut-off tokens are counted', async () => {
    const res = await request(app)
      .post('/v1/models/text/explain')
      .send({ instances: ['a Zorblax movie, superb!'], method: 'partition-shap', outputs: ['positive'] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const out = res.body.explanations[0].outputs[0];
    assert.deepEqual(
      out.attributions.map((a: Attribution) => a.feature),
      ['a', 'zorblax', 'movie', ',', 'superb', '!'],
    );
    assert.equal(out.attributions[1].value, 1, 'the unknown word is the [UNK] id');
    const long = await request(app)
      .post('/v1/models/text/explain')
      .send({ instances: [Array.from({ length: 15 }, () => 'film').join(' ')], method: 'partition-shap' });
    assert.equal(long.status, 200);
    assert.equal(long.body.explanations[0].diagnostics.truncatedTokens, 3);
    assert.equal(long.body.explanations[0].outputs[0].attributions.length, 12);
    const ids = await request(app).post('/v1/models/text/predict').send({ instances: [[3, 7, 999, 0, 0, 0, 0, 0, 0, 0, 0, 0]] });
    assert.equal(ids.status, 400);
    assert.equal(ids.body.error.code, 'BAD_INSTANCE');
    assert.match(ids.body.error.message, /position 2: 999 is not a token id/);
  });

  it('predict takes text as strings, with the same outputs as its token ids', async () => {
    const expected = JSON.parse(await readFile(path.join(SAMPLES, 'text', 'expected.json'), 'utf8')) as { texts: string[]; rows: number[][]; predictions: number[][] };
    const byText = await request(app).post('/v1/models/text/predict').send({ instances: expected.texts.slice(0, 4) });
    const byIds = await request(app).post('/v1/models/text/predict').send({ instances: expected.rows.slice(0, 4) });
    assert.equal(byText.status, 200, JSON.stringify(byText.body));
    assert.deepEqual(byText.body.predictions, byIds.body.predictions);
    byText.body.predictions.forEach((p: number[], i: number) => p.forEach((v, j) => assert.ok(Math.abs(v - expected.predictions[i][j]) < 1e-6)));
  });

  it('bad input gets a 4xx with a stable code and a message that says what to fix', async () => {
    const row = [27, 77300, 0.278, 4, 0, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6];
    type Body = { instances: unknown[]; method?: string; parameters?: Record<string, unknown> };
    const cases: [string, string, Body, number, string, RegExp][] = [
      ['wrong image size', 'shapes', { instances: [Array.from({ length: 100 }, () => 0)], method: 'occlusion' }, 400, 'BAD_INSTANCE', /expected an array of length 16/],
      ['wrong nested size', 'shapes', { instances: [[[[0]]]], method: 'grad-cam' }, 400, 'BAD_INSTANCE', /input shape \[16, 16, 1\]/],
      ['empty text', 'text', { instances: [' \t\n '], method: 'integrated-gradients' }, 400, 'EMPTY_TEXT', /at least one word/],
      ['empty text to predict', 'text', { instances: [''] }, 400, 'EMPTY_TEXT', /instances\[0\]/],
      ['unknown layer', 'shapes', { instances: [image(0)], method: 'grad-cam', parameters: { layer: 'conv_9' } }, 400, 'UNKNOWN_LAYER', /no layer "conv_9"; its layers are input, conv_1, conv_2/],
      ['not a feature map', 'shapes', { instances: [image(0)], method: 'grad-cam', parameters: { layer: 'dense_1' } }, 400, 'BAD_LAYER', /not \[height, width, channels\]/],
      ['unknown text layer', 'text', { instances: ['a film'], method: 'integrated-gradients', parameters: { layer: 'nope' } }, 400, 'UNKNOWN_LAYER', /no layer "nope"/],
      ['image method on a tabular model', 'credit', { instances: [row], method: 'occlusion' }, 400, 'METHOD_NOT_SUPPORTED', /occlusion explains image models.*methods that work for model "credit": kernel-shap, integrated-gradients, expected-gradients/],
      ['smoothgrad on a tabular model', 'credit', { instances: [row], method: 'smoothgrad' }, 400, 'METHOD_NOT_SUPPORTED', /explains image models/],
      ['image method on a text model', 'text', { instances: ['a film'], method: 'grad-cam' }, 400, 'METHOD_NOT_SUPPORTED', /kernel-shap, integrated-gradients, partition-shap/],
      ['partition-shap on a tabular model', 'credit', { instances: [row], method: 'partition-shap' }, 400, 'METHOD_NOT_SUPPORTED', /image and text models/],
      ['a string for a tabular model', 'credit', { instances: ['income 30000'] }, 400, 'BAD_INSTANCE', /only text models/],
      ['too many superpixels', 'shapes', { instances: [image(0)], method: 'partition-shap', parameters: { segments: 300 } }, 400, 'BAD_PARAMETER', /more than the 256 pixels/],
      ['a window larger than the image', 'shapes', { instances: [image(0)], method: 'occlusion', parameters: { window: [17, 2] } }, 400, 'BAD_PARAMETER', /larger than the 16 x 16 image/],
      ['IG settings without the IG base', 'shapes', { instances: [image(0)], method: 'smoothgrad', parameters: { steps: 8 } }, 400, 'BAD_PARAMETER', /only with base "integrated-gradients"/],
      ['an image parameter on text', 'text', { instances: ['a film'], method: 'partition-shap', parameters: { masking: 'blur' } }, 400, 'BAD_PARAMETER', /applies to image models/],
      ['background on an image kernel-shap', 'shapes', { instances: [image(0)], method: 'kernel-shap', parameters: { background: [image(1)] } }, 400, 'BAD_PARAMETER', /applies to tabular models/],
      ['too many samples', 'shapes', { instances: [image(0)], method: 'smoothgrad', parameters: { samples: 5000 } }, 400, 'BAD_PARAMETER', /samples may be at most 1024/],
      ['unknown masking', 'shapes', { instances: [image(0)], method: 'partition-shap', parameters: { masking: 'smudge' } }, 400, 'BAD_PARAMETER', /masking/],
    ];
    for (const [what, model, body, status, code, message] of cases) {
      // Bodies without a method go to predict.
      const res = await request(app)
        .post(`/v1/models/${model}/${body.method ? 'explain' : 'predict'}`)
        .send(body);
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code, `${what}: ${res.body.error.message}`);
      assert.match(res.body.error.message, message, what);
    }
    // A plot that does not fit the explanation.
    const plot = await request(app).post('/v1/models/credit/explain?plot=overlay').set('Accept', 'image/svg+xml').send({ instances: [row], parameters: { nSamples: 200 } });
    assert.equal(plot.status, 400);
    assert.match(plot.body.error.message, /plot=overlay shows image explanations; this one is tabular/);
    const tokens = await request(app).post('/v1/models/shapes/explain?plot=tokens').set('Accept', 'image/svg+xml').send({ instances: [image(0)], method: 'grad-cam' });
    assert.equal(tokens.status, 400);
    assert.equal(tokens.body.error.code, 'BAD_PARAMETER');
  });

  it('gradient and layer methods on a model without gradients: METHOD_NOT_SUPPORTED naming the methods that work', async () => {
    // A plain JS image model: predictions only.
    const model = {
      nFeatures: 16,
      nOutputs: 1,
      async predict(rows: { data: Float32Array; n: number; d: number }) {
        return Float32Array.from({ length: rows.n }, (_, i) => rows.data.subarray(i * 16, (i + 1) * 16).reduce((s, v) => s + v, 0));
      },
    };
    const registry = { models: new Map([['blackbox', served('blackbox', model, { inputShape: [4, 4, 1], space: { featureNames: Array.from({ length: 16 }, (_, i) => `p${i}`), outputNames: ['sum'], inputShape: [4, 4, 1] } })]]), errors: [] };
    const own = createApp({ registry, config: testConfig({}), backend: 'wasm', executor: inlineExecutor(registry) });
    const img = Array.from({ length: 16 }, (_, i) => i / 16);
    for (const method of ['integrated-gradients', 'smoothgrad', 'expected-gradients', 'grad-cam', 'xrai']) {
      const res = await request(own).post('/v1/models/blackbox/explain').send({ instances: [img], method });
      assert.equal(res.status, 400, method);
      assert.equal(res.body.error.code, 'METHOD_NOT_SUPPORTED');
      assert.match(res.body.error.message, /needs (input gradients|layer activations)/);
      assert.deepEqual(res.body.error.details.methods, ['kernel-shap', 'occlusion', 'partition-shap']);
    }
    // What works does work, and occlusion of a sum with 1x1 windows is x_i - 0 per pixel.
    const ok = await request(own).post('/v1/models/blackbox/explain').send({ instances: [img], method: 'occlusion', parameters: { window: [1, 1], strides: [1, 1] } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    ok.body.explanations[0].outputs[0].attributions.forEach((a: Attribution, i: number) => assert.ok(Math.abs(a.attribution - img[i]) < 1e-6));
    const desc = await request(own).get('/v1/models/blackbox');
    assert.deepEqual(desc.body.methods, ['kernel-shap', 'occlusion', 'partition-shap']);
  });

  it("metadata gradCamLayer: Grad-CAM's default layer, checked at load (a layer that is not a feature map fails the folder)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gradcam-layer-'));
    try {
      const meta = JSON.parse(await readFile(path.join(SAMPLES, 'shapes', 'metadata.json'), 'utf8')) as Record<string, unknown>;
      for (const [name, layer] of [['first', 'conv_1'], ['dense', 'dense_1'], ['missing', 'conv_7']]) {
        await cp(path.join(SAMPLES, 'shapes'), path.join(dir, name), { recursive: true });
        await writeFile(path.join(dir, name, 'metadata.json'), JSON.stringify({ ...meta, gradCamLayer: layer }));
      }
      const own = await loadModelRepository(dir);
      try {
        assert.deepEqual([...own.models.keys()], ['first']);
        const errors = Object.fromEntries(own.errors.map((e) => [e.name, e.message]));
        assert.match(errors.dense, /metadata\.json: gradCamLayer "dense_1" outputs \[3\], not \[height, width, channels\]; layers with a spatial output: .*conv_1, conv_2/);
        assert.match(errors.missing, /gradCamLayer "conv_7" is not a layer of the model/);
        const a = createApp({ registry: own, config: testConfig({}), backend: 'wasm' });
        const byMeta = await request(a).post('/v1/models/first/explain').send({ instances: [image(0)], method: 'grad-cam', outputs: [0] });
        assert.equal(byMeta.status, 200, JSON.stringify(byMeta.body));
        assert.equal(byMeta.body.explanations[0].diagnostics.layer, 'conv_1');
        assert.deepEqual(byMeta.body.explanations[0].diagnostics.mapShape, [16, 16]);
        // The request's layer wins over the metadata's; the sample itself (no gradCamLayer) takes the last feature map.
        const byRequest = await request(a).post('/v1/models/first/explain').send({ instances: [image(0)], method: 'grad-cam', outputs: [0], parameters: { layer: 'conv_2' } });
        assert.deepEqual(byRequest.body.explanations[0].diagnostics.mapShape, [8, 8]);
        const sample = await request(app).post('/v1/models/shapes/explain').send({ instances: [image(0)], method: 'grad-cam', outputs: [0] });
        assert.equal(sample.body.explanations[0].diagnostics.layer, 'conv_2');
      } finally {
        for (const m of own.models.values()) m.model.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('GET /v1/models lists the explain methods that work for each model', async () => {
    const res = await request(app).get('/v1/models');
    const methods = Object.fromEntries(res.body.models.map((m: { name: string; methods: string[] }) => [m.name, m.methods]));
    assert.deepEqual(methods.shapes, ['kernel-shap', 'integrated-gradients', 'smoothgrad', 'expected-gradients', 'occlusion', 'grad-cam', 'partition-shap', 'xrai']);
    assert.deepEqual(methods.text, ['kernel-shap', 'integrated-gradients', 'partition-shap']);
    assert.deepEqual(methods.credit, ['kernel-shap', 'integrated-gradients', 'expected-gradients']);
  });

  it('charts: overlay SVG and PNG of stored explanations, tokens for text by a GET URL; Chromium draws them all, and the reports', async () => {
    const urls: string[] = [];
    for (const method of ['partition-shap', 'grad-cam', 'integrated-gradients']) {
      const res = await request(app).post('/v1/models/shapes/explain').send({ instances: [image(picked[0])], method, outputs: [0] });
      assert.equal(res.status, 200);
      const svg = await request(app).get(`${res.body.links.svg}?plot=overlay`).buffer(true).parse(asText);
      assert.equal(svg.status, 200);
      assert.match(svg.headers['content-type'], /image\/svg\+xml/);
      const doc = parsesAsSvg(svg.body as string);
      assert.equal(doc.getElementsByTagName('image').length, 1);
      // The overlay is a 224 px raster (16 px upsampled 14x), as a PNG data URI.
      const img = doc.getElementsByTagName('image')[0];
      assert.equal(img.getAttribute('width'), '224');
      assert.match(img.getAttribute('href') ?? '', /^data:image\/png;base64,/);
      const png = await request(app).get(`${res.body.links.png}?plot=overlay`).buffer(true).parse(binary);
      assert.equal(png.status, 200);
      assert.ok((png.body as Buffer).subarray(0, 8).equals(PNG_SIGNATURE));
      urls.push(`${res.body.links.svg}?plot=overlay`, `${res.body.links.png}?plot=overlay`);
    }
    const text = '/v1/models/text/explain.svg?text=' + encodeURIComponent('what a superb film, really') + '&method=partition-shap&outputs=positive';
    const t = await request(app).get(text).buffer(true).parse(asText);
    assert.equal(t.status, 200);
    const tdoc = parsesAsSvg(t.body as string);
    assert.deepEqual(
      Array.from(tdoc.querySelectorAll('g.token text'), (e) => e.textContent),
      ['what', 'a', 'superb', 'film', ',', 'really'],
    );
    urls.push(text, text.replace('explain.svg', 'explain.png'));
    const missing = await request(app).get('/v1/models/text/explain.json?method=partition-shap');
    assert.equal(missing.status, 400);
    assert.match(missing.body.error.message, /text=/);

    const browser = await launchChromium();
    if (!browser) return;
    const server = app.listen(0, '127.0.0.1');
    try {
      await new Promise((r) => server.once('listening', r));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.setContent(urls.map((u, i) => `<img id="i${i}" src="${base}${u}">`).join('\n'), { waitUntil: 'load' });
      const drawn = await page.$$eval('img', (imgs) => imgs.map((i) => [(i as HTMLImageElement).complete, (i as HTMLImageElement).naturalWidth, (i as HTMLImageElement).naturalHeight]));
      assert.equal(drawn.length, urls.length);
      for (const [i, [complete, w, h]] of drawn.entries()) assert.ok(complete && (w as number) > 200 && (h as number) > 100, `${urls[i]}: drawn ${w}x${h}`);
      for (const name of ['shapes', 'text']) {
        const res = await page.goto(`${base}/v1/models/${name}/report`);
        assert.equal(res?.status(), 200);
        const headings = await page.$$eval('h2', (hs) => hs.map((h) => h.textContent ?? ''));
        if (name === 'shapes') assert.ok(headings.includes('Explain methods side by side'), headings.join(' | '));
        else assert.ok(headings.some((h) => /^Example 1, integrated-gradients/.test(h)), headings.join(' | '));
        const boxes = await page.$$eval('svg', (els) => els.map((e) => e.getBoundingClientRect()).map((r) => [r.width, r.height]));
        assert.ok(boxes.length >= 2);
        for (const [w, h] of boxes) assert.ok(w > 50 && h > 50, `${name}: a chart of ${w}x${h}`);
      }
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      server.close();
    }
  });

  it('the model reports: image methods side by side on a reference image, the example texts token by token', async () => {
    const shapesReport = await request(app).get('/v1/models/shapes/report');
    assert.equal(shapesReport.status, 200);
    const doc = new JSDOM(shapesReport.text).window.document;
    const section = [...doc.querySelectorAll('section')].find((s) => s.querySelector('h2')?.textContent === 'Explain methods side by side');
    assert.ok(section, 'a comparison section');
    // The input plus one panel per method that works for the model (all 7 compared ones).
    assert.equal(section.querySelectorAll('svg image').length, 8);
    assert.doesNotMatch(section.textContent ?? '', /Not shown/);
    const textReport = await request(app).get('/v1/models/text/report');
    assert.equal(textReport.status, 200);
    const tdoc = new JSDOM(textReport.text).window.document;
    const meta = repo.models.get('text')!.metadata!.exampleTexts!;
    const third = [...tdoc.querySelectorAll('section')].find((s) => /^Example 3, partition-shap/.test(s.querySelector('h2')?.textContent ?? ''));
    assert.ok(third);
    assert.deepEqual(
      Array.from(third.querySelectorAll('g.token text'), (e) => e.textContent),
      meta[2].split(' '),
    );
  });

  describe('jobs with image and text instances', () => {
    let dir: string;
    let runner: LocalJobRunner;
    let jobsApp: App;

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'vision-jobs-'));
      runner = new LocalJobRunner({ dir, executor: inlineExecutor(repo), sync: false });
      await runner.start();
      jobsApp = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', jobRunner: runner });
    });
    after(async () => {
      await runner.stop();
      await rm(dir, { recursive: true, force: true });
    });

    async function finished(id: string): Promise<{ job: JobView; records: ResultRecord[] }> {
      const end = Date.now() + 120_000;
      for (;;) {
        const res = await request(jobsApp).get(`/v1/jobs/${id}`);
        if (res.body.status === 'succeeded') break;
        assert.ok(!['failed', 'cancelled'].includes(res.body.status), JSON.stringify(res.body));
        if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify(res.body)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const job = (await request(jobsApp).get(`/v1/jobs/${id}`)).body as JobView;
      const out = await request(jobsApp).get(`/v1/jobs/${id}/results`).buffer(true).parse(asText);
      return { job, records: (out.body as string).split('\n').filter(Boolean).map((l) => JSON.parse(l) as ResultRecord) };
    }

    it('an image job (grad-cam on nested-array images, one of the wrong size): per-pixel results equal to POST /explain', async () => {
      const instances = [nested(picked[0]), image(picked[2]), [[0, 1]], image(picked[4])];
      const sub = await request(jobsApp).post('/v1/jobs').send({ model: 'shapes', method: 'grad-cam', outputs: [1], instances, chunkSize: 2 });
      assert.equal(sub.status, 202, JSON.stringify(sub.body));
      const { job, records } = await finished(sub.body.id);
      assert.equal(job.rowsFailed, 1);
      assert.equal((records[2] as { error: { code: string } }).error.code, 'BAD_INSTANCE');
      const direct = await request(jobsApp)
        .post('/v1/models/shapes/explain')
        .send({ instances: [image(picked[0]), image(picked[2]), image(picked[4])], method: 'grad-cam', outputs: [1] });
      [0, 1, 3].forEach((r, k) => {
        const rec = records[r] as InstanceExplanation;
        assert.equal(rec.outputs[0].attributions.length, 256);
        assert.deepEqual(rec.outputs[0].attributions, direct.body.explanations[k].outputs[0].attributions);
      });
      const svg = await request(jobsApp).get(`/v1/jobs/${sub.body.id}/summary.svg`).buffer(true).parse(asText);
      assert.equal(svg.status, 200);
      parsesAsSvg(svg.body as string);
    });

    it('a text job (partition-shap on strings, one empty): per-token results named by the words, with positions; an EMPTY_TEXT error row', async () => {
      // "zorblax" is not in the vocabulary: its attribution is still named by the word, as in POST /explain.
      const texts = [held[0].text, '', `${held[1].text} zorblax`, held[2].text];
      const sub = await request(jobsApp).post('/v1/jobs').send({ model: 'text', method: 'partition-shap', outputs: ['positive'], instances: texts });
      assert.equal(sub.status, 202, JSON.stringify(sub.body));
      const { job, records } = await finished(sub.body.id);
      assert.equal(job.rowsTotal, 4);
      assert.equal(job.rowsFailed, 1);
      assert.equal((records[1] as { error: { code: string } }).error.code, 'EMPTY_TEXT');
      const direct = await request(jobsApp)
        .post('/v1/models/text/explain')
        .send({ instances: [texts[0], texts[2], texts[3]], method: 'partition-shap', outputs: ['positive'] });
      [0, 2, 3].forEach((r, k) => {
        const rec = records[r] as InstanceExplanation;
        assert.deepEqual(
          rec.outputs[0].attributions.map((a) => [a.feature, a.position]),
          texts[r].split(' ').map((w, p) => [w, p]),
        );
        assert.deepEqual(rec.outputs[0].attributions, direct.body.explanations[k].outputs[0].attributions);
      });
      // The summary: mean |attribution| per token, over the rows each token appears in.
      const sums = new Map<string, number[]>();
      for (const r of [0, 2, 3])
        for (const a of (records[r] as InstanceExplanation).outputs[0].attributions) sums.set(a.feature, [...(sums.get(a.feature) ?? []), Math.abs(a.attribution)]);
      const means = [...sums].map(([t, v]) => [t, v.reduce((x, y) => x + y, 0) / v.length] as const).sort((a, b) => b[1] - a[1]);
      const svg = await request(jobsApp).get(`/v1/jobs/${sub.body.id}/summary.svg?topK=5`).buffer(true).parse(asText);
      assert.equal(svg.status, 200);
      const bars = [...parsesAsSvg(svg.body as string).querySelectorAll('g.row[data-feature]')];
      assert.deepEqual(
        bars.map((b) => b.getAttribute('data-feature')),
        means.slice(0, 5).map(([t]) => t),
      );
      bars.forEach((b, i) => assert.ok(Math.abs(Number(b.getAttribute('data-value')) - means[i][1]) < 1e-9));
      const html = await request(jobsApp).get(`/v1/jobs/${sub.body.id}/report.html`);
      assert.equal(html.status, 200);
      assert.match(html.text, /Mean \|attribution\| per token: positive/);
    });
  });
});
