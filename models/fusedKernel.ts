/**
 * Predict for Dense/activation stacks through our own fused kernel (native/src/kernel.inc): blocks
 * of 64 rows go through every layer while they sit in cache, each layer's outputs accumulated in
 * registers from the weights with the bias and element-wise activations applied before they are
 * stored; no full-size temporaries, no per-op dispatch. Two builds of the same source:
 *
 * - the Node addon (native/src/addon.cc) for AVX-512, AVX2 or SSE2, picked at run time from the
 *   CPU; built by `npm install` / `npm ci` (native/build.mjs) where a C++ compiler and Node's
 *   headers are present. About 2.5x tfjs-wasm predict and 1.6-2x numpy on one thread with AVX-512
 *   (README); 'native-fma' (opt-in) fuses the multiply-adds for another 1.4x;
 * - a WebAssembly SIMD128 module committed as native/fused_mlp.wasm (native/build-wasm.sh), used
 *   when the addon is not there: 4 lanes without fused multiply-add bound it to about tfjs-wasm's
 *   matrix-product speed, so it is no faster than tfjs ops on mid-sized layers (see README).
 *
 * The default builds form each Dense output as XNNPACK (tfjs-wasm's matrix products) does: bias,
 * then the inputs' products in order, each multiply and add rounded: the same float32 bits as tfjs.
 * The activations are ours (one vectorised exp), within a few ulps of tfjs's. 'native-fma' rounds
 * once per multiply-add: as accurate, but not the same bits. The first call on a model checks the
 * kernel against tfjs on up to 64 of its rows and stands down for good (with a warning) on a gross
 * disagreement: the model then predicts through tfjs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tf from '@tensorflow/tfjs';
import type { MaskedRowsEvaluator, MaskedRowsSpec, Rows } from '../explainers/types.js';
import type { Act, Plan } from './plan.js';

/**
 * Which forward pass Dense stacks use: auto (the addon, else wasm), one kernel, the addon's fused
 * multiply-add build (native-fma: faster, last bits differ from tfjs), or tfjs ops only.
 */
export type KernelChoice = 'auto' | 'native' | 'native-fma' | 'wasm' | 'tfjs';

export const KERNEL_CHOICES: readonly KernelChoice[] = ['auto', 'native', 'native-fma', 'wasm', 'tfjs'];

type Kind = 'native' | 'native-fma' | 'wasm';

/** One Dense layer and the activations after it, as the kernel takes it (codes: native/src/net.h). */
export interface KernelLayer {
  in: number;
  out: number;
  W: Float32Array;
  b: Float32Array | null;
  acts: Int32Array;
  params: Float32Array;
}

const ACT = { linear: 0, relu: 1, leaky: 2, elu: 3, sigmoid: 4, tanh: 5, softmax: 6 } as const;
const MAX_ACTS = 4;

/** An activation's parameter for the kernel: relu's cap (-1: none), leaky's slope. */
const actParam = (act: Act): number => (act.kind === 'relu' ? (act.cap ?? -1) : act.kind === 'leaky' ? act.alpha : 0);

/** A Dense layer from plain arrays (W row-major [inputs, outputs], b or null) and the activations after it. */
export function denseKernelLayer(inputs: number, outputs: number, W: Float32Array, b: Float32Array | null, acts: Act[] = []): KernelLayer {
  return { in: inputs, out: outputs, W, b, acts: Int32Array.from(acts, (a) => ACT[a.kind]), params: Float32Array.from(acts, actParam) };
}

/**
 * The plan's Dense layers with their activations, and the tensors the weights came from; null when
 * the plan has other steps, an activation before its first Dense, or anything after a softmax.
 */
export function kernelLayers(plan: Plan): { layers: KernelLayer[]; sources: tf.Tensor[] } | null {
  const layers: KernelLayer[] = [];
  const sources: tf.Tensor[] = [];
  const acts: number[][] = [];
  const params: number[][] = [];
  for (const step of plan.steps) {
    if (step.op === 'reshape') continue; // flat rows keep their order
    if (step.op === 'dense') {
      const [inputs, outputs] = step.kernel.shape;
      if (layers.length > 0 && layers[layers.length - 1].out !== inputs) return null;
      layers.push({ in: inputs, out: outputs, W: step.kernel.dataSync() as Float32Array, b: step.bias ? (step.bias.dataSync() as Float32Array) : null, acts: new Int32Array(0), params: new Float32Array(0) });
      sources.push(step.kernel, ...(step.bias ? [step.bias] : []));
      acts.push([]);
      params.push([]);
      continue;
    }
    if (step.op !== 'act' || layers.length === 0) return null;
    const a = acts[acts.length - 1];
    const p = params[params.length - 1];
    if (a[a.length - 1] === ACT.softmax || a.length === MAX_ACTS) return null;
    const act = step.act;
    a.push(ACT[act.kind]);
    p.push(actParam(act));
  }
  if (layers.length === 0) return null;
  layers.forEach((l, i) => {
    l.acts = Int32Array.from(acts[i]);
    l.params = Float32Array.from(params[i]);
  });
  return { layers, sources };
}

