/**
 * Amortised SHAP end to end, the way a deployment uses it: a real server (`tsx server/main.ts`, two
 * worker threads, the embedded job runner) on a temporary MODEL_DIR holding the model, then
 * - training: POST /v1/models/:name/amortised with the default settings (or BENCH_QUICK's small ones),
 *   wall time of the job, model rows it evaluated, the validation the build stored;
 * - error against exact Shapley values (every coalition enumerated) on reference rows taken out of the
 *   model folder before training (the last 100), from the HTTP answers, and Kernel SHAP's on the same
 *   rows at budgets 64..2088;
 *   the smallest budget with at most the amortised error ("same error");
 * - per-row latency of single-row requests over HTTP (distinct rows: no cache hits), p50/p99, for
 *   amortised-shap and for Kernel SHAP at the same-error budget and at 2088;
 * - in-process: single-row p50/p99 of the explainer called directly, against a raw predict of the model
 *   rows it evaluates; rows/s in batches of 1,000;
 * - a whole-file job with it (10,000 rows, POST /v1/jobs): rows/s, against raw predict.
 * Models: `credit` (a sample: 12 players, logit link), `mlp:<seed>` (a seeded 12-feature 32-32 MLP
 * classifier with softmax outputs that is not in the repository: test/helpers/heldOutMlp.ts) or
 * `mlp20:<seed>` (the same with 20 features and 64-64 hidden units: exact Shapley values then
 * enumerate 2^20 coalitions, ~22 s per row here, so it takes 20 unseen rows unless --rows says).
 *
 *   npx tsx bench/amortisedBench.ts [--model mlp:1|mlp20:1|credit] [--rows 100] [--quick]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { amortisedShap } from '../explainers/amortised/amortisedShap.js';
import { kernelShap } from '../explainers/kernelShap.js';
import type { Explanation, Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { amortisedDir, loadAmortised } from '../service/amortised/store.js';
import { writeHeldOutMlp } from '../test/helpers/heldOutMlp.js';
import { percentile } from './igBench.js';
import { waitReady } from './serverReady.js';

export interface AmortisedBenchOptions {
  /** A sample's name, or mlp:<seed> for a held-out MLP. Default credit. */
  model?: string;
  quick?: boolean;
  /** Unseen rows (taken out of the reference before training) the errors are measured on. Default 100 (20 for mlp20, 30 with quick). */
  rows?: number;
  /** Training parameters instead of the defaults. */
  parameters?: Record<string, unknown>;
  log?: (line: string) => void;
  port?: number;
}

const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const int = (v: number) => Math.round(v).toLocaleString('en-US');

function slice(rows: Rows, from: number, to: number): Rows {
  return { data: rows.data.slice(from * rows.d, to * rows.d), n: to - from, d: rows.d };
}

