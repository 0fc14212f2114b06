/**
 * /v1/jobs (DESIGN.md, contract): batch explanation jobs over REST, on whichever JobRunner the
 * server was given (embedded, or Redis/BullMQ).
 *
 *   POST   /v1/jobs                   {"model", "method", "parameters", "outputs"?, "instances": [...] | "dataset": "reference", "chunkSize"?}
 *                                     -> 202 {"id", "status", ...} with Location
 *   GET    /v1/jobs                   -> {"jobs": [...]} most recent first (?limit=)
 *   GET    /v1/jobs/:id               -> status and progress
 *   GET    /v1/jobs/:id/results       -> NDJSON, one record per row in index order (?follow=true waits for the rest)
 *   GET    /v1/jobs/:id/summary.svg   -> beeswarm of the rows explained so far (?output=, ?topK=)
 *   GET    /v1/jobs/:id/report.html   -> HTML report (beeswarm, mean |attribution|, failed rows)
 *   DELETE /v1/jobs/:id               -> cancels; the job as it now is
 *
 * A bad instance never fails the submission: it becomes an error record in the results, with its
 * index, like a bad line of a CLI input file.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { AppContext } from '../server/context.js';
import { ApiError, type ErrorCode } from '../server/errors.js';
import { getModel } from '../server/registry.js';
import { parseWith } from '../server/schemas.js';
import { queryInt } from '../server/negotiate.js';
import type { JobRunner } from './runner.js';
import { itemFromJson } from './rows.js';
import { buildSpec, MAX_CHUNK_SIZE } from './spec.js';
import { beeswarmOf, renderSummary, SummaryCollector } from './summary.js';
import type { Item, ResultRecord } from './types.js';

/** A code from the catalogue if the server has it, else a fallback with the same meaning class. */
function code(preferred: string, fallback: ErrorCode): ErrorCode {
  return ApiError.isCode(preferred) ? (preferred as ErrorCode) : fallback;
}

export function jobNotFound(id: string): ApiError {
  return new ApiError(code('JOB_NOT_FOUND', 'NOT_FOUND'), `no job "${id}"; POST /v1/jobs creates one and GET /v1/jobs lists them`, { id });
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

export function jobRoutes(ctx: AppContext, runner: JobRunner): Router {
  const r = Router();
  const maxInstances = Number(process.env.JOBS_MAX_INSTANCES || 1_000_000);
  const submitSchema = z.strictObject({
    model: z.string().min(1),
    method: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).default({}),
    outputs: z
      .array(z.union([z.number(), z.string()]))
      .min(1)
      .max(1000)
      .optional(),
    instances: z
      .array(z.unknown())
      .min(1, 'instances needs at least one row')
      .max(maxInstances, `a job may hold at most ${maxInstances} instances`)
      .optional(),
    dataset: z.literal('reference').optional(),
    chunkSize: z.number().int().min(1).max(MAX_CHUNK_SIZE).optional(),
  });

  const find = async (id: string) => {
    const job = await runner.get(id);
    if (!job) throw jobNotFound(id);
    return job;
  };

  r.post('/v1/jobs', async (req, res) => {
    const body = parseWith(submitSchema, req.body);
    if ((body.instances === undefined) === (body.dataset === undefined)) {
      throw new ApiError(
        'INVALID_REQUEST',
        'give either "instances" (rows to explain) or "dataset": "reference" (the model\'s reference set), not both',
      );
    }
    const m = getModel(ctx.registry, body.model);
    const spec = buildSpec(ctx.schemas, m, {
      method: body.method,
      parameters: body.parameters,
      outputs: body.outputs,
      chunkSize: body.chunkSize,
    });
    const layout = { nFeatures: m.model.nFeatures, inputShape: m.inputShape, space: m.space };
    let items: Item[];
    if (body.instances) {
      items = body.instances.map((inst, i) => itemFromJson(inst, layout, i));
    } else {
      const ref = m.reference;
      if (!ref) throw new ApiError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata; send "instances"`);
      const { rows, labels, labelNames } = ref;
      items = Array.from({ length: rows.n }, (_, i) => ({
        index: i,
        row: rows.data.slice(i * rows.d, (i + 1) * rows.d),
        label: labelNames?.[labels[i]] ?? labels[i],
      }));
    }
    const job = await runner.submit(spec, items);
    ctx.logger.info({ job: job.id, model: spec.model, method: spec.method, rows: items.length }, 'job submitted');
    res.status(202).location(`/v1/jobs/${job.id}`).json(job);
  });

  r.get('/v1/jobs', async (req, res) => {
    const limit = queryInt(req, 'limit', 1, 1000) ?? 100;
    res.json({ jobs: await runner.list(limit) });
  });

  r.get('/v1/jobs/:id', async (req, res) => {
    res.json(await find(req.params.id));
  });

  r.get('/v1/jobs/:id/results', async (req, res) => {
    const job = await find(req.params.id);
    const follow = req.query.follow === 'true' || req.query.follow === '1';
    const signal = closeSignal(req, res);
    res.status(200);
    res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Job-Status', job.status);
    res.flushHeaders();
    for await (const chunk of runner.results(job.id, { follow, signal })) {
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
  });

  const collect = async (id: string) => {
    const job = await find(id);
    const c = await new SummaryCollector().addAll(ndjsonRecords(runner.results(job.id)));
    if (c.rowsExplained === 0) {
      throw new ApiError(
        code('JOB_NOT_READY', 'NOT_FOUND'),
        `job ${id} has no explained rows yet (status ${job.status}, ${job.rowsDone} of ${job.rowsTotal} rows done, ${job.rowsFailed} failed); try again later`,
        { status: job.status, rowsDone: job.rowsDone },
      );
    }
    return { job, c };
  };

  r.get('/v1/jobs/:id/summary.svg', async (req, res) => {
    const { job, c } = await collect(req.params.id);
    const topK = queryInt(req, 'topK', 1, 1000);
    const q = req.query.output;
    let output = 0;
    if (q !== undefined) {
      const names = c.sample[0].outputs.map((o) => o.output);
      output = typeof q === 'string' && /^\d+$/.test(q) ? Number(q) : names.indexOf(String(q));
      if (output < 0 || output >= names.length) {
        throw new ApiError(
          'UNKNOWN_OUTPUT',
          `output must be one of the explained outputs: ${names.join(', ')} (or their position 0..${names.length - 1})`,
        );
      }
    }
    res.setHeader('X-Job-Status', job.status);
    res.setHeader('Cache-Control', 'no-store');
    res.type('image/svg+xml').send(beeswarmOf(c, job.method, output, topK));
  });

  r.get('/v1/jobs/:id/report.html', async (req, res) => {
    const { job, c } = await collect(req.params.id);
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
  });

  r.delete('/v1/jobs/:id', async (req, res) => {
    const job = await runner.cancel(req.params.id);
    if (!job) throw jobNotFound(req.params.id);
    res.json(job);
  });

  return r;
}
