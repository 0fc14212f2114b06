/**
 * The fused Dense-stack kernel (models/fusedKernel.ts, native/src): every build this machine runs
 * (the addon's AVX-512 / AVX2 / SSE2 code, the wasm module) against tfjs's own predict and against
 * a float64 evaluation; the fallbacks (no addon, a broken addon, kernel 'tfjs', a failed
 * self-check); weights reassigned after wrapping; tensors not leaked; worker threads; bad arguments.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { createKernel, FusedPredict, kernelLayers, kernelStatus, type KernelLayer } from '../models/fusedKernel.js';
import { compileChain, planOf } from '../models/plan.js';
import { loadModelRepository } from '../models/repository.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { randomRows, relError, tempDir } from './fixtures/models-lib/build.js';
import { denseNet, float64Forward, kernelBuilds, layersOf, tfjsPredict, type Activation } from './helpers/denseStack.js';

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function meanAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

/**
 * The tolerance: within 1e-6 of tfjs relative to the largest output; or, where float32 itself is
 * coarser than that on the model (tfjs more than 5e-7 of the largest output from a float64
 * evaluation, so any other summation order differs by as much), as close to float64 as tfjs is:
 * mean error at most 1.25x tfjs's and largest error at most 2x (measured over 24 seeded MLPs: mean
 * 0.89-1.14x, largest 0.51-1.83x, the largest being one unlucky rounding).
 */
function assertMatchesTfjs(y: Float32Array, tfjs: Float32Array, exact: Float64Array, label: string): void {
  const rel = relError(y, tfjs);
  if (rel <= 1e-6) return;
  const scale = Math.max(...Array.from(tfjs, Math.abs));
  const floor = maxAbs(tfjs, exact) / scale;
  assert.ok(floor > 5e-7, `${label}: |kernel - tfjs| is ${rel.toExponential(2)} of the largest output while tfjs is within ${floor.toExponential(2)} of float64`);
  const [maxK, maxT, meanK, meanT] = [maxAbs(y, exact), maxAbs(tfjs, exact), meanAbs(y, exact), meanAbs(tfjs, exact)];
  assert.ok(meanK <= 1.25 * meanT, `${label}: mean |kernel - float64| ${meanK.toExponential(2)} vs tfjs ${meanT.toExponential(2)}`);
  assert.ok(maxK <= 2 * maxT, `${label}: max |kernel - float64| ${maxK.toExponential(2)} vs tfjs ${maxT.toExponential(2)}`);
}