/** Per (row, output): max |error| over features, and that over the exact attribution range. */
function errors(e: Pick<Explanation, 'explanations'>, exact: Explanation): { abs: number[]; rel: number[] } {
  const abs: number[] = [];
  const rel: number[] = [];
  e.explanations.forEach((inst, i) =>
    inst.outputs.forEach((o, k) => {
      const ref = exact.explanations[i].outputs[k].attributions.map((a) => a.attribution);
      const err = Math.max(...o.attributions.map((a, c) => Math.abs(a.attribution - ref[c])));
      abs.push(err);
      rel.push(err / (Math.max(...ref) - Math.min(...ref)));
    }),
  );
  return { abs, rel };
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const send = () => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  // A kept-alive connection the server closed while the bench computed in process (its event loop
  // busy, the close unseen) fails the next request on it ("other side closed", EPIPE): that one
  // request is sent again on a new connection.
  const r = await send().catch((e: unknown) => {
    if (!['UND_ERR_SOCKET', 'EPIPE', 'ECONNRESET'].includes((e as { cause?: { code?: string } }).cause?.code ?? '')) throw e;
    return send();
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

export async function amortisedBench(options: AmortisedBenchOptions = {}): Promise<void> {
  const log = options.log ?? ((l: string) => console.log(l));
  const quick = options.quick ?? false;
  const spec = options.model ?? 'credit';
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-bench-'));
  const modelDir = path.join(tmp, 'models');
  const wide = spec.startsWith('mlp20:');
  const name = spec.startsWith('mlp:') || wide ? 'mlp' : spec;
  // The last 100 reference rows (30 with --quick, 20 for mlp20) are taken out of the folder: training never sees them.
  const n = options.rows ?? (quick ? 30 : wide ? 20 : 100);
  if (spec.startsWith('mlp:')) await writeHeldOutMlp(modelDir, 'mlp', { seed: Number(spec.slice(4)) || 1, features: 12, hidden: [32, 32], rows: 1000 + n });
  else if (wide) await writeHeldOutMlp(modelDir, 'mlp', { seed: Number(spec.slice(6)) || 1, features: 20, hidden: [64, 64], rows: 1000 + n });
  else await cp(path.resolve('samples/models', spec), path.join(modelDir, spec), { recursive: true });
  const csvPath = path.join(modelDir, name, 'reference.csv');
  const lines = (await readFile(csvPath, 'utf8')).trimEnd().split('\n');
  await writeFile(csvPath, lines.slice(0, lines.length - n).join('\n') + '\n');
  const all: LoadedModel = await loadModelFolder(name, path.join(modelDir, name));
  await writeFile(csvPath, lines.join('\n') + '\n');
  const withTest: LoadedModel = await loadModelFolder(name, path.join(modelDir, name));
  await writeFile(csvPath, lines.slice(0, lines.length - n).join('\n') + '\n');
  const m = all;
  const ref = m.reference!.rows;
  const full = withTest.reference!.rows;
  const test: Rows = slice(full, full.n - n, full.n);
  const link = m.metadata?.link ?? 'identity';
  const port = options.port ?? 18_090;
  const url = `http://127.0.0.1:${port}`;
  const dataDir = path.join(tmp, 'data');
  const server: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', WORKERS: '2', MODEL_DIR: modelDir, DATA_DIR: dataDir, JOBS_DIR: path.join(tmp, 'jobs'), AMORTISED_THRESHOLD: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitReady(url);
    const parameters = options.parameters ?? (quick ? { syntheticRows: 1000, hidden: [128, 128], batchSize: 64, maxEpochs: 200 } : {});
    const t0 = performance.now();
    const sub = await post(`${url}/v1/models/${name}/amortised`, { parameters });
    if (sub.status !== 202) throw new Error(`training was not accepted: ${JSON.stringify(sub.json)}`);
    const id = sub.json.id as string;
    let job: Record<string, unknown>;
    let lastPhase = '';
    let lastEpoch = -1;
    for (;;) {
      job = (await (await fetch(`${url}/v1/jobs/${id}`)).json()) as Record<string, unknown>;
      const p = job.progress as { phase: string; epoch?: number; fraction: number } | undefined;
      // A new phase, or a new epoch that is a multiple of 50 (once, not at every poll while it lasts).
      if (p && (p.phase !== lastPhase || (p.epoch !== undefined && p.epoch !== lastEpoch && p.epoch % 50 === 0))) {
        process.stderr.write(`  training: ${p.phase}${p.epoch ? ` epoch ${p.epoch}` : ''}, ${Math.round(100 * p.fraction)}% after ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
        lastPhase = p.phase;
        lastEpoch = p.epoch ?? -1;
      }
      if (job.status !== 'queued' && job.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (job.status !== 'succeeded') throw new Error(`training job ${String(job.status)}: ${JSON.stringify(job.error)}`);
    const wallS = (Date.parse(job.finishedAt as string) - Date.parse(job.startedAt as string)) / 1000;
    const state = (await (await fetch(`${url}/v1/models/${name}/amortised`)).json()) as {
      explainer: { players: number; training: { trainingRows: number; realTrainingRows: number; epochs: number; modelEvaluations: number; labellingMs: number; trainMs: number; validationMs: number; probes?: { requestedRows: number; rows: number; budgetMs: number; trials: { probeRows: number; ms: number }[] } }; validation: { rows: number; reference: string; referenceStdErr?: number; amortised: { meanAbs: number; p95Abs: number; meanRelative: number; p95Relative: number }; kernelShap?: { meanAbs: number; meanRelative: number }; ratioToKernelShap?: number; shapKernelExplainer?: { meanAbs: number; meanRelative: number }; ratioToShapKernelExplainer?: number } };
    };
    const t = state.explainer.training;
    const v = state.explainer.validation;
    const M = state.explainer.players;
    log(`Model ${spec}: ${M} players, ${m.model.nOutputs} outputs, ${m.background!.n} background rows, link ${link}; training parameters ${JSON.stringify(parameters)}.\n`);
    log('| training (POST /v1/models/:name/amortised, a job on one worker thread) | value |\n| --- | ---: |');
    log(`| wall time of the job (s) | ${fmt(wallS, 1)} |`);
    log(`| labelling / training / validation (s) | ${fmt(t.labellingMs / 1000, 1)} / ${fmt(t.trainMs / 1000, 1)} / ${fmt(t.validationMs / 1000, 1)} |`);
    log(`| training rows (real + synthetic), epochs | ${int(t.trainingRows)} (${int(t.realTrainingRows)} real), ${t.epochs} |`);
    log(`| model rows evaluated | ${int(t.modelEvaluations)} |`);
    if (t.probes) {
      const tried = t.probes.trials.map((x) => `${x.probeRows}: ${fmt(x.ms, 2)} ms`).join(', ');
      log(`| probe rows asked / taken (budget ${t.probes.budgetMs} ms per row; timed ${tried || 'nothing'}) | ${t.probes.requestedRows} / ${t.probes.rows} |`);
    }
    log(`| validation on ${v.rows} held-out reference rows (${v.reference}): mean / p95 max-error, abs | ${fmt(v.amortised.meanAbs, 4)} / ${fmt(v.amortised.p95Abs, 4)} |`);
    log(`| the same, relative to each row's attribution range | ${fmt(100 * v.amortised.meanRelative, 2)}% / ${fmt(100 * v.amortised.p95Relative, 2)}% |`);
    if (v.referenceStdErr !== undefined) log(`| the sampled reference's mean largest standard error (in every validated figure) | ${fmt(v.referenceStdErr, 4)} |`);
    if (v.kernelShap) log(`| Kernel SHAP at 2088 on the same rows: mean abs (rel); ratio amortised / Kernel SHAP | ${fmt(v.kernelShap.meanAbs, 4)} (${fmt(100 * v.kernelShap.meanRelative, 2)}%); ${fmt(v.ratioToKernelShap ?? NaN, 1)} |`);
    if (v.shapKernelExplainer) {
      log(
        `| shap's KernelExplainer sampling at 2088 on the same rows: mean abs (rel); ratio amortised / shap | ${fmt(v.shapKernelExplainer.meanAbs, 4)} (${fmt(100 * v.shapKernelExplainer.meanRelative, 2)}%); ${fmt(v.ratioToShapKernelExplainer ?? NaN, 1)} |`,
      );
    }

    // Rows for latency: reference rows jittered by 1% of each column's spread, so no request hits the cache.
    const d = ref.d;
    const sd = Array.from({ length: d }, (_, c) => {
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < ref.n; i++) {
        s += ref.data[i * d + c];
        s2 += ref.data[i * d + c] ** 2;
      }
      return Math.sqrt(Math.max(0, s2 / ref.n - (s / ref.n) ** 2));
    });
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const jitter = (r: number) => Array.from({ length: d }, (_, c) => Math.fround(ref.data[r * d + c] + 0.01 * sd[c] * rand()));
    const unseenRows = Array.from({ length: n }, (_, i) => Array.from(test.data.subarray(i * d, (i + 1) * d)));
    const base = { space: m.space, background: m.background!, link, tolerance: 0 } as const;
    const exact = await kernelShap(m.model, test, { ...base, nSamples: 2 ** M - 2 });
    const served = await post(`${url}/v1/models/${name}/explain`, { instances: unseenRows, method: 'amortised-shap', outputs: m.space.outputNames });
    if (served.json.method !== 'amortised-shap') throw new Error(`not served: ${JSON.stringify(served.json.fallback)}`);
    const a = errors(served.json as unknown as Explanation, exact);
    const perRowRows = (served.json.explanations as { modelEvaluations: number }[])[0].modelEvaluations;
    log(`\nError against exact Shapley values on ${n} unseen rows (max over features per row and output; relative = / the row's attribution range; HTTP answers):\n`);
    log('| method | coalitions | mean abs | p95 abs | mean rel | p95 rel | model rows / row |');
    log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    log(`| amortised-shap | - | ${fmt(mean(a.abs), 4)} | ${fmt(percentile(a.abs, 0.95), 4)} | ${fmt(100 * mean(a.rel), 2)}% | ${fmt(100 * percentile(a.rel, 0.95), 2)}% | ${perRowRows} |`);
    let sameError: number | undefined;
    let ratios = '';
    for (const budget of [64, 128, 256, 512, 1024, 2088]) {
      if (budget >= 2 ** M - 2) break;
      const ks = await kernelShap(m.model, test, { ...base, nSamples: budget, seed: 1 });
      const k = errors(ks, exact);
      log(`| kernel-shap | ${budget} | ${fmt(mean(k.abs), 4)} | ${fmt(percentile(k.abs, 0.95), 4)} | ${fmt(100 * mean(k.rel), 2)}% | ${fmt(100 * percentile(k.rel, 0.95), 2)}% | ${int(ks.explanations[0].modelEvaluations)} |`);
      if (sameError === undefined && mean(k.abs) <= mean(a.abs)) sameError = budget;
      if (budget === 2088) {
        const shapScheme = errors(await kernelShap(m.model, test, { ...base, nSamples: budget, seed: 1, sampler: 'shap' }), exact);
        log(`| shap's KernelExplainer scheme | ${budget} | ${fmt(mean(shapScheme.abs), 4)} | ${fmt(percentile(shapScheme.abs, 0.95), 4)} | ${fmt(100 * mean(shapScheme.rel), 2)}% | ${fmt(100 * percentile(shapScheme.rel, 0.95), 2)}% | ${int(ks.explanations[0].modelEvaluations)} |`);
        ratios = `amortised mean abs / Kernel SHAP's at 2088: ${fmt(mean(a.abs) / mean(k.abs), 2)}x; / shap's scheme's at 2088: ${fmt(mean(a.abs) / mean(shapScheme.abs), 2)}x`;
      }
    }
    if (ratios) log(`\nOn these unseen rows: ${ratios}.`);

    // Single-row requests over HTTP, each a row never asked before (no cache hits).
    const reqs = quick ? 100 : 400;
    const single = async (method: string, parameters: Record<string, unknown>, count: number) => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const row = jitter((i * 7) % ref.n);
        const s = performance.now();
        const r = await post(`${url}/v1/models/${name}/explain`, { instances: [row], method, parameters });
        times.push(performance.now() - s);
        if (r.status !== 200) throw new Error(`${method}: ${JSON.stringify(r.json)}`);
      }
      return times;
    };
    await single('amortised-shap', {}, 20);
    const amortisedHttp = await single('amortised-shap', {}, reqs);
    log('\nSingle-row requests over HTTP (POST /explain, keep-alive, one at a time, every row new):\n');
    log('| request | p50 ms | p99 ms |\n| --- | ---: | ---: |');
    log(`| amortised-shap | ${fmt(percentile(amortisedHttp, 0.5), 2)} | ${fmt(percentile(amortisedHttp, 0.99), 2)} |`);
    for (const budget of [...new Set([sameError, 2088].filter((b): b is number => b !== undefined && b < 2 ** M - 2))]) {
      const ks = await single('kernel-shap', { nSamples: budget, seed: 1, tolerance: 1e-9 }, quick ? 10 : 30);
      log(`| kernel-shap, ${budget} coalitions${budget === sameError ? ' (same error)' : ''} | ${fmt(percentile(ks, 0.5), 2)} | ${fmt(percentile(ks, 0.99), 2)} |`);
    }
    if (sameError === undefined) log('| kernel-shap: no budget below 2088 reached the amortised error | | |');

    // In-process: the explainer called directly.
    const explainer = await loadAmortised(amortisedDir(dataDir, name, m.version), { modelVersion: m.version });
    const inProc: number[] = [];
    const raw: number[] = [];
    const probe = new Float32Array(perRowRows * d);
    for (let i = 0; i < perRowRows; i++) probe.set(test.data.subarray(0, d), i * d);
    for (let i = 0; i < reqs; i++) {
      const one = slice(test, i % n, (i % n) + 1);
      let s = performance.now();
      await amortisedShap(explainer, m.model, one, { space: m.space });
      inProc.push(performance.now() - s);
      s = performance.now();
      await m.model.predict({ data: probe, n: perRowRows, d });
      raw.push(performance.now() - s);
    }
    log('\nIn-process (main thread, wasm):\n');
    log('| call | p50 ms | p99 ms |\n| --- | ---: | ---: |');
    log(`| amortisedShap, 1 row | ${fmt(percentile(inProc, 0.5), 2)} | ${fmt(percentile(inProc, 0.99), 2)} |`);
    log(`| raw predict of its ${perRowRows} model rows | ${fmt(percentile(raw, 0.5), 2)} | ${fmt(percentile(raw, 0.99), 2)} |`);
    const batch = slice(ref, 0, Math.min(1000, ref.n));
    await amortisedShap(explainer, m.model, batch, { space: m.space });
    const reps = quick ? 3 : 10;
    let s = performance.now();
    for (let r = 0; r < reps; r++) await amortisedShap(explainer, m.model, batch, { space: m.space });
    const rate = (batch.n * reps) / ((performance.now() - s) / 1000);
    const big = new Float32Array(batch.n * perRowRows * d);
    for (let i = 0; i < batch.n * perRowRows; i++) big.set(batch.data.subarray((i % batch.n) * d, ((i % batch.n) + 1) * d), i * d);
    s = performance.now();
    for (let r = 0; r < reps; r++) await m.model.predict({ data: big, n: batch.n * perRowRows, d });
    const rawRate = (batch.n * perRowRows * reps) / ((performance.now() - s) / 1000);
    explainer.dispose();
    log(`\nBatches of ${batch.n} rows in-process: ${int(rate)} rows/s; a raw predict of the same model rows: ${int(rawRate / perRowRows)} rows/s (${int(rawRate)} model rows/s).`);

    // A whole-file job with it.
    const jobRows = Array.from({ length: quick ? 2000 : 10_000 }, (_, i) => jitter(i % ref.n));
    const jsub = await post(`${url}/v1/jobs`, { model: name, method: 'amortised-shap', instances: jobRows });
    if (jsub.status !== 202) throw new Error(`job: ${JSON.stringify(jsub.json)}`);
    let jv: Record<string, unknown>;
    for (;;) {
      jv = (await (await fetch(`${url}/v1/jobs/${String(jsub.json.id)}`)).json()) as Record<string, unknown>;
      if (jv.status !== 'queued' && jv.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const jobS = (Date.parse(jv.finishedAt as string) - Date.parse(jv.startedAt as string)) / 1000;
    log(`A job over ${int(jobRows.length)} rows (POST /v1/jobs, method amortised-shap, 2 worker threads): ${jv.status}, ${fmt(jobS, 1)} s, ${int(jobRows.length / jobS)} rows/s.`);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    if (server.exitCode === null) server.kill('SIGKILL');
    await rm(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--model');
  const rowsAt = args.indexOf('--rows');
  await selectBackend(process.env.TFJS_BACKEND);
  await amortisedBench({
    model: at >= 0 ? args[at + 1] : undefined,
    rows: rowsAt >= 0 ? Number(args[rowsAt + 1]) : undefined,
    quick: args.includes('--quick') || process.env.BENCH_QUICK === '1',
  });
}
