/**
 * The amortised network served through the fused Dense kernel (AmortisedNetwork.serve(),
 * models/amortised/fusedNetwork.ts), held to an oracle written here: the network's forward pass in
 * float64 (standardisation, layers, skip, output scale) with a bound on what float32 arithmetic may
 * change, derived per output from the weights and the row (see `oracle`). Both the kernel's estimates
 * and tfjs's (the same network, not served) must lie within that bound of the float64 value, so they
 * are within twice the bound of each other; a wrong bias, block, skip or standardisation moves an
 * estimate by orders of magnitude more than the bound (about 1e-6 of the output here).
 * - relu/elu/tanh, skip on/off, hidden [] / [5] / [4, 6], batches of 1, 7, 150 (kernel blocks are 64
 *   rows) and one of 8200 (past estimate's 8192-row chunks), one column far from 0 beside its scale;
 * - merged ensembles (2 and 3 members) run as one kernel per member block, found from the weights;
 * - every kernel build this machine has (native default, its fused multiply-add build, wasm);
 * - the path really taken (estimateMethod), PREDICT_KERNEL=tfjs keeps tfjs ops, a named kernel that
 *   cannot be used falls back to tfjs with one warning (a child process without the addon), a kernel
 *   that disagrees with tfjs stands down, weights reassigned after serve() are packed again;
 * - built and stored explainers are served by the kernel (the hook in ServedAmortisedExplainer).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { seededRng } from '../explainers/random.js';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { AmortisedNetwork, standardiseRows, type Standardisation } from '../models/amortised/estimator.js';
import { mergeMembers, weightShapes, type Activation, type NetworkSpec, type WeightArrays } from '../models/amortised/network.js';
import { kernelStatus, type KernelChoice } from '../models/fusedKernel.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { buildAmortised, type BuildResult } from '../service/amortised/build.js';
import { loadAmortised } from '../service/amortised/store.js';

const SAMPLES = path.resolve('samples/models');
const U = 2 ** -24; // float32's unit roundoff
const gamma = (m: number) => (m * U) / (1 - m * U);
/** Error allowed to each implementation's elu and tanh: a few ulps of max(|h|, 1) (exp(z) - 1 loses digits near 0). */
const ACT_ULPS = 8;

/**
 * The estimates in float64 from the float32 weights and rows, and per estimate a bound on how far a
 * float32 forward pass may land from it, first order in U, for any order of summation:
 * - a standardised value z = (x - mean) / scale: two roundings, 2U|z| (3U with second-order slack);
 * - a sum of m terms (products and bias) formed in float32 in any order: gamma(m + 1) x the sum of
 *   the terms' magnitudes (Higham, Accuracy and Stability of Numerical Algorithms, 3.1), plus the
 *   errors of its inputs carried through |W|; the output layer, its bias and the skip are one sum
 *   (tfjs adds the skip after the bias, the kernel splits ensembles into blocks: all are orders of it);
 * - relu, tanh and elu are 1-Lipschitz; elu and tanh add ACT_ULPS ulps of max(|h|, 1); relu is exact;
 * - the output scale: |scale| x the error, plus one rounding.
 */
function oracle(spec: NetworkSpec, w: WeightArrays, st: Standardisation, x: Float32Array, n: number): { exact: Float64Array; bound: Float64Array } {
  const act = (z: number) => (spec.activation === 'relu' ? Math.max(0, z) : spec.activation === 'elu' ? (z > 0 ? z : Math.expm1(z)) : Math.tanh(z));
  const actErr = (h: number) => (spec.activation === 'relu' ? 0 : ACT_ULPS * U * Math.max(Math.abs(h), 1));
  const sizes = [spec.inputs, ...spec.hidden, spec.outputs];
  const layers = spec.hidden.length + 1;
  const K = spec.outputs;
  const exact = new Float64Array(n * K);
  const bound = new Float64Array(n * K);
  for (let r = 0; r < n; r++) {
    const z = Array.from({ length: spec.inputs }, (_, c) => (x[r * spec.inputs + c] - st.inputMean[c]) / st.inputScale[c]);
    const ez = z.map((v) => 3 * U * Math.abs(v));
    let h = z;
    let e = ez;
    for (let l = 0; l < layers; l++) {
      const [a, b] = [sizes[l], sizes[l + 1]];
      const last = l + 1 === layers;
      const next: number[] = [];
      const nextErr: number[] = [];
      for (let j = 0; j < b; j++) {
        let s = w[2 * l + 1][j];
        let mag = Math.abs(s);
        let carried = 0;
        let terms = a + 1;
        for (let i = 0; i < a; i++) {
          const wij = w[2 * l][i * b + j];
          s += h[i] * wij;
          mag += (Math.abs(h[i]) + e[i]) * Math.abs(wij);
          carried += e[i] * Math.abs(wij);
        }
        if (last && spec.linearSkip) {
          for (let i = 0; i < spec.inputs; i++) {
            const sij = w[2 * layers][i * K + j];
            s += z[i] * sij;
            mag += (Math.abs(z[i]) + ez[i]) * Math.abs(sij);
            carried += ez[i] * Math.abs(sij);
          }
          terms += spec.inputs;
        }
        const err = carried + gamma(terms + 1) * mag;
        if (last) {
          const scale = st.outputScale[j];
          exact[r * K + j] = s * scale;
          bound[r * K + j] = Math.abs(scale) * err + 2 * U * Math.abs(s * scale);
        } else {
          const v = act(s);
          next.push(v);
          nextErr.push(err + actErr(v));
        }
      }
      h = next;
      e = nextErr;
    }
  }
  return { exact, bound };
}

