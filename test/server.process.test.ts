/**
 * The real server process (`server/main.ts`, one worker thread, the sample models), as it runs in
 * production:
 * - memory: after a heavy request (a fairness report whose Kernel SHAP sample evaluates tens of
 *   millions of model rows, and a 400-instance explanation at its deadline) the process's resident
 *   memory comes back within 20% of its level before (after warm-up), read from its own /metrics;
 *   a bounded ratio, no timings;
 * - slow or truncated bodies: a request whose body stops arriving is answered 408 and closed
 *   (REQUEST_TIMEOUT_MS), instead of holding its connection.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

describe('server process: memory given back, slow bodies cut off', function () {
  this.timeout(300_000);
  let child: ChildProcess | undefined;
  let url = '';
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bounded-process-'));
  let log = '';

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: {
        ...process.env,
        PORT: String(port),
        WORKERS: '1',
        LOG_LEVEL: 'warn',
        DATA_DIR: dataDir,
        JOBS_DIR: path.join(dataDir, 'jobs'),
        REQUEST_TIMEOUT_MS: '3000',
        HEADERS_TIMEOUT_MS: '2000',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d) => (log += d));
    for (let i = 0; i < 600; i++) {
      try {
        if ((await fetch(`${url}/readyz`)).ok) return;
      } catch {
        /* not listening yet */
      }
      if (child.exitCode !== null) throw new Error(`server exited: ${log}`);
      await sleep(100);
    }
    throw new Error(`server not ready: ${log}`);
  });
  after(() => {
    child?.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (route: string, body: unknown) =>
    fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const rss = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return Number(/^process_resident_memory_bytes (\S+)/m.exec(text)![1]);
  };

  it('resident memory comes back within 20% of its level before a heavy request', async () => {
    const credit = JSON.parse(readFileSync('samples/models/credit/expected.json', 'utf8')) as { rows: number[][] };
    // Warm-up, as a service in use: every code path the heavy requests take, at their default sizes.
    assert.equal((await post('/v1/models/credit/explain', { instances: credit.rows.slice(0, 20) })).status, 200);
    assert.equal((await post('/v1/models/credit/fairness', {})).status, 200);
    await sleep(1000);
    const before = await rss();

    // ~45 million model rows of Kernel SHAP (1000 rows x 900 coalitions x 50 background rows).
    const fair = await post('/v1/models/credit/fairness', {
      attributions: { sampleSize: 2000, nSamples: 900, maxBackground: 50 },
      deadlineMs: 60000,
    });
    assert.equal(fair.status, 200, await fair.clone().text());
    await fair.arrayBuffer();
    // 400 distinct instances at the default deadline: answered (or stopped at the deadline).
    const instances = Array.from({ length: 400 }, (_, i) =>
      credit.rows[i % credit.rows.length].map((v, j) => (j === 0 ? v + i * 1e-3 : v)),
    );
    const explain = await post('/v1/models/credit/explain', { instances });
    assert.ok(explain.status === 200 || explain.status === 503, String(explain.status));
    await explain.arrayBuffer();

    let after = await rss();
    for (let i = 0; i < 20 && after > 1.2 * before; i++) {
      await sleep(500);
      after = await rss();
    }
    const mb = (b: number) => `${Math.round(b / 2 ** 20)} MB`;
    assert.ok(after <= 1.2 * before, `resident memory ${mb(before)} before, ${mb(after)} after`);
  });

  it('a body that stops arriving is answered 408 and its connection closed', async () => {
    const { port } = new URL(url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(
          'POST /v1/models/credit/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"inst',
        );
      });
      let got = '';
      socket.on('data', (d) => (got += d));
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 408/);
  });
});
