/**
 * The amortised explainer's network through our fused Dense kernel (models/fusedKernel.ts) instead of
 * tfjs ops: for one row, tfjs's per-op dispatch costs more than the arithmetic. Packed from the
 * network's weights when it becomes a served one (AmortisedNetwork.serve()):
 *
 * - the Dense stack (hidden layers with their activation, then the output layer) as one kernel, or,
 *   for an ensemble merged into one network (network.ts mergeMembers: hidden-to-hidden kernels
 *   block-diagonal), one kernel per member block: the merged kernels' off-diagonal blocks are zeros
 *   that a dense kernel would still multiply (2/3 of the default ensemble's [768, 768] kernel, 44% of
 *   all its weights), and for one row the time goes into reading the weights. The blocks are found
 *   from the weights (zeros where mergeMembers puts them), so a stored ensemble needs no marker; the
 *   output layer's bias goes with the first block and the blocks' outputs are summed here;
 * - with a linear skip, the bias-free skip kernel as one more single-layer kernel, added here.
 *
 * The kernels take standardised rows (AmortisedNetwork standardises them with tfjs's roundings) and
 * give the network's raw outputs (before the output scale). Folding the standardisation into the
 * first layer (W / scale, b - (mean / scale) W) would save one pass over the inputs, a small share of
 * the first layer's work, but x (W / scale) and the folded bias cancel each other when a column's mean
 * is large beside its scale, and the estimate loses that many digits; unfolded, the only differences
 * from tfjs are how each sum is rounded (and the kernel's elu and tanh, within a few ulps of tfjs's).
 *
 * As a Dense model's predict does, the first call checks the kernels against tfjs (Mlp.apply) on up
 * to 64 of its rows and stands down for good, with a warning, on a gross disagreement; and the
 * kernels are packed again (and checked again) should one of the network's variables be reassigned.
 */
import * as tf from '@tensorflow/tfjs';
import { createKernel, denseKernelLayer, kernelStatus, selfCheckGap, SELF_CHECK_ROWS, type FusedKernel, type KernelChoice, type KernelLayer } from '../fusedKernel.js';
import type { Mlp, NetworkSpec, WeightArrays } from './network.js';

export type FusedMethod = 'fused-native' | 'fused-native-fma' | 'fused-wasm';

/** Largest member count looked for in a merged network (the service trains at most 8). */
const MAX_BLOCKS = 8;

const warned = new Set<string>();

/** One warning per distinct reason and thread (a reason would repeat for every explainer loaded). */
function warnOnce(why: string): void {
  if (warned.has(why)) return;
  warned.add(why);
  console.warn(`tfjs-explainer: ${why}; amortised networks estimate through tfjs ops`);
}

/**
 * How kernels are made under `choice`: 'auto' the addon's best build, else the wasm module, else null;
 * 'native', 'native-fma' and 'wasm' that one (an Error says why it cannot be used); 'tfjs' null.
 */
function kernelMaker(choice: KernelChoice): { method: FusedMethod; make: (layers: KernelLayer[]) => FusedKernel } | null {
  if (choice === 'tfjs') return null;
  const s = kernelStatus();
  const native = 'isa' in s.native ? s.native : null;
  if ((choice === 'auto' || choice === 'native') && native) return { method: 'fused-native', make: (l) => createKernel(l, 'native') };
  if (choice === 'native-fma' && native?.fma) return { method: 'fused-native-fma', make: (l) => createKernel(l, 'native', native.fma) };
  if ((choice === 'auto' || choice === 'wasm') && 'isa' in s.wasm) return { method: 'fused-wasm', make: (l) => createKernel(l, 'wasm') };
  if (choice === 'auto') return null;
  const why = choice === 'wasm' ? ('error' in s.wasm ? s.wasm.error : '') : 'error' in s.native ? s.native.error : 'this CPU has no fused multiply-add (AVX2+FMA or AVX-512)';
  throw new Error(`PREDICT_KERNEL=${choice}: ${why}`);
}

