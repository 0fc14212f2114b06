/**
 * `Model` (explainers/types.ts) over a tfjs LayersModel or GraphModel: flat Float32 rows in and out,
 * batched in large chunks (tfjs's default predict batch of 32 is 20-200x slower), no leaked tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { ExplainerInputError, type LogitJacobian, type MaskedRowsEvaluator, type Model, type Rows } from '../explainers/types.js';
import { breakpointSupport, pathBreakpointsMany } from './breakpoints.js';
import { denseForward } from './denseForward.js';
import { FusedPredict, kernelChoiceFromEnv, maskingChoiceFromEnv, type KernelChoice, type MaskingChoice } from './fusedKernel.js';
import { denseInputGradients, denseLogitJacobian, denseOnly, gradLogitJacobian, outputHead } from './gradients.js';
import { installWasmFixes } from './wasmFixes.js';
import { compileChain, planOf, runChain, type Chain, type Plan } from './plan.js';
import { compileGraph, disposeGraph, findLayer, graphIsOurs, runGraph, type LayerGraph, type LayerInfo } from './graph.js';
import { graphLayerActivations, graphLayerGradients } from './layerAccess.js';
import { backendError, backendFailure } from './backendHealth.js';

export interface TfjsModelOptions {
  /** Rows per predict call into tfjs (default: up to 8192, fewer for models with wide layers). */
  chunkSize?: number;
  /** Rows per gradient call (default: half of chunkSize: the backward pass keeps activations). */
  gradientChunkSize?: number;
  /** Per-row input shape for graph models whose Placeholder does not declare one. */
  inputShape?: number[];
  /** Use the hand-written backward pass when the model allows it (default true). */
  fastGradients?: boolean;
  /** Predict Dense/activation stacks through the lean forward pass (default true; see denseForward). */
  leanPredict?: boolean;
  /**
   * Predict Dense/activation stacks through the fused kernel (fusedKernel.ts) rather than tfjs ops:
   * 'auto' (default, or env PREDICT_KERNEL) the native addon, else wasm; 'native-fma' its faster
   * fused multiply-add build (last bits differ from tfjs); 'tfjs' never. Needs leanPredict.
   */
  kernel?: KernelChoice;
  /**
   * Kernel SHAP's masked rows on the fused kernel (Model.maskedRows): 'first-layer' (default, or env
   * KERNEL_SHAP_MASKING) sums the first layer from the changed columns; 'rows' builds each row in the
   * kernel (predict's bits); 'off' leaves them to the explainer.
   */
  masking?: MaskingChoice;
}

type Breakpoints = (from: Float32Array, to: Float32Array) => Promise<{ alphas: number[]; affineBetween: boolean }>;

export class TfjsModel implements Model {
  readonly nFeatures: number;
  /**
   * Present only for piecewise linear networks (see Model.pathBreakpoints). `declare` keeps the
   * property off other instances entirely, so `'pathBreakpoints' in model` is false as well.
   */
  declare readonly pathBreakpoints?: Breakpoints;
  /** Present when the whole model is a plan of known steps (see Model.logitJacobian). */
  declare readonly logitJacobian?: (rows: Rows) => Promise<LogitJacobian>;
  /**
   * How predict runs: a fused kernel (native addon or wasm) or the lean tfjs pass for Dense/activation
   * stacks, else the model itself.
   */
  get predictMethod(): 'fused-native' | 'fused-native-fma' | 'fused-wasm' | 'dense-forward' | 'model' {
    return this.fused && !this.fused.failed ? this.fused.method : this.tfjsMethod;
  }
  private readonly tfjsMethod: 'dense-forward' | 'model';
  private readonly fused: FusedPredict | null;
  private readonly masking: MaskingChoice;
  /**
   * How inputGradients is computed: the hand-written pass (Dense/activation stacks), or tf.grad
   * over unfused ops for other layer chains, and over the model itself for anything else.
   */
  readonly gradientMethod: 'dense-backward' | 'tf.grad';
  private readonly chunkSize: number;
  private gradientChunkSize: number;
  private readonly plan: Plan | null;
  private disposed = false;
  /** Layers models as a graph of unfused ops (graph.ts): gradients of branching nets, layer access. */
  private graph: LayerGraph | null = null;
  /** Take input gradients through the graph: non-chains, and chains with layers the chain steps do not cover. */
  private gradientsByGraph = false;

