/**
 * The production artifact: `npm run build` compiles the service to JavaScript in dist/, and the
 * compiled server (`node dist/server/main.js`, what `npm start` and the Dockerfile run) starts and
 * answers: /readyz, /healthz, and an explanation computed on a worker thread. It runs on plain node
 * with no loader: Node 20 cannot import a .ts file (ERR_UNKNOWN_FILE_EXTENSION), so an answer from
 * the worker thread means the thread ran dist/service/worker.js too. Every task kind runs there: global
 * effects, counterfactuals, image and text methods answer exactly as the sources do in process, and a
 * wasm abort (helpers/bombModel.ts) answers 503 BACKEND_FAILURE and the compiled pool replaces its
 * thread.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import { createApp } from '../server/app.js';
import { BOMB_INSTANCE, writeBombModel } from './helpers/bombModel.js';
import { testConfig } from './helpers/config.js';
import { getJson, postJson, startReplica, type Replica } from './helpers/replicas.js';

/** The body without what differs between two computations of the same answer (times, cache state). */
function stable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stable);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k]) => !/(Ms|At)$/.test(k) && k !== 'cached' && k !== 'referenceEvaluations')
        .map(([k, x]) => [k, stable(x)]),
    );
  }
  return v;
}

/** Where two JSON values differ (numbers to 1e-9 relative: a sum may be added in another order), or undefined. */
function sameNumbers(a: unknown, b: unknown, at = '$'): string | undefined {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b)) ? undefined : `${at}: ${a} vs ${b}`;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${at}: length ${a.length} vs ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = sameNumbers(a[i], b[i], `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (ka.join() !== kb.join()) return `${at}: keys ${ka.join(',')} vs ${kb.join(',')}`;
    for (const k of ka) {
      const d = sameNumbers((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return a === b ? undefined : `${at}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

describe('build: the compiled output starts and answers', function () {
  this.timeout(300_000);
  let server: Replica | undefined;
  let data: string;
  let models: string;

  before(async () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const built = spawnSync(npm, ['run', 'build'], { encoding: 'utf8' });
    assert.equal(built.status, 0, `npm run build failed:\n${built.stdout}\n${built.stderr}`);
    data = await mkdtemp(path.join(os.tmpdir(), 'build-'));
    // Samples of every kind of input, and a model whose first call breaks the wasm backend.
    models = path.join(data, 'models');
    for (const name of ['credit', 'shapes', 'text']) await cp(path.resolve('samples/models', name), path.join(models, name), { recursive: true });
    await selectBackend('wasm');
    await writeBombModel(models);
  });
  after(async () => {
    await server?.stop();
    await rm(data, { recursive: true, force: true });
  });

  it('emits JavaScript for every layer the server runs, and npm start runs it', () => {
    for (const f of ['server/main.js', 'service/worker.js', 'jobs/worker.js', 'cli/main.js']) assert.ok(existsSync(path.join('dist', f)), f);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    assert.match(pkg.scripts.start, /^node .*dist\/server\/main\.js$/);
    assert.equal(pkg.scripts.prestart, 'npm run build', 'npm start on a fresh checkout builds first');
    assert.match(readFileSync('dist/service/executor.js', 'utf8'), /worker\$\{path\.extname/);
  });

  it('the Dockerfile, compose file and Kubernetes example run these same commands and files', () => {
    const docker = readFileSync('Dockerfile', 'utf8');
    assert.match(docker, /RUN npm ci\b/);
    // npm ci runs native/build.mjs (the package's install script): its sources must be in the image first.
    assert.ok(docker.indexOf('COPY native ./native') >= 0 && docker.indexOf('COPY native ./native') < docker.indexOf('RUN npm ci'), 'native/ is copied before npm ci');
    assert.match(docker, /COPY --from=prune .*native\/build\/Release/);
    assert.match(docker, /RUN npm run build\b/);
    assert.match(docker, /^USER node$/m);
    assert.match(docker, /^HEALTHCHECK .*\/healthz/ms);
    const started = (text: string) => [...text.matchAll(/"(dist\/[\w/]+\.js)"/g)].map((m) => m[1]);
    const files = [...started(docker), ...started(readFileSync('compose.yaml', 'utf8')), ...started(readFileSync('deploy/k8s/api.yaml', 'utf8')), ...started(readFileSync('deploy/k8s/worker.yaml', 'utf8'))];
    assert.deepEqual([...new Set(files)].sort(), ['dist/jobs/worker.js', 'dist/server/main.js']);
    for (const f of files) assert.ok(existsSync(f), `${f} is what npm run build emits`);
    const api = readFileSync('deploy/k8s/api.yaml', 'utf8');
    assert.match(api, /readinessProbe:\s*\n\s*httpGet: \{ path: \/readyz/);
    assert.match(api, /livenessProbe:\s*\n\s*httpGet: \{ path: \/healthz/);
    assert.match(readFileSync('deploy/k8s/hpa.yaml', 'utf8'), /name: cpu/);
  });

  it('node dist/server/main.js: ready, healthy, and explains on a compiled worker thread', async () => {
    server = await startReplica({
      name: 'compiled',
      compiled: true,
      env: { DATA_DIR: data, MODEL_DIR: models, WORKERS: '1', MODEL_POLL_SECONDS: '0', TFJS_BACKEND: 'wasm' },
    });
    assert.equal(server.child.spawnargs.includes('tsx'), false);
    assert.equal((await getJson(server, '/readyz')).status, 200);
    const health = await getJson(server, '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    const row = [27, 77300, 0.278, 4, 0, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6];
    const e = await postJson(server, '/v1/models/credit/explain', { instances: [row], parameters: { seed: 1 } });
    assert.equal(e.status, 200, JSON.stringify(e.body).slice(0, 500));
    const o = e.body.explanations[0].outputs[0];
    const sum = o.attributions.reduce((s: number, a: { attribution: number }) => s + a.attribution, 0);
    assert.ok(Math.abs(sum - (o.instanceOutputValue - o.baselineOutputValue)) < 1e-4, 'efficiency holds');
    assert.doesNotMatch(server.log(), /ERR_UNKNOWN_FILE_EXTENSION|tsx/);
  });

  it('the compiled worker runs every task kind as the sources do: effects, counterfactuals, image and text methods', async () => {
    assert.ok(server, 'the compiled server started');
    const repo = await loadModelRepository(models);
    const inProcess = createApp({ registry: repo, config: testConfig({}), backend: 'wasm' });
    const ref = (await readFile(path.join(models, 'shapes', 'reference.csv'), 'utf8')).trim().split('\n')[1].split(',').slice(0, 256).map(Number);
    const calls: [string, Record<string, unknown>][] = [
      ['/v1/models/credit/effects', { kind: 'ale', features: ['income', 'housing'], parameters: { bins: 6 } }],
      ['/v1/models/credit/counterfactuals', { instances: [[27, 30000, 0.6, 4, 3, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6]], parameters: { k: 1, maxEvaluations: 400 } }],
      ['/v1/models/shapes/explain', { instances: [ref], method: 'grad-cam' }],
      ['/v1/models/shapes/explain', { instances: [ref], method: 'occlusion' }],
      ['/v1/models/text/explain', { instances: ['a superb film with a boring ending'], method: 'integrated-gradients', parameters: { steps: 16 } }],
      ['/v1/models/text/explain', { instances: ['a superb film'], method: 'partition-shap' }],
    ];
    for (const [url, body] of calls) {
      const compiled = await postJson(server!, url, body);
      assert.equal(compiled.status, 200, `${url}: ${JSON.stringify(compiled.body).slice(0, 400)}`);
      const sources = await request(inProcess).post(url).send(body);
      assert.equal(sources.status, 200, JSON.stringify(sources.body).slice(0, 400));
      const where = sameNumbers(stable(compiled.body), stable(sources.body));
      assert.equal(where, undefined, `${url} ${JSON.stringify(body).slice(0, 80)}: differs at ${where}`);
    }
  });

  it('a wasm abort on a compiled worker thread: 503 BACKEND_FAILURE, the thread is replaced, the next request succeeds', async () => {
    assert.ok(server, 'the compiled server started');
    const failed = await postJson(server!, '/v1/models/bomb/predict', { instances: [BOMB_INSTANCE] });
    assert.equal(failed.status, 503, JSON.stringify(failed.body).slice(0, 400));
    assert.equal(failed.body.error.code, 'BACKEND_FAILURE');
    assert.match(failed.body.error.message, /worker thread has been replaced/);
    const row = [27, 77300, 0.278, 4, 0, 13900, 0.5, 7640, 0, 0, 1, 1, 1, 6];
    const next = await postJson(server!, '/v1/models/credit/predict', { instances: [row] });
    assert.equal(next.status, 200, JSON.stringify(next.body).slice(0, 400));
    assert.equal((await getJson(server!, '/readyz')).status, 200);
  });
});
