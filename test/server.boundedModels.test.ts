/**
 * Bounded work on real tfjs models (the sample image, text and tabular models):
 *
 * - The guarded model (service/guard.ts) a task hands its explainer has exactly the optional
 *   capabilities of the model it wraps (input gradients, path breakpoints, logit Jacobian, layers and
 *   their activations and gradients), so Integrated Gradients keeps its exact segment integration,
 *   Grad-CAM its layer and text IG its embedding: the same answers guarded and not.
 * - Admission control covers every explain method on image and text models: each method's estimate
 *   refuses a request above MAX_REQUEST_EVALUATIONS (422 TOO_EXPENSIVE) before a single model call,
 *   and is an upper bound of the model rows the explainer then reports for the same request.
 */
import { strict as assert } from 'node:assert';
import path from 'node:path';
import request from 'supertest';
import { integratedGradients } from '../explainers/integratedGradients.js';
import { gradCam } from '../explainers/image/index.js';
import { tokenIntegratedGradients } from '../explainers/text/index.js';
import type { Model } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import { encodeTexts } from '../models/tokenizer.js';
import type { Registry, ServedModel } from '../models/served.js';
import { createApp } from '../server/app.js';
import { guardModel } from '../service/guard.js';
import { textTokens } from '../service/methods/inputs.js';
import { supportedMethods } from '../service/methods/index.js';
import { testConfig } from './helpers/config.js';

const CAPABILITIES = ['inputGradients', 'pathBreakpoints', 'logitJacobian', 'layers', 'layerActivations', 'layerGradients'] as const;

