/**
 * Effects and counterfactuals through the service (an app with the inline executor, called with
 * supertest), against the same explainer calls made directly in the same run: what validation,
 * planning, the task hop, caching and JSON cost on top of the math. Also the rows per second of a
 * counterfactuals job and an effects job over the credit reference set on the embedded runner.
 * `npx tsx bench/restBench.ts` runs it alone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import request from 'supertest';
import { counterfactuals } from '../explainers/counterfactuals/counterfactuals.js';
import { computeEffects } from '../explainers/effects/index.js';
import { LocalJobRunner } from '../jobs/runner.js';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { loadConfig } from '../server/config.js';
import { createApp } from '../server/app.js';
import { counterfactualOptionsFromMetadata } from '../service/counterfactualConstraints.js';
import { effectsInfo } from '../service/effectsTask.js';
import { inlineExecutor } from '../service/executor.js';
import { percentile } from './igBench.js';

async function timed(runs: number, f: (i: number) => Promise<unknown>): Promise<number[]> {
  await f(-1);
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f(i);
    ms.push(performance.now() - t0);
  }
  return ms;
}

export async function restBench(repo: ModelRepository, options: { quick?: boolean } = {}): Promise<string[]> {
  const runs = options.quick ? 3 : 10;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rest-bench-'));
  const runner = new LocalJobRunner({ dir: path.join(dataDir, 'jobs'), executor: inlineExecutor(repo), sync: false });
  await runner.start();
  const app = createApp({ registry: repo, config: loadConfig({ DATA_DIR: dataDir }), backend: 'wasm', jobRunner: runner });
  const m = repo.models.get('credit')!;
  const ref = m.reference!.rows;
  const lines: string[] = [];
  try {
    // Effects: PD of every feature on the 1000 reference rows, grid 20.
    const features = ['age', 'income', 'debt_ratio', 'late_payments', 'savings', 'housing'];
    const body = (i: number) => ({ kind: 'pd', features, parameters: { resolution: 20, seed: 1000 + i } });
    const direct = await timed(runs, () =>
      computeEffects(
        m.model,
        m.space,
        { kind: 'pd', features, parameters: { resolution: 20 } },
        { defaultData: ref, link: 'logit', ...effectsInfo(m) },
      ),
    );
    const cold = await timed(runs, (i) => request(app).post('/v1/models/credit/effects').send(body(i)));
    const hot = await timed(runs, () => request(app).post('/v1/models/credit/effects').send(body(0)));
    // Counterfactuals: one rejected row per request.
    const p = await m.model.predict(ref);
    const rejected = [...Array(ref.n).keys()].filter((i) => p[i] < 0.5).slice(0, runs + 1);
    const row = (i: number) => Array.from(ref.data.subarray(rejected[i + 1] * ref.d, (rejected[i + 1] + 1) * ref.d));
    const fromMeta = counterfactualOptionsFromMetadata(m.metadata);
    const cfDirect = await timed(runs, (i) =>
      counterfactuals(
        m.model,
        { data: Float32Array.from(row(i)), n: 1, d: ref.d },
        { space: m.space, reference: ref, ...fromMeta, desired: { class: 1 } },
      ),
    );
    const cfRest = await timed(runs, (i) =>
      request(app)
        .post('/v1/models/credit/counterfactuals')
        .send({ instances: [row(i)], desired: { class: 1 }, parameters: { deadlineMs: 60_000 } }),
    );
    const p50 = (xs: number[]) => percentile(xs, 0.5);
    lines.push('| request | direct call p50 ms | over REST p50 ms | REST / direct | cached p50 ms |');
    lines.push('| --- | ---: | ---: | ---: | ---: |');
    lines.push(
      `| POST /effects, pd, 6 features x grid 20 x 1000 rows | ${p50(direct).toFixed(1)} | ${p50(cold).toFixed(1)} | ${(p50(cold) / p50(direct)).toFixed(2)} | ${p50(hot).toFixed(1)} |`,
    );
    lines.push(
      `| POST /counterfactuals, 1 rejected row, k 3 | ${p50(cfDirect).toFixed(1)} | ${p50(cfRest).toFixed(1)} | ${(p50(cfRest) / p50(cfDirect)).toFixed(2)} | |`,
    );

    // Jobs over the reference set.
    lines.push('');
    lines.push('| job over the 1000 credit reference rows | seconds | rows/s |');
    lines.push('| --- | ---: | ---: |');
    for (const [what, job] of [
      ['counterfactuals, k 1', { method: 'counterfactuals', parameters: { k: 1, desired: { class: 1 } } }],
      ['effects, 6 features x grid 20', { method: 'effects', parameters: { features, resolution: 20 } }],
    ] as const) {
      const t0 = performance.now();
      const sub = await request(app)
        .post('/v1/jobs')
        .send({ model: 'credit', dataset: 'reference', ...job });
      const view = await runner.waitFor(sub.body.id, 600_000);
      const s = (performance.now() - t0) / 1000;
      lines.push(`| ${what} | ${s.toFixed(2)} | ${Math.round(view.rowsDone / s)} |`);
    }
  } finally {
    await runner.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await selectBackend(process.env.TFJS_BACKEND);
  const repo = await loadModelRepository('samples/models');
  for (const l of await restBench(repo, { quick: process.env.BENCH_QUICK === '1' })) console.log(l);
}