/** The weight tensors kernelLayers reads, in its order, without reading them. */
function weightTensors(plan: Plan): tf.Tensor[] {
  return plan.steps.flatMap((s) => (s.op === 'dense' ? [s.kernel, ...(s.bias ? [s.bias] : [])] : []));
}

/** A packed network: y [n][k] = net(x [n][d]), synchronously. */
export interface FusedKernel {
  readonly kind: 'native' | 'wasm';
  /** Build it runs: avx512, avx2, sse2, generic, avx512-fma, avx2-fma (native), simd128 (wasm). */
  readonly isa: string;
  forward(x: Float32Array, n: number, y: Float32Array): void;
  /** The first layer's padded width: a row of preact's output. */
  readonly firstPad: number;
  /** The first layer's pre-activations (bias included, no activation) of x [n][d]: n x firstPad. */
  preact(x: Float32Array, n: number): Float32Array;
  /**
   * y[at + i] = net(masked row i of `spec` from coalition k0, row row0), i < n (MaskedRowsSpec); bg
   * the background rows the spec's rows index. With first (hx: preact of x, hb: preact of bg) the
   * first layer is summed from the changed columns only; without it the rows are built and evaluated
   * as forward does (same bits).
   */
  forwardMasked(spec: MaskedRowsSpec, bg: Float32Array, first: { hx: Float32Array; hb: Float32Array } | null, k0: number, row0: number, n: number, y: Float32Array, at: number): void;
  dispose(): void;
}

