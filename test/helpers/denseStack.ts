/**
 * Seeded Dense stacks and their oracles, for the fused-kernel tests (predict and masked rows): the
 * net, what tfjs-layers predicts for it, its kernel layers, a float64 evaluation from the same
 * float32 weights, and every kernel build this machine runs.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { Rows } from '../../explainers/types.js';
import { normal, seededRng } from '../../explainers/random.js';
import { createKernel, kernelLayers, kernelStatus, type FusedKernel, type KernelLayer } from '../../models/fusedKernel.js';
import { compileChain, planOf } from '../../models/plan.js';

export type Activation = 'relu' | 'relu6' | 'tanh' | 'sigmoid' | 'elu' | 'linear' | 'softmax';

/** A Dense stack with seeded N(0, (gain / sqrt(fan-in))^2) weights and N(0, 0.1^2) biases. */
export function denseNet(d: number, layers: { units: number; activation: Activation }[], seed: number, gain = 1): tf.Sequential {
  const net = tf.sequential();
  layers.forEach((l, i) => net.add(tf.layers.dense({ units: l.units, activation: l.activation, ...(i === 0 ? { inputShape: [d] } : {}) })));
  const rng = seededRng(seed);
  const ws = net.getWeights().map((w) => {
    const fanIn = w.shape.length === 2 ? w.shape[0] : 0;
    const sd = fanIn ? gain / Math.sqrt(fanIn) : 0.1;
    return tf.tensor(Float32Array.from({ length: w.size }, () => sd * normal(rng)), w.shape);
  });
  net.setWeights(ws);
  tf.dispose(ws);
  return net;
}

/** What tfjs-layers itself predicts, in one batch. */
export function tfjsPredict(net: tf.LayersModel, rows: Rows): Float32Array {
  const y = tf.tidy(() => net.predict(tf.tensor2d(rows.data, [rows.n, rows.d]), { batchSize: rows.n }) as tf.Tensor);
  const out = y.dataSync() as Float32Array;
  y.dispose();
  return out;
}

/** The net's layers as the kernel takes them. */
export function layersOf(net: tf.LayersModel): KernelLayer[] {
  const chain = compileChain(net);
  const plan = chain && planOf(chain);
  const built = plan && kernelLayers(plan);
  assert.ok(built, 'a Dense stack gives kernel layers');
  return built.layers;
}

/** The stack evaluated in float64 from the same float32 weights: the oracle for accuracy. */
export function float64Forward(layers: KernelLayer[], rows: Rows): Float64Array {
  const k = layers[layers.length - 1].out;
  const out = new Float64Array(rows.n * k);
  for (let r = 0; r < rows.n; r++) {
    let h: number[] = Array.from(rows.data.subarray(r * rows.d, (r + 1) * rows.d));
    for (const L of layers) {
      const z: number[] = [];
      for (let j = 0; j < L.out; j++) {
        let s = L.b ? L.b[j] : 0;
        for (let i = 0; i < L.in; i++) s += h[i] * L.W[i * L.out + j];
        z.push(s);
      }
      h = z;
      L.acts.forEach((act, a) => {
        const p = L.params[a];
        if (act === 1) h = h.map((v) => (p >= 0 ? Math.min(Math.max(v, 0), p) : Math.max(v, 0)));
        else if (act === 2) h = h.map((v) => (v < 0 ? p * v : v));
        else if (act === 3) h = h.map((v) => (v > 0 ? v : Math.expm1(v)));
        else if (act === 4) h = h.map((v) => 1 / (1 + Math.exp(-v)));
        else if (act === 5) h = h.map(Math.tanh);
        else if (act === 6) {
          const m = Math.max(...h);
          const e = h.map((v) => Math.exp(v - m));
          const s = e.reduce((a2, b) => a2 + b, 0);
          h = e.map((v) => v / s);
        }
      });
    }
    out.set(h, r * k);
  }
  return out;
}

export interface Build {
  name: string;
  /** Multiply and add rounded separately, as tfjs-wasm does (else fused multiply-adds). */
  exact: boolean;
  make: (layers: KernelLayer[]) => FusedKernel;
}

/** Every kernel build this machine can run: the addon's at each instruction set the CPU has, and wasm. */
export function kernelBuilds(): Build[] {
  const out: Build[] = [];
  const native = kernelStatus().native;
  if ('isa' in native) {
    const ladder = ['avx512', 'avx2', 'sse2'];
    const isas = native.isa === 'generic' ? ['generic'] : ladder.slice(ladder.indexOf(native.isa));
    for (const isa of isas) out.push({ name: `native ${isa}`, exact: true, make: (l) => createKernel(l, 'native', isa) });
    const fma = native.isa === 'avx512' ? ['avx512-fma', 'avx2-fma'] : native.fma ? [native.fma] : [];
    for (const isa of fma) out.push({ name: `native ${isa}`, exact: false, make: (l) => createKernel(l, 'native', isa) });
  }
  out.push({ name: 'wasm simd128', exact: true, make: (l) => createKernel(l, 'wasm') });
  return out;
}
