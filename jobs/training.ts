/**
 * Training jobs: one long task per job that trains, validates and stores the amortised explainer of
 * a model version (service/amortised/). The embedded runner runs it on its executor (a worker thread
 * of the pool); the Redis runner queues it for `npm run worker` processes, which also publish the
 * stored explainer's files to Redis so that an API process on another machine can serve it. Progress
 * comes from the file the build writes beside its checkpoints; a job stopped by a restart resumes from
 * those checkpoints.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ServedModel } from '../models/served.js';
import { amortisedDir } from '../service/amortised/store.js';
import type { AmortisedTrainingParameters } from '../service/amortised/task.js';
import type { AmortisedTrainTask } from '../service/tasks.js';
import { TRAINING_METHOD, type JobSpec } from './types.js';

export { TRAINING_METHOD };

/** The recipe of a training job: the validated parameters and where the API stores the explainer. */
export function trainingSpec(dataDir: string, m: ServedModel, parameters: AmortisedTrainingParameters): JobSpec {
  return {
    model: m.name,
    version: m.version,
    method: TRAINING_METHOD,
    parameters: { ...parameters },
    options: { dir: amortisedDir(dataDir, m.name, m.version), parameters },
    chunkSize: 1,
    nFeatures: m.model.nFeatures,
    featureNames: m.space.featureNames,
    outputNames: m.space.outputNames,
  };
}

/** The job's task; `dataDir`: a worker process's own DATA_DIR instead of the API's. */
export function trainingTask(spec: JobSpec, dataDir?: string): AmortisedTrainTask {
  const options = spec.options as { dir: string; parameters: AmortisedTrainingParameters };
  return {
    kind: 'amortised-train',
    model: spec.model,
    version: spec.version,
    dir: dataDir ? amortisedDir(dataDir, spec.model, spec.version) : options.dir,
    parameters: options.parameters,
  };
}

/** Where a training job's explainer goes on this machine. */
export function trainingDir(spec: JobSpec, dataDir?: string): string {
  return dataDir ? amortisedDir(dataDir, spec.model, spec.version) : (spec.options as { dir: string }).dir;
}

/** The files of a stored explainer (service/amortised/store.ts). */
export const ARTEFACT_FILES = ['model.json', 'weights.bin', 'explainer.json', 'training.json', 'validation.json'] as const;

export async function readArtefacts(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const f of ARTEFACT_FILES) out[f] = await readFile(path.join(dir, f));
  return out;
}

/** Writes a stored explainer's files into `dir` whole (a temporary folder renamed into place). */
export async function writeArtefacts(dir: string, files: Record<string, Buffer>): Promise<void> {
  for (const f of ARTEFACT_FILES) if (!files[f]) throw new Error(`the stored explainer lacks ${f}`);
  const tmp = `${dir}.tmp-${process.pid}-${Date.now().toString(36)}`;
  await mkdir(tmp, { recursive: true });
  try {
    for (const f of ARTEFACT_FILES) await writeFile(path.join(tmp, f), files[f]);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
