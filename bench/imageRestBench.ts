/**
 * What the REST layer adds to image and text explanations: CPU time of POST /explain (JSON body
 * parsed into rows, planning, the explainer, one attribution object per pixel or token, the JSON
 * answer; the in-process client only sends the body and counts the answer's bytes) against the
 * explainer called directly on the same rows, in the same run, and the size of the answer. CPU time (process.cpuUsage), since the machine is shared; the ratio is the figure.
 * The shapes and text samples always; the real MobileNetV2 at 224x224 with BENCH_MOBILENET=1.
 * `npx tsx bench/imageRestBench.ts` runs it alone.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { loadServiceConfig } from '../service/config.js';
import { inlineExecutor } from '../service/executor.js';
import { layoutOf, parseInstances } from '../service/instances.js';
import { planExplanation, runMethod, type ExplainCall } from '../service/methods/index.js';
import { loadConfig } from '../server/config.js';

interface Case {
  model: string;
  instance: unknown;
  method: string;
  parameters: Record<string, unknown>;
  outputs: number[];
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function measure(repo: ModelRepository, c: Case, reps: number): Promise<{ direct: number; rest: number; bytes: number }> {
  const m = repo.models.get(c.model)!;
  const config = loadConfig({ DATA_DIR: path.join(os.tmpdir(), 'tfjs-explainer-bench'), CACHE_MAX_BYTES: '0' });
  const svc = loadServiceConfig({});
  const app = createApp({ registry: repo, config, backend: 'wasm', executor: inlineExecutor(repo) });
  const rows = parseInstances([c.instance], layoutOf(m)).rows;
  const plan = planExplanation(svc, m, c.method as ExplainCall['method'], c.parameters);
  const call = { method: plan.method, options: { ...plan.options, outputs: c.outputs, deadline: Date.now() + 600_000 } } as ExplainCall;
  const direct = () => runMethod(call, m.model, rows, m.space, undefined, m.tokenizer);
  // The client runs in this process too: it keeps the answer's bytes and does not parse them.
  const body = JSON.stringify({ instances: [c.instance], method: c.method, outputs: c.outputs, parameters: c.parameters });
  const rest = () =>
    request(app)
      .post(`/v1/models/${c.model}/explain`)
      .set('content-type', 'application/json')
      .buffer(true)
      .parse((res, done) => {
        let n = 0;
        res.on('data', (chunk: Buffer) => (n += chunk.length));
        res.on('end', () => done(null, n));
      })
      .send(body);
  await direct();
  const d: number[] = [];
  const r: number[] = [];
  let bytes = 0;
  for (let k = 0; k < reps; k++) {
    let t = cpuMs();
    await direct();
    d.push(cpuMs() - t);
    t = cpuMs();
    const res = await rest();
    r.push(cpuMs() - t);
    if (res.status !== 200) throw new Error(`${c.model} ${c.method}: answered ${res.status}`);
    bytes = res.body as number;
  }
  return { direct: median(d), rest: median(r), bytes };
}

export async function imageRestBench(opts: { quick?: boolean } = {}): Promise<void> {
  const reps = opts.quick ? 3 : 5;
  const repo = await loadModelRepository(path.resolve('samples/models'));
  const ref = repo.models.get('shapes')!.reference!.rows;
  const img = Array.from(ref.data.subarray(0, ref.d));
  const text = (JSON.parse(await readFile('samples/models/text/sentences.json', 'utf8')) as { sentences: { text: string }[] }).sentences[1].text;
  const cases: Case[] = [
    ...(['integrated-gradients', 'smoothgrad', 'grad-cam', 'occlusion', 'partition-shap'] as const).map((method) => ({ model: 'shapes', instance: img, method, parameters: {}, outputs: [2] })),
    ...(['integrated-gradients', 'partition-shap'] as const).map((method) => ({ model: 'text', instance: text, method, parameters: {}, outputs: [1] })),
  ];
  let dir: string | undefined;
  let big: ModelRepository | undefined;
  if (process.env.BENCH_MOBILENET === '1') {
    const { mobileNetFolder } = await import('../test/helpers/mobilenet.js');
    dir = await mkdtemp(path.join(os.tmpdir(), 'bench-model-dir-'));
    await cp(await mobileNetFolder(), path.join(dir, 'mobilenet'), { recursive: true });
    big = await loadModelRepository(dir);
  }
  console.log('\n### REST against the explainer called directly (CPU ms per instance, median)\n');
  console.log('| model | method | explainer ms | POST /explain ms | ratio | answer bytes |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: |');
  const row = (c: Case, x: { direct: number; rest: number; bytes: number }) =>
    console.log(`| ${c.model} | ${c.method} | ${x.direct.toFixed(1)} | ${x.rest.toFixed(1)} | ${(x.rest / x.direct).toFixed(2)} | ${x.bytes.toLocaleString('en-US')} |`);
  for (const c of cases) row(c, await measure(repo, c, reps));
  if (big) {
    const image = Array.from({ length: 224 }, (_, y) => Array.from({ length: 224 }, (_, x) => [x / 255, y / 255, 0.5]));
    for (const [method, parameters] of [
      ['grad-cam', {}],
      ['smoothgrad', { samples: 2, seed: 1 }],
    ] as const)
      row({ model: 'mobilenet', instance: image, method, parameters, outputs: [2] }, await measure(big, { model: 'mobilenet', instance: image, method, parameters, outputs: [2] }, 3));
    for (const m of big.models.values()) m.model.dispose();
    await rm(dir!, { recursive: true, force: true });
  }
  for (const m of repo.models.values()) m.model.dispose();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await selectBackend(process.env.TFJS_BACKEND ?? 'wasm');
  await imageRestBench({ quick: process.env.BENCH_QUICK === '1' });
}
