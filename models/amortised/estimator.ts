/**
 * The amortised explainer's network as a value: plain rows of network inputs in, plain rows of
 * estimates out, from one forward pass (chunked for large batches). What the inputs and outputs mean
 * (a row and its probe values in; one estimate per explained output and player out) is decided by
 * the caller (service/amortised/); this file only knows arrays. Inputs are standardised with the
 * training rows' column means and scales, and each output column is multiplied back by its scale, so
 * the network itself works on numbers near 1.
 *
 * The forward pass is tfjs ops (Mlp.apply) while the network trains; once its weights are final,
 * serve() packs them into our fused Dense kernel (fusedNetwork.ts) when one is available
 * (PREDICT_KERNEL: 'tfjs' keeps tfjs ops), and estimate() runs that: for one row, tfjs's per-op
 * dispatch costs more than the arithmetic. The rows are then standardised here with the same
 * float32 roundings as tfjs's sub and div, and the output scale applied as before, so the two paths
 * differ only in how each Dense output's sum is rounded (and the kernel's elu and tanh, within a few ulps).
 */
import * as tf from '@tensorflow/tfjs';
import { kernelChoiceFromEnv, type KernelChoice } from '../fusedKernel.js';
import { FusedNetwork, type FusedMethod } from './fusedNetwork.js';
import { Mlp, type NetworkSpec, type WeightArrays } from './network.js';

export interface Standardisation {
  /** Per input column: x' = (x - inputMean) / inputScale. */
  inputMean: Float32Array;
  inputScale: Float32Array;
  /** Per output column: estimate = network output x outputScale. */
  outputScale: Float32Array;
}

/** Rows per forward pass at most (bounds memory for large batches). */
const CHUNK_ROWS = 8192;

/** Which forward pass estimate() runs: tfjs ops, or the fused kernel's build. */
export type EstimateMethod = 'tfjs' | FusedMethod;

/**
 * (x - mean) / scale per column of n rows, each step rounded to float32 as tfjs's sub and div are
 * (a float32 difference or quotient formed in float64 and rounded once is the float32 one).
 */
export function standardiseRows(data: Float32Array, n: number, s: Pick<Standardisation, 'inputMean' | 'inputScale'>): Float32Array {
  const { inputMean: mean, inputScale: scale } = s;
  const w = mean.length;
  const out = new Float32Array(n * w);
  for (let r = 0; r < n; r++) {
    const at = r * w;
    for (let c = 0; c < w; c++) out[at + c] = Math.fround(data[at + c] - mean[c]) / scale[c];
  }
  return out;
}

export class AmortisedNetwork {
  readonly mlp: Mlp;
  private disposed = false;
  private served = false;
  private fused: FusedNetwork | null = null;

  constructor(
    readonly spec: NetworkSpec,
    weights: WeightArrays,
    readonly standardisation: Standardisation,
  ) {
    if (standardisation.inputMean.length !== spec.inputs || standardisation.inputScale.length !== spec.inputs) {
      throw new Error(`the standardisation has ${standardisation.inputMean.length} input columns, the network ${spec.inputs}`);
    }
    if (standardisation.outputScale.length !== spec.outputs) {
      throw new Error(`the standardisation has ${standardisation.outputScale.length} output columns, the network ${spec.outputs}`);
    }
    this.mlp = new Mlp(spec, weights);
  }

  /**
   * Marks the weights final: from now on estimate() runs the fused kernels when `choice` (default
   * PREDICT_KERNEL) allows one and it packs (else tfjs ops, see FusedNetwork.create). Called where a
   * trained or loaded network becomes a served one (service/amortised/explainer.ts), never while it
   * trains. Should a variable still be reassigned, the kernels repack from it (and check themselves
   * against tfjs again) before their next use. Calling it again changes nothing. `reference` is the
   * tfjs pass the kernels' first call is checked against (standardised rows in): Mlp.apply unless a
   * test passes a wrong one.
   */
  serve(choice: KernelChoice = kernelChoiceFromEnv(), reference?: (x: tf.Tensor2D) => tf.Tensor2D): this {
    if (this.disposed) throw new Error('the amortised network was disposed');
    if (this.served) return this;
    this.served = true;
    this.fused = FusedNetwork.create(this.mlp, choice, reference);
    return this;
  }

  /** The forward pass estimate() runs now ('tfjs' before serve(), under PREDICT_KERNEL=tfjs, or after a kernel stood down). */
  get estimateMethod(): EstimateMethod {
    return this.fused?.method ?? 'tfjs';
  }

  /** The member blocks the fused kernels run a merged ensemble as (fusedNetwork.ts); 0 on tfjs ops. */
  get fusedBlocks(): number {
    return this.fused ? this.fused.blocks : 0;
  }

  /** n rows of `spec.inputs` values each -> n rows of `spec.outputs` estimates, row-major. */
  async estimate(inputs: Float32Array, n: number): Promise<Float32Array> {
    if (this.disposed) throw new Error('the amortised network was disposed');
    const w = this.spec.inputs;
    const k = this.spec.outputs;
    if (inputs.length !== n * w) throw new Error(`expected ${n} x ${w} input values, got ${inputs.length}`);
    const out = new Float32Array(n * k);
    for (let start = 0; start < n; start += CHUNK_ROWS) {
      const end = Math.min(n, start + CHUNK_ROWS);
      const fused = this.fused;
      if (fused) {
        const y = await fused.forward(standardiseRows(inputs.subarray(start * w, end * w), end - start, this.standardisation), end - start);
        if (this.disposed) throw new Error('the amortised network was disposed');
        if (y) {
          out.set(y, start * k);
          continue;
        }
        // A kernel stood down on its check against tfjs (it warned): tfjs from here on.
        if (this.fused === fused) this.fused = null;
        fused.dispose();
      }
      const y = tf.tidy(() => this.mlp.apply(this.standardise(inputs.subarray(start * w, end * w), end - start)));
      try {
        // Read outside tidy: tidy would walk a returned typed array element by element.
        out.set(await y.data(), start * k);
      } finally {
        y.dispose();
      }
    }
    const scale = this.standardisation.outputScale;
    for (let i = 0; i < out.length; i++) out[i] *= scale[i % k];
    return out;
  }

  /** Standardised inputs as a tensor: (x - mean) / scale per column. Call inside tidy. */
  standardise(data: Float32Array, n: number): tf.Tensor2D {
    const { inputMean, inputScale } = this.standardisation;
    return tf.div(tf.sub(tf.tensor2d(data, [n, inputMean.length]), tf.tensor1d(inputMean)), tf.tensor1d(inputScale)) as tf.Tensor2D;
  }

  /** The current weights, as plain arrays. */
  read(): Promise<WeightArrays> {
    return this.mlp.read();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.fused?.dispose();
    this.fused = null;
    this.mlp.dispose();
  }
}