interface Addon {
  isa(): string;
  fma(): string;
  create(layers: KernelLayer[], isa?: string): unknown;
  forward(net: unknown, x: Float32Array, n: number, y: Float32Array): void;
  dispose(net: unknown): void;
  firstPad(net: unknown): number;
  preact(net: unknown, x: Float32Array, n: number, h: Float32Array): void;
  maskedForward(
    net: unknown, x: Float32Array, bg: Float32Array, hx: Float32Array | null, hb: Float32Array | null, rows: Int32Array, cols: Int32Array,
    sj: number, sg: number, M: number, cStart: Int32Array, cIdx: Int32Array, small: Int32Array, k0: number, row0: number, n: number, y: Float32Array, at: number,
    pStart: Int32Array | null, pIdx: Int32Array | null,
  ): void;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** `native/<rel>` beside this module's folder, also from a build output one level deeper. */
function nativeFile(rel: string): string | undefined {
  for (const up of ['..', path.join('..', '..')]) {
    const p = path.join(here, up, 'native', rel);
    if (existsSync(p)) return p;
  }
  return undefined;
}

let addon: { ok: Addon } | { error: string } | undefined;

/** The addon, loaded once per thread, or why it is not there. */
function loadAddon(): { ok: Addon } | { error: string } {
  if (addon) return addon;
  // FUSED_KERNEL_ADDON: an addon built elsewhere (or, in tests, a path with none).
  const file = process.env.FUSED_KERNEL_ADDON || nativeFile(path.join('build', 'Release', 'fused_mlp.node'));
  if (!file || !existsSync(file)) return (addon = { error: 'the addon is not built (npm run build:native; it needs g++, make, python3 and Node headers)' });
  try {
    const a = createRequire(import.meta.url)(file) as Addon;
    a.isa(); // a stale build for another Node ABI fails here or at require
    return (addon = { ok: a });
  } catch (e) {
    return (addon = { error: `the addon did not load (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); rebuild it with npm run build:native` });
  }
}

let wasmModule: { ok: WebAssembly.Module } | { error: string } | undefined;

function loadWasm(): { ok: WebAssembly.Module } | { error: string } {
  if (wasmModule) return wasmModule;
  const file = nativeFile('fused_mlp.wasm');
  if (!file) return (wasmModule = { error: 'native/fused_mlp.wasm is missing' });
  try {
    return (wasmModule = { ok: new WebAssembly.Module(readFileSync(file)) });
  } catch (e) {
    return (wasmModule = { error: `native/fused_mlp.wasm did not compile (${e instanceof Error ? e.message : String(e)})` });
  }
}

/**
 * What this process can run: the addon's best default build and its fused multiply-add build ('' when
 * the CPU has none), or why the addon is missing; and the wasm module.
 */
export function kernelStatus(): { native: { isa: string; fma: string } | { error: string }; wasm: { isa: string } | { error: string } } {
  const a = loadAddon();
  const w = loadWasm();
  return { native: 'ok' in a ? { isa: a.ok.isa(), fma: a.ok.fma() } : a, wasm: 'ok' in w ? { isa: 'simd128' } : w };
}

/** One line for logs: what Dense models predict through under `choice` (default: PREDICT_KERNEL). */
export function describeKernels(choice: KernelChoice = kernelChoiceFromEnv()): string {
  const s = kernelStatus();
  if (choice === 'tfjs') return 'Dense models predict through tfjs ops (PREDICT_KERNEL=tfjs)';
  if (choice === 'wasm') return `Dense models predict through the wasm fused kernel (PREDICT_KERNEL=wasm)${'error' in s.wasm ? `, which cannot load: ${s.wasm.error}` : ''}`;
  if ('isa' in s.native) {
    if (choice !== 'native-fma') return `Dense models predict through the native fused kernel (${s.native.isa})`;
    return s.native.fma ? `Dense models predict through the native fused kernel (${s.native.fma})` : 'PREDICT_KERNEL=native-fma: this CPU has no fused multiply-add; Dense models will not load';
  }
  if (choice !== 'auto') return `PREDICT_KERNEL=${choice}: ${s.native.error}; Dense models will not load`;
  if ('isa' in s.wasm) return `Dense models predict through the wasm fused kernel: ${s.native.error}`;
  return `Dense models predict through tfjs: ${s.native.error}; ${s.wasm.error}`;
}

/** Packs `layers` for the native addon (optionally for a lesser instruction set) or the wasm module. */
export function createKernel(layers: KernelLayer[], kind: 'native' | 'wasm', isa?: string): FusedKernel {
  for (const l of layers) {
    if (!(l.in >= 1 && l.out >= 1 && l.W.length === l.in * l.out)) throw new TypeError('W must hold in x out values');
    if (l.b && l.b.length !== l.out) throw new TypeError('b must hold out values');
    if (l.acts.length !== l.params.length) throw new TypeError('acts and params must have the same length');
  }
  if (kind === 'native') {
    const a = loadAddon();
    if (!('ok' in a)) throw new Error(a.error);
    return nativeKernel(a.ok, layers, isa);
  }
  const w = loadWasm();
  if (!('ok' in w)) throw new Error(w.error);
  return wasmKernel(w.ok, layers);
}

function nativeKernel(a: Addon, layers: KernelLayer[], isa?: string): FusedKernel {
  let net: unknown = a.create(layers, isa);
  const live = () => {
    if (net === undefined) throw new Error('the kernel was disposed');
    return net;
  };
  const firstPad = a.firstPad(net);
  return {
    kind: 'native',
    isa: isa ?? a.isa(),
    firstPad,
    forward: (x, n, y) => a.forward(live(), x, n, y),
    preact: (x, n) => {
      const h = new Float32Array(n * firstPad);
      a.preact(live(), x, n, h);
      return h;
    },
    forwardMasked: (m, bg, first, k0, row0, n, y, at) =>
      a.maskedForward(live(), m.x, bg, first?.hx ?? null, first?.hb ?? null, m.rows, m.cols, m.sj, m.sg, m.M, m.cStart, m.cIdx, m.small, k0, row0, n, y, at, m.players?.start ?? null, m.players?.idx ?? null),
    dispose: () => {
      if (net !== undefined) a.dispose(net);
      net = undefined;
    },
  };
}

interface WasmExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  mark(): number;
  release(mark: number): void;
  lastError(): number;
  blockRows(): number;
  maxPad(net: number): number;
  create(nlayers: number, spec: number): number;
  forward(net: number, x: number, n: number, y: number, buf: number): void;
  firstPad(net: number): number;
  preact(net: number, x: number, n: number, h: number): void;
  maskedBufFloats(net: number): number;
  maskedForward(net: number, m: number, k0: number, row0: number, n: number, y: number, buf: number): number;
}