/**
 * The number of member blocks of a merged network: the largest E <= 8 dividing every hidden width
 * whose hidden-to-hidden kernels are zero off their E diagonal blocks (E = 1 with fewer than two
 * hidden layers: nothing is wasted then).
 */
export function memberBlocks(spec: NetworkSpec, weights: WeightArrays): number {
  const { hidden } = spec;
  if (hidden.length < 2) return 1;
  for (let E = MAX_BLOCKS; E > 1; E--) {
    if (hidden.some((h) => h % E !== 0)) continue;
    let blocked = true;
    for (let l = 1; l < hidden.length && blocked; l++) {
      const [rows, cols] = [hidden[l - 1], hidden[l]];
      const [br, bc] = [rows / E, cols / E];
      const W = weights[2 * l];
      for (let r = 0; r < rows && blocked; r++) {
        const e = Math.floor(r / br);
        for (let c = 0; c < cols; c++) {
          if (Math.floor(c / bc) !== e && W[r * cols + c] !== 0) {
            blocked = false;
            break;
          }
        }
      }
    }
    if (blocked) return E;
  }
  return 1;
}

/** Rows r0..r1 and columns c0..c1 of a row-major matrix with `cols` columns. */
function block(W: Float32Array, cols: number, r0: number, r1: number, c0: number, c1: number): Float32Array {
  const out = new Float32Array((r1 - r0) * (c1 - c0));
  for (let r = r0; r < r1; r++) out.set(W.subarray(r * cols + c0, r * cols + c1), (r - r0) * (c1 - c0));
  return out;
}

/** The kernels' layers: one Dense stack per member block, and the skip as a single bias-free layer. */
function packedLayers(spec: NetworkSpec, weights: WeightArrays): { stacks: KernelLayer[][]; skip: KernelLayer[] | null } {
  const E = memberBlocks(spec, weights);
  const sizes = [spec.inputs, ...spec.hidden, spec.outputs];
  const layers = spec.hidden.length + 1;
  const act = [{ kind: spec.activation }];
  const stacks: KernelLayer[][] = [];
  for (let e = 0; e < E; e++) {
    const stack: KernelLayer[] = [];
    for (let l = 0; l < layers; l++) {
      const [rows, cols] = [sizes[l], sizes[l + 1]];
      // The input and the output are shared by the blocks; hidden units are split into E blocks.
      const [r0, r1] = l === 0 ? [0, rows] : [(e * rows) / E, ((e + 1) * rows) / E];
      const [c0, c1] = l + 1 === layers ? [0, cols] : [(e * cols) / E, ((e + 1) * cols) / E];
      const W = E === 1 ? weights[2 * l] : block(weights[2 * l], cols, r0, r1, c0, c1);
      const last = l + 1 === layers;
      const b = last && e > 0 ? null : weights[2 * l + 1].subarray(c0, c1);
      stack.push(denseKernelLayer(r1 - r0, c1 - c0, W, b, last ? [] : act));
    }
    stacks.push(stack);
  }
  const skip = spec.linearSkip ? [denseKernelLayer(spec.inputs, spec.outputs, weights[2 * layers], null)] : null;
  return { stacks, skip };
}

export class FusedNetwork {
  private kernels: FusedKernel[] = [];
  private ids: unknown[] = [];
  /** Whether the first call's check against tfjs has run and passed. */
  private checked = false;
  /** Why the kernels stood down (the caller then uses tfjs). */
  failed: string | undefined;

  private constructor(
    private readonly mlp: Mlp,
    private readonly maker: { method: FusedMethod; make: (layers: KernelLayer[]) => FusedKernel },
    private readonly reference: (x: tf.Tensor2D) => tf.Tensor2D,
  ) {
    this.pack();
  }

