/**
 * The amortised explainer's network and its optimiser, as plain tfjs variables: a multilayer
 * perceptron phi(x) from a standardised row to one estimate per (explained output, player).
 * Weights are initialised from a seeded generator in JS, so the same seed gives the same network on
 * any backend; saving and loading go through a standard tfjs layers model (store.ts).
 */
import * as tf from '@tensorflow/tfjs';

/** A uniform generator on [0, 1) (the caller's seeded one). */
export type Rng = () => number;

export type Activation = 'relu' | 'elu' | 'tanh';
export const ACTIVATIONS: readonly Activation[] = ['relu', 'elu', 'tanh'];

export interface NetworkSpec {
  inputs: number;
  hidden: number[];
  outputs: number;
  activation: Activation;
  /**
   * Add a linear map of the input to the output (no bias; the last layer has one). A linear model's
   * Shapley values are linear in x, and most models' are nearly so: the hidden layers then only
   * learn what is not, which measurably generalises better to rows not trained on.
   */
  linearSkip: boolean;
}

/**
 * Weights as plain arrays: [kernel 0, bias 0, kernel 1, bias 1, ..., skip kernel], kernels row-major
 * [in, out]; the skip kernel [inputs, outputs] only with linearSkip.
 */
export type WeightArrays = Float32Array[];

export function weightShapes(spec: NetworkSpec): number[][] {
  const sizes = [spec.inputs, ...spec.hidden, spec.outputs];
  const shapes: number[][] = [];
  for (let l = 0; l + 1 < sizes.length; l++) shapes.push([sizes[l], sizes[l + 1]], [sizes[l + 1]]);
  if (spec.linearSkip) shapes.push([spec.inputs, spec.outputs]);
  return shapes;
}

/**
 * Glorot-uniform kernels and zero biases, drawn from `rng` in a fixed order. With linearSkip the last
 * hidden-to-output kernel and the skip kernel start at zero: the network starts as the zero function
 * and its nonlinear part grows only where it lowers the loss (a random nonlinear start measurably
 * generalised worse on a linear model's explanations, which it must then learn to cancel).
 */
export function initialWeights(spec: NetworkSpec, rng: Rng): WeightArrays {
  const dense = spec.linearSkip ? 2 * spec.hidden.length : 2 * (spec.hidden.length + 1);
  return weightShapes(spec).map((shape, i) => {
    const w = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 2 && i < dense) {
      const limit = Math.sqrt(6 / (shape[0] + shape[1]));
      for (let i = 0; i < w.length; i++) w[i] = (2 * rng() - 1) * limit;
    }
    return w;
  });
}

export class Mlp {
  readonly variables: tf.Variable[];

  constructor(
    readonly spec: NetworkSpec,
    weights: WeightArrays,
  ) {
    const shapes = weightShapes(spec);
    if (weights.length !== shapes.length) throw new Error(`expected ${shapes.length} weight arrays, got ${weights.length}`);
    this.variables = shapes.map((shape, i) => {
      const size = shape.reduce((a, b) => a * b, 1);
      if (weights[i].length !== size) throw new Error(`weight ${i} has ${weights[i].length} values, expected ${size} for shape [${shape}]`);
      return tf.tidy(() => tf.variable(tf.tensor(weights[i], shape, 'float32'), true));
    });
  }

  /** [n, inputs] -> [n, outputs]. Call inside tidy. */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    let h = x;
    const layers = this.spec.hidden.length + 1;
    for (let l = 0; l < layers; l++) {
      const z = tf.add(tf.matMul(h, this.variables[2 * l] as tf.Variable<tf.Rank.R2>), this.variables[2 * l + 1]) as tf.Tensor2D;
      h = l + 1 < layers ? activate(z, this.spec.activation) : z;
    }
    return this.spec.linearSkip ? tf.add(h, tf.matMul(x, this.variables[2 * layers] as tf.Variable<tf.Rank.R2>)) : h;
  }

  async read(): Promise<WeightArrays> {
    return Promise.all(this.variables.map(async (v) => Float32Array.from((await v.data()) as Float32Array)));
  }

  assign(weights: WeightArrays): void {
    this.variables.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(weights[i], v.shape, 'float32'))));
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}

function activate(z: tf.Tensor2D, a: Activation): tf.Tensor2D {
  if (a === 'relu') return tf.relu(z);
  if (a === 'elu') return tf.elu(z);
  return tf.tanh(z);
}

/**
 * Adam (Kingma & Ba 2015) with its whole state in plain values: step count and moments. Ours, not
 * tf.train.adam: tfjs's Adam rebuilds its bias-correction powers with pow() when restored but
 * multiplies them step by step while training, so a resumed run would drift from an uninterrupted one.
 */