/** Rows staged into wasm memory per call: bounds the module's memory (it never shrinks). */
const WASM_STAGE_BYTES = 4 << 20;

/** A kernel in its own wasm instance, so its memory goes when the kernel is dropped. */
function wasmKernel(mod: WebAssembly.Module, layers: KernelLayer[]): FusedKernel {
  let e: WasmExports | undefined = new WebAssembly.Instance(mod, {}).exports as unknown as WasmExports;
  const ex = e;
  const f32 = (ptr: number, n: number) => new Float32Array(ex.memory.buffer, ptr, n);
  const put = (a: Float32Array | Int32Array) => {
    const p = ex.alloc(a.byteLength);
    if (!p) throw new Error('out of wasm memory');
    (a instanceof Float32Array ? f32(p, a.length) : new Int32Array(ex.memory.buffer, p, a.length)).set(a);
    return p;
  };
  const spec: number[] = [];
  for (const l of layers) spec.push(l.in, l.out, put(l.W), l.b ? put(l.b) : 0, l.acts.length, put(l.acts), put(l.params));
  const net = ex.create(layers.length, put(Int32Array.from(spec)));
  if (!net) {
    const at = ex.lastError();
    const bytes = new Uint8Array(ex.memory.buffer, at, 200);
    throw new Error(`the wasm kernel refused the network: ${new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)))}`);
  }
  const d = layers[0].in;
  const k = layers[layers.length - 1].out;
  const stage = Math.max(ex.blockRows(), Math.floor(WASM_STAGE_BYTES / (4 * (d + k))));
  const bufFloats = 2 * ex.blockRows() * ex.maxPad(net);
  const firstPad = ex.firstPad(net);
  const maskedBuf = ex.maskedBufFloats(net);
  const live = () => {
    if (!e) throw new Error('the kernel was disposed');
    return e;
  };
  /** Runs `body` with its staging allocations released after it. */
  const staged = <T>(body: (w: WasmExports) => T): T => {
    const w = live();
    const m = w.mark();
    try {
      return body(w);
    } finally {
      w.release(m);
    }
  };
  const alloc = (w: WasmExports, bytes: number) => {
    const p = w.alloc(bytes);
    if (!p) throw new Error('out of wasm memory');
    return p;
  };
  return {
    kind: 'wasm',
    isa: 'simd128',
    firstPad,
    preact: (x, n) =>
      staged((w) => {
        const h = new Float32Array(n * firstPad);
        const xp = put(x.subarray(0, n * d));
        const hp = alloc(w, h.length * 4);
        w.preact(net, xp, n, hp);
        h.set(f32(hp, h.length));
        return h;
      }),
    forwardMasked: (m, bg, first, k0, row0, n, y, at) =>
      staged((w) => {
        // The coalitions' lists are staged from k0 on, offsets rebased (the spec's arrays may be much longer).
        const kLast = k0 + Math.floor((row0 + n - 1) / m.rows.length);
        if (!(k0 >= 0 && kLast + 1 < m.cStart.length && kLast < m.small.length)) throw new Error('the wasm kernel refused the masked rows: the rows run past the last coalition');
        const t0 = m.cStart[k0];
        const t1 = m.cStart[kLast + 1];
        const starts = new Int32Array(kLast - k0 + 2);
        for (let k = k0; k <= kLast + 1; k++) starts[k - k0] = m.cStart[k] - t0;
        const fields = new Int32Array(21);
        const pl = m.players;
        fields.set([put(m.x), put(bg), first ? put(first.hx) : 0, first ? put(first.hb) : 0, put(m.rows), put(m.cols), put(starts), put(m.cIdx.subarray(t0, t1)), put(m.small.subarray(k0, kLast + 1))]);
        // The pair sums' scratch (fused::Masked::dsave) with the first-layer sums.
        fields.set([pl ? put(pl.start) : 0, pl ? put(pl.idx) : 0, first ? alloc(w, m.rows.length * firstPad * 4) : 0], 9);
        fields.set([bg.length / d, m.rows.length, m.M, m.sj, m.sg, kLast - k0 + 1, t1 - t0, pl ? pl.start.length - 1 : 0, pl ? pl.idx.length : 0], 12);
        const mp = put(fields);
        const yp = alloc(w, n * k * 4);
        const buf = alloc(w, maskedBuf * 4);
        const bad = w.maskedForward(net, mp, 0, row0, n, yp, buf);
        if (bad) {
          const bytes = new Uint8Array(w.memory.buffer, bad, 200);
          throw new Error(`the wasm kernel refused the masked rows: ${new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)))}`);
        }
        y.set(f32(yp, n * k), at * k);
      }),
    forward: (x, n, y) => {
      const w = e;
      if (!w) throw new Error('the kernel was disposed');
      const m = w.mark();
      try {
        const rows = Math.min(n, stage);
        const buf = w.alloc(bufFloats * 4);
        const xp = w.alloc(rows * d * 4);
        const yp = w.alloc(rows * k * 4);
        if (!buf || !xp || !yp) throw new Error('out of wasm memory');
        for (let s = 0; s < n; s += rows) {
          const r = Math.min(rows, n - s);
          f32(xp, r * d).set(x.subarray(s * d, (s + r) * d));
          w.forward(net, xp, r, yp, buf);
          y.set(f32(yp, r * k), s * k);
        }
      } finally {
        w.release(m);
      }
    },
    dispose: () => {
      e = undefined;
    },
  };
}

