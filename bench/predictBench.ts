/**
 * Raw predict throughput of the seeded 20-64-64-3 softmax ReLU MLP (bench/seededMlp.ts): tfjs's own
 * predict (LayersModel.apply), our lean fused pass for Dense stacks (models/denseForward.ts, what
 * TfjsModel.predict uses), and numpy float32 on one thread (OpenBLAS sgemm, in-place bias, ReLU and
 * softmax), same weights, same rows. numpy runs in a python3 child process that stays up, so the
 * three are measured in alternating rounds and load from elsewhere hits them alike; rows/s are
 * given from CPU time (process.cpuUsage, time.process_time) and from wall time.
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

export async function predictBench(quick = false): Promise<void> {
  const relu = await seededMlp('relu', 5);
  const model = relu.model as tf.LayersModel;
  const plain = await seededMlp('relu', 5, { leanPredict: false });
  const batches = [4096, 16384, 65536];
  const all = normalRows(7, Math.max(...batches));
  const dir = mkdtempSync(path.join(tmpdir(), 'predict-bench-'));
  try {
    const weights = model.getWeights().map((w) => ({ shape: w.shape, data: Array.from(w.dataSync()) }));
    const acts = ['relu', 'relu', 'softmax'];
    const spec = { d: all.d, layers: acts.map((act, l) => ({ W: weights[2 * l].data, shape: weights[2 * l].shape, b: weights[2 * l + 1].data, act })) };
    writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    writeFileSync(path.join(dir, 'rows.f32'), Buffer.from(all.data.buffer, all.data.byteOffset, all.data.byteLength));
    const numpy = await NumpyWorker.start(path.join(dir, 'spec.json'), path.join(dir, 'rows.f32'));
    console.log(`\n20-64-64-3 softmax ReLU MLP, float32. tfjs predict = LayersModel.apply; lean = TfjsModel.predict (fused matMul + bias + activation per Dense); numpy = ${numpy ? 'python3 numpy, one OpenBLAS thread' : 'skipped: python3 with numpy is not available (apt-get install python3-numpy)'}.\n`);

    // Same answers first: lean vs tfjs vs numpy on 256 rows.
    const check = { data: all.data.subarray(0, 256 * all.d), n: 256, d: all.d };
    const yLean = await relu.predict(check);
    const yTfjs = await plain.predict(check);
    let diff = 0;
    for (let i = 0; i < yLean.length; i++) diff = Math.max(diff, Math.abs(yLean[i] - yTfjs[i]));
    let diffNp = NaN;
    if (numpy) {
      const yNp = JSON.parse(await numpy.ask('check 256')) as number[];
      diffNp = 0;
      for (let i = 0; i < yLean.length; i++) diffNp = Math.max(diffNp, Math.abs(yLean[i] - yNp[i]));
    }
    console.log(`largest |lean - tfjs| ${diff.toExponential(1)}, |lean - numpy| ${Number.isNaN(diffNp) ? 'n/a' : diffNp.toExponential(1)} (256 rows)\n`);

    console.log('| batch | tfjs predict rows/s (CPU) | lean rows/s (CPU) | numpy rows/s (CPU) | lean / tfjs | lean / numpy | tfjs / numpy | lean / numpy, wall time |');
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const rounds = quick ? 3 : 7;
    for (const n of batches) {
      const rows = { data: all.data.subarray(0, n * all.d), n, d: all.d };
      const reps = Math.max(2, Math.round((quick ? 100_000 : 300_000) / n));
      const tfjsR: Rates = { cpu: [], wall: [] };
      const leanR: Rates = { cpu: [], wall: [] };
      const npR: Rates = { cpu: [], wall: [] };
      for (let round = 0; round < rounds; round++) {
        await tfjsRate((r) => plain.predict(r), rows, reps, tfjsR);
        await tfjsRate((r) => relu.predict(r), rows, reps, leanR);
        if (numpy) {
          const [wall, cpu] = (await numpy.ask(`${n} ${reps}`)).split(' ').map(Number);
          npR.cpu.push((n * reps) / cpu);
          npR.wall.push((n * reps) / wall);
        }
      }
      const med = (xs: number[]) => (xs.length ? percentile(xs, 0.5) : NaN);
      const fmt = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
      const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : 'n/a');
      const [t, l, p] = [med(tfjsR.cpu), med(leanR.cpu), med(npR.cpu)];
      console.log(`| ${n.toLocaleString('en-US')} | ${fmt(t)} | ${fmt(l)} | ${fmt(p)} | ${ratio(l, t)} | ${ratio(l, p)} | ${ratio(t, p)} | ${ratio(med(leanR.wall), med(npR.wall))} |`);
    }

    // Why: the matrix products alone, in the same run. XNNPACK on wasm SIMD has 4 lanes and no
    // fused multiply-add; OpenBLAS on this CPU uses 8-lane AVX2 FMA.
    console.log('\n| matrix product (rows x in x out) | tfjs-wasm (XNNPACK) GMAC/s, CPU | numpy (OpenBLAS, 1 thread) GMAC/s, CPU | ratio |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const [m, k, n] of [[4096, 20, 64], [4096, 64, 64], [4096, 64, 3]]) {
      const reps = Math.max(5, Math.round((quick ? 2e8 : 1e9) / (m * k * n)));
      const a = tf.randomNormal([m, k]) as tf.Tensor2D;
      const b = tf.randomNormal([k, n]) as tf.Tensor2D;
      tf.matMul(a, b).dispose();
      const c0 = process.cpuUsage();
      for (let r = 0; r < reps; r++) tf.matMul(a, b).dispose();
      const c = process.cpuUsage(c0);
      tf.dispose([a, b]);
      const wasmRate = (m * k * n * reps) / ((c.user + c.system) / 1e6) / 1e9;
      const npRate = numpy ? (m * k * n * reps) / Number(await numpy.ask(`gemm ${m} ${k} ${n} ${reps}`)) / 1e9 : NaN;
      console.log(`| ${m} x ${k} x ${n} | ${wasmRate.toFixed(1)} | ${Number.isFinite(npRate) ? npRate.toFixed(1) : 'n/a'} | ${Number.isFinite(npRate) ? (wasmRate / npRate).toFixed(2) : 'n/a'} |`);
    }
    numpy?.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    relu.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await selectBackend(process.env.TFJS_BACKEND);
  await predictBench(process.argv.includes('--quick'));
}
