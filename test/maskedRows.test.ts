/**
 * Kernel SHAP's masked rows formed inside the fused kernel (Model.maskedRows, models/fusedKernel.ts,
 * native/src/kernel.inc maskedForward), for every build this machine runs (addon ISAs and wasm):
 *
 * - mode 'rows' builds each row in the kernel: the same bits as forward() on the rows built by an
 *   independent JS oracle (written here from the spec), and tfjs predict of those rows to 1e-6;
 * - mode 'first-layer' sums the first layer's pre-activation from the changed columns: held to tfjs
 *   predict of the materialised rows within 1e-5 of the largest output (ReLU, tanh/sigmoid, softmax
 *   heads, a one-layer net, and the cars sample model whose inputs are unscaled: weights in the
 *   thousands of pounds, so the sums cancel large terms);
 * - Kernel SHAP through them equals Kernel SHAP with rows built by the explainer (bits in 'rows',
 *   1e-6 of the attributions' scale in 'first-layer'), exactly efficient, row results independent of
 *   batch-mates, the same model evaluations and stop reasons; deadlines, the guard's chunks and its
 *   cancellation apply to them; bad arguments are errors, never a crash.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { kernelShap, type KernelShapOptions } from '../explainers/kernelShap.js';
import type { MaskedRowsEvaluator, MaskedRowsSpec, Model, Rows } from '../explainers/types.js';
import { permutation, seededRng } from '../explainers/random.js';
import { selectBackend } from '../models/backend.js';
import { kernelStatus, maskingChoiceFromEnv } from '../models/fusedKernel.js';
import { loadModelRepository } from '../models/repository.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { guardModel } from '../service/guard.js';
import { ServiceError } from '../service/errors.js';
import { randomRows } from './fixtures/models-lib/build.js';
import { denseNet, float64Forward, kernelBuilds, layersOf, tfjsPredict, type Activation } from './helpers/denseStack.js';

/**
 * A spec over `bg` with seeded coalitions: G rows per coalition (G background rows in a seeded order),
 * each row with its own seeded column order ('rows' layout) or one order for all ('mean' layout);
 * coalitions of every size, each followed by its complement (the explainer's pairs), listing the smaller side.
 */
function makeSpec(x: Float32Array, bgRows: number, d: number, G: number, K: number, layout: 'rows' | 'mean', seed: number): MaskedRowsSpec {
  const rng = seededRng(seed);
  const rows = Int32Array.from({ length: G }, () => Math.floor(rng() * bgRows));
  const cols = new Int32Array(d * (layout === 'rows' ? G : 1));
  if (layout === 'rows') {
    for (let g = 0; g < G; g++) {
      const order = permutation(rng, d);
      for (let j = 0; j < d; j++) cols[j * G + g] = order[j];
    }
  } else cols.set(permutation(rng, d));
  const cStart = new Int32Array(K + 1);
  const idx: number[] = [];
  const small = new Int32Array(K);
  for (let k = 0; k < K; k += 2) {
    const size = 1 + Math.floor(rng() * (d - 1));
    const members = permutation(rng, d).slice(0, size);
    const inS = new Uint8Array(d);
    for (const j of members) inS[j] = 1;
    for (const [kk, coalition] of [
      [k, 1],
      [k + 1, 0],
    ] as const) {
      if (kk >= K) break;
      // The coalition (coalition = 1: S, else its complement); listed: its smaller side.
      const count = coalition ? size : d - size;
      const listSelf = count <= d - count;
      for (let j = 0; j < d; j++) if ((inS[j] === coalition) === listSelf) idx.push(j);
      small[kk] = listSelf ? 1 : 0;
      cStart[kk + 1] = idx.length;
    }
  }
  return layout === 'rows'
    ? { x, rows, cols, sj: G, sg: 1, M: d, cStart, cIdx: Int32Array.from(idx), small }
    : { x, rows, cols, sj: 1, sg: 0, M: d, cStart, cIdx: Int32Array.from(idx), small };
}

