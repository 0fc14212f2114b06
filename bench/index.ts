/**
 * `npm run bench`: the figures behind the README's tables, all measured in this one run on this
 * machine. Each explainer's latency is a distribution (p50/p95/p99), and its cost is also stated as
 * a ratio to a raw predict of the same number of rows measured here, so the figure means something
 * on another machine too.
 *
 * BENCH_QUICK=1 runs fewer repetitions; BENCH_HTTP=0 skips the load tests of a listening server
 * (ordinary load, the hostile scenario of bench/hostile.ts and the review's heavy request of
 * bench/deadlineOverrun.ts);
 * BENCH_JOBS=1 adds the batch-job throughput (10,000 Kernel SHAP rows with 1 and 2 workers: ~10 min).
 * BENCH_AMORTISED=1 adds amortised SHAP on a held-out MLP and on credit (trains two explainers as jobs of a real server).
 * BENCH_MOBILENET=1 adds a real MobileNetV2 at 224x224 (bench/imageBench.ts, ~10 min; and its REST overhead in bench/imageRestBench.ts).
 * BENCH_SCALE=0 skips the scale-out figures (bench/scaleBench.ts: replicas on a local redis-server).
 */
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type LoadedModel } from '../models/repository.js';
import { kernelShap } from '../explainers/kernelShap.js';
import { integratedGradients } from '../explainers/integratedGradients.js';
import type { Rows } from '../explainers/types.js';
import { percentile } from './igBench.js';
import { benchImportance } from './importanceBench.js';
import { findSklearnPython, sklearnImportanceBench } from './sklearnImportance.js';
import { effectsBench, printEffects, type EffectsBenchRow } from './effectsBench.js';
import { renderBench } from './renderBench.js';
import { benchHttp, printLatency } from './http.js';
import { benchHostile, printHostile } from './hostile.js';
import { benchDeadlineOverrun, printDeadlineOverrun } from './deadlineOverrun.js';
import { jobsBench } from './jobsBench.js';
import { predictBench } from './predictBench.js';
import { igDefaultBench } from './igDefault.js';
import { imageBench } from './imageBench.js';
import { imageRestBench } from './imageRestBench.js';
import { benchCounterfactuals } from './counterfactualBench.js';
import { restBench } from './restBench.js';
import { amortisedBench } from './amortisedBench.js';
import { amortisedEstimateBench, printAmortisedEstimate } from './amortisedEstimateBench.js';
import { printScale, scaleBench } from './scaleBench.js';

const quick = process.env.BENCH_QUICK === '1';
const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function rowsOf(m: LoadedModel, n: number, from = m.reference!.rows): Rows {
  const k = Math.min(n, from.n);
  return { data: from.data.slice(0, k * from.d), n: k, d: from.d };
}

/** Raw predict throughput at a given batch size: the unit every ratio below is expressed in. */
async function predictRate(m: LoadedModel, rows: number): Promise<number> {
  const src = m.reference!.rows;
  const data = new Float32Array(rows * src.d);
  for (let i = 0; i < rows; i++) data.set(src.data.subarray((i % src.n) * src.d, ((i % src.n) + 1) * src.d), i * src.d);
  await m.model.predict({ data, n: rows, d: src.d });
  const reps = quick ? 3 : 8;
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await m.model.predict({ data, n: rows, d: src.d });
  return (rows * reps) / ((performance.now() - t0) / 1000);
}

/** Median time of one raw model call on `rows` rows: predict, or input gradients for IG. */
async function rawCallMs(m: LoadedModel, rows: number, gradients: boolean): Promise<number> {
  const src = m.reference!.rows;
  const k = Math.max(1, Math.round(rows));
  const data = new Float32Array(k * src.d);
  for (let i = 0; i < k; i++) data.set(src.data.subarray((i % src.n) * src.d, ((i % src.n) + 1) * src.d), i * src.d);
  const call = () => (gradients ? m.model.inputGradients!({ data, n: k, d: src.d }, 0) : m.model.predict({ data, n: k, d: src.d }));
  await call();
  const times: number[] = [];
  for (let r = 0; r < (quick ? 5 : 11); r++) {
    const t0 = performance.now();
    await call();
    times.push(performance.now() - t0);
  }
  return percentile(times, 0.5);
}

