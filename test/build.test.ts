/**
 * The production artifact: `npm run build` compiles the service to JavaScript in dist/, and the
 * compiled server (`node dist/server/main.js`, what `npm start` and the Dockerfile run) starts and
 * answers: /readyz, /healthz, and an explanation computed on a worker thread. It runs on plain node
 * with no loader: Node 20 cannot import a .ts file (ERR_UNKNOWN_FILE_EXTENSION), so an answer from
 * the worker thread means the thread ran dist/service/worker.js too.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getJson, postJson, startReplica, type Replica } from './helpers/replicas.js';

describe('build: the compiled output starts and answers', function () {
  this.timeout(300_000);
  let server: Replica | undefined;
  let data: string;

  before(async () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const built = spawnSync(npm, ['run', 'build'], { encoding: 'utf8' });
    assert.equal(built.status, 0, `npm run build failed:\n${built.stdout}\n${built.stderr}`);
    data = await mkdtemp(path.join(os.tmpdir(), 'build-'));
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
    server = await startReplica({ name: 'compiled', compiled: true, env: { DATA_DIR: data, WORKERS: '1', MODEL_POLL_SECONDS: '0' } });
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
});
