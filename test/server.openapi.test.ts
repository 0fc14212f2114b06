/**
 * The API document against the service's real answers: every route of the route table is called
 * (a table of example requests below must name each one, so a new route cannot be left out), and
 * every answer is validated with ajv against the response schema the generated OpenAPI document
 * gives for its status and media type. ajv over the published JSON Schema, rather than zod parsing,
 * because it checks what clients actually receive and generate code from: a schema that zod
 * accepts but the conversion renders wrongly is caught too. Error answers (404 on every route
 * with a model, 400 on every route with a body) are validated against the Error schema likewise.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import request from 'supertest';
import { LocalJobRunner } from '../jobs/runner.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, loadModelRepository, type ModelRepository } from '../models/repository.js';
import { createApp, type App } from '../server/app.js';
import type { RouteSpec } from '../server/route.js';
import { inlineExecutor } from '../service/executor.js';
import { testConfig } from './helpers/config.js';
import { relabelledCopy } from './helpers/versions.js';

const SAMPLES = path.resolve('samples/models');

interface Example {
  /** Values for {name}, {ext}, {id}; ids come from earlier answers. */
  params?: Record<string, string | (() => string)>;
  query?: string;
  body?: unknown;
  accept?: string;
  status?: number;
  /** Rows for an empty `instances` (default 3). */
  rows?: number;
  /** Further calls of the same route (other formats ...). */
  also?: Omit<Example, 'also'>[];
}