/** The oracle: n masked rows from coalition k0, row row0, built column by column from the spec's definition. */
function materialise(spec: MaskedRowsSpec, bg: Rows, k0: number, row0: number, n: number): Rows {
  const d = bg.d;
  const G = spec.rows.length;
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const k = k0 + Math.floor((row0 + i) / G);
    const g = (row0 + i) % G;
    const b = spec.rows[g];
    const listed = new Set<number>();
    for (let t = spec.cStart[k]; t < spec.cStart[k + 1]; t++) {
      const id = spec.cols[spec.cIdx[t] * spec.sj + g * spec.sg];
      if (!spec.players) listed.add(id);
      else for (let q = spec.players.start[id]; q < spec.players.start[id + 1]; q++) listed.add(spec.players.idx[q]);
    }
    // In the coalition: listed when small, unlisted otherwise. Coalition columns take x, the rest the background row.
    for (let c = 0; c < d; c++) data[i * d + c] = (listed.has(c) === (spec.small[k] === 1) ? spec.x : bg.data.subarray(b * d, (b + 1) * d))[c];
  }
  return { data, n, d };
}

function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Stated tolerance of the first-layer sums against tfjs: relative to the largest output (at least 1). */
const FIRST_LAYER_TOLERANCE = 1e-5;

function attributions(e: Awaited<ReturnType<typeof kernelShap>>): number[] {
  return e.explanations.flatMap((x) => x.outputs.flatMap((o) => o.attributions.map((a) => a.attribution)));
}

function checkEfficiency(e: Awaited<ReturnType<typeof kernelShap>>, what: string): void {
  for (const x of e.explanations)
    for (const o of x.outputs) {
      const total = o.attributions.reduce((s, a) => s + a.attribution, 0);
      const delta = o.instanceOutputValue - o.baselineOutputValue;
      assert.ok(Math.abs(total - delta) <= 1e-9 * Math.max(1, Math.abs(delta)), `${what}: Σφ = ${total}, Δ = ${delta}`);
    }
}

/** The model without maskedRows: the explainer builds the rows and calls predict (the previous path). */
const plainModel = (m: Model): Model => ({ nFeatures: m.nFeatures, nOutputs: m.nOutputs, predict: (r) => m.predict(r) });

