/**
 * A wasm abort must not poison the service: on a real forced backend failure (helpers/bombModel.ts)
 * the request answers 503 BACKEND_FAILURE, the worker thread is terminated and replaced, and the
 * next requests (including ones queued behind the failing one) succeed. A service that runs models
 * on its main thread reports not ready instead (run in a child process: the abort breaks the module
 * of the process it happens in).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { poolExecutor, type Executor } from '../service/executor.js';
import { BOMB_INSTANCE, writeBombModel } from './helpers/bombModel.js';
import { testConfig } from './helpers/config.js';

describe('server: a worker whose backend fails is replaced', function () {
  this.timeout(180_000);
  let dir: string;
  let app: App;
  let executor: Executor;
  let row: number[];

  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(path.join(os.tmpdir(), 'recycle-'));
    await writeBombModel(dir);
    await cp(path.resolve('samples/models/linear'), path.join(dir, 'linear'), { recursive: true });
    const repo = await loadModelRepository(dir);
    assert.deepEqual(repo.errors, []);
    const ref = repo.models.get('linear')!.reference!.rows;
    row = Array.from(ref.data.subarray(0, ref.d));
    executor = poolExecutor({ modelDir: dir, backend: 'wasm', threads: 1, preload: true });
    app = createApp({ registry: repo, config: testConfig({}), backend: 'wasm', executor });
  });
  after(async () => {
    await executor?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const linear = () => request(app).post('/v1/models/linear/predict').send({ instances: [row] });
  const bomb = () => request(app).post('/v1/models/bomb/predict').send({ instances: [BOMB_INSTANCE] });

  it('the failing request answers 503 BACKEND_FAILURE with Retry-After; the thread is replaced and the next request succeeds', async () => {
    const ok = await linear();
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const expected = ok.body.predictions;
    const failed = await bomb();
    assert.equal(failed.status, 503, JSON.stringify(failed.body));
    assert.equal(failed.body.error.code, 'BACKEND_FAILURE');
    assert.match(failed.body.error.message, /worker thread has been replaced/);
    assert.doesNotMatch(JSON.stringify(failed.body), /\/work\/|\.ts:|at [A-Za-z]+ \(/, 'no stack trace or path');
    assert.equal(failed.headers['retry-after'], '1');
    assert.equal(executor.stats().recycled, 1);
    const next = await linear();
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.deepEqual(next.body.predictions, expected);
    assert.equal(executor.stats().threads, 1);
  });

  it('requests queued behind the failing one are answered by the fresh thread', async () => {
    const answers = await Promise.all([bomb(), linear(), linear(), linear()]);
    assert.deepEqual(
      answers.map((r) => r.status),
      [503, 200, 200, 200],
      JSON.stringify(answers.map((r) => r.body)),
    );
    // The failing thread, plus the thread of the first test's failure: every recycle counted once.
    assert.equal(executor.stats().recycled, 2);
    assert.equal((await linear()).status, 200);
  });

  it('models on the main thread (WORKERS=0): 503 BACKEND_FAILURE, then /readyz reports not ready', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/fixtures/inlineBackendFailure.ts'], { encoding: 'utf8', timeout: 170_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    const report = JSON.parse(line) as {
      readyBefore: number;
      failed: { status: number; body: { error: { code: string; message: string } }; retryAfter: string | null };
      readyAfter: { status: number; body: { ready: boolean; reason?: string } };
    };
    assert.equal(report.readyBefore, 200);
    assert.equal(report.failed.status, 503);
    assert.equal(report.failed.body.error.code, 'BACKEND_FAILURE');
    assert.match(report.failed.body.error.message, /readyz/);
    assert.equal(report.readyAfter.status, 503);
    assert.equal(report.readyAfter.body.ready, false);
    assert.match(report.readyAfter.body.reason ?? '', /restart/);
  });
});