describe('server: every response matches the OpenAPI document', function () {
  this.timeout(180_000);
  let repo: ModelRepository;
  let app: App;
  let runner: LocalJobRunner;
  let tmp: string;
  let validate: (pointer: string, value: unknown) => string | undefined;
  const seen: { explanation?: string; job?: string; effectsJob?: string; counterfactualsJob?: string } = {};
  const checked = new Set<string>();

  const rows = (name: string, n: number, from = 0) => {
    const ref = repo.models.get(name)!.reference!.rows;
    return Array.from({ length: n }, (_, i) => Array.from(ref.data.subarray((from + i) * ref.d, (from + i + 1) * ref.d)));
  };

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    repo = await loadModelRepository(SAMPLES);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'openapi-'));
    // A second version of linear (same weights, new description), so the versions comparison has two to compare.
    await relabelledCopy('linear', path.join(tmp, 'linear-2'), 'version 2');
    const second = await loadModelFolder('linear', path.join(tmp, 'linear-2'), {}, '2');
    const first = repo.models.get('linear')!;
    repo.versions!.set('linear', [
      { version: first.version, model: first, state: 'serving', loadedAt: Date.now() },
      { version: second.version, label: '2', model: second, state: 'serving', loadedAt: Date.now() },
    ]);
    runner = new LocalJobRunner({ dir: tmp, executor: inlineExecutor(repo), sync: false });
    await runner.start();
    app = createApp({ registry: repo, config: testConfig({ SIGNING_KEY: 'test-signing-key' }), backend: 'wasm', jobRunner: runner });
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addFormat('binary', true);
    ajv.addSchema({ ...(app.openapi as object), $id: 'openapi' });
    validate = (pointer, value) => {
      const v = ajv.getSchema(`openapi#${pointer}`);
      if (!v) return `no schema at ${pointer}`;
      return v(value) ? undefined : ajv.errorsText(v.errors, { separator: '\n' });
    };
  });
  after(async () => {
    await runner.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  const EXAMPLES: Record<string, Example> = {
    'get /healthz': {},
    'get /readyz': {},
    'get /metrics': {},
    'get /openapi.json': {},
    'get /docs': {},
    'get /v1/models': {},
    'get /v1/models/{name}': { params: { name: 'credit' }, also: [{ params: { name: 'linear' } }] },
    // The first request starts the comparison (202); wait=true and the charts wait for it.
    'get /v1/models/{name}/versions/compare': {
      params: { name: 'linear' },
      status: 202,
      also: [
        { params: { name: 'linear' }, query: 'wait=true' },
        { params: { name: 'linear' }, query: 'format=svg' },
        { params: { name: 'linear' }, query: 'plot=attributions&format=png' },
        { params: { name: 'linear' }, accept: 'text/html' },
      ],
    },
    // 60 rows: enough for the live window that GET drift/live reads.
    'post /v1/models/{name}/predict': { params: { name: 'credit' }, body: { instances: [] }, rows: 60 },
    'post /v1/models/{name}/explain': {
      params: { name: 'credit' },
      body: { instances: [], parameters: { nSamples: 300, seed: 1 } },
      also: [
        { params: { name: 'cars' }, body: { instances: [], method: 'integrated-gradients' } },
        { params: { name: 'credit' }, body: { instances: [] }, accept: 'image/svg+xml' },
        { params: { name: 'credit' }, body: { instances: [] }, query: 'format=png' },
        { params: { name: 'credit' }, body: { instances: [] }, accept: 'text/html' },
        { params: { name: 'shapes' }, body: { instances: [], method: 'grad-cam' }, rows: 1 },
        { params: { name: 'shapes' }, body: { instances: [], method: 'occlusion' }, rows: 1, query: 'plot=overlay', accept: 'image/svg+xml' },
        { params: { name: 'text' }, body: { instances: ['a superb film'], method: 'partition-shap' } },
      ],
    },
    'get /v1/models/{name}/explain.{ext}': {
      params: { name: 'credit', ext: 'json' },
      query: 'income=30000&nSamples=300',
      also: [
        { params: { name: 'credit', ext: 'svg' }, query: 'income=30000&nSamples=300' },
        { params: { name: 'credit', ext: 'png' }, query: 'income=30000&nSamples=300' },
        { params: { name: 'credit', ext: 'html' }, query: 'income=30000&nSamples=300' },
        { params: { name: 'text', ext: 'json' }, query: 'text=a%20superb%20film&method=partition-shap' },
      ],
    },
    'get /v1/explanations/{id}.{ext}': {
      params: { id: () => seen.explanation!, ext: 'json' },
      also: [{ params: { id: () => seen.explanation!, ext: 'svg' } }],
    },
    'post /v1/models/{name}/importance': {
      params: { name: 'credit' },
      body: { repeats: 2 },
      also: [{ params: { name: 'credit' }, body: {}, accept: 'image/svg+xml' }],
    },
    'get /v1/models/{name}/importance.{ext}': {
      params: { name: 'linear', ext: 'json' },
      query: 'repeats=2',
      also: [{ params: { name: 'linear', ext: 'png' } }],
    },
    'post /v1/models/{name}/effects': {
      params: { name: 'credit' },
      body: { kind: 'pd', features: ['income', 'housing', ['age', 'income']], parameters: { resolution: 10 } },
      also: [
        { params: { name: 'credit' }, body: { kind: 'ice', features: ['income'], parameters: { maxRows: 50 } }, accept: 'image/svg+xml' },
        { params: { name: 'credit' }, body: { kind: 'ale', features: ['debt_ratio', 'housing', ['age', 'income']] } },
        {
          params: { name: 'penguins' },
          body: { kind: 'dependence', features: ['bill_length_mm'], outputs: [0], parameters: { maxRows: 20, nSamples: 64 } },
        },
        { params: { name: 'credit' }, body: { kind: 'ale', features: ['income'] }, query: 'format=png' },
        { params: { name: 'credit' }, body: { kind: 'pd', features: ['income'] }, accept: 'text/html' },
        // Pinned to the second served version, in the body.
        { params: { name: 'linear' }, body: { kind: 'pd', features: ['x1_std_normal'], version: '2' } },
      ],
    },
    'get /v1/models/{name}/effects.{ext}': {
      params: { name: 'credit', ext: 'json' },
      query: 'feature=income&kind=ale',
      also: [
        { params: { name: 'credit', ext: 'svg' }, query: 'feature=income&feature2=age' },
        { params: { name: 'credit', ext: 'png' }, query: 'feature=housing' },
        { params: { name: 'credit', ext: 'html' }, query: 'feature=income&kind=ice&maxRows=30' },
        { params: { name: 'linear', ext: 'json' }, query: 'feature=x1_std_normal&version=2' },
      ],
    },
    'post /v1/models/{name}/counterfactuals': {
      params: { name: 'credit' },
      body: { instances: [], parameters: { k: 2 } },
      also: [
        { params: { name: 'cars' }, body: { instances: [], desired: { range: [30, null], output: 'mpg' } } },
        { params: { name: 'credit' }, body: { instances: [] }, accept: 'image/svg+xml' },
        { params: { name: 'credit' }, body: { instances: [] }, query: 'format=png' },
        { params: { name: 'credit' }, body: { instances: [] }, accept: 'text/html' },
      ],
    },
    'get /v1/models/{name}/counterfactuals.{ext}': {
      params: { name: 'credit', ext: 'json' },
      query: 'income=30000&debt_ratio=0.6&late_payments=3',
      also: [{ params: { name: 'credit', ext: 'svg' }, query: 'income=30000&debt_ratio=0.6&late_payments=3&k=1' }],
    },
    'get /v1/models/{name}/report': { params: { name: 'linear' } },
    'post /v1/models/{name}/fairness': {
      params: { name: 'credit' },
      body: { bootstrap: { n: 20 }, attributions: { sampleSize: 20, nSamples: 64 } },
      also: [
        { params: { name: 'credit' }, body: { bootstrap: { n: 0 }, attributions: false }, accept: 'text/html' },
        {
          params: { name: 'credit' },
          body: { bootstrap: { n: 0 }, attributions: false, recourse: { maxRows: 100, bootstrap: { n: 50 } } },
        },
        { params: { name: 'credit' }, body: { bootstrap: { n: 0 }, attributions: false, recourse: { maxRows: 100 } }, accept: 'text/html' },
      ],
    },
    'post /v1/models/{name}/drift': {
      params: { name: 'credit' },
      body: { current: [], attributions: { sampleSize: 20, nSamples: 64 } },
      also: [{ params: { name: 'credit' }, body: { current: [], attributions: false }, query: 'plot=psi', accept: 'image/svg+xml' }],
    },
    'get /v1/models/{name}/drift/live': { params: { name: 'credit' }, query: 'attributions=false' },
    'post /v1/signed-urls': { body: { path: '/v1/models/credit/explain.svg?income=30000' }, status: 201 },
    'post /v1/jobs': {
      body: { model: 'credit', instances: [], parameters: { nSamples: 300 } },
      status: 202,
      also: [
        {
          body: { model: 'credit', method: 'effects', instances: [], parameters: { features: ['income', 'housing'] } },
          rows: 40,
          status: 202,
        },
        { body: { model: 'credit', method: 'counterfactuals', instances: [], parameters: { k: 1 } }, status: 202 },
      ],
    },
    'get /v1/jobs': {},
    'get /v1/jobs/{id}': { params: { id: () => seen.job! } },
    'get /v1/jobs/{id}/results': {
      params: { id: () => seen.job! },
      also: [{ params: { id: () => seen.effectsJob! } }, { params: { id: () => seen.counterfactualsJob! } }],
    },
    'get /v1/jobs/{id}/summary.svg': {
      params: { id: () => seen.job! },
      also: [{ params: { id: () => seen.effectsJob! } }, { params: { id: () => seen.counterfactualsJob! } }],
    },
    'get /v1/jobs/{id}/summary.png': {
      params: { id: () => seen.job! },
      also: [{ params: { id: () => seen.effectsJob! } }, { params: { id: () => seen.counterfactualsJob! } }],
    },
    'get /v1/jobs/{id}/report.html': {
      params: { id: () => seen.job! },
      also: [{ params: { id: () => seen.effectsJob! } }, { params: { id: () => seen.counterfactualsJob! } }],
    },
    'get /v1/jobs/{id}/effects.{ext}': {
      params: { id: () => seen.effectsJob!, ext: 'json' },
      also: [
        { params: { id: () => seen.effectsJob!, ext: 'svg' } },
        { params: { id: () => seen.effectsJob!, ext: 'png' } },
        { params: { id: () => seen.effectsJob!, ext: 'html' } },
      ],
    },
    'delete /v1/jobs/{id}': { params: { id: () => seen.job! } },
  };

  /** Fills the example's empty row lists with reference rows of the model. */
  function bodyOf(e: Example): unknown {
    const name = typeof e.params?.name === 'string' ? e.params.name : 'credit';
    if (!e.body || typeof e.body !== 'object') return e.body;
    const b = { ...(e.body as Record<string, unknown>) };
    if (Array.isArray(b.instances) && b.instances.length === 0) b.instances = rows(name, e.rows ?? 3);
    if (Array.isArray(b.current) && b.current.length === 0) b.current = rows(name, 120, 200);
    return b;
  }

  const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

  async function exercise(r: RouteSpec, e: Example): Promise<request.Response> {
    let url = r.path;
    for (const [k, v] of Object.entries(e.params ?? {})) url = url.replace(`{${k}}`, typeof v === 'function' ? v() : v);
    if (e.query) url += `?${e.query}`;
    let req = (request(app) as unknown as Record<string, (u: string) => request.Test>)[r.method](url);
    if (e.accept) req = req.set('Accept', e.accept);
    req = req.buffer(true).parse((res, done) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => done(null, Buffer.concat(parts)));
    });
    const res = e.body !== undefined ? await req.send(bodyOf(e) as object) : await req;
    const raw = res.body as Buffer;
    const type = String(res.headers['content-type'] ?? '')
      .split(';')[0]
      .trim();
    const where = `${r.method.toUpperCase()} ${url} -> ${res.status} ${type}`;
    const status = e.status ?? 200;
    assert.equal(res.status, status, `${where}: ${raw.toString('utf8').slice(0, 300)}`);
    const spec = r.responses[res.status];
    assert.ok(spec, `${where}: status not declared`);
    assert.ok(spec.content && type in spec.content, `${where}: media type not declared (${Object.keys(spec.content ?? {}).join(', ')})`);
    const pointer = `/paths/${escape(r.path)}/${r.method}/responses/${res.status}/content/${escape(type)}/schema`;
    if (type === 'image/png') assert.deepEqual([...raw.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], where);
    else if (type === 'application/json') assert.equal(validate(pointer, JSON.parse(raw.toString('utf8'))), undefined, where);
    else if (type === 'application/x-ndjson') {
      const lines = raw.toString('utf8').trim().split('\n');
      assert.ok(lines.length > 0, where);
      for (const l of lines) assert.equal(validate(pointer, JSON.parse(l)), undefined, where);
    } else assert.equal(validate(pointer, raw.toString('utf8')), undefined, where);
    checked.add(`${r.method} ${r.path}`);
    return Object.assign(res, { body: type === 'application/json' ? JSON.parse(raw.toString('utf8')) : raw });
  }

  it('every route has an example request here', () => {
    const missing = app.routeTable.map((r) => `${r.method} ${r.path}`).filter((k) => !EXAMPLES[k]);
    assert.deepEqual(missing, []);
  });

  it('every route answers as its response schema says', async () => {
    // Order matters: ids and the live window come from earlier answers.
    const order = [...app.routeTable].sort((a, b) => rank(a) - rank(b));
    function rank(r: RouteSpec): number {
      if (r.path.startsWith('/v1/explanations')) return 2;
      if (r.path.endsWith('/drift/live')) return 2;
      if (r.method === 'delete') return 4;
      if (r.path.startsWith('/v1/jobs/')) return 3;
      return 1;
    }
    for (const r of order) {
      if (r.path.startsWith('/v1/jobs/'))
        for (const id of [seen.job, seen.effectsJob, seen.counterfactualsJob]) if (id) await runner.waitFor(id);
      const e = EXAMPLES[`${r.method} ${r.path}`];
      for (const x of [e, ...(e.also ?? [])]) {
        const res = await exercise(r, x);
        if (r.path === '/v1/models/{name}/explain' && !seen.explanation && res.type === 'application/json') seen.explanation = res.body.id;
        if (r.path === '/v1/jobs' && r.method === 'post') {
          const method = (x.body as { method?: string }).method;
          if (method === 'effects') seen.effectsJob = res.body.id;
          else if (method === 'counterfactuals') seen.counterfactualsJob = res.body.id;
          else seen.job = res.body.id;
        }
      }
    }
    assert.equal(checked.size, app.routeTable.length);
  });

  it('error answers match the Error schema: 404 on every route with a model, 400 on every route with a body', async () => {
    let n = 0;
    for (const r of app.routeTable) {
      const bad: Example[] = [];
      if (r.path.includes('{name}')) bad.push({ params: { name: 'no-such-model', ext: 'json', id: 'x' }, status: 404 });
      if (r.request?.body) bad.push({ params: { name: 'credit', ext: 'json' }, body: { unexpected: true }, status: 400 });
      for (const e of bad) {
        const res = await exercise(r, e);
        assert.ok(res.body.error.code, r.path);
        n++;
      }
    }
    assert.ok(n >= 15, `${n} error answers`);
  });
});