export class Adam {
  step = 0;
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];

  constructor(
    readonly params: tf.Variable[],
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-7,
  ) {
    this.m = params.map((p) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    this.v = params.map((p) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
  }

  /** One step; a variable whose gradient is undefined is left as it is (moments included). */
  apply(grads: (tf.Tensor | undefined)[], learningRate: number): void {
    this.step++;
    // Bias corrections in float64 from the step count alone: identical after a restore.
    const c1 = 1 - this.beta1 ** this.step;
    const c2 = 1 - this.beta2 ** this.step;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = grads[i];
        if (g === undefined) return;
        const m = tf.add(tf.mul(this.m[i], this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.v[i], this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), this.epsilon));
        p.assign(tf.sub(p, tf.mul(update, learningRate)));
      });
    });
  }

  async read(): Promise<{ step: number; m: Float32Array[]; v: Float32Array[] }> {
    const copy = async (t: tf.Variable) => Float32Array.from((await t.data()) as Float32Array);
    return { step: this.step, m: await Promise.all(this.m.map(copy)), v: await Promise.all(this.v.map(copy)) };
  }

  /** Back to a fresh optimiser: step 0, zero moments. */
  reset(): void {
    this.step = 0;
    for (const t of [...this.m, ...this.v]) tf.tidy(() => t.assign(tf.zerosLike(t)));
  }

  restore(state: { step: number; m: Float32Array[]; v: Float32Array[] }): void {
    this.step = state.step;
    this.m.forEach((t, i) => tf.tidy(() => t.assign(tf.tensor(state.m[i], t.shape, 'float32'))));
    this.v.forEach((t, i) => tf.tidy(() => t.assign(tf.tensor(state.v[i], t.shape, 'float32'))));
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/**
 * E member networks of the same spec as ONE network whose output is exactly the mean of theirs (up to
 * float32 rounding): each hidden layer holds the members' units side by side (widths x E), the first
 * kernel puts the members' kernels side by side, hidden-to-hidden kernels are block-diagonal (a
 * member's units see only its own), hidden biases are concatenated, and the output layer stacks the
 * members' last kernels divided by E (its bias and the linear skip kernel are the members' means).
 * One member is returned as it is. The members must share their input standardisation.
 */
export function mergeMembers(spec: NetworkSpec, members: WeightArrays[]): { spec: NetworkSpec; weights: WeightArrays } {
  const E = members.length;
  if (E < 1) throw new Error('merging needs at least one member network');
  const shapes = weightShapes(spec);
  for (const [e, w] of members.entries()) {
    if (w.length !== shapes.length || w.some((a, i) => a.length !== shapes[i].reduce((x, y) => x * y, 1))) {
      throw new Error(`member ${e}'s weights do not match the network [${spec.inputs}, ${spec.hidden.join(', ')}, ${spec.outputs}]`);
    }
  }
  if (E === 1) return { spec, weights: members[0] };
  const merged: NetworkSpec = { ...spec, hidden: spec.hidden.map((h) => h * E) };
  const sizes = [spec.inputs, ...spec.hidden, spec.outputs];
  const layers = spec.hidden.length + 1;
  const weights: WeightArrays = [];
  for (let l = 0; l < layers; l++) {
    // A side is per member ("blocked": the hidden units) or shared by all (the input, the output).
    const inBlocked = l > 0;
    const outBlocked = l + 1 < layers;
    const [rows, cols] = [sizes[l], sizes[l + 1]];
    const mergedCols = outBlocked ? cols * E : cols;
    const kernel = new Float32Array((inBlocked ? rows * E : rows) * mergedCols);
    const bias = new Float32Array(mergedCols);
    for (let e = 0; e < E; e++) {
      const k = members[e][2 * l];
      const b = members[e][2 * l + 1];
      const rowAt = inBlocked ? e * rows : 0;
      const colAt = outBlocked ? e * cols : 0;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const at = (rowAt + r) * mergedCols + colAt + c;
          // A shared output averages: every member's contribution divided by E.
          if (outBlocked) kernel[at] = k[r * cols + c];
          else kernel[at] += k[r * cols + c] / E;
        }
      }
      for (let c = 0; c < cols; c++) {
        if (outBlocked) bias[colAt + c] = b[c];
        else bias[c] += b[c] / E;
      }
    }
    weights.push(kernel, bias);
  }
  if (spec.linearSkip) {
    const skip = new Float32Array(spec.inputs * spec.outputs);
    for (const w of members) {
      const k = w[2 * layers];
      for (let i = 0; i < skip.length; i++) skip[i] += k[i] / E;
    }
    weights.push(skip);
  }
  return { spec: merged, weights };
}