function randomWeights(spec: NetworkSpec, rng: () => number): WeightArrays {
  return weightShapes(spec).map((shape) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * rng() - 1));
}

/** Means and scales away from 0 and 1; column 0's mean is 3000 times its scale (rows sit near it). */
function standardisation(spec: NetworkSpec, rng: () => number): Standardisation {
  const inputMean = Float32Array.from({ length: spec.inputs }, () => 4 * rng() - 2);
  const inputScale = Float32Array.from({ length: spec.inputs }, () => 0.3 + 2 * rng());
  inputMean[0] = 3000;
  inputScale[0] = 1;
  return { inputMean, inputScale, outputScale: Float32Array.from({ length: spec.outputs }, () => 0.5 + 2 * rng()) };
}

/** Rows around the means: mean + scale x uniform(-2, 2). */
function rowsFor(st: Standardisation, n: number, rng: () => number): Float32Array {
  const d = st.inputMean.length;
  return Float32Array.from({ length: n * d }, (_, i) => st.inputMean[i % d] + st.inputScale[i % d] * (4 * rng() - 2));
}

/** The largest |got - exact| / bound, and the largest |got - tfjs| / (2 bound); both must be <= 1. */
function check(label: string, got: Float32Array, tfjsGot: Float32Array, o: { exact: Float64Array; bound: Float64Array }): void {
  assert.equal(got.length, o.exact.length, label);
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i] - o.exact[i]) <= o.bound[i], `${label}: kernel estimate ${i} is ${got[i]}, float64 ${o.exact[i]}, allowed ${o.bound[i].toExponential(2)}`);
    assert.ok(Math.abs(tfjsGot[i] - o.exact[i]) <= o.bound[i], `${label}: tfjs estimate ${i} is ${tfjsGot[i]}, float64 ${o.exact[i]}, allowed ${o.bound[i].toExponential(2)}`);
    assert.ok(Math.abs(got[i] - tfjsGot[i]) <= 2 * o.bound[i], `${label}: kernel ${got[i]} vs tfjs ${tfjsGot[i]} at ${i}`);
  }
}

/** A served network's estimates, checked by `check`, and the kernel still serving after them (not stood down). */
async function checkServed(label: string, net: AmortisedNetwork, x: Float32Array, n: number, ref: Float32Array, want: { exact: Float64Array; bound: Float64Array }): Promise<void> {
  const method = net.estimateMethod;
  assert.notEqual(method, 'tfjs', `${label}: served by the kernel`);
  check(label, await net.estimate(x, n), ref, want);
  assert.equal(net.estimateMethod, method, `${label}: the kernel stood down on its check against tfjs`);
}

/** The kernel builds this machine can run, as PREDICT_KERNEL names them. */
function builds(): KernelChoice[] {
  const s = kernelStatus();
  const out: KernelChoice[] = [];
  if ('isa' in s.native) out.push('native', ...(s.native.fma ? (['native-fma'] as const) : []));
  if ('isa' in s.wasm) out.push('wasm');
  return out;
}