/** How Kernel SHAP's masked rows are evaluated on the fused kernel (MaskedRowsEvaluator.mode), or 'off': built by the explainer. */
export type MaskingChoice = 'first-layer' | 'rows' | 'off';

export const MASKING_CHOICES: readonly MaskingChoice[] = ['first-layer', 'rows', 'off'];

/** The choice from KERNEL_SHAP_MASKING (default 'first-layer'), checked. */
export function maskingChoiceFromEnv(env: NodeJS.ProcessEnv = process.env): MaskingChoice {
  const v = (env.KERNEL_SHAP_MASKING ?? '').trim().toLowerCase();
  if (v === '') return 'first-layer';
  if ((MASKING_CHOICES as readonly string[]).includes(v)) return v as MaskingChoice;
  throw new Error(`KERNEL_SHAP_MASKING=${env.KERNEL_SHAP_MASKING}: choose one of ${MASKING_CHOICES.join(', ')}`);
}

/** The choice from PREDICT_KERNEL, checked. */
export function kernelChoiceFromEnv(env: NodeJS.ProcessEnv = process.env): KernelChoice {
  const v = (env.PREDICT_KERNEL ?? '').trim().toLowerCase();
  if (v === '') return 'auto';
  if ((KERNEL_CHOICES as readonly string[]).includes(v)) return v as KernelChoice;
  throw new Error(`PREDICT_KERNEL=${env.PREDICT_KERNEL}: choose one of ${KERNEL_CHOICES.join(', ')}`);
}

/** Largest |kernel - tfjs| the first-call check accepts, times max(1, largest |output|) of the rows checked. */
const SELF_CHECK_TOLERANCE = 1e-4;
/** Rows a kernel's first call is checked against tfjs on. */
export const SELF_CHECK_ROWS = 64;

/**
 * The first-call check: the largest |kernel - tfjs| over the outputs, when it is above the tolerance
 * (times max(1, largest |tfjs output|)); undefined when they agree. NaN where tfjs has NaN is
 * agreement; NaN on one side only is not.
 */
export function selfCheckGap(got: ArrayLike<number>, ref: ArrayLike<number>): number | undefined {
  let scale = 1;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    const diff = Math.abs(got[i] - ref[i]);
    worst = Math.max(worst, Number.isNaN(got[i]) && Number.isNaN(ref[i]) ? 0 : Number.isNaN(diff) ? Infinity : diff);
  }
  return worst > SELF_CHECK_TOLERANCE * scale ? worst : undefined;
}

/**
 * The fused pass for one model: packs the weights (again when a weight tensor was reassigned),
 * checks itself against tfjs on the first call, and stands down when that check fails.
 */
export class FusedPredict {
  private kernel: FusedKernel;
  private ids: unknown[];
  /** Whether the first call's check against tfjs has run (and passed, unless `failed`). */
  checked = false;
  /** Why the kernel stood down; the model then predicts through tfjs. */
  failed: string | undefined;

  private constructor(
    private readonly plan: Plan,
    private readonly kind: Kind,
    built: { layers: KernelLayer[]; sources: tf.Tensor[] },
  ) {
    this.kernel = this.make(built.layers);
    this.ids = built.sources.map((t) => t.dataId);
  }

