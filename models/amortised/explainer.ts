/**
 * The trained explainer as the serving code sees it (explainers/amortised/types.ts): rows in,
 * per-player estimates in link units out, from one forward pass of the network. Inputs are
 * standardised with the training rows' column means and scales, and outputs multiplied back by each
 * output's scale, so the network itself works on numbers near 1.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rows } from '../../explainers/types.js';
import type { AmortisedGame } from '../../explainers/amortised/game.js';
import type { AmortisedExplainer, AmortisedValidation } from '../../explainers/amortised/types.js';
import { ExplainerInputError } from '../../explainers/types.js';
import type { Mlp } from './network.js';

export interface Standardisation {
  /** Per network input column (the row, then its probes when used): x' = (x - inputMean) / inputScale. */
  inputMean: Float32Array;
  inputScale: Float32Array;
  /** Per explained output: estimate = network output x outputScale (link units). */
  outputScale: Float32Array;
}

/** Rows per forward pass at most (bounds memory for large batches). */
const CHUNK_ROWS = 8192;

export class TfjsAmortisedExplainer implements AmortisedExplainer {
  validation?: AmortisedValidation;
  private disposed = false;

  constructor(
    readonly game: AmortisedGame,
    readonly modelName: string,
    readonly modelVersion: string,
    readonly network: Mlp,
    readonly standardisation: Standardisation,
    readonly probes: boolean,
  ) {}

  async estimate(rows: Rows, probes?: Float32Array): Promise<Float32Array> {
    if (this.disposed) throw new Error('the amortised explainer was disposed');
    const d = this.game.nFeatures;
    if (rows.d !== d || rows.data.length !== rows.n * d) {
      throw new ExplainerInputError('BAD_SHAPE', `rows have ${rows.d} values each but the explainer takes ${d}`);
    }
    const K = this.game.outputs.length;
    const M = this.game.players.length;
    const inputs = networkInputs(rows, this.probes ? probes : undefined, K, M);
    if (this.probes && (!probes || probes.length !== rows.n * K * 2 * M)) throw new Error(`the explainer needs ${rows.n * K * 2 * M} probe values for ${rows.n} rows`);
    const w = inputs.length / rows.n;
    const out = new Float32Array(rows.n * K * M);
    for (let start = 0; start < rows.n; start += CHUNK_ROWS) {
      const end = Math.min(rows.n, start + CHUNK_ROWS);
      const y = tf.tidy(() => this.network.apply(this.standardise(inputs.subarray(start * w, end * w), end - start)));
      try {
        // Read outside tidy: tidy would walk a returned typed array element by element.
        out.set(await y.data(), start * K * M);
      } finally {
        y.dispose();
      }
    }
    const scale = this.standardisation.outputScale;
    for (let i = 0; i < out.length; i++) out[i] *= scale[Math.floor(i / M) % K];
    return out;
  }

  /** Standardised network inputs (networkInputs) as a tensor: (x - mean) / scale per column. Call inside tidy. */
  standardise(data: Float32Array, n: number): tf.Tensor2D {
    const { inputMean, inputScale } = this.standardisation;
    return tf.div(tf.sub(tf.tensor2d(data, [n, inputMean.length]), tf.tensor1d(inputMean)), tf.tensor1d(inputScale)) as tf.Tensor2D;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.network.dispose();
  }
}

/** The network's input rows: each row's values, followed by its probes (outputs x 2M) when given. */
export function networkInputs(rows: Rows, probes: Float32Array | undefined, K: number, M: number): Float32Array {
  if (!probes) return rows.data;
  const { n, d } = rows;
  const p = K * 2 * M;
  const out = new Float32Array(n * (d + p));
  for (let i = 0; i < n; i++) {
    out.set(rows.data.subarray(i * d, (i + 1) * d), i * (d + p));
    out.set(probes.subarray(i * p, (i + 1) * p), i * (d + p) + d);
  }
  return out;
}