/** `model` with every method call counted (capabilities kept as they are). */
function counted(model: Model): { model: Model; calls: () => number } {
  let calls = 0;
  const proxy = new Proxy(model, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { model: proxy, calls: () => calls };
}

const rowsOf = (m: ServedModel, n: number) => {
  const src = (m.reference?.rows ?? m.background)!;
  return { data: src.data.slice(0, n * src.d), n, d: src.d };
};

describe('bounded work on tfjs models: guarded capabilities, admission of image and text methods', function () {
  this.timeout(300_000);
  let registry: Registry;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    registry = await loadModelRepository(path.resolve('samples/models'));
    assert.deepEqual(registry.errors, []);
  });

  it('a guarded TfjsModel has exactly the optional capabilities of the model it wraps', () => {
    const seen = new Set<string>();
    for (const m of registry.models.values()) {
      const g = guardModel(m.model).model;
      for (const c of CAPABILITIES) {
        assert.equal(typeof g[c] === 'undefined', typeof m.model[c] === 'undefined', `${m.name}: ${c}`);
        if (m.model[c] !== undefined) seen.add(c);
      }
      assert.deepEqual(g.layers, m.model.layers, m.name);
    }
    // The samples between them have every capability: the check above saw each one present.
    assert.deepEqual([...seen].sort(), [...CAPABILITIES].sort());
  });

  it('guarded and unguarded models give the same answers by the same paths: IG (exact segments), Grad-CAM, text IG', async () => {
    const credit = registry.models.get('credit')!;
    const rows = rowsOf(credit, 4);
    const options = { space: credit.space, baseline: 'zeros' as const, steps: 'auto' as const, method: 'exact' as const };
    const raw = await integratedGradients(credit.model, rows, options);
    const guarded = await integratedGradients(guardModel(credit.model, { deadline: Date.now() + 60_000 }).model, rows, options);
    assert.equal(raw.explanations[0].diagnostics?.integration, 'segments-exact', JSON.stringify(raw.explanations[0].diagnostics));
    assert.deepEqual(
      guarded.explanations.map((e) => e.diagnostics),
      raw.explanations.map((e) => e.diagnostics),
    );
    assert.deepEqual(
      guarded.explanations.map((e) => e.outputs.map((o) => o.attributions.map((a) => a.attribution))),
      raw.explanations.map((e) => e.outputs.map((o) => o.attributions.map((a) => a.attribution))),
    );

    const shapes = registry.models.get('shapes')!;
    const images = rowsOf(shapes, 2);
    const cam = { space: shapes.space, outputs: [0] };
    const camRaw = await gradCam(shapes.model, images, cam);
    const camGuarded = await gradCam(guardModel(shapes.model).model, images, cam);
    assert.deepEqual(camGuarded.explanations[0].outputs[0].attributions, camRaw.explanations[0].outputs[0].attributions);

    const text = registry.models.get('text')!;
    const ids = encodeTexts(text.tokenizer!, text.metadata!.exampleTexts!.slice(0, 2)).rows;
    const layer = text.model.layers!.find((l) => l.className === 'Embedding')!.name;
    const tig = { space: text.space, outputs: [0], layer, steps: 16, tokens: textTokens(text.tokenizer, ids), baselineId: text.tokenizer!.padId };
    const tigRaw = await tokenIntegratedGradients(text.model, ids, tig);
    const tigGuarded = await tokenIntegratedGradients(guardModel(text.model).model, ids, tig);
    assert.deepEqual(tigGuarded.explanations[1].outputs[0].attributions, tigRaw.explanations[1].outputs[0].attributions);
  });

  it('every image and text method: refused above the budget before any model call; its estimate bounds the rows it then evaluates', async () => {
    for (const name of ['shapes', 'text']) {
      const m = registry.models.get(name)!;
      const { model, calls } = counted(m.model);
      const withCounter = { ...m, model };
      const appWith = (limit: number) =>
        createApp({
          registry: { models: new Map([[name, withCounter]]), errors: [] },
          config: testConfig({ MAX_REQUEST_EVALUATIONS: String(limit) }),
          backend: 'test',
        });
      const tight = appWith(1);
      const off = appWith(0);
      // One instance: what explainers report per instance includes rows a call shares between its
      // instances (a background predicted once), so only one instance's count is the call's.
      const instances = name === 'text' ? m.metadata!.exampleTexts!.slice(0, 1) : [Array.from(rowsOf(m, 1).data)];
      const methods = supportedMethods(m);
      assert.ok(methods.length >= (name === 'text' ? 3 : 7), `${name}: ${methods.join(', ')}`);
      for (const method of methods) {
        // Small settings where a method has a knob, so the explanations below take seconds.
        const parameters =
          method === 'smoothgrad' || method === 'expected-gradients'
            ? { samples: 4 }
            : method === 'xrai' || method === 'integrated-gradients'
              ? { steps: 8 }
              : method === 'kernel-shap'
                ? { nSamples: 600 }
                : method === 'partition-shap'
                  ? { maxEvaluations: 40 }
                  : {};
        const body = { instances, method, outputs: [0], parameters };
        const before = calls();
        const refused = await request(tight).post(`/v1/models/${name}/explain`).send(body);
        assert.equal(refused.status, 422, `${name} ${method}: ${JSON.stringify(refused.body).slice(0, 300)}`);
        assert.equal(refused.body.error.code, 'TOO_EXPENSIVE');
        assert.equal(calls(), before, `${name} ${method}: model called before the refusal`);
        const estimate = refused.body.error.details.estimate as number;
        const done = await request(off).post(`/v1/models/${name}/explain`).send(body);
        assert.equal(done.status, 200, `${name} ${method}: ${JSON.stringify(done.body).slice(0, 300)}`);
        const evaluated = (done.body.explanations as { modelEvaluations: number }[]).reduce((s, e) => s + e.modelEvaluations, 0);
        assert.ok(evaluated > 0 && evaluated <= estimate, `${name} ${method}: ${evaluated} model rows evaluated, estimate ${estimate} (${refused.body.error.details.terms})`);
      }
    }
  });

  it('occlusion and Kernel SHAP over superpixels: the estimates in closed form', async () => {
    const shapes = registry.models.get('shapes')!;
    const app = createApp({ registry: { models: new Map([['shapes', shapes]]), errors: [] }, config: testConfig({ MAX_REQUEST_EVALUATIONS: '1' }), backend: 'test' });
    const images = rowsOf(shapes, 3);
    const d = images.d;
    // Three different images: equal ones would share their cache key and be computed (and charged) once.
    const instances = [0, 1, 2].map((i) => Array.from(images.data.subarray(i * d, (i + 1) * d)));
    const est = async (method: string, parameters: object) =>
      (await request(app).post('/v1/models/shapes/explain').send({ instances, method, outputs: [0], parameters })).body.error.details.estimate as number;
    // 16 x 16: 2 x 2 windows every pixel (15 x 15 positions), + the instance and the baseline image, per instance.
    assert.equal(await est('occlusion', {}), 3 * (15 * 15 + 2));
    // 4 x 4 windows every 5 pixels: 0, 5, 10 and one flush with the far edge, 12 (4 per axis).
    assert.equal(await est('occlusion', { window: [4, 4], strides: [5, 5] }), 3 * (4 * 4 + 2));
    // Every 4 pixels: 0, 4, 8, 12, the last already flush.
    assert.equal(await est('occlusion', { window: [4, 4], strides: [4, 4] }), 3 * (4 * 4 + 2));
    // 50 superpixels asked of 256 pixels: S^2 = 5.12, so SLIC keeps pieces of at least 1 pixel and may
    // make up to 256 players: nSamples auto = 2 x 256 + 2048 coalitions, + the instance and its
    // all-masked image, per instance (each its own game). Of a 224 x 224 image: pieces of at least 250
    // pixels, at most 200 players.
    assert.equal(await est('kernel-shap', {}), 3 * (2560 + 2));
    assert.equal(await est('kernel-shap', { segments: 20, nSamples: 1000 }), 3 * (1000 + 2));
    assert.equal(await est('partition-shap', { maxEvaluations: 300 }), 3 * 300);
  });
});