async function withEnv<T>(name: string, value: string | undefined, body: () => Promise<T>): Promise<T> {
  const before = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return await body();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

describe('amortised networks served through the fused kernel', function () {
  this.timeout(300_000);

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
  });

  it('standardises rows with the same float32 bits as tfjs (sub, then div)', () => {
    const rng = seededRng(3);
    const spec: NetworkSpec = { inputs: 9, hidden: [], outputs: 2, activation: 'relu', linearSkip: false };
    const st = standardisation(spec, rng);
    const net = new AmortisedNetwork(spec, randomWeights(spec, rng), st);
    try {
      const x = rowsFor(st, 50, rng);
      const want = tf.tidy(() => net.standardise(x, 50)).dataSync();
      assert.deepEqual(standardiseRows(x, 50, st), Float32Array.from(want));
    } finally {
      net.dispose();
    }
  });

  it('equals the float64 forward pass within float32 error bounds, as tfjs does (relu/elu/tanh, skip on/off, hidden [] / [5] / [4, 6], 1 / 7 / 150 rows)', async () => {
    const rng = seededRng(11);
    const available = builds();
    assert.ok(available.length > 0, 'the wasm build is committed: at least it runs');
    let cases = 0;
    for (const activation of ['relu', 'elu', 'tanh'] as Activation[]) {
      for (const linearSkip of [true, false]) {
        for (const hidden of [[], [5], [4, 6]]) {
          const spec: NetworkSpec = { inputs: 6, hidden, outputs: 4, activation, linearSkip };
          const weights = randomWeights(spec, rng);
          const st = standardisation(spec, rng);
          const tfjs = new AmortisedNetwork(spec, weights, st);
          const served = new AmortisedNetwork(spec, weights, st).serve('auto');
          const others = available.map((choice) => new AmortisedNetwork(spec, weights, st).serve(choice));
          try {
            assert.equal(tfjs.estimateMethod, 'tfjs');
            assert.equal(served.estimateMethod, 'isa' in kernelStatus().native ? 'fused-native' : 'fused-wasm');
            others.forEach((o, i) => assert.equal(o.estimateMethod, `fused-${available[i]}`));
            for (const n of [1, 7, 150]) {
              const x = rowsFor(st, n, rng);
              const want = oracle(spec, weights, st, x, n);
              const ref = await tfjs.estimate(x, n);
              const label = `${activation} skip=${linearSkip} hidden=[${hidden}] n=${n}`;
              await checkServed(label, served, x, n, ref, want);
              for (const [i, o] of others.entries()) await checkServed(`${label} ${available[i]}`, o, x, n, ref, want);
              cases++;
            }
          } finally {
            for (const net of [tfjs, served, ...others]) net.dispose();
          }
        }
      }
    }
    assert.equal(cases, 54);
  });

  it('a merged ensemble runs as one kernel per member block, found from its weights; estimates within the bounds (2 and 3 members, 1 to 3 hidden layers)', async () => {
    const rng = seededRng(23);
    for (const activation of ['relu', 'tanh'] as Activation[]) {
      for (const [hidden, E] of [
        [[4, 6], 2],
        [[4, 6], 3],
        [[3, 5, 2], 3],
        [[5], 3],
      ] as [number[], number][]) {
        const member: NetworkSpec = { inputs: 5, hidden, outputs: 3, activation, linearSkip: true };
        const merged = mergeMembers(
          member,
          Array.from({ length: E }, () => randomWeights(member, rng)),
        );
        const st = standardisation(merged.spec, rng);
        const tfjs = new AmortisedNetwork(merged.spec, merged.weights, st);
        const served = new AmortisedNetwork(merged.spec, merged.weights, st).serve('auto');
        try {
          // One hidden layer has no hidden-to-hidden kernel: nothing to split.
          assert.equal(served.fusedBlocks, hidden.length > 1 ? E : 1, `${activation} [${hidden}] x ${E}`);
          for (const n of [1, 70]) {
            const x = rowsFor(st, n, rng);
            await checkServed(`${activation} [${hidden}] x ${E} n=${n}`, served, x, n, await tfjs.estimate(x, n), oracle(merged.spec, merged.weights, st, x, n));
          }
        } finally {
          tfjs.dispose();
          served.dispose();
        }
      }
    }
    // A network that only looks blocked by its widths is not split: its off-diagonal weights are not zero.
    const spec: NetworkSpec = { inputs: 3, hidden: [4, 6], outputs: 2, activation: 'relu', linearSkip: false };
    const dense = new AmortisedNetwork(spec, randomWeights(spec, rng), standardisation(spec, rng)).serve('auto');
    assert.equal(dense.fusedBlocks, 1);
    dense.dispose();
  });

  it('more rows than one chunk (8192) through the kernel', async () => {
    const rng = seededRng(5);
    const spec: NetworkSpec = { inputs: 3, hidden: [4], outputs: 2, activation: 'elu', linearSkip: true };
    const weights = randomWeights(spec, rng);
    const st = standardisation(spec, rng);
    const tfjs = new AmortisedNetwork(spec, weights, st);
    const served = new AmortisedNetwork(spec, weights, st).serve('auto');
    try {
      const n = 8200;
      const x = rowsFor(st, n, rng);
      await checkServed('8200 rows', served, x, n, await tfjs.estimate(x, n), oracle(spec, weights, st, x, n));
    } finally {
      tfjs.dispose();
      served.dispose();
    }
  });

  it('PREDICT_KERNEL=tfjs keeps tfjs ops (the same bits as the unserved network); serve() reads it', async () => {
    const rng = seededRng(8);
    const spec: NetworkSpec = { inputs: 4, hidden: [6], outputs: 3, activation: 'tanh', linearSkip: true };
    const weights = randomWeights(spec, rng);
    const st = standardisation(spec, rng);
    const x = rowsFor(st, 9, rng);
    const plain = new AmortisedNetwork(spec, weights, st);
    const off = await withEnv('PREDICT_KERNEL', 'tfjs', async () => new AmortisedNetwork(spec, weights, st).serve());
    const on = await withEnv('PREDICT_KERNEL', undefined, async () => new AmortisedNetwork(spec, weights, st).serve());
    try {
      assert.equal(off.estimateMethod, 'tfjs');
      assert.equal(off.fusedBlocks, 0);
      assert.notEqual(on.estimateMethod, 'tfjs');
      assert.deepEqual(await off.estimate(x, 9), await plain.estimate(x, 9));
      // The kernel's sums round differently: not the same bits, but within the bound.
      await checkServed('default', on, x, 9, await plain.estimate(x, 9), oracle(spec, weights, st, x, 9));
    } finally {
      for (const net of [plain, off, on]) net.dispose();
    }
  });

  it('weights reassigned after serve() are packed again before the next estimate', async () => {
    const rng = seededRng(9);
    const spec: NetworkSpec = { inputs: 4, hidden: [5, 5], outputs: 2, activation: 'relu', linearSkip: true };
    const st = standardisation(spec, rng);
    const served = new AmortisedNetwork(spec, randomWeights(spec, rng), st).serve('auto');
    try {
      const x = rowsFor(st, 3, rng);
      await served.estimate(x, 3);
      const other = randomWeights(spec, rng);
      served.mlp.assign(other);
      const tfjs = new AmortisedNetwork(spec, other, st);
      await checkServed('reassigned', served, x, 3, await tfjs.estimate(x, 3), oracle(spec, other, st, x, 3));
      tfjs.dispose();
    } finally {
      served.dispose();
    }
    await assert.rejects(served.estimate(new Float32Array(4), 1), /disposed/);
  });

  it('stands down for good, with one warning, when its first call disagrees with tfjs; estimates then come from tfjs', async () => {
    const rng = seededRng(12);
    const spec: NetworkSpec = { inputs: 4, hidden: [5], outputs: 2, activation: 'relu', linearSkip: true };
    const weights = randomWeights(spec, rng);
    const st = standardisation(spec, rng);
    // A reference off by 1e-3 stands for a kernel that computes something else than tfjs.
    const off = (x: tf.Tensor2D, mlp: { apply(x: tf.Tensor2D): tf.Tensor2D }) => tf.add(mlp.apply(x), 1e-3) as tf.Tensor2D;
    const served = new AmortisedNetwork(spec, weights, st);
    served.serve('auto', (x) => off(x, served.mlp));
    const plain = new AmortisedNetwork(spec, weights, st);
    const warn = console.warn;
    const warned: string[] = [];
    console.warn = (msg: string) => warned.push(msg);
    try {
      assert.notEqual(served.estimateMethod, 'tfjs');
      const x = rowsFor(st, 80, rng);
      assert.deepEqual(await served.estimate(x, 80), await plain.estimate(x, 80), 'the tfjs pass, bit for bit');
      assert.equal(served.estimateMethod, 'tfjs');
      assert.equal(warned.length, 1);
      assert.match(warned[0], /kernel differs from tfjs by 1\.00e-3 on an amortised network's first 64 rows; amortised networks estimate through tfjs ops/);
      assert.deepEqual(await served.estimate(x.subarray(0, 20), 5), await plain.estimate(x.subarray(0, 20), 5));
    } finally {
      console.warn = warn;
      served.dispose();
      plain.dispose();
    }
  });

  it('a named kernel that cannot be used falls back to tfjs ops with one warning; auto without the addon takes wasm', function () {
    this.timeout(120_000);
    const script = `
      import { selectBackend } from './models/backend.js';
      import { AmortisedNetwork } from './models/amortised/estimator.js';
      await selectBackend('wasm');
      const spec = { inputs: 2, hidden: [3], outputs: 1, activation: 'relu', linearSkip: true };
      const w = [new Float32Array(6).fill(0.5), new Float32Array(3), new Float32Array(3).fill(1), new Float32Array(1), new Float32Array(2).fill(1)];
      const st = { inputMean: new Float32Array(2), inputScale: new Float32Array(2).fill(1), outputScale: new Float32Array(1).fill(1) };
      const warnings = [];
      console.warn = (m) => warnings.push(m);
      const nets = [0, 1].map(() => new AmortisedNetwork(spec, w, st).serve());
      const y = await nets[0].estimate(Float32Array.of(1, 2), 1);
      console.log(JSON.stringify({ methods: nets.map((n) => n.estimateMethod), y: Array.from(y), warnings }));`;
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { methods: string[]; y: number[]; warnings: string[] };
    };
    const missing = path.join(os.tmpdir(), 'no-such-addon.node');
    // 0.5 (1 + 2) = 1.5 per hidden unit, 3 of them, plus the skip's 1 + 2.
    const forced = run({ FUSED_KERNEL_ADDON: missing, PREDICT_KERNEL: 'native' });
    assert.deepEqual(forced.methods, ['tfjs', 'tfjs']);
    assert.deepEqual(forced.y, [7.5]);
    assert.equal(forced.warnings.length, 1, 'one warning for both networks');
    assert.match(forced.warnings[0], /PREDICT_KERNEL=native: the addon is not built .*; amortised networks estimate through tfjs ops/);
    const auto = run({ FUSED_KERNEL_ADDON: missing, PREDICT_KERNEL: 'auto' });
    assert.deepEqual(auto.methods, ['fused-wasm', 'fused-wasm']);
    assert.deepEqual(auto.y, [7.5]);
    assert.deepEqual(auto.warnings, []);
  });

  describe('explainers built and stored', () => {
    let credit: LoadedModel;
    let tmp: string;
    let built: BuildResult;

    before(async () => {
      credit = await loadModelFolder('credit', path.join(SAMPLES, 'credit'));
      tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-kernel-'));
      const reference = credit.reference!.rows;
      built = await buildAmortised(credit.model, {
        space: credit.space,
        background: credit.background!,
        link: 'logit',
        modelName: 'credit',
        modelVersion: credit.version,
        reference: { data: reference.data.slice(0, 80 * reference.d), n: 80, d: reference.d } satisfies Rows,
        dir: tmp,
        heldOutRows: 4,
        syntheticRows: 0,
        coalitionsPerRow: 16,
        maxEpochs: 3,
        patience: 2,
        hidden: [8, 6],
        ensemble: 2,
        seed: 4,
        validation: { kernelShapSamples: 0 },
      });
    });

    after(async () => {
      built?.explainer.dispose();
      credit?.model.dispose();
      await rm(tmp, { recursive: true, force: true });
    });

    it('the built and the loaded explainer estimate through the kernel (2 member blocks); PREDICT_KERNEL=tfjs loads one on tfjs ops; all within the bounds', async () => {
      const net = built.explainer.network;
      assert.notEqual(net.estimateMethod, 'tfjs');
      assert.equal(net.fusedBlocks, 2);
      const loaded = await loadAmortised(tmp, { modelVersion: credit.version });
      const onTfjs = await withEnv('PREDICT_KERNEL', 'tfjs', () => loadAmortised(tmp, { modelVersion: credit.version }));
      try {
        assert.notEqual(loaded.network.estimateMethod, 'tfjs');
        assert.equal(loaded.network.fusedBlocks, 2);
        assert.equal(onTfjs.network.estimateMethod, 'tfjs');
        const rng = seededRng(6);
        const st = net.standardisation;
        const n = 20;
        const x = rowsFor(st, n, rng);
        const want = oracle(net.spec, await net.read(), st, x, n);
        const ref = await onTfjs.network.estimate(x, n);
        await checkServed('built', net, x, n, ref, want);
        await checkServed('loaded', loaded.network, x, n, ref, want);
      } finally {
        loaded.dispose();
        onTfjs.dispose();
      }
    });
  });
});
