/**
 * Two API replicas as real processes (the compiled `node dist/server/main.js`, built first, on their
 * own localhost ports, one worker thread each, each with its own DATA_DIR) sharing a real redis-server and one
 * MODEL_DIR, as they would behind a load balancer:
 *
 * - an explanation computed on A is a hit on B (X-Cache HIT; B's model-evaluation histogram does
 *   not move), and six identical concurrent requests spread over both compute once (the histogram
 *   counts summed over the replicas grow by one per instance);
 * - a permalink minted on A renders on B (records come from Redis: B's DATA_DIR never saw it), and
 *   /drift/live on either sees both replicas' traffic;
 * - the replica holding a computation's lock is killed with SIGKILL while the other waits on it: the
 *   other takes over after the lock expires and answers;
 * - Redis stopped mid-traffic: requests keep answering (level one, no 5xx) and sharing resumes when
 *   Redis is back;
 * - a new version published into MODEL_DIR under load: both replicas switch within the poll
 *   interval without a failed request, and every answer matches the weights of the version it
 *   names; a new model folder is served by both without a restart; a versions comparison is
 *   computed once for both.
 *
 * Without redis-server the suite is skipped with a message, except in CI (CI set), where it fails.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { redisServerBinary, startDevRedis, type DevRedis } from '../jobs/devRedis.js';
import { getJson, metricsOf, metricValue, postJson, startReplica, type Replica } from './helpers/replicas.js';
import { linearPredict, linearVersion, linearWeights, publish, SAMPLES } from './helpers/versions.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

describe('scale-out: two API replicas sharing Redis and MODEL_DIR', function () {
  this.timeout(600_000);
  let redis: DevRedis | undefined;
  let dir: string;
  let modelDir: string;
  let a: Replica;
  let b: Replica;
  const replicas: Replica[] = [];
  const prefix = `replicas-${process.pid}`;
  let credit: number[][];
  let v1: { w: number[]; b: number };

  const env = (name: string) => ({
    REDIS_URL: redis!.url,
    REDIS_PREFIX: prefix,
    JOBS_PREFIX: `${prefix}-jobs`,
    JOBS_QUEUE: `${prefix}-chunks`,
    MODEL_DIR: modelDir,
    DATA_DIR: path.join(dir, `data-${name}`),
    WORKERS: '1',
    MODEL_POLL_SECONDS: '1',
    MODEL_DRAIN_SECONDS: '60',
    FLIGHT_LOCK_MS: '2000',
  });
  const start = async (name: string) => {
    // The compiled output, as in production (and it starts in half the time of the sources under tsx).
    const r = await startReplica({ name, env: env(name), compiled: true, readyMs: 240_000 });
    replicas.push(r);
    return r;
  };
  const evaluations = async (r: Replica, model = 'credit') =>
    metricValue(await metricsOf(r), 'explanation_model_evaluations_count', { model, method: 'kernel-shap' });

  before(async function () {
    const bin = redisServerBinary();
    if (!bin) {
      if (process.env.CI) throw new Error('redis-server is not installed, and CI is set: install it (apt-get install redis-server)');
      console.warn('    skipping the replica tests: redis-server is not installed (apt-get install redis-server)');
      this.skip();
    }
    const built = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { encoding: 'utf8' });
    assert.equal(built.status, 0, `npm run build failed:\n${built.stdout}\n${built.stderr}`);
    redis = await startDevRedis(bin);
    dir = await mkdtemp(path.join(os.tmpdir(), 'replicas-'));
    modelDir = path.join(dir, 'models');
    await mkdir(path.join(modelDir, 'linear', 'versions'), { recursive: true });
    await cp(path.join(SAMPLES, 'credit'), path.join(modelDir, 'credit'), { recursive: true });
    await cp(path.join(SAMPLES, 'linear'), path.join(modelDir, 'linear', 'versions', '1'), { recursive: true });
    v1 = await linearWeights(path.join(modelDir, 'linear', 'versions', '1'));
    [a, b] = await Promise.all([start('a'), start('b')]);
    const { readFileSync } = await import('node:fs');
    const lines = readFileSync(path.join(SAMPLES, 'credit', 'reference.csv'), 'utf8').trim().split('\n');
    const header = lines[0].split(',');
    const features = (await getJson(a, '/v1/models/credit')).body.features.map((f: { name: string }) => f.name) as string[];
    credit = lines.slice(1, 200).map((l) => {
      const cells = l.split(',');
      return features.map((f) => Number(cells[header.indexOf(f)]));
    });
  });
  after(async () => {
    for (const r of replicas) await r.stop();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an explanation computed on A is a hit on B', async () => {
    const body = { instances: [credit[0]], parameters: { seed: 1 } };
    const before = await evaluations(b);
    const onA = await postJson(a, '/v1/models/credit/explain', body);
    assert.equal(onA.status, 200, JSON.stringify(onA.body));
    assert.equal(onA.headers.get('x-cache'), 'MISS');
    const onB = await postJson(b, '/v1/models/credit/explain', body);
    assert.equal(onB.status, 200);
    assert.equal(onB.headers.get('x-cache'), 'HIT');
    assert.deepEqual(onB.body.explanations, onA.body.explanations);
    assert.deepEqual(onB.body.diagnostics, onA.body.diagnostics);
    assert.equal(onB.body.id, onA.body.id);
    assert.equal(await evaluations(b), before, 'B computed nothing');
    assert.ok(metricValue(await metricsOf(b), 'explanation_cache_shared_hits_total') >= 1);
    const health = (await getJson(b, '/healthz')).body;
    assert.equal(health.cache.shared.up, true);
  });

  it('six identical concurrent requests spread over both replicas compute once', async () => {
    const body = { instances: [credit[1], credit[2]], parameters: { seed: 2, nSamples: 20000 } };
    const before = (await evaluations(a)) + (await evaluations(b));
    const answers = await Promise.all([a, b, a, b, a, b].map((r) => postJson(r, '/v1/models/credit/explain', body)));
    for (const r of answers) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.explanations, answers[0].body.explanations);
    }
    const after = (await evaluations(a)) + (await evaluations(b));
    assert.equal(after - before, 2, 'two instances, each computed once over both replicas');
    assert.ok(answers.filter((r) => r.headers.get('x-cache') === 'MISS').length <= 1);
  });

  it('a permalink minted on A renders on B; /drift/live on either sees both replicas', async () => {
    const minted = await postJson(a, '/v1/models/credit/explain', { instances: [credit[3]], parameters: { seed: 3 } });
    assert.equal(minted.status, 200);
    const link = await getJson(b, minted.body.links.json);
    assert.equal(link.status, 200, JSON.stringify(link.body));
    assert.deepEqual(link.body.explanations, minted.body.explanations);
    const svg = await fetch(`${b.url}${minted.body.links.svg}`);
    assert.equal(svg.status, 200);
    assert.match(await svg.text(), /<svg/);

    const seen = async () => (await getJson(a, '/v1/models/credit/drift/live?attributions=false')).body;
    const before = (await getJson(a, '/v1/models/credit/drift/live?attributions=false')).body.current?.totalSeen ?? 0;
    assert.equal((await postJson(a, '/v1/models/credit/predict', { instances: credit.slice(10, 40) })).status, 200);
    assert.equal((await postJson(b, '/v1/models/credit/predict', { instances: credit.slice(40, 70) })).status, 200);
    const live = await until('both replicas\' rows in the live window', async () => {
      const d = await seen();
      return d.current?.totalSeen >= before + 60 ? d : undefined;
    });
    assert.equal(live.current.source, 'live');
    const onB = (await getJson(b, '/v1/models/credit/drift/live?attributions=false')).body;
    assert.equal(onB.current.totalSeen, live.current.totalSeen);
  });

  it('the replica holding a computation is killed with SIGKILL: the other waits, then computes', async () => {
    // Slow enough to kill mid-computation: three instances at the largest sample budget.
    const body = { instances: [credit[100], credit[101], credit[102]], parameters: { seed: 5, nSamples: 100000, deadlineMs: 120000 } };
    const raw = new Redis(redis!.url);
    try {
      const onA = postJson(a, '/v1/models/credit/explain', body).catch((e: unknown) => e);
      await until('A holds the locks', async () => (await raw.keys(`${prefix}:cache:lock:*`)).length === 3, 60_000);
      const onB = postJson(b, '/v1/models/credit/explain', body);
      await until('B waits on them', async () => metricValue(await metricsOf(b), 'explanation_cache_shared_waiting') === 3, 30_000);
      const fallbacksBefore = metricValue(await metricsOf(b), 'explanation_cache_shared_fallbacks_total');
      const evalsBefore = await evaluations(b);
      a.child.kill('SIGKILL');
      await a.exited;
      assert.ok((await onA) instanceof Error, 'A died with its request');
      const got = await onB;
      assert.equal(got.status, 200, JSON.stringify(got.body).slice(0, 500));
      assert.equal(got.body.explanations.length, 3);
      assert.equal(got.headers.get('x-cache'), 'MISS');
      assert.equal(metricValue(await metricsOf(b), 'explanation_cache_shared_fallbacks_total') - fallbacksBefore, 3);
      assert.equal((await evaluations(b)) - evalsBefore, 3, 'B computed the three instances itself');
    } finally {
      raw.disconnect();
    }
    a = await start('a2');
  });

  it('Redis stopped mid-traffic: no 5xx, level one keeps answering, sharing resumes after the restart', async () => {
    const statuses: number[] = [];
    let stop = false;
    let k = 0;
    const traffic = async (r: Replica) => {
      while (!stop) {
        const i = k++ % 150;
        const res =
          i % 3 === 0
            ? await postJson(r, '/v1/models/credit/predict', { instances: [credit[i]] })
            : await postJson(r, '/v1/models/linear/explain', { instances: [[i / 10, 500, 0.01, i % 10, i % 2, 3]], method: 'integrated-gradients' });
        statuses.push(res.status);
      }
    };
    const loops = [traffic(a), traffic(b), traffic(a), traffic(b)];
    await sleep(1500);
    const port = redis!.port;
    await redis!.stop();
    await until('the replicas notice', async () => (await getJson(a, '/healthz')).body.cache.shared.up === false);
    // While Redis is away: a computation on A is a level-one hit on A, and not shared with B.
    const x = { instances: [[9.9, 499, 0.011, 9, 1, 2]], method: 'integrated-gradients' };
    assert.equal((await postJson(a, '/v1/models/linear/explain', x)).headers.get('x-cache'), 'MISS');
    assert.equal((await postJson(a, '/v1/models/linear/explain', x)).headers.get('x-cache'), 'HIT');
    assert.equal((await postJson(b, '/v1/models/linear/explain', x)).headers.get('x-cache'), 'MISS');
    const minted = await postJson(a, '/v1/models/linear/explain', { ...x, instances: [[1, 2, 3, 4, 5, 6]] });
    assert.equal(minted.status, 200, 'records are written locally while Redis is away');
    await sleep(1500);
    redis = await startDevRedis(undefined, port);
    await until('A reconnects', async () => (await getJson(a, '/healthz')).body.cache.shared.up === true);
    await until('B reconnects', async () => (await getJson(b, '/healthz')).body.cache.shared.up === true);
    await sleep(1000);
    stop = true;
    await Promise.all(loops);
    assert.ok(statuses.length > 20, `${statuses.length} requests`);
    assert.deepEqual(
      [...new Set(statuses)],
      [200],
      'every request answered 200',
    );
    const y = { instances: [[8.8, 501, 0.012, 8, 0, 4]], method: 'integrated-gradients' };
    assert.equal((await postJson(a, '/v1/models/linear/explain', y)).headers.get('x-cache'), 'MISS');
    assert.equal((await postJson(b, '/v1/models/linear/explain', y)).headers.get('x-cache'), 'HIT', 'shared again');
    assert.ok(metricValue(await metricsOf(a), 'shared_state_up') === 1);
  });

  it('a new version published under load: both switch without a failed request, each answer matches its version', async () => {
    const rows = [
      [0.5, 480, 0.011, 2.5, 1, 3],
      [-1.2, 610, 0.009, 7.5, 0, 1],
    ];
    const answers: { status: number; version?: string; predictions?: number[][] }[] = [];
    let stop = false;
    const traffic = async (r: Replica) => {
      while (!stop) {
        const res = await postJson(r, '/v1/models/linear/predict', { instances: rows });
        answers.push({ status: res.status, version: res.body?.model?.version, predictions: res.body?.predictions });
      }
    };
    const loops = [traffic(a), traffic(b), traffic(a), traffic(b)];
    await sleep(1000);
    const prepared = path.join(modelDir, 'linear', 'versions', '.incoming');
    const v2 = await linearVersion(prepared, (w, bias) => ({ w: w.map((x) => -x), b: bias + 2 }));
    const published = Date.now();
    await publish(prepared, path.join(modelDir, 'linear', 'versions', '2'));
    const switched = async (r: Replica) =>
      until(`${r.name} serves version 2`, async () => (await getJson(r, '/v1/models/linear')).body.versionLabel === '2', 30_000);
    await Promise.all([switched(a), switched(b)]);
    const took = Date.now() - published;
    await sleep(1000);
    stop = true;
    await Promise.all(loops);
    assert.ok(took < 30_000, `${took} ms`);
    assert.deepEqual([...new Set(answers.map((x) => x.status))], [200]);
    const versions = (await getJson(a, '/v1/models/linear')).body.versions;
    const hashOf = (label: string) => versions.find((v: { label: string }) => v.label === label).version;
    const expected = new Map([
      [hashOf('1'), linearPredict(rows, v1)],
      [hashOf('2'), linearPredict(rows, v2)],
    ]);
    for (const x of answers) {
      const want = expected.get(x.version!);
      assert.ok(want, `answer from an unknown version ${x.version}`);
      x.predictions!.flat().forEach((p, i) => assert.ok(Math.abs(p - want[i]) < 1e-3 * Math.max(1, Math.abs(want[i])), `${p} vs ${want[i]}`));
    }
    assert.ok(answers.some((x) => x.version === hashOf('1')) && answers.some((x) => x.version === hashOf('2')));
    // Version 1 still answers pinned requests on both.
    for (const r of [a, b]) assert.equal((await postJson(r, '/v1/models/linear/predict', { instances: rows, version: '1' })).body.model.version, hashOf('1'));
  });

  it('a comparison of the two versions is computed once for both replicas', async () => {
    const first = await getJson(a, '/v1/models/linear/versions/compare?from=1&to=2');
    assert.ok(first.status === 202 || first.status === 200, JSON.stringify(first.body));
    const onB = await until('the comparison on B', async () => {
      const r = await getJson(b, '/v1/models/linear/versions/compare?from=1&to=2');
      return r.status === 200 ? r.body : undefined;
    }, 120_000);
    const onA = await until('the comparison on A', async () => {
      const r = await getJson(a, '/v1/models/linear/versions/compare?from=1&to=2');
      return r.status === 200 ? r.body : undefined;
    });
    assert.equal(onA.computedAt, onB.computedAt);
    assert.deepEqual(onA.attributions.outputs[0].signFlips.sort(), onA.features.slice().sort(), 'every weight was negated');
  });

  it('a model folder added to MODEL_DIR is served by both replicas without a restart', async () => {
    for (const r of [a, b]) assert.equal((await getJson(r, '/v1/models/penguins')).status, 404);
    await cp(path.join(SAMPLES, 'penguins'), path.join(modelDir, '.penguins'), { recursive: true });
    const t0 = Date.now();
    await publish(path.join(modelDir, '.penguins'), path.join(modelDir, 'penguins'));
    for (const r of [a, b]) await until(`${r.name} serves penguins`, async () => (await getJson(r, '/v1/models/penguins')).status === 200, 30_000);
    assert.ok(Date.now() - t0 < 30_000);
    const row = [[39.1, 18.7, 181, 3750, 1, 0, 0, 1]];
    const pa = await postJson(a, '/v1/models/penguins/predict', { instances: row });
    const pb = await postJson(b, '/v1/models/penguins/predict', { instances: row });
    assert.equal(pa.status, 200, JSON.stringify(pa.body));
    assert.deepEqual(pb.body.predictions, pa.body.predictions);
  });
});