async function main() {
  const backend = await selectBackend(process.env.TFJS_BACKEND);
  const repo = await loadModelRepository('samples/models');
  console.log(`# tfjs-explainer benchmarks\n\nnode ${process.version}, ${os.availableParallelism()} cores, tfjs backend ${backend}, ${new Date().toISOString()}\n`);

  console.log('## Raw predict (rows/s at batch 10,000)\n');
  console.log('| model | rows/s |\n| --- | ---: |');
  const rate = new Map<string, number>();
  for (const [name, m] of repo.models) {
    if (!m.reference) continue; // text: token-id rows are measured in the image and text section
    const r = await predictRate(m, 10_000);
    rate.set(name, r);
    console.log(`| ${name} | ${Math.round(r).toLocaleString('en-US')} |`);
  }

  console.log('\n## Raw predict against numpy (seeded 20-64-64-3 softmax MLP, CPU time)');
  await predictBench(quick);

  console.log('\n## Amortised SHAP network forward pass: tfjs ops against the fused kernel (in process)\n');
  printAmortisedEstimate(await amortisedEstimateBench(quick));

  console.log('\n## Integrated Gradients at default settings against exact IG (seeded 20-64-64-3 softmax MLPs, CPU time)');
  await igDefaultBench(quick);

  const n = quick ? 10 : 30;
  console.log(`\n## Explain latency per instance (${n} reference rows, one request each, main thread)\n`);
  console.log('"ratio" = explain p50 / the time of one raw model call on the same number of rows (predict for Kernel SHAP, input gradients for IG), measured in this run.\n');
  console.log('| model | method | p50 ms | p95 ms | p99 ms | model rows / instance | ratio to raw call | converged |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, m] of repo.models) {
    if (!m.reference) continue;
    const isImage = m.inputShape.length > 1;
    const methods: ('kernel-shap' | 'integrated-gradients')[] = isImage ? ['integrated-gradients'] : ['kernel-shap', 'integrated-gradients'];
    for (const method of methods) {
      const rows = rowsOf(m, n);
      const times: number[] = [];
      let evals = 0;
      let converged = 0;
      for (let i = 0; i < rows.n; i++) {
        const one = { data: rows.data.subarray(i * rows.d, (i + 1) * rows.d), n: 1, d: rows.d };
        const t0 = performance.now();
        const e =
          method === 'kernel-shap'
            ? await kernelShap(m.model, one, { space: m.space, background: m.background!, link: m.metadata?.link ?? 'identity', seed: i })
            : await integratedGradients(m.model, one, { space: m.space, baseline: isImage ? 'zeros' : 'mean', background: m.background });
        times.push(performance.now() - t0);
        evals += e.explanations[0].modelEvaluations;
        converged += e.explanations[0].converged ? 1 : 0;
      }
      const perInstance = evals / rows.n;
      const rawMs = await rawCallMs(m, perInstance, method === 'integrated-gradients');
      const p50 = percentile(times, 0.5);
      console.log(
        `| ${name} | ${method} | ${fmt(p50)} | ${fmt(percentile(times, 0.95))} | ${fmt(percentile(times, 0.99))} | ${Math.round(perInstance).toLocaleString('en-US')} | ${fmt(p50 / rawMs, 2)} | ${converged}/${rows.n} |`,
      );
    }
  }

  console.log('\n## Permutation importance (reference set, 5 repeats)\n');
  console.log('| model | metric | rows | p50 ms | model rows/s | raw predict rows/s (same batch) |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const [name, m] of repo.models) {
    if (m.inputShape.length > 1 || !m.reference) continue;
    const metric = m.metadata?.task === 'regression' ? 'r2' : 'accuracy';
    const r = await benchImportance(m.model, m.reference.rows, m.reference.labels, { space: m.space, metric, repeats: 5, task: m.metadata?.task, runs: quick ? 2 : 5 });
    console.log(`| ${name} | ${metric} | ${m.reference.rows.n} | ${fmt(r.p50Ms)} | ${Math.round(r.rowsPerSec).toLocaleString('en-US')} | ${Math.round(r.predictRowsPerSec).toLocaleString('en-US')} |`);
  }

  const sk = findSklearnPython();
  if (!sk) console.log('\n(scikit-learn comparison skipped: no python3 with sklearn; Debian: apt-get install python3-sklearn)');
  else {
    console.log(`\n## Permutation importance against scikit-learn ${sk.version} (same network in numpy float32, same data, metric and repeats)\n`);
    console.log('"ratio" = sklearn permutation_importance seconds / ours, medians of runs in this process; every column permuted on its own on both sides.\n');
    console.log('| model | metric | rows x columns | ours ms | sklearn ms | ratio | max |Δ mean importance| |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const [name, m] of repo.models) {
      if (m.inputShape.length > 1 || !m.reference) continue;
      const r = await sklearnImportanceBench(name, m, sk.python, { runs: quick ? 2 : 5 });
      if (typeof r === 'string') console.log(`| ${name} | skipped: ${r} | | | | | |`);
      else console.log(`| ${name} | ${r.metric} | ${r.rows} x ${r.features} | ${fmt(r.oursMs)} | ${fmt(r.sklearnMs)} | ${fmt(r.sklearnMs / r.oursMs, 2)} | ${r.maxMeanDiff.toFixed(3)} |`);
    }
  }

  const credit = repo.models.get('credit');
  if (credit) {
    console.log('\n## Counterfactuals on credit (rejected reference rows)\n');
    for (const line of await benchCounterfactuals(credit, { single: quick ? 10 : 30, quick })) console.log(line);
  }
  console.log('\n## Global effects (PD, ALE) on the reference set\n');
  console.log('"ratio" = model rows/s of the whole request / raw predict rows/s on batches of the size it sent, measured in this run; "naive PD" predicts one grid point per call.\n');
  const effectRows: EffectsBenchRow[] = [];
  for (const [name, m] of repo.models) if (m.inputShape.length === 1) effectRows.push(...(await effectsBench(name, m, { runs: quick ? 2 : 5 })));
  printEffects(effectRows);

  console.log('\n## Effects and counterfactuals through the service (inline executor), and as jobs\n');
  for (const line of await restBench(repo, { quick })) console.log(line);

  console.log('\n## Kernel SHAP error against exact Shapley values at equal budgets\n');
  // Its own script (brute-force oracle, cached in the OS temp folder after the first run; many seeds);
  // run here with fewer seeds. More: --seeds 30.
  spawnSync(
    process.execPath,
    ['--import', 'tsx', 'bench/kernelShapAccuracy.ts', '--seeds', quick ? '3' : '10', ...(quick ? ['--instances', '2', '--small', '0'] : [])],
    { stdio: 'inherit' },
  );

  console.log('\n## Kernel SHAP cost beyond the model, and rows per request\n');
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/kernelShapSpeed.ts', ...(quick ? ['--quick', '1'] : [])], { stdio: 'inherit' });

  console.log('\n## Image and text explainers (BENCH_MOBILENET=1 adds MobileNetV2 at 224x224, ~10 min)');
  await imageBench({ quick });
  await imageRestBench({ quick });

  console.log('\n## Render (server-side SVG)\n');
  const rb = renderBench({ runs: quick ? 100 : 500 });
  console.log('| chart | p50 ms | p95 ms | target ms |\n| --- | ---: | ---: | ---: |');
  console.log(`| waterfall, 20 features | ${fmt(rb.waterfall20.p50, 2)} | ${fmt(rb.waterfall20.p95, 2)} | ${rb.waterfall20.targetMs} |`);
  console.log(`| beeswarm, 2000 points | ${fmt(rb.beeswarm2000.p50, 2)} | ${fmt(rb.beeswarm2000.p95, 2)} | ${rb.beeswarm2000.targetMs} |`);

  if (process.env.BENCH_HTTP !== '0') {
    console.log('\n## HTTP under concurrent load (real server, 2 worker threads, credit model)\n');
    printLatency(await benchHttp(quick ? 3 : 5));
    console.log('\n## Hostile load: 200 connections on /healthz while cold explanations saturate the workers, plus junk\n');
    printHostile(await benchHostile(quick ? 5 : 10));
    printDeadlineOverrun(await benchDeadlineOverrun());
  }

  if (process.env.BENCH_SCALE !== '0') {
    console.log('\n## Scale-out: API replicas sharing Redis\n');
    const s = await scaleBench({ quick });
    if (s) printScale(s);
  }

  if (process.env.BENCH_JOBS === '1') {
    console.log('\n## Batch jobs: 10,000 Kernel SHAP rows on credit (nSamples auto)\n');
    const r = await jobsBench({ rows: 10_000 });
    console.log('| runner | workers | seconds | rows/s |\n| --- | ---: | ---: | ---: |');
    for (const run of r.runs) console.log(`| ${run.mode === 'threads' ? 'in-process threads' : 'Redis worker processes'} | ${run.workers} | ${fmt(run.seconds)} | ${fmt(run.rowsPerSecond)} |`);
  }

  if (process.env.BENCH_AMORTISED === '1') {
    for (const model of ['mlp:1', 'credit']) {
      console.log(`\n## Amortised SHAP (${model}): training, error against exact Shapley values, latency\n`);
      await amortisedBench({ model, quick });
    }
  }
}

await main();
