/**
 * Raw predict throughput of the seeded 20-64-64-3 softmax ReLU MLP (bench/seededMlp.ts): tfjs's own
 * predict (LayersModel.apply), our lean pass through tfjs ops (models/denseForward.ts), our fused
 * kernel (models/fusedKernel.ts) as the native addon (default and fused multiply-add builds) and as
 * wasm, and numpy float32 on one thread
 * (OpenBLAS sgemm, in-place bias, ReLU and softmax), same weights, same rows. numpy runs in a python3
 * child process that stays up, so all are measured in alternating rounds and load from elsewhere
 * hits them alike; rows/s are given from CPU time (process.cpuUsage, time.process_time) and, for
 * the kernel against numpy, from wall time. Then the kernel per instruction set, and a wider MLP.
 *
 *   npx tsx bench/predictBench.ts [--quick]
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { createKernel, kernelLayers, kernelStatus } from '../models/fusedKernel.js';
import { compileChain, planOf } from '../models/plan.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { normal, seededRng } from '../explainers/random.js';
import { percentile } from './igBench.js';
import { normalRows, seededMlp } from './seededMlp.js';

const NUMPY_WORKER = `
import json, sys, time
import numpy as np
spec = json.load(open(sys.argv[1]))
layers = [(np.array(l['W'], dtype=np.float32).reshape(l['shape']), np.array(l['b'], dtype=np.float32), l['act']) for l in spec['layers']]
X = np.fromfile(sys.argv[2], dtype=np.float32).reshape(-1, spec['d'])
def f(x):
    for W, b, act in layers:
        x = x @ W
        x += b
        if act == 'relu':
            np.maximum(x, 0, out=x)
        elif act == 'softmax':
            x -= x.max(axis=1, keepdims=True)
            np.exp(x, out=x)
            x /= x.sum(axis=1, keepdims=True)
    return x
print('ready', flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == 'check':
        print(json.dumps(f(X[: int(cmd[1])]).ravel().tolist()), flush=True)
        continue
    if cmd[0] == 'check64':
        x = X[: int(cmd[1])].astype(np.float64)
        for W, b, act in layers:
            x = x @ W.astype(np.float64) + b
            if act == 'relu':
                x = np.maximum(x, 0)
            elif act == 'softmax':
                x = np.exp(x - x.max(axis=1, keepdims=True))
                x /= x.sum(axis=1, keepdims=True)
        print(json.dumps(x.ravel().tolist()), flush=True)
        continue
    if cmd[0] == 'gemm':
        m, k, n, reps = map(int, cmd[1:])
        a = np.random.default_rng(0).standard_normal((m, k), dtype=np.float32)
        b = np.random.default_rng(1).standard_normal((k, n), dtype=np.float32)
        a @ b
        c0 = time.process_time()
        for _ in range(reps):
            a @ b
        print(time.process_time() - c0, flush=True)
        continue
    n, reps = int(cmd[0]), int(cmd[1])
    x = X[:n]
    f(x)
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(reps):
        f(x)
    print(time.perf_counter() - t0, time.process_time() - c0, flush=True)
`;

/** A python3 process with numpy, answering one line per request; null when numpy is not there. */
class NumpyWorker {
  private lines: AsyncIterableIterator<string>;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async start(specFile: string, rowsFile: string): Promise<NumpyWorker | null> {
    const probe = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    if (probe.status !== 0) return null;
    const env = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
    const child = spawn('python3', ['-c', NUMPY_WORKER, specFile, rowsFile], { env });
    const w = new NumpyWorker(child);
    return (await w.next()) === 'ready' ? w : null;
  }

  private async next(): Promise<string> {
    const r = await this.lines.next();
    if (r.done) throw new Error('the numpy worker exited');
    return r.value;
  }

  async ask(line: string): Promise<string> {
    this.child.stdin.write(line + '\n');
    return this.next();
  }

  stop(): void {
    this.child.stdin.end();
  }
}

interface Rates {
  cpu: number[];
  wall: number[];
}

async function tfjsRate(predict: (r: Rows) => Promise<unknown>, rows: Rows, reps: number, into: Rates): Promise<void> {
  await predict(rows);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await predict(rows);
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  into.cpu.push((rows.n * reps) / ((c.user + c.system) / 1e6));
  into.wall.push((rows.n * reps) / wall);
}