  /**
   * Kernels for `mlp` under `choice` (kernelChoiceFromEnv), or null when there is none to use:
   * silently for 'tfjs' and for 'auto' with no kernel built; with one warning when a named kernel
   * cannot be used or the kernels fail to pack. The network then estimates through tfjs ops.
   * `reference`: the tfjs pass (standardised rows in) the first call is checked against.
   */
  static create(mlp: Mlp, choice: KernelChoice, reference: (x: tf.Tensor2D) => tf.Tensor2D = (x) => mlp.apply(x)): FusedNetwork | null {
    try {
      const maker = kernelMaker(choice);
      return maker ? new FusedNetwork(mlp, maker, reference) : null;
    } catch (e) {
      warnOnce(e instanceof Error ? e.message : String(e));
      return null;
    }
  }

  get method(): FusedMethod {
    return this.maker.method;
  }

  /** Member blocks the Dense stack runs as (1 unless the network is a merged ensemble). */
  blocks = 1;

  /**
   * The network's raw outputs (n x outputs, before the output scale) for standardised rows x, or null
   * once the kernels have stood down after a check against tfjs (the caller then uses tfjs ops).
   */
  async forward(x: Float32Array, n: number): Promise<Float32Array | null> {
    if (this.failed) return null;
    const now = this.mlp.variables.map((v) => v.dataId);
    if (now.some((id, i) => id !== this.ids[i])) {
      // A variable was reassigned (tf.Variable.assign swaps its data): pack the current weights.
      this.checked = false;
      try {
        this.pack();
      } catch (e) {
        this.failed = `the ${this.method} kernel could not pack an amortised network (${e instanceof Error ? e.message : String(e)})`;
        warnOnce(this.failed);
        this.dispose();
        return null;
      }
    }
    const k = this.mlp.spec.outputs;
    if (!this.checked && n > 0) {
      const m = Math.min(n, SELF_CHECK_ROWS);
      const head = x.subarray(0, m * this.mlp.spec.inputs);
      const t = tf.tidy(() => this.reference(tf.tensor2d(head, [m, this.mlp.spec.inputs])));
      let ref: Float32Array;
      try {
        ref = (await t.data()) as Float32Array;
      } finally {
        t.dispose();
      }
      if (this.failed) return null;
      const got = this.run(head, m);
      // The same check, and tolerance, as a model's predict.
      const worst = selfCheckGap(got, ref);
      if (worst !== undefined) {
        this.failed = `the ${this.method} kernel differs from tfjs by ${worst.toExponential(2)} on an amortised network's first ${m} rows`;
        warnOnce(this.failed);
        this.dispose();
        return null;
      }
      this.checked = true;
    }
    const y = this.run(x, n);
    if (y.length !== n * k) throw new Error('the kernels returned the wrong number of outputs');
    return y;
  }

  dispose(): void {
    for (const kernel of this.kernels) kernel.dispose();
    this.kernels = [];
  }

  /** The kernels' outputs, summed (one float32 rounding per sum, as tfjs's add). */
  private run(x: Float32Array, n: number): Float32Array {
    const k = this.mlp.spec.outputs;
    const y = new Float32Array(n * k);
    if (this.kernels.length === 0) throw new Error('the kernels were disposed');
    this.kernels[0].forward(x, n, y);
    if (this.kernels.length > 1) {
      const part = new Float32Array(n * k);
      for (let i = 1; i < this.kernels.length; i++) {
        this.kernels[i].forward(x, n, part);
        for (let j = 0; j < y.length; j++) y[j] += part[j];
      }
    }
    return y;
  }

  /** Packs the variables' current weights (synchronously: dataSync). */
  private pack(): void {
    const weights = this.mlp.variables.map((v) => v.dataSync() as Float32Array);
    const { stacks, skip } = packedLayers(this.mlp.spec, weights);
    this.blocks = stacks.length;
    const made: FusedKernel[] = [];
    try {
      for (const layers of [...stacks, ...(skip ? [skip] : [])]) made.push(this.maker.make(layers));
    } catch (e) {
      for (const kernel of made) kernel.dispose();
      throw e;
    }
    this.dispose();
    this.kernels = made;
    this.ids = this.mlp.variables.map((v) => v.dataId);
  }
}