describe('masked rows inside the fused kernel (Kernel SHAP)', function () {
  this.timeout(120_000);
  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
  });

  const nets: { name: string; d: number; layers: { units: number; activation: Activation }[] }[] = [
    { name: '20-64-64-3 relu, softmax', d: 20, layers: [{ units: 64, activation: 'relu' }, { units: 64, activation: 'relu' }, { units: 3, activation: 'softmax' }] },
    { name: '7-33-17-1 tanh, sigmoid', d: 7, layers: [{ units: 33, activation: 'tanh' }, { units: 17, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }] },
    { name: '12-5 softmax (one layer)', d: 12, layers: [{ units: 5, activation: 'softmax' }] },
    { name: '3-100-8-16 elu, relu6, softmax', d: 3, layers: [{ units: 100, activation: 'elu' }, { units: 8, activation: 'relu6' }, { units: 16, activation: 'softmax' }] },
  ];
  for (const shape of nets) {
    it(`${shape.name}: 'rows' gives forward()'s bits on the oracle's rows (tfjs within 1e-6); 'first-layer' is within ${FIRST_LAYER_TOLERANCE} of tfjs; every build, both layouts`, () => {
      const net = denseNet(shape.d, shape.layers, 11, 1.3);
      const layers = layersOf(net);
      const bg = randomRows(3, 30, shape.d, 1.2);
      const x = randomRows(4, 1, shape.d, 1.5).data;
      const k = shape.layers[shape.layers.length - 1].units;
      for (const build of kernelBuilds().filter((b) => b.exact)) {
        const kernel = build.make(layers);
        const hb = kernel.preact(bg.data, bg.n);
        const hx = kernel.preact(x, 1);
        for (const layout of ['rows', 'mean'] as const) {
          const G = layout === 'rows' ? 13 : bg.n;
          const spec = makeSpec(x, bg.n, shape.d, G, 24, layout, 5);
          // From the start, across partial coalitions, and past a 64-row block.
          for (const [k0, row0, n] of [[0, 0, 24 * G], [3, 5, 2 * G + 1], [1, G - 1, 150], [23, 0, G]]) {
            const rows = materialise(spec, bg, k0, row0, n);
            const ref = tfjsPredict(net, rows);
            const direct = new Float32Array(n * k);
            kernel.forward(rows.data, n, direct);
            // Written at an offset into a larger output, the rest untouched.
            const got = new Float32Array((n + 3) * k).fill(7);
            kernel.forwardMasked(spec, bg.data, null, k0, row0, n, got, 2);
            assert.ok(got.subarray(0, 2 * k).every((v) => v === 7) && got.subarray((n + 2) * k).every((v) => v === 7), `${build.name}: wrote outside its rows`);
            assert.deepEqual(got.subarray(2 * k, (n + 2) * k), direct, `${build.name} ${layout} rows [${k0}, ${row0}, ${n}]: not forward()'s bits`);
            const scale = Math.max(1, maxAbs(ref));
            assert.ok(maxDiff(direct, ref) <= 1e-6 * scale, `${build.name}: forward vs tfjs ${maxDiff(direct, ref)}`);
            const fl = new Float32Array(n * k);
            kernel.forwardMasked(spec, bg.data, { hx, hb }, k0, row0, n, fl, 0);
            const err = maxDiff(fl, ref);
            assert.ok(err <= FIRST_LAYER_TOLERANCE * scale, `${build.name} ${layout} first-layer [${k0}, ${row0}, ${n}]: |Δ| ${err.toExponential(2)} vs tfjs`);
          }
        }
        kernel.dispose();
      }
      net.dispose();
    });
  }

  it("feature groups (players of several columns, spec.players): 'rows' gives forward()'s bits on the oracle's rows, 'first-layer' within tolerance of tfjs; every build", () => {
    const d = 11;
    const net = denseNet(d, [{ units: 24, activation: 'relu' }, { units: 3, activation: 'softmax' }], 13, 1.3);
    const layers = layersOf(net);
    const bg = randomRows(6, 20, d);
    const x = randomRows(7, 1, d, 1.5).data;
    // Players: {0, 4, 7}, {1}, {2, 3}, {5}, {6, 8, 9, 10}: 5 players over 11 columns.
    const groups = [[0, 4, 7], [1], [2, 3], [5], [6, 8, 9, 10]];
    const start = Int32Array.from([0, ...groups.map((_, i) => groups.slice(0, i + 1).flat().length)]);
    const players = { start, idx: Int32Array.from(groups.flat()) };
    for (const build of kernelBuilds().filter((b) => b.exact)) {
      const kernel = build.make(layers);
      const hb = kernel.preact(bg.data, bg.n);
      const hx = kernel.preact(x, 1);
      for (const layout of ['rows', 'mean'] as const) {
        const G = layout === 'rows' ? 7 : bg.n;
        const spec = { ...makeSpec(x, bg.n, groups.length, G, 12, layout, 8), players };
        const n = 12 * G;
        const rows = materialise(spec, bg, 0, 0, n);
        const ref = tfjsPredict(net, rows);
        const direct = new Float32Array(n * 3);
        kernel.forward(rows.data, n, direct);
        const got = new Float32Array(n * 3);
        kernel.forwardMasked(spec, bg.data, null, 0, 0, n, got, 0);
        assert.deepEqual(got, direct, `${build.name} ${layout}: not forward()'s bits`);
        kernel.forwardMasked(spec, bg.data, { hx, hb }, 0, 0, n, got, 0);
        assert.ok(maxDiff(got, ref) <= FIRST_LAYER_TOLERANCE * Math.max(1, maxAbs(ref)), `${build.name} ${layout} first-layer: ${maxDiff(got, ref)}`);
      }
      assert.throws(() => kernel.forwardMasked({ ...makeSpec(x, bg.n, groups.length, 7, 4, 'rows', 8), players: { start, idx: Int32Array.from(groups.flat(), (c) => (c === 9 ? d : c)) } }, bg.data, null, 0, 0, 7, new Float32Array(21), 0), /column is out of range/);
      kernel.dispose();
    }
    net.dispose();
  });

  it(`the cars sample model (unscaled inputs: large terms cancel in the first layer): 'first-layer' within ${FIRST_LAYER_TOLERANCE} of tfjs, 'rows' tfjs's bits to 1e-6, every build; the first-layer sums as close to float64 as tfjs is`, async () => {
    const repo = await loadModelRepository(path.resolve('samples/models'), { kernel: 'tfjs' });
    try {
      const m = repo.models.get('cars')!;
      const net = m.model.model as tf.LayersModel;
      const layers = layersOf(net);
      const bg = m.background!;
      const xs = m.reference!.rows;
      assert.ok(maxAbs(bg.data) > 1000, 'the cars inputs are unscaled (weights in lb)');
      const d = bg.d;
      for (const build of kernelBuilds().filter((b) => b.exact)) {
        const kernel = build.make(layers);
        const hb = kernel.preact(bg.data, bg.n);
        let worst = 0;
        // Against the float64 evaluation of the same rows: the first-layer sums vs tfjs's own error.
        let errFirst = 0;
        let errTfjs = 0;
        for (let i = 0; i < 5; i++) {
          const x = xs.data.slice(i * d, (i + 1) * d);
          const hx = kernel.preact(x, 1);
          const spec = makeSpec(x, bg.n, d, Math.min(bg.n, 40), 40, 'rows', 20 + i);
          const n = 40 * spec.rows.length;
          const rows = materialise(spec, bg, 0, 0, n);
          const ref = tfjsPredict(net, rows);
          const exact = new Float32Array(n);
          kernel.forwardMasked(spec, bg.data, null, 0, 0, n, exact, 0);
          const scale = Math.max(1, maxAbs(ref));
          assert.ok(maxDiff(exact, ref) <= 1e-6 * scale, `${build.name} rows: ${maxDiff(exact, ref)}`);
          const fl = new Float32Array(n);
          kernel.forwardMasked(spec, bg.data, { hx, hb }, 0, 0, n, fl, 0);
          worst = Math.max(worst, maxDiff(fl, ref) / scale);
          const exact64 = float64Forward(layers, rows);
          errFirst = Math.max(errFirst, maxDiff(fl, exact64));
          errTfjs = Math.max(errTfjs, maxDiff(ref, exact64));
        }
        assert.ok(errFirst <= 2 * errTfjs, `${build.name}: first-layer error ${errFirst.toExponential(2)} vs float64, tfjs's ${errTfjs.toExponential(2)}`);
        assert.ok(worst <= FIRST_LAYER_TOLERANCE, `${build.name} first-layer on cars: relative ${worst.toExponential(2)}`);
        kernel.dispose();
      }
    } finally {
      for (const m of repo.models.values()) m.model.dispose();
    }
  });

  it('Kernel SHAP through the masked rows equals Kernel SHAP with rows built by the explainer (rows: same bits; first-layer: 1e-6), efficient, same evaluations and stop reasons', async () => {
    const d = 20;
    const bg = randomRows(31, 40, d);
    const xs = randomRows(32, 4, d, 1.5);
    const space = { featureNames: Array.from({ length: d }, (_, i) => `x${i}`), outputNames: ['a', 'b', 'c'] };
    for (const kernel of ['native', 'wasm'] as const) {
      if (kernel === 'native' && !('isa' in kernelStatus().native)) continue;
      for (const masking of ['rows', 'first-layer'] as const) {
        const model = await TfjsModel.create(denseNet(d, nets[0].layers, 21, 1.3), { kernel, masking });
        await model.predict(bg); // the kernel's first call checks it against tfjs
        assert.ok(await model.maskedRows(bg), `${kernel}: masked rows offered`);
        const grouped = { space: { ...space, groups: [[0, 3, 5], [7, 8]] } };
        for (const options of [{}, { nSamples: 300, tolerance: 0 }, { sampler: 'balanced' as const, nSamples: 200 }, { outputs: [1] }, grouped, { ...grouped, sampler: 'balanced' as const }] as Partial<KernelShapOptions>[]) {
          const opts = { space, background: bg, seed: 9, ...options };
          const ours = await kernelShap(model, xs, opts);
          const before = await kernelShap(plainModel(model), xs, opts);
          const what = `${kernel} ${masking} ${JSON.stringify({ ...options, space: options.space?.groups })}`;
          const a = attributions(ours);
          const b = attributions(before);
          if (masking === 'rows') assert.deepEqual(a, b, what);
          else assert.ok(maxDiff(a, b) <= 1e-6 * Math.max(1e-3, maxAbs(b)), `${what}: ${maxDiff(a, b)}`);
          checkEfficiency(ours, what);
          ours.explanations.forEach((x, i) => {
            assert.equal(x.modelEvaluations, before.explanations[i].modelEvaluations, what);
            assert.equal(x.stopReason, before.explanations[i].stopReason, what);
          });
          // A row's result does not depend on its batch-mates.
          const alone = await kernelShap(model, { data: xs.data.slice(d, 2 * d), n: 1, d }, opts);
          assert.deepEqual(attributions(alone), attributions({ ...ours, explanations: [ours.explanations[1]] }), `${what}: row 1 alone`);
        }
        model.dispose();
      }
    }
  });

  it('Kernel SHAP on the cars sample model (one-hot group, integer features, unscaled inputs) through the masked rows: within 1e-5 of the explainer-built path, efficient', async () => {
    const repo = await loadModelRepository(path.resolve('samples/models'));
    try {
      const m = repo.models.get('cars')!;
      assert.ok(m.space.groups && m.space.groups.length > 0, 'cars has a one-hot group');
      const rows = { data: m.reference!.rows.data.slice(0, 4 * m.reference!.rows.d), n: 4, d: m.reference!.rows.d };
      await m.model.predict(rows);
      assert.ok(await m.model.maskedRows(m.background!), 'masked rows offered');
      for (const options of [{}, { nSamples: 200, tolerance: 0 }, { sampler: 'balanced' as const }] as Partial<KernelShapOptions>[]) {
        const opts = { space: m.space, background: m.background!, seed: 3, ...options };
        const ours = await kernelShap(m.model, rows, opts);
        const before = await kernelShap(plainModel(m.model), rows, opts);
        const a = attributions(ours);
        const b = attributions(before);
        assert.ok(maxDiff(a, b) <= 1e-5 * maxAbs(b), `${JSON.stringify(options)}: ${maxDiff(a, b)} of ${maxAbs(b)}`);
        checkEfficiency(ours, `cars ${JSON.stringify(options)}`);
      }
    } finally {
      for (const m of repo.models.values()) m.model.dispose();
    }
  });

  it('is offered only where it can run (not with kernel tfjs, masking off, conv models, a kernel that failed its check), and never depending on what the model did before', async () => {
    const d = 6;
    const net = () => denseNet(d, [{ units: 8, activation: 'relu' }, { units: 2, activation: 'softmax' }], 3, 1.3);
    const bg = randomRows(1, 10, d);
    // A model never called yet: the kernel's check against tfjs runs there, and the rows are offered.
    const fresh = await TfjsModel.create(net());
    assert.ok(await fresh.maskedRows(bg), 'offered on a model never called before');
    assert.equal(await (await TfjsModel.create(net(), { kernel: 'tfjs' })).maskedRows(bg), null);
    assert.equal(await (await TfjsModel.create(net(), { masking: 'off' })).maskedRows(bg), null);
    // The same explanation from a model's very first call as from a model that has answered before
    // (the path taken does not depend on history), and every masked row through the kernel.
    const space = { featureNames: Array.from({ length: d }, (_, i) => `x${i}`), outputNames: ['a', 'b'] };
    const xs = randomRows(2, 3, d, 3);
    const opts = { space, background: bg, nSamples: 60 };
    const counted = (inner: TfjsModel, seen: { rows: number; masked: number }): Model => ({
      nFeatures: d,
      nOutputs: 2,
      predict: (r) => ((seen.rows += r.n), inner.predict(r)),
      maskedRows: async (b) => {
        const ev = await inner.maskedRows(b);
        return ev && { mode: ev.mode, predict: (...a: Parameters<MaskedRowsEvaluator['predict']>) => ((seen.masked += a[3]), ev.predict(...a)) };
      },
    });
    const firstSeen = { rows: 0, masked: 0 };
    const first = await kernelShap(counted(await TfjsModel.create(net()), firstSeen), xs, opts);
    const warm = await TfjsModel.create(net());
    await warm.predict(xs);
    const later = await kernelShap(warm, xs, opts);
    assert.deepEqual(attributions(first), attributions(later));
    assert.equal(firstSeen.rows, xs.n + bg.n, 'predict saw only f(x) and f(background)');
    assert.ok(firstSeen.masked > 0);
    checkEfficiency(first, 'first explain');
    // A kernel that stood down (its check failed) offers nothing: the explainer builds the rows.
    const broken = await TfjsModel.create(net());
    (broken as unknown as { fused: { failed: string } }).fused.failed = 'test: stood down';
    assert.equal(await broken.maskedRows(bg), null);
    const repo = await loadModelRepository(path.resolve('samples/models'));
    try {
      const shapes = repo.models.get('shapes')!;
      assert.equal(shapes.model.predictMethod, 'model');
      assert.equal(await shapes.model.maskedRows({ data: new Float32Array(shapes.model.nFeatures), n: 1, d: shapes.model.nFeatures }), null);
    } finally {
      for (const m of repo.models.values()) m.model.dispose();
    }
  });

  it("a deadline cuts evaluation through the masked rows (time moves only in the kernel's calls): stopReason deadline, efficient, nothing past it", async () => {
    const d = 20;
    const model = await TfjsModel.create(denseNet(d, nets[0].layers, 41, 1.3));
    const bg = randomRows(42, 30, d);
    await model.predict(bg);
    const xs = randomRows(43, 3, d);
    const space = { featureNames: Array.from({ length: d }, (_, i) => `x${i}`), outputNames: ['a', 'b', 'c'] };
    const realNow = Date.now;
    try {
      // Every row takes 0.02 ms of (fake) time: a call of 5000 rows 100 ms; the deadline is 1000 ms away.
      let now = realNow();
      Date.now = () => now;
      let rows = 0;
      const deadline = now + 1000;
      const timed: Model = {
        nFeatures: d,
        nOutputs: 3,
        predict: async (r) => ((now += 0.02 * r.n), model.predict(r)),
        maskedRows: async (b) => {
          const ev = (await model.maskedRows(b))!;
          return {
            mode: ev.mode,
            predict: async (...a: Parameters<MaskedRowsEvaluator['predict']>) => {
              rows += a[3];
              now += 0.02 * a[3];
              return ev.predict(...a);
            },
          };
        },
      };
      const e = await kernelShap(timed, xs, { space, background: bg, nSamples: 100_000, deadline, tolerance: 0, maxRowsPerCall: 5000 });
      assert.ok(rows > 0, 'masked rows evaluated');
      // Stopped within one call of the deadline, having used most of the time.
      assert.ok(now <= deadline + 100 && now >= deadline - 200, `stopped at deadline ${now >= deadline ? '+' : ''}${now - deadline} ms`);
      for (const x of e.explanations) assert.equal(x.stopReason, 'deadline');
      checkEfficiency(e, 'deadline');
    } finally {
      Date.now = realNow;
    }
    model.dispose();
  });

  it("the service's guard chunks the masked rows (same results) and stops them when the task is cancelled", async () => {
    const d = 20;
    const model = await TfjsModel.create(denseNet(d, nets[0].layers, 51, 1.3));
    const bg = randomRows(52, 30, d);
    await model.predict(bg);
    const xs = randomRows(53, 2, d);
    const space = { featureNames: Array.from({ length: d }, (_, i) => `x${i}`), outputNames: ['a', 'b', 'c'] };
    const opts = { space, background: bg, nSamples: 400, tolerance: 0, seed: 4 };
    const direct = await kernelShap(model, xs, opts);
    // 16 KB per call: 200 rows of 20 floats.
    const guarded = guardModel(model, { maxBytesPerCall: 200 * d * 4 });
    const viaGuard = await kernelShap(guarded.model, xs, opts);
    assert.deepEqual(attributions(viaGuard), attributions(direct));
    const rows = direct.explanations.reduce((s, x) => s + x.modelEvaluations, 0);
    assert.ok(guarded.stats.calls >= rows / 200, `${guarded.stats.calls} guarded calls for ${rows} rows`);
    let left = 3;
    const stopping = guardModel(model, { cancelled: () => --left < 0 });
    await assert.rejects(kernelShap(stopping.model, xs, opts), (e: unknown) => e instanceof ServiceError && e.code === 'CANCELLED');
    model.dispose();
  });

  it('KERNEL_SHAP_MASKING: first-layer by default, rows or off on request, anything else refused with the choices', () => {
    assert.equal(maskingChoiceFromEnv({}), 'first-layer');
    assert.equal(maskingChoiceFromEnv({ KERNEL_SHAP_MASKING: ' ROWS ' }), 'rows');
    assert.equal(maskingChoiceFromEnv({ KERNEL_SHAP_MASKING: 'off' }), 'off');
    assert.throws(() => maskingChoiceFromEnv({ KERNEL_SHAP_MASKING: 'fast' }), /KERNEL_SHAP_MASKING=fast: choose one of first-layer, rows, off/);
  });

  it('rejects bad masked-row arguments with errors, never a crash (addon and wasm)', () => {
    const d = 4;
    const net = denseNet(d, [{ units: 5, activation: 'relu' }, { units: 2, activation: 'linear' }], 2, 1.3);
    const layers = layersOf(net);
    const bg = randomRows(1, 3, d);
    const x = randomRows(2, 1, d).data;
    for (const build of kernelBuilds().filter((b) => b.exact)) {
      const kernel = build.make(layers);
      const good = makeSpec(x, bg.n, d, 3, 4, 'rows', 1);
      const y = new Float32Array(12 * 2);
      kernel.forwardMasked(good, bg.data, null, 0, 0, 12, y, 0);
      const bad: [string, MaskedRowsSpec, RegExp][] = [
        ['row index', { ...good, rows: Int32Array.of(0, 1, 3) }, /background row index is out of range/],
        ['player', { ...good, cIdx: good.cIdx.map((v, i) => (i === 0 ? 9 : v)) }, /player out of range/],
        ['column', { ...good, cols: good.cols.map((v, i) => (i === 0 ? d : v)) }, /column is out of range/],
      ];
      for (const [what, spec, message] of bad) assert.throws(() => kernel.forwardMasked(spec, bg.data, null, 0, 0, 12, y, 0), message, `${build.name}: ${what}`);
      assert.throws(() => kernel.forwardMasked(good, bg.data, null, 0, 0, 13, new Float32Array(26), 0), /past the last coalition/, build.name);
      if (build.name.startsWith('native')) {
        assert.throws(() => kernel.forwardMasked(good, bg.data, null, 0, 0, 12, new Float32Array(10), 0), /y holds fewer/);
        assert.throws(() => kernel.forwardMasked(good, bg.data, { hx: new Float32Array(1), hb: new Float32Array(1) }, 0, 0, 12, y, 0), /shorter than preact/);
      }
      kernel.dispose();
      assert.throws(() => kernel.forwardMasked(good, bg.data, null, 0, 0, 12, y, 0), /disposed/);
    }
    net.dispose();
  });
});