const med = (xs: number[]) => (xs.length ? percentile(xs, 0.5) : NaN);
const fmt = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : 'n/a');

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** The weights and activations numpy's worker reads. */
function numpySpec(model: tf.LayersModel, d: number, acts: string[]) {
  const weights = model.getWeights().map((w) => ({ shape: w.shape, data: Array.from(w.dataSync()) }));
  return { d, layers: acts.map((act, l) => ({ W: weights[2 * l].data, shape: weights[2 * l].shape, b: weights[2 * l + 1].data, act })) };
}

async function startNumpy(dir: string, name: string, spec: unknown, rows: Rows): Promise<NumpyWorker | null> {
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(spec));
  writeFileSync(path.join(dir, `${name}.f32`), Buffer.from(rows.data.buffer, rows.data.byteOffset, rows.data.byteLength));
  return NumpyWorker.start(path.join(dir, `${name}.json`), path.join(dir, `${name}.f32`));
}

function emptyRates(): Record<string, Rates> {
  return Object.fromEntries(['tfjs', 'lean', 'wasm', 'native', 'fma', 'numpy'].map((k) => [k, { cpu: [], wall: [] }]));
}

export async function predictBench(quick = false): Promise<void> {
  const status = kernelStatus();
  const nativeIsa = 'isa' in status.native ? status.native.isa : undefined;
  const fmaIsa = 'fma' in status.native ? status.native.fma : '';
  const relu = await seededMlp('relu', 5, { kernel: 'tfjs' });
  const model = relu.model as tf.LayersModel;
  const plain = await TfjsModel.create(model, { leanPredict: false });
  const wasm = await TfjsModel.create(model, { kernel: 'wasm' });
  const native = nativeIsa ? await TfjsModel.create(model, { kernel: 'native' }) : null;
  const fma = fmaIsa ? await TfjsModel.create(model, { kernel: 'native-fma' }) : null;
  const batches = [1024, 4096, 16384, 65536];
  const all = normalRows(7, Math.max(...batches));
  const dir = mkdtempSync(path.join(tmpdir(), 'predict-bench-'));
  try {
    const numpy = await startNumpy(dir, 'mlp', numpySpec(model, all.d, ['relu', 'relu', 'softmax']), all);
    console.log(
      `\n20-64-64-3 softmax ReLU MLP, float32. tfjs predict = LayersModel.apply; lean = our pass through tfjs ops (fused matMul + bias + activation per Dense); ` +
        `native = our fused kernel, Node addon (${nativeIsa ?? `not available: ${'error' in status.native ? status.native.error : ''}`}); ` +
        `native-fma = its fused multiply-add build (${fmaIsa || 'not available'}); wasm = the same kernel as WebAssembly SIMD128; ` +
        `numpy = ${numpy ? 'python3 numpy, one OpenBLAS thread' : 'skipped: python3 with numpy is not available (apt-get install python3-numpy)'}.\n`,
    );

    // Same answers first, on 256 rows, and against a float64 evaluation (numpy) where there is one.
    const check = { data: all.data.subarray(0, 256 * all.d), n: 256, d: all.d };
    const outs: Record<string, Float32Array> = { tfjs: await plain.predict(check), lean: await relu.predict(check), wasm: await wasm.predict(check) };
    if (native) outs.native = await native.predict(check);
    if (fma) outs['native-fma'] = await fma.predict(check);
    const yNp = numpy ? (JSON.parse(await numpy.ask('check 256')) as number[]) : null;
    const y64 = numpy ? (JSON.parse(await numpy.ask('check64 256')) as number[]) : null;
    const parts = Object.entries(outs).map(([k, y]) => `${k}: ${maxDiff(y, outs.tfjs).toExponential(1)} from tfjs${y64 ? `, ${maxDiff(y, y64).toExponential(1)} from float64` : ''}`);
    if (yNp && y64) parts.push(`numpy: ${maxDiff(yNp, outs.tfjs).toExponential(1)} from tfjs, ${maxDiff(yNp, y64).toExponential(1)} from float64`);
    console.log(`Largest differences on 256 rows (the outputs are probabilities): ${parts.join('; ')}.\n`);

    console.log('rows/s from CPU time; the last column from wall time.\n');
    console.log('| batch | tfjs predict | lean (tfjs ops) | wasm kernel | native kernel | native-fma | numpy | native / numpy | native-fma / numpy | wasm / numpy | tfjs / numpy | native / tfjs | native / numpy, wall |');
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const rounds = quick ? 3 : 7;
    for (const n of batches) {
      const rows = { data: all.data.subarray(0, n * all.d), n, d: all.d };
      const reps = Math.max(2, Math.round((quick ? 100_000 : 300_000) / n));
      const r = emptyRates();
      for (let round = 0; round < rounds; round++) {
        await tfjsRate((x) => plain.predict(x), rows, reps, r.tfjs);
        await tfjsRate((x) => relu.predict(x), rows, reps, r.lean);
        await tfjsRate((x) => wasm.predict(x), rows, reps, r.wasm);
        // The native kernel is fast: more repetitions keep its CPU time well above the clock's grain.
        if (native) await tfjsRate((x) => native.predict(x), rows, reps * 4, r.native);
        if (fma) await tfjsRate((x) => fma.predict(x), rows, reps * 4, r.fma);
        if (numpy) {
          const [wall, cpu] = (await numpy.ask(`${n} ${reps}`)).split(' ').map(Number);
          r.numpy.cpu.push((n * reps) / cpu);
          r.numpy.wall.push((n * reps) / wall);
        }
      }
      const [t, l, w, nat, f, p] = ['tfjs', 'lean', 'wasm', 'native', 'fma', 'numpy'].map((k) => med(r[k].cpu));
      console.log(
        `| ${n.toLocaleString('en-US')} | ${fmt(t)} | ${fmt(l)} | ${fmt(w)} | ${fmt(nat)} | ${fmt(f)} | ${fmt(p)} | ${ratio(nat, p)} | ${ratio(f, p)} | ${ratio(w, p)} | ${ratio(t, p)} | ${ratio(nat, t)} | ${ratio(med(r.native.wall), med(r.numpy.wall))} |`,
      );
    }

    // The kernel per instruction set this CPU runs (the addon picks the best at run time).
    const layers = kernelLayers(planOf(compileChain(model)!)!)!.layers;
    const n = 16384;
    const x = all.data.subarray(0, n * all.d);
    const y = new Float32Array(n * 3);
    const ladder = ['avx512', 'avx2', 'sse2'];
    const isas = nativeIsa ? (nativeIsa === 'generic' ? ['generic'] : ladder.slice(ladder.indexOf(nativeIsa))) : [];
    if (nativeIsa === 'avx512') isas.push('avx512-fma', 'avx2-fma');
    else if (fmaIsa) isas.push(fmaIsa);
    const builds = [...isas.map((isa) => ({ name: `native ${isa}`, k: createKernel(layers, 'native', isa) })), { name: 'wasm simd128', k: createKernel(layers, 'wasm') }];
    const npRate = numpy ? (n * 20) / Number((await numpy.ask(`${n} 20`)).split(' ')[1]) : NaN;
    console.log(`\nThe kernel alone (no TfjsModel around it) per instruction set, batch ${n.toLocaleString('en-US')}, CPU time; numpy in the same run ${fmt(npRate)} rows/s.\n`);
    console.log('| build | rows/s | GMAC/s | / numpy |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const b of builds) {
      const reps = quick ? 20 : 60;
      b.k.forward(x, n, y);
      const rates: number[] = [];
      for (let round = 0; round < 3; round++) {
        const c0 = process.cpuUsage();
        for (let i = 0; i < reps; i++) b.k.forward(x, n, y);
        const c = process.cpuUsage(c0);
        rates.push((n * reps) / ((c.user + c.system) / 1e6));
      }
      const rate = med(rates);
      console.log(`| ${b.name} | ${fmt(rate)} | ${((rate * 5568) / 1e9).toFixed(1)} | ${ratio(rate, npRate)} |`);
      b.k.dispose();
    }

    // Why wasm cannot reach numpy: the matrix products alone, in the same run. XNNPACK on wasm
    // SIMD has 4 lanes and no fused multiply-add; OpenBLAS on this CPU uses 8-lane AVX2 FMA.
    console.log('\n| matrix product (rows x in x out) | tfjs-wasm (XNNPACK) GMAC/s, CPU | numpy (OpenBLAS, 1 thread) GMAC/s, CPU | ratio |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const [m, k, o] of [[4096, 20, 64], [4096, 64, 64], [4096, 64, 3]]) {
      const reps = Math.max(5, Math.round((quick ? 2e8 : 1e9) / (m * k * o)));
      const a = tf.randomNormal([m, k]) as tf.Tensor2D;
      const b = tf.randomNormal([k, o]) as tf.Tensor2D;
      tf.matMul(a, b).dispose();
      const c0 = process.cpuUsage();
      for (let rep = 0; rep < reps; rep++) tf.matMul(a, b).dispose();
      const c = process.cpuUsage(c0);
      tf.dispose([a, b]);
      const wasmRate = (m * k * o * reps) / ((c.user + c.system) / 1e6) / 1e9;
      const np = numpy ? (m * k * o * reps) / Number(await numpy.ask(`gemm ${m} ${k} ${o} ${reps}`)) / 1e9 : NaN;
      console.log(`| ${m} x ${k} x ${o} | ${wasmRate.toFixed(1)} | ${Number.isFinite(np) ? np.toFixed(1) : 'n/a'} | ${Number.isFinite(np) ? (wasmRate / np).toFixed(2) : 'n/a'} |`);
    }
    numpy?.stop();
    await wideBench(dir, quick);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    relu.dispose(); // the net, which all five wrap (the kernels' memory goes with their models)
  }
}

