/**
 * Cancellation on real worker threads (piscina, the sample credit model): a client that leaves frees
 * the thread for the next request, whether its task was running (the thread sees the shared flag at
 * its next model call and is not terminated) or still queued (it leaves the queue). Checked through
 * /metrics counters and through a second request whose own deadline (3 s) is far shorter than the
 * abandoned task (tens of millions of model rows): it can only succeed if the thread was freed.
 */
import { strict as assert } from 'node:assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import request from 'supertest';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import { poolExecutor, type Executor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';

const SAMPLES = path.resolve('samples/models');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cancellation on worker threads', function () {
  this.timeout(180_000);
  let repo: ModelRepository;
  let pool: Executor;
  let app: App;
  let server: http.Server;
  let port: number;

  before(async () => {
    const backend = await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    pool = poolExecutor({ modelDir: SAMPLES, backend, threads: 1, maxQueue: 4, preload: true });
    app = createApp({ registry: repo, config: testConfig({ DEADLINE_MS: '120000' }), backend, executor: pool });
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server?.close();
    await pool?.close();
  });

  const rows = (n: number, offset: number) => {
    const ref = repo.models.get('credit')!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((i + offset) * ref.d, (i + offset + 1) * ref.d)));
  };
  /** 60 instances x 4094 exact coalitions x 100 background rows: ~25 million model rows, many seconds on one thread. */
  const heavy = (offset: number) => JSON.stringify({ instances: rows(60, offset), parameters: { nSamples: 20000, tolerance: 1e-9 } });

  /** A request sent with node's http client, so the test can drop the connection. */
  function send(body: string): http.ClientRequest {
    const req = http.request({
      port,
      host: '127.0.0.1',
      path: '/v1/models/credit/explain',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => undefined);
    req.end(body);
    return req;
  }

  async function until(what: string, cond: () => boolean | Promise<boolean>, tries = 400): Promise<void> {
    for (let i = 0; i < tries; i++) {
      if (await cond()) return;
      await sleep(25);
    }
    assert.fail(`timed out waiting for ${what}`);
  }

  const metric = async (pattern: RegExp) => {
    const m = pattern.exec((await request(app).get('/metrics')).text);
    return m ? Number(m[1]) : 0;
  };

  it('a running task whose client left stops at its next model call: the next request gets the thread', async () => {
    const explainedBefore = await metric(/explanation_duration_seconds_count\{model="credit",method="kernel-shap"\} (\d+)/);
    const abandoned = send(heavy(100));
    await until('the task to be on the thread', () => pool.stats().running === 1 && pool.stats().queued === 0);
    await sleep(300); // let the thread get well into it
    abandoned.destroy();
    // Its own deadline (3 s) is far shorter than the abandoned task: only a freed thread answers it.
    const next = await request(app)
      .post('/v1/models/credit/explain')
      .send({ instances: rows(1, 500), parameters: { nSamples: 300, deadlineMs: 3000 } });
    assert.equal(next.status, 200, JSON.stringify(next.body).slice(0, 300));
    assert.equal(await metric(/worker_tasks_cancelled_total\{kind="explain",stage="running"\} (\d+)/), 1);
    assert.equal(await metric(/http_requests_aborted_total (\d+)/), 1);
    // Only the small request's instance was ever explained.
    assert.equal(await metric(/explanation_duration_seconds_count\{model="credit",method="kernel-shap"\} (\d+)/), explainedBefore + 1);
    // The thread was not terminated: no recycle, and it still serves.
    assert.equal(await metric(/worker_threads_recycled_total\{[^}]*\} (\d+)/), 0);
  });

  it('a queued task whose client left leaves the queue at once', async () => {
    const running = send(heavy(200));
    await until('the first task to run', () => pool.stats().running === 1);
    const queued = send(heavy(300));
    await until('the second task to queue', () => pool.stats().queued === 1);
    queued.destroy();
    await until('the queue to empty', () => pool.stats().queued === 0);
    assert.equal(await metric(/worker_tasks_cancelled_total\{kind="explain",stage="queued"\} (\d+)/), 1);
    running.destroy();
    await until('the thread to be free', () => pool.stats().running === 0);
    assert.equal(await metric(/worker_tasks_cancelled_total\{kind="explain",stage="running"\} (\d+)/), 2);
  });
});
