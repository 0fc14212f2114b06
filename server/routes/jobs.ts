/**
 * /v1/jobs: batch explanation jobs over REST, on whichever JobRunner the app was given (embedded, or
 * Redis/BullMQ). A job records the scope of the key that submitted it; a key sees (lists, reads,
 * cancels) only the jobs on models in its own scope, and gets 403 for the others, as on every model
 * route. A bad instance never fails the submission: it becomes an error record in the results, with
 * its index, like a bad line of a CLI input file.
 *
 * Large inputs are uploaded, not posted as one JSON: `POST /v1/jobs?model=...` with a CSV
 * (`text/csv`, a header naming the features) or NDJSON (`application/x-ndjson`, one instance per
 * line) body, optionally gzip-compressed, is parsed as it streams into the job's input; the method,
 * its parameters, outputs and chunkSize come from the query (as on chart URLs). The upload is capped
 * by JOBS_UPLOAD_LIMIT bytes (decompressed) and JOBS_MAX_INSTANCES rows.
 */
import type { Request, Response } from 'express';
import { Transform, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { z } from 'zod';
import { openSource } from '../../jobs/input.js';
import { buildSpec } from '../../jobs/spec.js';
import { itemFromJson } from '../../jobs/rows.js';
import { beeswarmOf, renderSummary, SummaryCollector } from '../../jobs/summary.js';
import type { Item, JobRunner, JobView, ResultRecord } from '../../jobs/types.js';
import { ServiceError } from '../../service/errors.js';
import { layoutOf, resolveOutput } from '../../service/instances.js';
import { checkMethod, EXPLAIN_METHODS } from '../../service/methods/index.js';
import { queryReader } from '../../service/query.js';
import { parseWith } from '../../service/schemas/common.js';
import { jobListSchema, jobResultLineSchema, jobViewSchema } from '../../service/schemas/responses.js';
import { inScope, scopeOf } from '../auth.js';
import { streamedType } from '../body.js';
import { byteSize } from '../config.js';
import type { AppContext } from '../context.js';
import { queryInt } from '../negotiate.js';
import type { RouteSpec } from '../route.js';
import { errors, htmlPage, json, svgImage, topKQuery } from './common.js';

export function jobNotFound(id: string): ServiceError {
  return new ServiceError('JOB_NOT_FOUND', `no job "${id}"; POST /v1/jobs creates one and GET /v1/jobs lists them`, { id });
}

function runnerOf(app: AppContext): JobRunner {
  if (!app.jobs) throw new ServiceError('NOT_FOUND', 'batch jobs are not enabled on this service');
  return app.jobs;
}

/** The job the path names, for the access check (its model) and the handler. */
async function findJob(req: Request, app: AppContext): Promise<{ model: string; resource: JobView }> {
  const id = String(req.params.id);
  const job = await runnerOf(app).get(id);
  if (!job) throw jobNotFound(id);
  return { model: job.model, resource: job };
}

/** Splits NDJSON chunks (Buffers or strings, cut anywhere) into parsed records. */
export async function* ndjsonRecords(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<ResultRecord> {
  let carry = '';
  const decoder = new TextDecoder();
  for await (const c of chunks) {
    carry += typeof c === 'string' ? c : decoder.decode(c, { stream: true });
    let nl: number;
    while ((nl = carry.indexOf('\n')) >= 0) {
      const line = carry.slice(0, nl);
      carry = carry.slice(nl + 1);
      if (line.trim()) yield JSON.parse(line) as ResultRecord;
    }
  }
  carry += decoder.decode();
  if (carry.trim()) yield JSON.parse(carry) as ResultRecord;
}

function closeSignal(req: Request, res: Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  req.on('aborted', () => controller.abort());
  return controller.signal;
}

const idParams = z.object({ id: z.string() });

/** The upload's bytes, decompressed (Content-Encoding) and capped at `limit` bytes (413 past it). */
function uploadStream(req: Request, limit: number): Readable {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
  const decoders: Record<string, () => Transform> = {
    gzip: createGunzip,
    'x-gzip': createGunzip,
    deflate: createInflate,
    br: createBrotliDecompress,
  };
  if (encoding !== 'identity' && !decoders[encoding]) {
    throw new ServiceError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Content-Encoding ${encoding.slice(0, 40)} is not supported; send gzip, deflate, br or no encoding`,
    );
  }
  let seen = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > limit) {
        done(
          new ServiceError(
            'PAYLOAD_TOO_LARGE',
            `the upload is larger than JOBS_UPLOAD_LIMIT (${limit} bytes, decompressed); split it into several jobs`,
            { limit },
          ),
        );
      } else done(null, chunk);
    },
  });
  const fail = (e: unknown) =>
    cap.destroy(
      e instanceof ServiceError
        ? e
        : new ServiceError(
            'BAD_ENCODING',
            `the upload could not be decoded as ${encoding} (${e instanceof Error ? e.message : String(e)})`,
          ),
    );
  if (encoding === 'identity') {
    req.on('error', fail);
    return req.pipe(cap);
  }
  const decoder = decoders[encoding]();
  decoder.on('error', fail);
  req.on('error', fail);
  return req.pipe(decoder).pipe(cap);
}

/** Streamed-upload form of POST /v1/jobs: the job's settings from the query. */
function uploadRequest(req: Request, maxInstances: number) {
  const q = queryReader(req.query as Record<string, unknown>);
  const method = checkMethod(q.string('method'));
  const parameters = Object.fromEntries(Object.entries(EXPLAIN_METHODS[method].fromQuery(q)).filter(([, v]) => v !== undefined));
  const outputs = q
    .string('outputs')
    ?.split(',')
    .map((o) => (/^\d+$/.test(o) ? Number(o) : o));
  const chunkSize = q.number('chunkSize');
  const labelColumn = q.string('labelColumn');
  return { method, parameters, outputs, chunkSize, labelColumn, maxInstances };
}

/** Items of an upload, refusing more than `max` rows, and an upload without any. */
async function* capped(items: AsyncIterable<Item>, max: number): AsyncGenerator<Item> {
  let n = 0;
  for await (const it of items) {
    if (++n > max) {
      throw new ServiceError('LIMIT_EXCEEDED', `the upload holds more than JOBS_MAX_INSTANCES (${max}) rows; split it into several jobs`, {
        limit: max,
      });
    }
    yield it;
  }
  if (n === 0) throw new ServiceError('BAD_DATA', 'the upload holds no rows: send a CSV header and at least one row, or NDJSON lines');
}

const uploadQuery = {
  model: z.string().optional().meta({ description: 'CSV / NDJSON uploads: the model (JSON bodies name it in the body)' }),
  method: z.string().optional().meta({ description: 'CSV / NDJSON uploads: the explain method' }),
  outputs: z.string().optional().meta({ description: 'CSV / NDJSON uploads: comma-separated outputs' }),
  chunkSize: z.string().regex(/^\d+$/).optional().meta({ description: 'CSV / NDJSON uploads: rows per chunk' }),
  labelColumn: z
    .string()
    .optional()
    .meta({ description: 'CSV / NDJSON uploads: the column (key) kept as each row\'s label; default "label"' }),
};

export function jobRoutes(app: AppContext): RouteSpec[] {
  const svc = app.svc;

  const collect = async (job: JobView) => {
    const c = await new SummaryCollector().addAll(ndjsonRecords(runnerOf(app).results(job.id)));
    if (c.rowsExplained === 0) {
      throw new ServiceError(
        'JOB_NOT_READY',
        `job ${job.id} has no explained rows yet (status ${job.status}, ${job.rowsDone} of ${job.rowsTotal} rows done, ${job.rowsFailed} failed); try again later`,
        { status: job.status, rowsDone: job.rowsDone },
      );
    }
    return c;
  };

  return [
    {
      method: 'post',
      path: '/v1/jobs',
      summary: 'Start a batch explanation job over instances or the reference set: 202 with its id; it survives restarts',
      access: { from: 'body', field: 'model' },
      request: {
        body: svc.schemas.jobSubmit,
        bodyRequired: true,
        bodyLimit: app.config.jobsBodyLimit,
        query: z.object(uploadQuery).meta({
          description: "For CSV / NDJSON uploads: the job's settings, and the method's parameters by their query keys (as on chart URLs)",
        }),
        streamed: {
          'text/csv': 'A header naming every feature (any order; a "label" column is kept), then one row per line',
          'application/x-ndjson': 'One instance per line: an array in feature order or an object by feature name',
        },
      },
      responses: {
        202: { ...json('The job, queued', jobViewSchema), headers: { Location: '/v1/jobs/<id>' } },
        ...errors(403, 413, 415, 503),
      },
      async handle(req, res, { model: m }) {
        const runner = runnerOf(app);
        const type = streamedType(req);
        if (type) {
          // A CSV or NDJSON upload, parsed as it streams into the job's input.
          const u = uploadRequest(req, svc.config.maxJobInstances);
          const spec = buildSpec(svc.config, m, { method: u.method, parameters: u.parameters, outputs: u.outputs, chunkSize: u.chunkSize });
          const limit = byteSize(app.config.jobsUploadLimit);
          const format = type === 'text/csv' ? 'csv' : 'ndjson';
          const input = await openSource(uploadStream(req, limit), format, `the ${format.toUpperCase()} upload`, layoutOf(m), [
            u.labelColumn ?? 'label',
          ]);
          const job = await runner.submit(spec, capped(input.items(0), u.maxInstances), scopeOf(req));
          app.logger.info({ job: job.id, model: spec.model, method: spec.method, rows: job.rowsTotal, upload: format }, 'job submitted');
          res.status(202).location(`/v1/jobs/${job.id}`).json(job);
          return;
        }
        const body = parseWith(svc.schemas.jobSubmit, req.body);
        if ((body.instances === undefined) === (body.dataset === undefined)) {
          throw new ServiceError(
            'INVALID_REQUEST',
            'give either "instances" (rows to explain) or "dataset": "reference" (the model\'s reference set), not both',
          );
        }
        const spec = buildSpec(svc.config, m, {
          method: body.method,
          parameters: body.parameters,
          outputs: body.outputs,
          chunkSize: body.chunkSize,
        });
        let items: Item[];
        if (body.instances) {
          const layout = layoutOf(m);
          items = body.instances.map((inst, i) => itemFromJson(inst, layout, i));
        } else {
          const ref = m.reference;
          if (!ref) throw new ServiceError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send "instances"`);
          const { rows, labels, labelNames } = ref;
          items = Array.from({ length: rows.n }, (_, i) => ({
            index: i,
            row: rows.data.slice(i * rows.d, (i + 1) * rows.d),
            label: labelNames?.[labels[i]] ?? labels[i],
          }));
        }
        const job = await runner.submit(spec, items, scopeOf(req));
        app.logger.info({ job: job.id, model: spec.model, method: spec.method, rows: items.length }, 'job submitted');
        res.status(202).location(`/v1/jobs/${job.id}`).json(job);
      },
    },
    {
      method: 'get',
      path: '/v1/jobs',
      summary: "Recent jobs on the models in the key's scope, most recent first",
      access: { from: 'none', why: "lists only the jobs on models in the key's scope" },
      request: { query: z.object({ limit: z.string().regex(/^\d+$/).optional().meta({ description: '1..1000, default 100' }) }) },
      responses: { 200: json('Jobs', jobListSchema), ...errors(503) },
      async handle(req, res) {
        const limit = queryInt(req, 'limit', 1, 1000) ?? 100;
        const scope = scopeOf(req);
        const runner = runnerOf(app);
        // Read past the jobs out of scope until `limit` visible ones (or the end).
        const all = await runner.list(scope.models === null ? limit : Math.max(limit, 1000));
        res.json({ jobs: all.filter((j) => inScope(scope, j.model)).slice(0, limit) });
      },
    },
    {
      method: 'get',
      path: '/v1/jobs/{id}',
      summary: 'Status and progress: rowsDone/rowsTotal, rate, ETA, errors',
      access: { from: 'lookup', lookup: findJob },
      request: { params: idParams },
      responses: { 200: json('The job', jobViewSchema), ...errors(403, 503) },
      handle(_req, res, { resource }) {
        res.json(resource);
      },
    },
    {
      method: 'get',
      path: '/v1/jobs/{id}/results',
      summary: 'NDJSON, one explanation (or per-row error) per line with its index, in index order; ?follow=true streams until done',
      access: { from: 'lookup', lookup: findJob },
      request: { params: idParams, query: z.object({ follow: z.enum(['true', '1', 'false', '0']).optional() }) },
      responses: {
        200: {
          description: 'NDJSON lines',
          content: { 'application/x-ndjson': jobResultLineSchema },
          headers: { 'X-Job-Status': 'The status when the stream began' },
        },
        ...errors(403, 503),
      },
      async handle(req, res, { resource }) {
        const job = resource as JobView;
        const follow = req.query.follow === 'true' || req.query.follow === '1';
        const signal = closeSignal(req, res);
        res.status(200);
        res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
        res.setHeader('Cache-Control', 'no-store');
        res.setHeader('X-Job-Status', job.status);
        res.flushHeaders();
        for await (const chunk of runnerOf(app).results(job.id, { follow, signal })) {
          if (signal.aborted) break;
          if (!res.write(chunk)) {
            await new Promise<void>((resolve) => {
              const done = () => {
                res.off('drain', done);
                res.off('close', done);
                resolve();
              };
              res.on('drain', done);
              res.on('close', done);
            });
          }
        }
        res.end();
      },
    },
    {
      method: 'get',
      path: '/v1/jobs/{id}/summary.svg',
      summary: 'Beeswarm of the rows explained so far',
      access: { from: 'lookup', lookup: findJob },
      request: {
        params: idParams,
        query: z.object({ ...topKQuery, output: z.string().optional().meta({ description: 'An explained output, by name or position' }) }),
      },
      responses: { 200: svgImage('The beeswarm'), ...errors(403, 409, 503) },
      async handle(req, res, { resource }) {
        const job = resource as JobView;
        const c = await collect(job);
        const topK = queryInt(req, 'topK', 1, 1000);
        const q = req.query.output;
        let output = 0;
        if (q !== undefined) {
          // Positions among the explained outputs, by the same resolver as everywhere.
          const explained = { featureNames: [], outputNames: c.sample[0].outputs.map((o) => o.output) };
          output = resolveOutput(String(q), explained, 'output');
        }
        res.setHeader('X-Job-Status', job.status);
        res.setHeader('Cache-Control', 'no-store');
        res.type('image/svg+xml').send(beeswarmOf(c, job.method, output, topK));
      },
    },
    {
      method: 'get',
      path: '/v1/jobs/{id}/report.html',
      summary: 'HTML report of the rows explained so far: beeswarm, mean |attribution|, failed rows',
      access: { from: 'lookup', lookup: findJob },
      request: { params: idParams },
      responses: { 200: htmlPage('The report'), ...errors(403, 409, 503) },
      async handle(_req, res, { resource }) {
        const job = resource as JobView;
        const c = await collect(job);
        const files = renderSummary(c, {
          model: job.model,
          version: job.version,
          method: job.method,
          title: `Job ${job.id}: ${job.model}`,
          overview: [
            ['Status', job.status],
            ['Rows', `${job.rowsDone} of ${job.rowsTotal}`],
            ['Parameters', JSON.stringify(job.parameters)],
          ],
        });
        res.setHeader('Cache-Control', 'no-store');
        res.type('html').send(files.get('report.html'));
      },
    },
    {
      method: 'delete',
      path: '/v1/jobs/{id}',
      summary: 'Cancel a job; answers the job as it now is',
      access: { from: 'lookup', lookup: findJob },
      request: { params: idParams },
      responses: { 200: json('The job', jobViewSchema), ...errors(403, 503) },
      async handle(req, res) {
        const job = await runnerOf(app).cancel(String(req.params.id));
        if (!job) throw jobNotFound(String(req.params.id));
        res.json(job);
      },
    },
  ];
}