/** A wider MLP (100-256-256-10, softmax), where the matrix products weigh more than per-op costs. */
async function wideBench(dir: string, quick: boolean): Promise<void> {
  const sizes = [100, 256, 256, 10];
  const net = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [sizes[0]], units: sizes[1], activation: 'relu' }),
      tf.layers.dense({ units: sizes[2], activation: 'relu' }),
      tf.layers.dense({ units: sizes[3], activation: 'softmax' }),
    ],
  });
  const rng = seededRng(3);
  const ws = net.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => normal(rng) * (w.shape.length === 2 ? Math.sqrt(2 / w.shape[0]) : 0.1)), w.shape));
  net.setWeights(ws);
  tf.dispose(ws);
  const n = 8192;
  const rows = normalRows(9, n, sizes[0]);
  const lean = await TfjsModel.create(net, { kernel: 'tfjs' });
  const wasm = await TfjsModel.create(net, { kernel: 'wasm' });
  const st = kernelStatus().native;
  const native = 'isa' in st ? await TfjsModel.create(net, { kernel: 'native' }) : null;
  const fma = 'fma' in st && st.fma ? await TfjsModel.create(net, { kernel: 'native-fma' }) : null;
  const numpy = await startNumpy(dir, 'wide', numpySpec(net, sizes[0], ['relu', 'relu', 'softmax']), rows);
  try {
    const macs = sizes[0] * sizes[1] + sizes[1] * sizes[2] + sizes[2] * sizes[3];
    const r = emptyRates();
    const reps = quick ? 3 : 8;
    for (let round = 0; round < (quick ? 3 : 5); round++) {
      await tfjsRate((x) => lean.predict(x), rows, reps, r.lean);
      await tfjsRate((x) => wasm.predict(x), rows, reps, r.wasm);
      if (native) await tfjsRate((x) => native.predict(x), rows, reps, r.native);
      if (fma) await tfjsRate((x) => fma.predict(x), rows, reps, r.fma);
      if (numpy) r.numpy.cpu.push((n * reps) / Number((await numpy.ask(`${n} ${reps}`)).split(' ')[1]));
    }
    const [l, w, nat, f, p] = ['lean', 'wasm', 'native', 'fma', 'numpy'].map((k) => med(r[k].cpu));
    console.log(`\nA wider MLP, ${sizes.join('-')} softmax ReLU (${macs.toLocaleString('en-US')} multiply-adds a row), batch ${n.toLocaleString('en-US')}, rows/s from CPU time.\n`);
    console.log('| lean (tfjs ops) | wasm kernel | native kernel | native-fma | numpy | native / numpy | native-fma / numpy | wasm / lean | native / lean |');
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    console.log(`| ${fmt(l)} | ${fmt(w)} | ${fmt(nat)} | ${fmt(f)} | ${fmt(p)} | ${ratio(nat, p)} | ${ratio(f, p)} | ${ratio(w, l)} | ${ratio(nat, l)} |`);
  } finally {
    numpy?.stop();
    lean.dispose(); // the net, which all four wrap
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await selectBackend(process.env.TFJS_BACKEND);
  await predictBench(process.argv.includes('--quick'));
}
