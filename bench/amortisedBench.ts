/**
 * Amortised SHAP against Kernel SHAP on a sample model (default credit: 12 players, so exact Shapley
 * values by enumeration are affordable as the oracle). Trains an explainer on reference rows 0..899
 * and measures on rows 900.. that neither training nor its validation saw:
 * - training: wall time and model evaluations;
 * - error: mean and p95 over rows of max_j |φ_j - φ*_j| against exact values, absolute and relative
 *   to the row's attribution range; the validated figures the build stored, for comparison;
 * - Kernel SHAP's error at budgets 64 .. 2088 on the same rows, and the smallest budget whose mean
 *   error is at most the amortised one ("same error"), with its latency;
 * - latency of one single-row call in-process (p50/p99), and rows/s explaining 1,000 rows per call,
 *   each against a raw predict of the same number of model rows measured in this run.
 *
 *   npx tsx bench/amortisedBench.ts [--model credit] [--quick]
 * BENCH_QUICK=1 (or --quick) trains with smaller settings and measures fewer rows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { amortisedShap } from '../explainers/amortised/amortisedShap.js';
import { kernelShap } from '../explainers/kernelShap.js';
import type { Explanation, Rows } from '../explainers/types.js';
import { buildAmortised } from '../service/amortised/build.js';
import { amortisedDir } from '../service/amortised/store.js';
import { percentile } from './igBench.js';

export interface AmortisedBenchOptions {
  model?: string;
  quick?: boolean;
  log?: (line: string) => void;
}

const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function slice(rows: Rows, from: number, to: number): Rows {
  return { data: rows.data.slice(from * rows.d, to * rows.d), n: to - from, d: rows.d };
}

/** Per (row, output): max |error| over features, and that over the exact attribution range. */
function errors(e: Explanation, exact: Explanation): { abs: number[]; rel: number[] } {
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

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function amortisedBench(options: AmortisedBenchOptions = {}): Promise<void> {
  const log = options.log ?? ((l: string) => console.log(l));
  const quick = options.quick ?? false;
  const name = options.model ?? 'credit';
  const m: LoadedModel = await loadModelFolder(name, path.resolve('samples/models', name));
  const ref = m.reference!.rows;
  const link = m.metadata?.link ?? 'identity';
  const trainUpTo = Math.min(900, ref.n - 20);
  const test = slice(ref, trainUpTo, Math.min(ref.n, trainUpTo + (quick ? 30 : 100)));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-bench-'));
  try {
    // Full: the defaults (8,000 synthetic rows for credit, 256 coalitions per row, [256, 256]).
    const settings = quick ? { syntheticRows: 1000, coalitionsPerRow: 256, hidden: [128, 128], batchSize: 64, maxEpochs: 200 } : { syntheticRows: 8000, coalitionsPerRow: 256 };
    const t0 = performance.now();
    let epochs = 0;
    const built = await buildAmortised(m.model, {
      space: m.space,
      background: m.background!,
      link,
      modelName: name,
      modelVersion: m.version,
      reference: slice(ref, 0, trainUpTo),
      dir: amortisedDir(tmp, name, m.version),
      ...settings,
      onProgress: (p) => {
        if (p.phase !== 'training') return;
        epochs = p.epoch;
        // Progress on stderr, so the tables on stdout stay clean.
        if (p.epoch % 25 === 0) process.stderr.write(`  training epoch ${p.epoch}, early-stopping loss ${p.validationLoss.toFixed(5)}, ${(p.elapsedMs / 1000).toFixed(0)} s\n`);
      },
    });
    const buildMs = performance.now() - t0;
    const t = built.training;
    const M = built.explainer.game.players.length;
    log(`Model ${name}: ${M} players, ${m.background!.n} background rows, link ${link}; trained on ${t.trainingRows} rows (${settings.syntheticRows} of them synthetic), ${settings.coalitionsPerRow} coalitions per row.\n`);
    log('| training | value |\n| --- | ---: |');
    log(`| wall time, train + validate + save (s) | ${fmt(buildMs / 1000, 1)} |`);
    log(`| of which training (s) | ${fmt(t.trainMs / 1000, 1)} |`);
    log(`| model rows evaluated by training | ${t.modelEvaluations.toLocaleString('en-US')} |`);
    log(`| epochs (linear stage, best) | ${epochs} (${t.linearStageEpochs}, ${t.bestEpoch}) |`);
    log(`| validation (build's held-out rows, exact reference): mean / p95 max-error, relative | ${fmt(built.validation.amortised.meanRelative, 4)} / ${fmt(built.validation.amortised.p95Relative, 4)} |`);
    log(`| Kernel SHAP at 2088 on the same rows: mean relative; ratio amortised / Kernel SHAP (absolute) | ${fmt(built.validation.kernelShap?.meanRelative ?? NaN, 4)}; ${fmt(built.validation.ratioToKernelShap ?? NaN, 2)} |`);

    // Exact values on the unseen rows: Kernel SHAP enumerating every coalition.
    const base = { space: m.space, background: m.background!, link, tolerance: 0 } as const;
    const exact = await kernelShap(m.model, test, { ...base, nSamples: 2 ** M - 2 });
    const mine = await amortisedShap(built.explainer, m.model, test, { space: m.space });
    const a = errors(mine, exact);
    const amortisedMeanAbs = mean(a.abs);

    log(`\nError against exact Shapley values on ${test.n} unseen rows (max over features per row; relative = / the row's attribution range):\n`);
    log('| method | coalitions | mean abs | p95 abs | mean rel | p95 rel | ms / row | model rows / row |');
    log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const single = async (fn: (one: Rows) => Promise<unknown>, reps: number) => {
      const times: number[] = [];
      for (let i = 0; i < reps; i++) {
        const one = slice(test, i % test.n, (i % test.n) + 1);
        const s = performance.now();
        await fn(one);
        times.push(performance.now() - s);
      }
      return times;
    };
    const amortisedTimes = await single((one) => amortisedShap(built.explainer, m.model, one, { space: m.space }), quick ? 200 : 1000);
    const perRowRows = mine.explanations[0].modelEvaluations;
    log(`| amortised | - | ${fmt(amortisedMeanAbs, 4)} | ${fmt(percentile(a.abs, 0.95), 4)} | ${fmt(mean(a.rel), 4)} | ${fmt(percentile(a.rel, 0.95), 4)} | ${fmt(percentile(amortisedTimes, 0.5), 2)} | ${perRowRows} |`);
    let sameError: { budget: number; ms: number } | undefined;
    for (const budget of [64, 128, 256, 512, 1024, 2088]) {
      if (budget >= 2 ** M - 2) break;
      const ks = await kernelShap(m.model, test, { ...base, nSamples: budget, seed: 1 });
      const k = errors(ks, exact);
      const times = await single((one) => kernelShap(m.model, one, { ...base, nSamples: budget, seed: 1 }), quick ? 5 : 15);
      const ms = percentile(times, 0.5);
      log(`| kernel-shap | ${budget} | ${fmt(mean(k.abs), 4)} | ${fmt(percentile(k.abs, 0.95), 4)} | ${fmt(mean(k.rel), 4)} | ${fmt(percentile(k.rel, 0.95), 4)} | ${fmt(ms, 2)} | ${ks.explanations[0].modelEvaluations} |`);
      if (!sameError && mean(k.abs) <= amortisedMeanAbs) sameError = { budget, ms };
    }

    // Raw predict of the rows one amortised call evaluates: the unit the latencies are stated in.
    const rawTimes: number[] = [];
    const probe = new Float32Array(perRowRows * test.d);
    for (let i = 0; i < perRowRows; i++) probe.set(test.data.subarray(0, test.d), i * test.d);
    for (let i = 0; i < (quick ? 200 : 1000); i++) {
      const s = performance.now();
      await m.model.predict({ data: probe, n: perRowRows, d: test.d });
      rawTimes.push(performance.now() - s);
    }
    const p50 = percentile(amortisedTimes, 0.5);
    log('\nSingle-row latency in-process (main thread, wasm):\n');
    log('| | p50 ms | p99 ms |\n| --- | ---: | ---: |');
    log(`| amortised-shap, 1 row | ${fmt(p50, 2)} | ${fmt(percentile(amortisedTimes, 0.99), 2)} |`);
    log(`| raw predict of its ${perRowRows} model rows | ${fmt(percentile(rawTimes, 0.5), 2)} | ${fmt(percentile(rawTimes, 0.99), 2)} |`);
    if (sameError) log(`| kernel-shap at ${sameError.budget} coalitions (the smallest budget with at most the amortised mean error) | ${fmt(sameError.ms, 2)} | - |`);
    else log(`| kernel-shap: no budget up to 2088 coalitions reached the amortised mean error | - | - |`);

    const batch = 1000;
    const rows = slice(ref, 0, Math.min(batch, ref.n));
    await amortisedShap(built.explainer, m.model, rows, { space: m.space });
    const reps = quick ? 3 : 10;
    let s = performance.now();
    for (let r = 0; r < reps; r++) await amortisedShap(built.explainer, m.model, rows, { space: m.space });
    const rate = (rows.n * reps) / ((performance.now() - s) / 1000);
    const big = new Float32Array(rows.n * perRowRows * rows.d);
    for (let i = 0; i < rows.n * perRowRows; i++) big.set(rows.data.subarray((i % rows.n) * rows.d, ((i % rows.n) + 1) * rows.d), i * rows.d);
    s = performance.now();
    for (let r = 0; r < reps; r++) await m.model.predict({ data: big, n: rows.n * perRowRows, d: rows.d });
    const rawRate = (rows.n * perRowRows * reps) / ((performance.now() - s) / 1000);
    log(`\nBatches of ${rows.n} rows: amortised-shap ${Math.round(rate).toLocaleString('en-US')} rows/s; raw predict of the same model rows ${Math.round(rawRate / perRowRows).toLocaleString('en-US')} rows/s (${Math.round(rawRate).toLocaleString('en-US')} model rows/s).`);
    built.explainer.dispose();
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--model');
  await selectBackend(process.env.TFJS_BACKEND);
  await amortisedBench({ model: at >= 0 ? args[at + 1] : undefined, quick: args.includes('--quick') || process.env.BENCH_QUICK === '1' });
}