  private constructor(
    readonly model: tf.LayersModel | tf.GraphModel,
    readonly inputShape: number[],
    readonly nOutputs: number,
    private readonly chain: Chain | null,
    options: TfjsModelOptions,
  ) {
    const plan = chain ? planOf(chain) : null;
    this.plan = plan;
    this.nFeatures = inputShape.reduce((a, b) => a * b, 1);
    // Large chunks amortise per-call overhead (DESIGN: >= 1k rows), but a conv layer's activations
    // are many values per row: keep one chunk's widest layer around ACTIVATION_BUDGET values.
    const fit = Math.floor(ACTIVATION_BUDGET / widestLayer(model, this.nFeatures));
    this.chunkSize = Math.max(1, options.chunkSize ?? Math.min(8192, Math.max(64, fit)));
    this.gradientChunkSize = Math.max(1, options.gradientChunkSize ?? Math.ceil(this.chunkSize / 2));
    const fast = plan !== null && options.fastGradients !== false && denseOnly(plan);
    this.gradientMethod = fast ? 'dense-backward' : 'tf.grad';
    this.tfjsMethod = plan !== null && options.leanPredict !== false && denseOnly(plan) ? 'dense-forward' : 'model';
    this.fused = plan && this.tfjsMethod === 'dense-forward' ? FusedPredict.create(plan, options.kernel ?? kernelChoiceFromEnv()) : null;
    this.masking = options.masking ?? maskingChoiceFromEnv();
    if (plan) this.logitJacobian = (rows) => this.planJacobian(plan, fast, rows);
    const support = plan ? breakpointSupport(plan) : null;
    if (plan && support) {
      // Requests made in the same tick (an explainer asking for every path at once) are walked
      // together: one tf call per layer for all of them. Groups stay within an activation budget.
      const group = Math.max(1, Math.floor(ACTIVATION_BUDGET / 256 / widestLayer(model, this.nFeatures)));
      const queue: { from: Float32Array; to: Float32Array; resolve: (v: { alphas: number[]; affineBetween: boolean }) => void; reject: (e: unknown) => void }[] = [];
      const flush = async () => {
        const batch = queue.splice(0, queue.length);
        for (let s = 0; s < batch.length; s += group) {
          const part = batch.slice(s, s + group);
          try {
            this.checkAlive();
            const alphas = await pathBreakpointsMany(plan, part);
            part.forEach((p, i) => p.resolve({ alphas: alphas[i], affineBetween: support.affineBetween }));
          } catch (e) {
            part.forEach((p) => p.reject(e));
          }
        }
      };
      this.pathBreakpoints = (from, to) =>
        new Promise((resolve, reject) => {
          this.checkAlive();
          this.checkPoint(from, 'from');
          this.checkPoint(to, 'to');
          queue.push({ from, to, resolve, reject });
          if (queue.length === 1) queueMicrotask(() => void flush());
        });
    }
  }

  /** Wraps a loaded model; probes the output size with one row when the model does not declare it. */
  static async create(model: tf.LayersModel | tf.GraphModel, options: TfjsModelOptions = {}): Promise<TfjsModel> {
    installWasmFixes();
    if (model.inputs.length !== 1 || model.outputs.length !== 1)
      throw new Error(`the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; one of each is supported`);
    const inputShape = resolveInputShape(model.inputs[0].shape, options.inputShape);
    const chain = model instanceof tf.LayersModel ? compileChain(model) : null;
    const declared = (model.outputs[0].shape ?? []).slice(1);
    let nOutputs = declared.length > 0 && declared.every((s) => s != null && s > 0) ? prod(declared as number[]) : 0;
    if (nOutputs === 0) {
      const y = tf.tidy(() => runModel(model, inputShape, tf.zeros([1, prod(inputShape)])));
      nOutputs = y.size;
      y.dispose();
    }
    const created = new TfjsModel(model, inputShape, nOutputs, chain, options);
    if (model instanceof tf.LayersModel) created.graph = compileGraph(model);
    const g = created.graph;
    created.gradientsByGraph = g !== null && (!chain || (chain.parts.some((p) => 'layer' in p) && graphIsOurs(g)));
    // A backward pass keeps every layer's activations: size gradient chunks by their sum, since
    // running out of wasm memory aborts the whole module (MobileNetV2 at 224x224: ~4 rows a chunk).
    if (g && options.gradientChunkSize === undefined) {
      const kept = g.nodes.reduce((s, n) => s + n.shape.reduce((a, b) => a * b, 1), 0);
      created.gradientChunkSize = Math.max(1, Math.min(created.gradientChunkSize, Math.floor(GRADIENT_BUDGET / kept)));
    }
    return created;
  }