  /**
   * The kernel for a Dense-only plan: 'auto' takes the addon, else the wasm module, else null;
   * 'native' and 'wasm' insist (an Error says why they cannot be used); 'tfjs' gives null.
   */
  static create(plan: Plan, choice: KernelChoice): FusedPredict | null {
    if (choice === 'tfjs') return null;
    const built = kernelLayers(plan);
    if (!built) return null;
    const kinds: Kind[] = choice === 'auto' ? ['native', 'wasm'] : [choice];
    const why: string[] = [];
    for (const kind of kinds) {
      const status = kind === 'wasm' ? loadWasm() : loadAddon();
      if ('error' in status) {
        why.push(status.error);
        continue;
      }
      if (kind === 'native-fma' && 'ok' in status && !(status.ok as Addon).fma()) {
        why.push('this CPU has no fused multiply-add (AVX2+FMA or AVX-512)');
        continue;
      }
      return new FusedPredict(plan, kind, built);
    }
    if (choice === 'auto') return null;
    throw new Error(`PREDICT_KERNEL=${choice}: ${why.join('; ')}`);
  }

  get method(): 'fused-native' | 'fused-native-fma' | 'fused-wasm' {
    return `fused-${this.kind}`;
  }

  get isa(): string {
    return this.kernel.isa;
  }

  /** Outputs for every row, or null once the kernel has stood down (then use tfjs). */
  async predict(rows: Rows, k: number, tfjsPredict: (rows: Rows) => Promise<Float32Array>): Promise<Float32Array | null> {
    if (this.failed) return null;
    this.repackIfChanged();
    if (!this.checked && rows.n > 0) {
      const m = Math.min(rows.n, SELF_CHECK_ROWS);
      const head = { data: rows.data.subarray(0, m * rows.d), n: m, d: rows.d };
      const ref = await tfjsPredict(head);
      const got = new Float32Array(m * k);
      this.kernel.forward(head.data, m, got);
      const worst = selfCheckGap(got, ref);
      if (worst !== undefined) {
        this.failed = `the ${this.kind} kernel differs from tfjs by ${worst.toExponential(2)} on the model's first ${m} rows; predicting through tfjs`;
        console.warn(`tfjs-explainer: ${this.failed}`);
        this.dispose();
        return null;
      }
      this.checked = true;
    }
    const out = new Float32Array(rows.n * k);
    this.kernel.forward(rows.data, rows.n, out);
    return out;
  }

  /**
   * Kernel SHAP's masked rows against `background`, formed inside the kernel (MaskedRowsEvaluator):
   * 'first-layer' sums the first layer from the changed columns, 'rows' builds each row and gives
   * predict's bits. Null until the kernel has passed its check against tfjs (a first predict call),
   * and once it has stood down.
   */
  maskedRows(background: Rows, mode: 'rows' | 'first-layer'): MaskedRowsEvaluator | null {
    if (this.failed || !this.checked) return null;
    this.repackIfChanged();
    if (!this.checked) return null;
    const kernel = this.kernel;
    const bg = background.data.subarray(0, background.n * background.d);
    const hb = mode === 'first-layer' ? kernel.preact(bg, background.n) : null;
    // Each instance's pre-activation, once (the explainer passes the same x array every time).
    const hx = new WeakMap<Float32Array, Float32Array>();
    return {
      mode,
      predict: async (spec, k0, row0, n, out, at) => {
        if (n === 0) return;
        let first: { hx: Float32Array; hb: Float32Array } | null = null;
        if (hb) {
          let h = hx.get(spec.x);
          if (!h) hx.set(spec.x, (h = kernel.preact(spec.x, 1)));
          first = { hx: h, hb };
        }
        kernel.forwardMasked(spec, bg, first, k0, row0, n, out, at);
      },
    };
  }

  dispose(): void {
    this.kernel.dispose();
  }

  private make(layers: KernelLayer[]): FusedKernel {
    if (this.kind === 'wasm') return createKernel(layers, 'wasm');
    const a = loadAddon() as { ok: Addon };
    return createKernel(layers, 'native', this.kind === 'native-fma' ? a.ok.fma() : undefined);
  }

  /** tf.Variable.assign swaps a weight's data id: then pack the current weights and check again. */
  private repackIfChanged(): void {
    const now = weightTensors(this.plan);
    if (now.length === this.ids.length && now.every((t, i) => t.dataId === this.ids[i])) return;
    const built = kernelLayers(this.plan);
    if (!built) throw new Error('the model is no longer a Dense stack');
    this.kernel.dispose();
    this.kernel = this.make(built.layers);
    this.ids = built.sources.map((t) => t.dataId);
    this.checked = false;
  }
}
