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
import type { ExplainMethod } from '../../explainers/types.js';
import { modelOfVersion } from '../../models/served.js';
import { CounterfactualSummary, EffectsAggregate } from '../../jobs/dataJobs.js';
import { buildSpec } from '../../jobs/spec.js';
import { effectsSections, renderEffect } from '../../render/effects.js';
import { renderGroupComparison } from '../../render/groups.js';
import { renderHtmlReport, type Section } from '../../render/html.js';
import { itemFromJson } from '../../jobs/rows.js';
import { beeswarmOf, renderSummary, SummaryCollector } from '../../jobs/summary.js';
import type { Item, JobRunner, JobSpec, JobView, ResultRecord } from '../../jobs/types.js';
import { chartContext } from '../../service/chartContext.js';
import { ServiceError } from '../../service/errors.js';
import { layoutOf, resolveOutput } from '../../service/instances.js';
import { checkMethod, EXPLAIN_METHODS } from '../../service/methods/index.js';
import { queryReader } from '../../service/query.js';
import { parseWith } from '../../service/schemas/common.js';
import { jobEffectsSchema, jobListSchema, jobResultLineSchema, jobViewSchema } from '../../service/schemas/responses.js';
import { inScope, scopeOf } from '../auth.js';
import { streamedType } from '../body.js';
import { byteSize } from '../config.js';
import type { AppContext } from '../context.js';
import { FORMATS, queryInt, sendVisual, type Format } from '../negotiate.js';
import type { RouteSpec } from '../route.js';
import { errors, htmlPage, json, pngImage, svgImage, topKQuery, visual } from './common.js';

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
  const asked = q.string('method');
  if (asked === 'counterfactuals' || asked === 'effects') {
    throw new ServiceError(
      'BAD_PARAMETER',
      `CSV and NDJSON uploads take an explain method; a ${asked} job takes its rows as JSON: POST /v1/jobs with {"model", "method": "${asked}", "instances"}`,
    );
  }
  const method = checkMethod(asked);
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

  /** The spec of a job (its grids, for an effects job); only the runner knows it. */
  const specOf = async (job: JobView): Promise<JobSpec> => {
    const spec = await runnerOf(app).spec(job.id);
    if (!spec) throw jobNotFound(job.id);
    return spec;
  };

  const effectsOf = async (job: JobView) => {
    if (job.method !== 'effects') {
      throw new ServiceError(
        'METHOD_NOT_SUPPORTED',
        `job ${job.id} is a ${job.method} job; effects.{json,svg,png,html} aggregate the rows of an effects job`,
      );
    }
    const spec = await specOf(job);
    const agg = await new EffectsAggregate(spec).addAll(ndjsonRecords(runnerOf(app).results(job.id)));
    if (agg.rows === 0) {
      throw new ServiceError(
        'JOB_NOT_READY',
        `job ${job.id} has no rows with curves yet (status ${job.status}, ${job.rowsDone} of ${job.rowsTotal} rows done); try again later`,
        { status: job.status, rowsDone: job.rowsDone },
      );
    }
    const effects = agg.effects();
    return {
      job: { id: job.id, status: job.status, rowsDone: job.rowsDone, rowsTotal: job.rowsTotal, rowsFailed: job.rowsFailed },
      model: { name: job.model, version: job.version },
      kind: 'pd' as const,
      effects,
      rows: agg.rows,
      link: (spec.options as { link: 'identity' | 'logit' }).link,
      parameters: spec.parameters,
      // One model row per row and grid point of each feature (every output comes with it).
      modelEvaluations: (spec.options as { features: { grid: number[] }[] }).features.reduce((a, f) => a + f.grid.length * agg.rows, 0),
    };
  };

  /** What the effect charts know of the job's model version (integer features, labels), when it is still served. */
  const effectsContext = (job: JobView) => {
    const m = modelOfVersion(svc.registry, job.model, job.version);
    return m ? chartContext(m) : undefined;
  };

  /** summary.svg and report.html of a counterfactuals or effects job. */
  const dataJobSummary = async (job: JobView): Promise<{ svg: string; sections: Section[] }> => {
    const overview: Section = {
      heading: 'Overview',
      table: {
        columns: ['', ''],
        rows: [
          ['Model', `${job.model} (version ${job.version})`],
          ['Method', job.method],
          ['Status', job.status],
          ['Rows', `${job.rowsDone} of ${job.rowsTotal} (${job.rowsFailed} failed)`],
          ['Parameters', JSON.stringify(job.parameters)],
        ],
      },
    };
    if (job.method === 'effects') {
      const agg = await effectsOf(job);
      const context = effectsContext(job);
      return { svg: renderEffect(agg.effects[0], { context }), sections: [overview, ...effectsSections(agg.effects, { context })] };
    }
    const summary = await new CounterfactualSummary().addAll(ndjsonRecords(runnerOf(app).results(job.id)));
    if (summary.rows === 0) {
      throw new ServiceError(
        'JOB_NOT_READY',
        `job ${job.id} has no rows with counterfactuals yet (status ${job.status}); try again later`,
        {
          status: job.status,
          rowsDone: job.rowsDone,
        },
      );
    }
    const shares = summary.changeShares();
    const cost = summary.cost();
    const svg = renderGroupComparison(
      shares.map((s) => ({ group: s.feature, values: [{ label: 'rows', value: s.share }] })),
      {
        title: `Features the cheapest counterfactual changes (${summary.status.found} rows with one)`,
        valueLabel: 'Share of rows with a counterfactual',
      },
    );
    return {
      svg,
      sections: [
        overview,
        {
          heading: 'Outcomes',
          text:
            `${summary.rows} rows: ${summary.status.found} with a valid counterfactual, ${summary.status['not-found']} without one within the budget and constraints, ` +
            `${summary.status['already-desired']} that already had the desired outcome. Cost of the cheapest counterfactual (MAD-scaled distance): mean ${cost.mean ?? '–'}, median ${cost.median ?? '–'}.`,
          table: {
            columns: ['search stopped', 'rows'],
            rows: Object.entries(summary.stopReasons),
          },
        },
        {
          heading: 'Features changed',
          svg,
          table: { columns: ['feature', 'rows', 'share'], rows: shares.map((s) => [s.feature, s.rows, s.share]) },
        },
      ],
    };
  };

  const summaryQuery = z.object({
    ...topKQuery,
    output: z.string().optional().meta({ description: 'An explained output, by name or position' }),
  });

  /** summary.svg and summary.png: an explanation job's beeswarm, a data job's summary chart. */
  const sendSummary = async (req: Request, res: Response, job: JobView, format: 'svg' | 'png') => {
    const svg = job.method === 'counterfactuals' || job.method === 'effects' ? (await dataJobSummary(job)).svg : await explanationSummary(req, job);
    res.setHeader('X-Job-Status', job.status);
    res.setHeader('Cache-Control', 'no-store');
    if (format === 'svg') {
      res.type('image/svg+xml').send(svg);
      return;
    }
    const png = await svc.executor.run({ kind: 'png', svg });
    res.type('image/png').send(Buffer.from(png.buffer, png.byteOffset, png.byteLength));
  };

  /** The beeswarm of an explanation job's rows (?output= by name or model output index). */
  const explanationSummary = async (req: Request, job: JobView): Promise<string> => {
    const c = await collect(job);
    const topK = queryInt(req, 'topK', 1, 1000);
    const q = req.query.output;
    const m = modelOfVersion(svc.registry, job.model, job.version);
    let output: string | undefined;
    if (q !== undefined) {
      // By name or model output index, among the outputs some row explains (each row may explain its predicted class).
      const explained = c.outputs();
      const names = m ? m.space.outputNames : explained.map((o) => o.output);
      const name = names[resolveOutput(String(q), { featureNames: [], outputNames: names }, 'output')];
      if (!explained.some((o) => o.output === name)) {
        throw new ServiceError(
          'BAD_PARAMETER',
          `no row of job ${job.id} explains output ${name}; explained: ${explained.map((o) => `${o.output} (${o.rows} rows)`).join(', ')}`,
        );
      }
      output = name;
    }
    const context = m ? chartContext(m, job.outputSelection) : undefined;
    return beeswarmOf(c, job.method as ExplainMethod, output, topK, context);
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
        // An effects job takes its grids from its own rows.
        const good = items.filter((it) => it.row);
        const data = { n: good.length, d: m.model.nFeatures, data: new Float32Array(good.length * m.model.nFeatures) };
        if (body.method === 'effects') good.forEach((it, i) => data.data.set(it.row!, i * data.d));
        const spec = buildSpec(
          svc.config,
          m,
          { method: body.method, parameters: body.parameters, outputs: body.outputs, chunkSize: body.chunkSize },
          body.method === 'effects' ? data : undefined,
        );
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
      request: { params: idParams, query: summaryQuery },
      responses: { 200: svgImage('The beeswarm'), ...errors(403, 409, 503) },
      handle: (req, res, { resource }) => sendSummary(req, res, resource as JobView, 'svg'),
    },
    {
      method: 'get',
      path: '/v1/jobs/{id}/summary.png',
      summary: 'Beeswarm of the rows explained so far, as PNG',
      access: { from: 'lookup', lookup: findJob },
      request: { params: idParams, query: summaryQuery },
      responses: { 200: pngImage('The beeswarm'), ...errors(403, 409, 503) },
      handle: (req, res, { resource }) => sendSummary(req, res, resource as JobView, 'png'),
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
        if (job.method === 'counterfactuals' || job.method === 'effects') {
          const { sections } = await dataJobSummary(job);
          res.setHeader('Cache-Control', 'no-store');
          res
            .type('html')
            .send(
              renderHtmlReport({ title: `Job ${job.id}: ${job.model}`, subtitle: `${job.method}, model version ${job.version}`, sections }),
            );
          return;
        }
        const c = await collect(job);
        const m = modelOfVersion(svc.registry, job.model, job.version);
        const files = renderSummary(c, {
          model: job.model,
          version: job.version,
          method: job.method as ExplainMethod,
          ...(m ? { context: chartContext(m, job.outputSelection) } : {}),
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
      method: 'get',
      path: '/v1/jobs/{id}/effects.{ext}',
      summary: 'An effects job: the partial dependence of the rows done so far (the mean of their ICE curves), as JSON, SVG, PNG or HTML',
      access: { from: 'lookup', lookup: findJob },
      request: {
        params: idParams.extend({ ext: z.enum(FORMATS) }),
        query: z.object({ effect: z.string().regex(/^\d+$/).optional().meta({ description: 'Which effect to chart (default 0)' }) }),
      },
      responses: { 200: visual("The partial dependence over the job's rows", jobEffectsSchema), ...errors(403, 409) },
      async handle(req, res, { resource }) {
        const job = resource as JobView;
        const ext = String(req.params.ext);
        if (!(FORMATS as readonly string[]).includes(ext))
          throw new ServiceError('NOT_FOUND', 'job effects URLs end in .svg, .png, .html or .json');
        const result = await effectsOf(job);
        res.setHeader('X-Job-Status', job.status);
        res.setHeader('Cache-Control', 'no-store');
        if (ext === 'json') {
          res.json(result);
          return;
        }
        const effect = queryInt(req, 'effect', 0, result.effects.length - 1);
        await sendVisual(res, svc.executor, ext as Exclude<Format, 'json'>, {
          svg: () => renderEffect(result.effects[effect ?? 0], { context: effectsContext(job) }),
          html: () =>
            renderHtmlReport({
              title: `Job ${job.id}: partial dependence`,
              subtitle: `${job.model}, version ${job.version}; ${result.rows} rows`,
              sections: effectsSections(result.effects, { context: effectsContext(job) }),
            }),
        });
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