  /**
   * Kernel SHAP's masked rows against `background` through the fused kernel (see Model.maskedRows);
   * null without the kernel, once it has stood down (its check against tfjs, run here on the
   * background rows if no predict call has run it yet, failed), and with masking 'off'. So whether
   * they are used never depends on what the model was asked before.
   */
  async maskedRows(background: Rows): Promise<MaskedRowsEvaluator | null> {
    if (!this.fused || this.fused.failed || this.masking === 'off') return null;
    this.checkAlive();
    this.checkRows(background);
    if (!this.fused.checked && background.n > 0) await this.predict(background);
    return this.fused.failed ? null : this.fused.maskedRows(background, this.masking);
  }

  async predict(rows: Rows): Promise<Float32Array> {
    this.checkRows(rows);
    if (this.fused && !this.fused.failed) {
      this.checkAlive();
      const y = await this.fused.predict(rows, this.nOutputs, (r) => this.tfjsPredict(r));
      if (y) return y;
    }
    return this.tfjsPredict(rows);
  }

  /** Predict through tfjs ops: the lean pass or the model itself, in chunks. */
  private async tfjsPredict(rows: Rows): Promise<Float32Array> {
    const k = this.nOutputs;
    const out = new Float32Array(rows.n * k);
    for (let start = 0; start < rows.n; start += this.chunkSize) {
      const end = Math.min(rows.n, start + this.chunkSize);
      const y = this.guard(() => tf.tidy(() => this.forward(this.chunkTensor(rows, start, end))));
      try {
        // Read outside tidy: tidy would walk a returned typed array element by element.
        out.set(await y.data(), start * k);
      } finally {
        y.dispose();
      }
    }
    return out;
  }

  async inputGradients(rows: Rows, output: number): Promise<Float32Array> {
    this.checkRows(rows);
    if (!Number.isInteger(output) || output < 0 || output >= this.nOutputs)
      throw new ExplainerInputError('BAD_OUTPUT', `output index ${output} is out of range: the model has ${this.nOutputs} output(s)`);
    const d = this.nFeatures;
    const out = new Float32Array(rows.n * d);
    for (let start = 0; start < rows.n; start += this.gradientChunkSize) {
      const end = Math.min(rows.n, start + this.gradientChunkSize);
      const g = this.guard(() => tf.tidy(() => {
        const x = this.chunkTensor(rows, start, end);
        if (this.gradientMethod === 'dense-backward') {
          this.checkAlive();
          return denseInputGradients(this.plan as Plan, x, output);
        }
        // Rows are independent, so the gradient of the column sum is every row's own gradient.
        const f = (t: tf.Tensor) => tf.sum(tf.slice(this.gradForward(t), [0, output], [-1, 1]));
        try {
          return tf.grad(f)(x);
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          if (!/not registered for backend/.test(msg)) throw e;
          throw new Error(`input gradients of this model need a kernel the ${tf.getBackend()} backend lacks (${msg}); the cpu backend or tfjs-node has it`);
        }
      }));
      try {
        out.set(await g.data(), start * d);
      } finally {
        g.dispose();
      }
    }
    return out;
  }

  /** The layers whose activations and gradients layerActivations / layerGradients reach (empty for graph models). */
  get layers(): LayerInfo[] {
    return (this.graph?.nodes ?? []).map(({ name, className, shape }) => ({ name, className, shape: [...shape] }));
  }

  /** Activations of `layer` for every row: n x (product of the layer's shape). */
  async layerActivations(rows: Rows, layer: string): Promise<Float32Array> {
    this.checkRows(rows);
    const { graph, node, size } = this.layerNode(layer);
    return this.chunked(rows, size, this.chunkSize, (x) => graphLayerActivations(graph, this.inputShape, x, node));
  }

