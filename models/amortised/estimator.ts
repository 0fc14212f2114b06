/**
 * The amortised explainer's network as a value: plain rows of network inputs in, plain rows of
 * estimates out, from one forward pass (chunked for large batches). What the inputs and outputs mean
 * (a row and its probe values in; one estimate per explained output and player out) is decided by
 * the caller (service/amortised/); this file only knows arrays. Inputs are standardised with the
 * training rows' column means and scales, and each output column is multiplied back by its scale, so
 * the network itself works on numbers near 1.
 */
import * as tf from '@tensorflow/tfjs';
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

export class AmortisedNetwork {
  readonly mlp: Mlp;
  private disposed = false;

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

  /** n rows of `spec.inputs` values each -> n rows of `spec.outputs` estimates, row-major. */
  async estimate(inputs: Float32Array, n: number): Promise<Float32Array> {
    if (this.disposed) throw new Error('the amortised network was disposed');
    const w = this.spec.inputs;
    const k = this.spec.outputs;
    if (inputs.length !== n * w) throw new Error(`expected ${n} x ${w} input values, got ${inputs.length}`);
    const out = new Float32Array(n * k);
    for (let start = 0; start < n; start += CHUNK_ROWS) {
      const end = Math.min(n, start + CHUNK_ROWS);
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
    this.mlp.dispose();
  }
}