describe('fused Dense kernel', function () {
  this.timeout(120_000);
  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
  });

  it('is built by npm ci wherever a C++ compiler, make, python3 and Node headers exist, and loads', function () {
    const headers = path.join(path.dirname(process.execPath), '..', 'include', 'node', 'node_api.h');
    const tools = ['g++', 'make', 'python3'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
    if (!tools || !existsSync(headers) || process.env.FUSED_KERNEL_BUILD === '0') this.skip();
    const native = kernelStatus().native;
    assert.ok('isa' in native, `the addon should have been built by npm ci / npm install: ${'error' in native ? native.error : ''}`);
    if (process.arch === 'x64') assert.match(native.isa, /^(avx512|avx2|sse2)$/);
  });

  it('the committed native/fused_mlp.wasm is what native/build-wasm.sh builds from the source (where clang and wasm-ld are installed)', function () {
    const tools = ['clang++', 'wasm-ld'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
    if (!tools) this.skip();
    const out = path.join(tempDir('wasm'), 'fused_mlp.wasm');
    const r = spawnSync('bash', [path.resolve('native/build-wasm.sh')], { encoding: 'utf8', env: { ...process.env, OUT: out } });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(readFileSync(path.resolve('native/fused_mlp.wasm'))), 'the source changed without npm run build:wasm (or another clang version): rebuild and commit native/fused_mlp.wasm');
  });

  it('reads a plan into layers and activations, and refuses what it does not run', () => {
    const net = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [5], units: 4, activation: 'relu6' }),
        tf.layers.dropout({ rate: 0.3 }),
        tf.layers.dense({ units: 3, useBias: false }),
        tf.layers.leakyReLU({ alpha: 0.2 }),
        tf.layers.activation({ activation: 'tanh' }),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    try {
      const layers = layersOf(net);
      assert.deepEqual(layers.map((l) => [l.in, l.out, l.b === null, [...l.acts], [...l.params]]), [
        [5, 4, false, [1], [6]],
        [4, 3, true, [2, 5], [Math.fround(0.2), 0]],
        [3, 2, false, [6], [0]],
      ]);
      // An activation before any Dense, and anything after a softmax, stay with tfjs.
      const first = tf.sequential({ layers: [tf.layers.activation({ inputShape: [3], activation: 'tanh' }), tf.layers.dense({ units: 2 })] });
      const after = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2, activation: 'softmax' }), tf.layers.activation({ activation: 'relu' })] });
      for (const m of [first, after]) {
        const plan = planOf(compileChain(m)!)!;
        assert.equal(kernelLayers(plan), null);
        assert.equal(FusedPredict.create(plan, 'auto'), null);
        m.dispose();
      }
    } finally {
      net.dispose();
    }
  });

  // Widths around the vector sizes (4, 8, 16 lanes) and the register tiles, batches around the
  // 64-row block and the row tiles.
  const shapes: { name: string; d: number; layers: { units: number; activation: Activation }[] }[] = [
    { name: '20-64-64-3 relu, softmax', d: 20, layers: [{ units: 64, activation: 'relu' }, { units: 64, activation: 'relu' }, { units: 3, activation: 'softmax' }] },
    { name: '7-33-17-1 tanh, sigmoid', d: 7, layers: [{ units: 33, activation: 'tanh' }, { units: 17, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }] },
    { name: '12-9-5 sigmoid, linear', d: 12, layers: [{ units: 9, activation: 'sigmoid' }, { units: 5, activation: 'linear' }] },
    { name: '3-100-8-16 elu, relu6, softmax', d: 3, layers: [{ units: 100, activation: 'elu' }, { units: 8, activation: 'relu6' }, { units: 16, activation: 'softmax' }] },
    { name: '1-1 linear', d: 1, layers: [{ units: 1, activation: 'linear' }] },
    { name: '40-130-10 relu, softmax', d: 40, layers: [{ units: 130, activation: 'relu' }, { units: 10, activation: 'softmax' }] },
  ];

  for (const shape of shapes) {
    it(`${shape.name}: every build equals tfjs predict within 1e-6 of the largest output, at batches 1 to 1000; the default builds give identical bits`, () => {
      const net = denseNet(shape.d, shape.layers, 11);
      try {
        const layers = layersOf(net);
        const k = shape.layers[shape.layers.length - 1].units;
        const exactOut = new Map<number, Float32Array>();
        for (const build of kernelBuilds()) {
          const kernel = build.make(layers);
          try {
            for (const n of [1, 5, 63, 64, 65, 131, 1000]) {
              const rows = randomRows(n, n, shape.d, 1.5);
              const y = new Float32Array(n * k);
              kernel.forward(rows.data, n, y);
              const ref = tfjsPredict(net, rows);
              const err = relError(y, ref);
              assert.ok(err <= 1e-6, `${build.name}, batch ${n}: max |kernel - tfjs| / max |tfjs| = ${err.toExponential(2)}`);
              if (!build.exact) continue;
              const first = exactOut.get(n);
              if (first) assert.deepEqual(y, first, `${build.name}, batch ${n}: the same operations in the same order give the same bits`);
              else exactOut.set(n, y);
            }
          } finally {
            kernel.dispose();
          }
        }
      } finally {
        net.dispose();
      }
    });
  }

  it('on confident MLPs (logits up to ~50): the default builds equal tfjs within 1e-6; the fused multiply-add builds, whose sums round differently, are as close to float64 as tfjs is', () => {
    // The bench's 20-64-64-3 MLP: weights N(0, 1) x 2 sqrt(2 / fan-in). tfjs itself is a few 1e-6
    // off a float64 evaluation here, so any other summation order is measured against that oracle.
    const floors: number[] = [];
    for (const [hidden, seed] of [['relu', 5], ['tanh', 6], ['relu', 7]] as const) {
      const net = denseNet(20, [{ units: 64, activation: hidden }, { units: 64, activation: hidden }, { units: 3, activation: 'softmax' }], seed, 2 * Math.sqrt(2));
      try {
        const layers = layersOf(net);
        const rows = randomRows(seed, 2000, 20);
        const exact = float64Forward(layers, rows);
        const ref = tfjsPredict(net, rows);
        floors.push(maxAbs(ref, exact));
        for (const build of kernelBuilds()) {
          const kernel = build.make(layers);
          const y = new Float32Array(rows.n * 3);
          kernel.forward(rows.data, rows.n, y);
          kernel.dispose();
          if (build.exact) {
            const err = relError(y, ref);
            assert.ok(err <= 1e-6, `${hidden} seed ${seed}, ${build.name}: max |kernel - tfjs| = ${err.toExponential(2)}`);
          } else assertMatchesTfjs(y, ref, exact, `${hidden} seed ${seed}, ${build.name}`);
        }
      } finally {
        net.dispose();
      }
    }
    assert.ok(Math.max(...floors) > 1e-6, `tfjs is within ${Math.max(...floors).toExponential(2)} of float64: not the regime this test is about`);
  });

  it('the Dense sample models predict through the kernel, equal to tfjs within 1e-6 (native-fma: as close to float64 as tfjs) on their reference rows', async () => {
    const repo = await loadModelRepository(path.resolve('samples/models'));
    const tfjsRepo = await loadModelRepository(path.resolve('samples/models'), { kernel: 'tfjs' });
    const status = kernelStatus().native;
    const fmaRepo = 'fma' in status && status.fma ? await loadModelRepository(path.resolve('samples/models'), { kernel: 'native-fma' }) : null;
    try {
      const expected = 'isa' in kernelStatus().native ? 'fused-native' : 'fused-wasm';
      const dense = ['cars', 'credit', 'linear', 'penguins'];
      for (const name of dense) {
        const m = repo.models.get(name)!;
        assert.equal(m.model.predictMethod, expected, name);
        assert.equal(tfjsRepo.models.get(name)!.model.predictMethod, 'dense-forward', name);
        const rows = m.reference!.rows;
        const ref = await tfjsRepo.models.get(name)!.model.predict(rows);
        const err = relError(await m.model.predict(rows), ref);
        assert.ok(err <= 1e-6, `${name}: max |kernel - tfjs| / max |tfjs| = ${err.toExponential(2)}`);
        if (fmaRepo) {
          const f = fmaRepo.models.get(name)!.model;
          assert.equal(f.predictMethod, 'fused-native-fma');
          assertMatchesTfjs(await f.predict(rows), ref, float64Forward(layersOf(m.model.model as tf.LayersModel), rows), `${name}, native-fma`);
        }
      }
      assert.equal(repo.models.get('shapes')!.model.predictMethod, 'model'); // conv layers: tfjs
    } finally {
      for (const r of [repo, tfjsRepo, fmaRepo]) for (const m of r?.models.values() ?? []) m.model.dispose();
    }
  });

  it('the default builds give exactly tfjs-wasm\'s bits for Dense layers (bias first, or after the sum as tfjs adds it)', function () {
    if (tf.getBackend() !== 'wasm') this.skip(); // the sums are XNNPACK's
    const cases: { name: string; d: number; layers: { units: number; activation: Activation }[] }[] = [
      { name: 'linear', d: 13, layers: [{ units: 37, activation: 'linear' }, { units: 5, activation: 'linear' }] },
      { name: 'relu (bias summed first)', d: 20, layers: [{ units: 64, activation: 'relu' }, { units: 64, activation: 'relu' }, { units: 3, activation: 'linear' }] },
      { name: 'relu6 then linear (bias added after the sum)', d: 9, layers: [{ units: 17, activation: 'relu6' }, { units: 2, activation: 'linear' }] },
    ];
    for (const c of cases) {
      const net = denseNet(c.d, c.layers, 21, 3);
      try {
        const layers = layersOf(net);
        const rows = randomRows(22, 700, c.d, 50); // large inputs: rounding differences would show
        const ref = tfjsPredict(net, rows);
        for (const build of kernelBuilds().filter((b) => b.exact)) {
          const kernel = build.make(layers);
          const y = new Float32Array(ref.length);
          kernel.forward(rows.data, rows.n, y);
          kernel.dispose();
          assert.deepEqual(y, ref, `${c.name}, ${build.name}`);
        }
      } finally {
        net.dispose();
      }
    }
  });

  it('follows weights reassigned after wrapping, keeps NaN where tfjs has it, and leaks no tensors', async () => {
    const net = denseNet(6, [{ units: 10, activation: 'relu' }, { units: 2, activation: 'softmax' }], 3);
    const model = await TfjsModel.create(net);
    try {
      const rows = randomRows(4, 300, 6);
      assert.ok(relError(await model.predict(rows), tfjsPredict(net, rows)) <= 1e-6);
      const fresh = net.getWeights().map((w) => tf.mul(w, -1.5));
      net.setWeights(fresh);
      tf.dispose(fresh);
      const after = await model.predict(rows);
      assert.ok(relError(after, tfjsPredict(net, rows)) <= 1e-6, 'predictions follow the new weights');

      const holes = { ...rows, data: rows.data.slice() };
      holes.data[7 * 6 + 2] = NaN;
      const y = await model.predict(holes);
      assert.ok(Number.isNaN(y[7 * 2]) && Number.isNaN(y[7 * 2 + 1]), 'a row with NaN gives NaN');
      assert.ok(y.every((v, i) => Math.floor(i / 2) === 7 || Number.isFinite(v)), 'other rows are finite');

      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await model.predict(rows);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    } finally {
      model.dispose();
    }
  });

  it("kernel 'tfjs' keeps the lean tfjs pass; 'wasm' runs the wasm build; 'native-fma' the fused multiply-add build", async () => {
    const net = denseNet(5, [{ units: 9, activation: 'tanh' }, { units: 3, activation: 'softmax' }], 8);
    const lean = await TfjsModel.create(net, { kernel: 'tfjs' });
    const wasm = await TfjsModel.create(net, { kernel: 'wasm' });
    const status = kernelStatus().native;
    const fma = 'fma' in status && status.fma ? await TfjsModel.create(net, { kernel: 'native-fma' }) : null;
    try {
      assert.equal(lean.predictMethod, 'dense-forward');
      assert.equal(wasm.predictMethod, 'fused-wasm');
      const rows = randomRows(2, 200, 5);
      assert.ok(relError(await wasm.predict(rows), await lean.predict(rows)) <= 1e-6);
      if (fma) {
        assert.equal(fma.predictMethod, 'fused-native-fma');
        assert.ok(relError(await fma.predict(rows), await lean.predict(rows)) <= 1e-6);
      }
    } finally {
      wasm.dispose(); // and net, which both wrap
    }
  });

  it('stands down for good, and predicts through tfjs, when its first call disagrees with tfjs', async () => {
    const net = denseNet(4, [{ units: 3, activation: 'sigmoid' }], 9);
    const model = await TfjsModel.create(net, { kernel: 'tfjs' });
    const plan = planOf(compileChain(net)!)!;
    const fused = FusedPredict.create(plan, 'auto')!;
    const warn = console.warn;
    const warned: string[] = [];
    console.warn = (msg: string) => warned.push(msg);
    try {
      const rows = randomRows(5, 100, 4);
      // A reference off by 1e-3 stands for a kernel that computes something else than tfjs.
      const off = async (r: Rows) => (await model.predict(r)).map((v) => v + 1e-3);
      assert.equal(await fused.predict(rows, 3, off), null);
      assert.match(fused.failed ?? '', /differs from tfjs by 1\.00e-3 on the model's first 64 rows/);
      assert.equal(warned.length, 1);
      assert.equal(await fused.predict(rows, 3, (r) => model.predict(r)), null, 'it does not come back');

      const agreeing = FusedPredict.create(plan, 'auto')!;
      const y = await agreeing.predict(rows, 3, (r) => model.predict(r));
      assert.ok(y && relError(y, await model.predict(rows)) <= 1e-6);
      agreeing.dispose();
    } finally {
      console.warn = warn;
      fused.dispose();
      model.dispose();
    }
  });

  it('without the addon (missing or broken) Dense models fall back to the wasm build; PREDICT_KERNEL=native then fails clearly', function () {
    this.timeout(120_000);
    const dir = tempDir('fused');
    const broken = path.join(dir, 'broken.node');
    writeFileSync(broken, 'not an addon');
    const script = `
      import * as tf from '@tensorflow/tfjs';
      import { selectBackend } from './models/backend.js';
      import { TfjsModel } from './models/tfjsModel.js';
      import { describeKernels } from './models/fusedKernel.js';
      await selectBackend('wasm');
      const net = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2, activation: 'softmax' })] });
      let method;
      try { method = (await TfjsModel.create(net)).predictMethod; } catch (e) { method = 'error: ' + e.message; }
      let log;
      try { log = describeKernels(); } catch (e) { log = 'error: ' + e.message; }
      console.log(JSON.stringify({ method, log }));`;
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { method: string; log: string };
    };
    const missing = run({ FUSED_KERNEL_ADDON: path.join(dir, 'none.node'), PREDICT_KERNEL: '' });
    assert.equal(missing.method, 'fused-wasm');
    assert.match(missing.log, /wasm fused kernel: the addon is not built \(npm run build:native/);
    const bad = run({ FUSED_KERNEL_ADDON: broken, PREDICT_KERNEL: 'auto' });
    assert.equal(bad.method, 'fused-wasm');
    assert.match(bad.log, /the addon did not load/);
    const forced = run({ FUSED_KERNEL_ADDON: broken, PREDICT_KERNEL: 'native' });
    assert.match(forced.method, /^error: PREDICT_KERNEL=native: the addon did not load/);
    assert.match(forced.log, /^PREDICT_KERNEL=native: the addon did not load .*; Dense models will not load$/);
    const off = run({ PREDICT_KERNEL: 'tfjs' });
    assert.equal(off.method, 'dense-forward');
    assert.equal(off.log, 'Dense models predict through tfjs ops (PREDICT_KERNEL=tfjs)');
    const typo = run({ PREDICT_KERNEL: 'fastest' });
    assert.match(typo.method, /^error: PREDICT_KERNEL=fastest: choose one of auto, native, native-fma, wasm, tfjs/);
  });

  it('runs in worker threads (the explanation pool) with the same results as the main thread', async () => {
    const net = denseNet(20, [{ units: 64, activation: 'relu' }, { units: 3, activation: 'softmax' }], 12);
    const model = await TfjsModel.create(net);
    try {
      const layers = layersOf(net);
      const rows = randomRows(13, 500, 20);
      const main = await model.predict(rows);
      const result = await new Promise<{ kind: string; y: Float32Array }>((resolve, reject) => {
        // The thread registers tsx itself: a bare worker does not apply the main thread's --import hooks to .ts files.
        const file = JSON.stringify(new URL('./fixtures/fusedWorker.ts', import.meta.url).href);
        const entry = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${file}); })`;
        const w = new Worker(entry, { eval: true, workerData: { layers, x: rows.data, n: rows.n } });
        w.once('message', (m: { kind: string; y: Float32Array }) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
      });
      assert.equal(result.kind, model.predictMethod === 'fused-native' ? 'native' : 'wasm');
      assert.deepEqual(result.y, main, 'the same code gives the same bits');
    } finally {
      model.dispose();
    }
  });

  it('rejects bad arguments with errors, never a crash', () => {
    const layers: KernelLayer[] = [{ in: 3, out: 2, W: new Float32Array(6), b: null, acts: Int32Array.of(1), params: Float32Array.of(-1) }];
    const kinds = kernelBuilds().map((b) => b.name);
    if (kinds.some((k) => k.startsWith('native'))) {
      assert.throws(() => createKernel([{ ...layers[0], W: new Float32Array(5) }], 'native'), /W must hold in x out values/);
      assert.throws(() => createKernel([layers[0], { ...layers[0], in: 4 }], 'native'), /do not chain|W must hold/);
      assert.throws(() => createKernel([{ ...layers[0], acts: Int32Array.of(6, 1), params: Float32Array.of(0, 0) }], 'native'), /softmax must be a layer's last activation/);
      assert.throws(() => createKernel([{ ...layers[0], acts: Int32Array.of(9), params: Float32Array.of(0) }], 'native'), /unknown activation/);
      const k = createKernel(layers, 'native');
      assert.throws(() => k.forward(new Float32Array(5), 2, new Float32Array(4)), /x holds fewer than n x d values/);
      assert.throws(() => k.forward(new Float32Array(6), 2, new Float32Array(3)), /y holds fewer than n x k values/);
      k.dispose();
      assert.throws(() => k.forward(new Float32Array(6), 2, new Float32Array(4)), /disposed/);
    }
    assert.throws(() => createKernel([{ ...layers[0], acts: Int32Array.of(9), params: Float32Array.of(0) }], 'wasm'), /refused the network: unknown activation/);
  });
});