  /**
   * Activations of `layer` and d output / d activations at them, each n x size. With `activations`
   * (n x size) the layer's output is replaced by them: gradients along a path in the layer's space.
   */
  async layerGradients(
    rows: Rows,
    layer: string,
    output: number,
    activations?: Float32Array,
  ): Promise<{ shape: number[]; activations: Float32Array; gradients: Float32Array }> {
    this.checkRows(rows);
    this.checkOutput(output);
    const { graph, node, size } = this.layerNode(layer);
    if (activations && activations.length !== rows.n * size)
      throw new ExplainerInputError('BAD_SHAPE', `activations hold ${activations.length} values, expected ${rows.n} x ${size} for layer "${layer}"`);
    const acts = new Float32Array(rows.n * size);
    const grads = await this.chunked(rows, size, this.gradientChunkSize, (x, start, end) => {
      const given = activations ? tf.tensor2d(activations.subarray(start * size, end * size), [end - start, size]) : undefined;
      const r = this.kernelErrors(() => graphLayerGradients(graph, this.inputShape, x, node, output, given));
      return tf.concat([r.activations, r.gradients], 1);
    }, (block, start, m) => {
      for (let i = 0; i < m; i++) acts.set(block.subarray(i * 2 * size, i * 2 * size + size), (start + i) * size);
      const g = new Float32Array(m * size);
      for (let i = 0; i < m; i++) g.set(block.subarray(i * 2 * size + size, (i + 1) * 2 * size), i * size);
      return g;
    });
    return { shape: [...graph.nodes[node].shape], activations: acts, gradients: grads };
  }

  private layerNode(layer: string): { graph: LayerGraph; node: number; size: number } {
    this.checkAlive();
    const graph = this.graph;
    if (!graph) throw new ExplainerInputError('METHOD_NOT_SUPPORTED', 'layer access needs a tfjs layers model; this model is a graph model or has shared layers');
    const node = findLayer(graph, layer);
    if (node < 0)
      throw new ExplainerInputError('UNKNOWN_LAYER', `the model has no layer "${layer}"; its layers are: ${graph.nodes.map((n) => n.name).join(', ')}`, {
        layers: graph.nodes.map((n) => n.name),
      });
    return { graph, node, size: graph.nodes[node].shape.reduce((a, b) => a * b, 1) };
  }

  /** Runs `f` on row chunks and gathers `width` values per row (via `unpack` when f returns more). */
  private async chunked(
    rows: Rows,
    width: number,
    chunk: number,
    f: (x: tf.Tensor2D, start: number, end: number) => tf.Tensor,
    unpack?: (block: Float32Array, start: number, m: number) => Float32Array,
  ): Promise<Float32Array> {
    const out = new Float32Array(rows.n * width);
    for (let start = 0; start < rows.n; start += chunk) {
      const end = Math.min(rows.n, start + chunk);
      const t = this.guard(() => tf.tidy(() => f(this.chunkTensor(rows, start, end), start, end)));
      try {
        const data = (await t.data()) as Float32Array;
        out.set(unpack ? unpack(data, start, end - start) : data, start * width);
      } finally {
        t.dispose();
      }
    }
    return out;
  }

  /** Runs f; a wasm abort becomes a BackendFailure (backendHealth.ts), and after one nothing runs. */
  private guard<T>(f: () => T): T {
    const failed = backendFailure();
    if (failed) throw failed;
    try {
      return f();
    } catch (e) {
      throw backendError(e);
    }
  }

  private checkOutput(output: number): void {
    if (!Number.isInteger(output) || output < 0 || output >= this.nOutputs)
      throw new ExplainerInputError('BAD_OUTPUT', `output index ${output} is out of range: the model has ${this.nOutputs} output(s)`);
  }

