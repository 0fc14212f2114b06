/**
 * Amortised SHAP over REST: POST /v1/models/:name/amortised starts the training job of the model's
 * current version (202 with the job; it runs on the job runner, and GET /v1/jobs/:id and DELETE
 * /v1/jobs/:id work on it as on any job); GET /v1/models/:name/amortised shows the state, the job's
 * progress and, once trained, the validation figures. Explanations use it through
 * `method: "amortised-shap"` (service/methods/amortisedShap.ts).
 */
import { z } from 'zod';
import { checkHyperparameters } from '../../explainers/amortised/training.js';
import { trainingSpec, writeArtefacts } from '../../jobs/training.js';
import type { JobRunner } from '../../jobs/types.js';
import type { ServedModel } from '../../models/served.js';
import { servability } from '../../service/amortised/state.js';
import { amortisedStatus } from '../../service/amortised/status.js';
import { amortisedDir } from '../../service/amortised/store.js';
import { ServiceError } from '../../service/errors.js';
import { checkSupported } from '../../service/methods/index.js';
import { amortisedParametersSchema, amortisedStateSchema, amortisedTrainSchema } from '../../service/schemas/amortised.js';
import { parseWith } from '../../service/schemas/common.js';
import { jobViewSchema } from '../../service/schemas/responses.js';
import { scopeOf } from '../auth.js';
import type { AppContext } from '../context.js';
import type { RouteSpec } from '../route.js';
import { errors, json, nameParams } from './common.js';

const envelope = z.strictObject({ parameters: z.record(z.string(), z.unknown()).default({}), force: z.boolean().default(false) });

function runnerOf(app: AppContext): JobRunner {
  if (!app.jobs) throw new ServiceError('NOT_FOUND', 'training jobs need the job runner, which is not enabled on this service');
  return app.jobs;
}

/** The state of the model's amortised explainer, with its latest training job. */
export async function amortisedStateOf(app: AppContext, m: ServedModel) {
  await app.svc.amortisedFetch?.(m);
  const job = app.jobs ? await app.jobs.training(m.name, m.version) : undefined;
  return amortisedStatus(app.svc.config, m, job);
}

/**
 * With a runner that keeps trained explainers elsewhere (Redis: workers on other machines), copies the
 * model version's explainer into this service's DATA_DIR when the version's latest training job has
 * stored one that this DATA_DIR lacks. Only asked when nothing here serves (the Kernel SHAP fallback's
 * path, which costs far more than the lookup).
 */
export function amortisedFetcher(app: AppContext): ((m: ServedModel) => Promise<void>) | undefined {
  const runner = app.jobs as (JobRunner & { artefacts?: (model: string, version: string) => Promise<Record<string, Buffer> | undefined> }) | undefined;
  if (!runner?.artefacts) return undefined;
  const artefacts = runner.artefacts.bind(runner);
  return async (m) => {
    const config = app.svc.config;
    const here = servability(config.dataDir, m, { threshold: config.amortisedThreshold, maxRatio: config.amortisedMaxRatio });
    if (here.servable) return;
    const job = await runner.training(m.name, m.version).catch(() => undefined);
    const id = job?.status === 'succeeded' ? job.result?.id : undefined;
    if (!id || here.info?.explainer.id === id) return;
    const files = await artefacts(m.name, m.version).catch(() => undefined);
    const published = files && (JSON.parse(files['explainer.json']?.toString('utf8') ?? '{}') as { id?: string }).id;
    if (files && published === id) await writeArtefacts(amortisedDir(config.dataDir, m.name, m.version), files);
  };
}

export function amortisedRoutes(app: AppContext): RouteSpec[] {
  const svc = app.svc;
  return [
    {
      method: 'post',
      path: '/v1/models/{name}/amortised',
      summary:
        "Train the amortised explainer of the model's current version: 202 with the training job (GET /v1/jobs/{id} for progress, DELETE to cancel); 200 with the state when one is already stored (force: true trains again)",
      access: { from: 'path' },
      // Training parameters are a few numbers: a small body limit (checked after the key and the model's scope).
      request: { params: nameParams, body: amortisedTrainSchema, bodyLimit: '64kb' },
      responses: {
        202: { ...json('The training job, queued (or the one already queued or running for this version)', jobViewSchema), headers: { Location: '/v1/jobs/<id>' } },
        200: json('Already trained for this version (force: true trains again)', amortisedStateSchema),
        ...errors(403),
      },
      async handle(req, res, { model: m }) {
        const runner = runnerOf(app);
        const body = parseWith(envelope, req.body ?? {});
        const parameters = parseWith(amortisedParametersSchema, body.parameters, 'parameters', 'BAD_PARAMETER');
        checkSupported(m, 'amortised-shap');
        const hp = checkHyperparameters(parameters);
        const refRows = m.reference!.rows.n;
        if (refRows < 3) throw new ServiceError('NO_REFERENCE_DATA', `model "${m.name}" has ${refRows} reference rows; training needs at least 3`);
        if (hp.heldOutRows !== undefined && hp.heldOutRows > refRows - 2) {
          throw new ServiceError('BAD_PARAMETER', `parameters.heldOutRows must be at most ${refRows - 2} (model "${m.name}" has ${refRows} reference rows)`);
        }
        if (!body.force) {
          const state = await amortisedStateOf(app, m);
          if (state.state === 'ready') {
            res.status(200).json(state);
            return;
          }
        }
        const job = await runner.submitTraining(trainingSpec(svc.config.dataDir, m, parameters), scopeOf(req));
        app.logger.info({ job: job.id, model: m.name, version: m.version }, 'amortised training job submitted');
        res.status(202).location(`/v1/jobs/${job.id}`).json(job);
      },
    },
    {
      method: 'get',
      path: '/v1/models/{name}/amortised',
      summary: "The model's amortised explainer: state (none, training, ready, failed, stale), servable, the training job's progress, the validation figures",
      access: { from: 'path' },
      request: { params: nameParams },
      responses: { 200: json('The state', amortisedStateSchema), ...errors(403) },
      async handle(_req, res, { model: m }) {
        checkSupported(m, 'amortised-shap');
        res.json(await amortisedStateOf(app, m));
      },
    },
  ];
}