  /** A kernel the backend lacks becomes an error that says so (the service maps it to a clear 4xx/501, not a crash). */
  private kernelErrors<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (!/not registered for backend/.test(msg)) throw e;
      throw new ExplainerInputError('METHOD_NOT_SUPPORTED', `this model's gradients need a kernel the ${tf.getBackend()} backend lacks (${msg})`);
    }
  }

  /** Frees the model's weights. The instance is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.fused?.dispose();
    this.model.dispose();
    if (this.graph) disposeGraph(this.graph);
  }

  private forward(x: tf.Tensor): tf.Tensor2D {
    this.checkAlive();
    if (this.tfjsMethod === 'dense-forward') return denseForward(this.plan as Plan, x as tf.Tensor2D);
    return runModel(this.model, this.inputShape, x);
  }

  /** Logits and their Jacobian for every row, in chunks whose stacked backward pass fits the gradient chunk. */
  private async planJacobian(plan: Plan, dense: boolean, rows: Rows): Promise<LogitJacobian> {
    this.checkRows(rows);
    const d = this.nFeatures;
    const k = this.nOutputs;
    const logits = new Float32Array(rows.n * k);
    const jacobian = new Float32Array(rows.n * k * d);
    const chunk = Math.max(1, Math.floor(this.gradientChunkSize / k));
    for (let start = 0; start < rows.n; start += chunk) {
      const end = Math.min(rows.n, start + chunk);
      const r = tf.tidy(() => {
        this.checkAlive();
        const x = this.chunkTensor(rows, start, end);
        const { logits: z, jacobian: jz } = dense ? denseLogitJacobian(plan, x) : gradLogitJacobian(plan, x);
        return [z, jz];
      });
      try {
        logits.set(await r[0].data(), start * k);
        jacobian.set(await r[1].data(), start * k * d);
      } finally {
        tf.dispose(r);
      }
    }
    return { activation: outputHead(plan).head, logits, jacobian };
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error('the model was disposed');
  }

  /** Forward for tf.grad: a chain's unfused ops when the model is a chain (see runChain). */
  private gradForward(x: tf.Tensor): tf.Tensor {
    if (this.gradientsByGraph && this.graph) {
      this.checkAlive();
      const m = x.shape[0];
      return tf.reshape(runGraph(this.graph, tf.reshape(x, [m, ...this.inputShape])).y, [m, -1]);
    }
    if (!this.chain) return this.forward(x);
    this.checkAlive();
    const m = x.shape[0];
    return tf.reshape(runChain(this.chain, tf.reshape(x, [m, ...this.inputShape])), [m, -1]);
  }

  private chunkTensor(rows: Rows, start: number, end: number): tf.Tensor2D {
    const d = this.nFeatures;
    return tf.tensor2d(rows.data.subarray(start * d, end * d), [end - start, d]);
  }

  private checkRows(rows: Rows): void {
    if (rows.d !== this.nFeatures)
      throw new ExplainerInputError('BAD_SHAPE', `rows have ${rows.d} values each but the model takes ${this.nFeatures}`);
    if (rows.data.length !== rows.n * rows.d)
      throw new ExplainerInputError('BAD_SHAPE', `rows hold ${rows.data.length} values, expected ${rows.n} x ${rows.d}`);
  }

  private checkPoint(p: Float32Array, name: string): void {
    if (p.length !== this.nFeatures)
      throw new ExplainerInputError('BAD_SHAPE', `"${name}" has ${p.length} values but the model takes ${this.nFeatures}`);
  }
}

/** Values (float32) of all layers' activations one gradient chunk may keep: 2^25, i.e. 128 MB. */
const GRADIENT_BUDGET = 2 ** 25;

/** Values (float32) one chunk's widest layer may hold: 2^25, i.e. 128 MB. */
const ACTIVATION_BUDGET = 2 ** 25;

/** Values per row of the model's widest layer output (graph models: a guess from the input size). */
function widestLayer(model: tf.LayersModel | tf.GraphModel, nFeatures: number): number {
  let widest = nFeatures;
  if (model instanceof tf.GraphModel) return nFeatures * 8;
  for (const layer of model.layers) {
    try {
      const shape = (layer.outputShape as unknown[]).slice(1);
      if (shape.every((s) => s === null || typeof s === 'number'))
        widest = Math.max(widest, (shape as (number | null)[]).reduce<number>((a, b) => a * (b ?? 1), 1));
    } catch {
      // a layer used in several places has no single output shape: the others still bound the chunk
    }
  }
  return widest;
}

/** Flat rows [m, d] -> model output as [m, outputs], float32. Call inside tidy. */
function runModel(model: tf.LayersModel | tf.GraphModel, inputShape: number[], x: tf.Tensor): tf.Tensor2D {
  const m = x.shape[0];
  const want = model.inputs[0].dtype ?? 'float32';
  const input = tf.reshape(want === 'float32' ? x : tf.cast(x, want), [m, ...inputShape]);
  // execute/apply run the whole batch at once; predict() would split it into batches of 32.
  const y =
    model instanceof tf.GraphModel
      ? (model.execute(input) as tf.Tensor)
      : (model.apply(input, { training: false }) as tf.Tensor);
  return tf.reshape(y.dtype === 'float32' ? y : tf.cast(y, 'float32'), [m, -1]);
}

function prod(a: number[]): number {
  return a.reduce((x, y) => x * y, 1);
}

/** The model's per-row input shape; `given` fills in what the model leaves unknown. */
function resolveInputShape(declared: (number | null)[] | undefined, given?: number[]): number[] {
  const own = (declared ?? []).slice(1);
  const known = own.length > 0 && own.every((s) => s != null && s > 0);
  if (known) {
    if (given && prod(given) !== prod(own as number[]))
      throw new Error(`inputShape [${given}] does not match the model's input shape [${own}]`);
    return own as number[];
  }
  if (given) return given;
  throw new Error(`the model's input shape [${declared ?? '?'}] is not fully known; declare "inputShape" in metadata.json`);
}
