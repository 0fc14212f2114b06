/**
 * The training job's work, as a worker task runs it (service/tasks.ts, kind 'amortised-train'): build
 * the explainer of a served model version from its metadata's background (the game) and reference
 * rows (training, early-stopping and held-out rows), and store it in `dir`. Progress goes to a small
 * file beside the checkpoints (progress.json, replaced atomically, at most a few times a second), which
 * the job runners read: it crosses threads and processes alike and survives a restart.
 *
 * This file must not import the Service (service/tasks.ts imports it, and the Service the executor).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AmortisedHyperparameters } from '../../explainers/amortised/training.js';
import type { ErrorStats } from '../../explainers/amortised/types.js';
import type { ServedModel } from '../../models/served.js';
import { ServiceError } from '../errors.js';
import { buildAmortised, type BuildPhase, type BuildProgress } from './build.js';
import { checkpointDirOf } from './store.js';

/** What a training job runs with: the hyperparameters (defaults filled in later) and validation budgets. */
export interface AmortisedTrainingParameters extends Partial<AmortisedHyperparameters> {
  /** Kernel SHAP budget of the validation reference beyond exact enumeration (more than 14 players). */
  referenceSamples?: number;
}

export interface AmortisedTrainResult {
  id: string;
  validation: { reference: 'exact' | 'kernel-shap'; rows: number; amortised: ErrorStats; kernelShap?: ErrorStats & { nSamples: number }; ratioToKernelShap?: number; shapKernelExplainer?: ErrorStats & { nSamples: number }; ratioToShapKernelExplainer?: number };
  trainingRows: number;
  epochs: number;
  modelEvaluations: number;
  totalMs: number;
}

/** A training job's progress as the job views show it. */
export interface TrainingProgress {
  phase: 'queued' | BuildPhase | 'done';
  /** A rough share of the work done, 0..1 (labelling about half, training about 40%, validation the rest). */
  fraction: number;
  rowsDone?: number;
  rowsTotal?: number;
  epoch?: number;
  maxEpochs?: number;
  /** Training an ensemble: the network being trained (0-based) and how many there are; epoch is the member's own. */
  member?: number;
  members?: number;
  bestEpoch?: number;
  validationLoss?: number;
  modelEvaluations?: number;
  elapsedMs?: number;
  updatedAt: string;
}

const PROGRESS_FILE = 'progress.json';
/** Progress written at most this often (and on every change of phase). */
const PROGRESS_MS = 250;

export function progressOf(p: BuildProgress): Omit<TrainingProgress, 'updatedAt'> {
  switch (p.phase) {
    case 'labelling':
      return { phase: p.phase, fraction: 0.5 * (p.rowsDone / Math.max(1, p.rowsTotal)), rowsDone: p.rowsDone, rowsTotal: p.rowsTotal, modelEvaluations: p.modelEvaluations, elapsedMs: p.elapsedMs };
    case 'training': {
      // An ensemble's members share the training share in turn: a member that stops early jumps to the next one's start.
      const members = p.members ?? 1;
      const member = p.member ?? 0;
      return {
        phase: p.phase,
        fraction: 0.5 + 0.4 * ((member + p.epoch / Math.max(1, p.maxEpochs)) / members),
        epoch: p.epoch,
        maxEpochs: p.maxEpochs,
        ...(p.members !== undefined ? { member, members } : {}),
        bestEpoch: p.bestEpoch,
        validationLoss: p.validationLoss,
        elapsedMs: p.elapsedMs,
      };
    }
    case 'validating':
      return { phase: p.phase, fraction: 0.9 + 0.09 * (p.rowsDone / Math.max(1, p.rowsTotal)), rowsDone: p.rowsDone, rowsTotal: p.rowsTotal, elapsedMs: p.elapsedMs };
    case 'saving':
      return { phase: p.phase, fraction: 0.99, elapsedMs: p.elapsedMs };
  }
}

/** The progress the build of `dir` last wrote, or undefined. */
export async function readTrainingProgress(dir: string): Promise<TrainingProgress | undefined> {
  try {
    return JSON.parse(await readFile(path.join(checkpointDirOf(dir), PROGRESS_FILE), 'utf8')) as TrainingProgress;
  } catch {
    return undefined;
  }
}

/** Builds and stores the explainer of model `m` in `dir` (resuming from checkpoints there). */
export async function runAmortisedTraining(
  m: ServedModel,
  dir: string,
  parameters: AmortisedTrainingParameters,
  signal?: AbortSignal,
): Promise<AmortisedTrainResult> {
  if (!m.background) {
    throw new ServiceError('NO_BACKGROUND', `model "${m.name}" has no background set in its metadata: the amortised explainer's game needs one`);
  }
  if (!m.reference) {
    throw new ServiceError('NO_REFERENCE_DATA', `model "${m.name}" has no reference set in its metadata: the amortised explainer trains on its rows`);
  }
  const progressDir = checkpointDirOf(dir);
  await mkdir(progressDir, { recursive: true });
  let last = 0;
  let lastPhase = '';
  let writing = Promise.resolve();
  const write = (p: Omit<TrainingProgress, 'updatedAt'>) => {
    const body = JSON.stringify({ ...p, updatedAt: new Date().toISOString() });
    writing = writing
      .then(async () => {
        const file = path.join(progressDir, PROGRESS_FILE);
        await writeFile(`${file}.tmp`, body);
        await rename(`${file}.tmp`, file);
      })
      .catch(() => undefined);
  };
  const { referenceSamples, ...hyperparameters } = parameters;
  const built = await buildAmortised(m.model, {
    ...hyperparameters,
    space: m.space,
    background: m.background,
    link: m.metadata?.link ?? 'identity',
    modelName: m.name,
    modelVersion: m.version,
    reference: m.reference.rows,
    dir,
    validation: referenceSamples !== undefined ? { referenceSamples } : undefined,
    signal,
    onProgress: (p) => {
      const now = Date.now();
      if (p.phase === lastPhase && now - last < PROGRESS_MS) return;
      last = now;
      lastPhase = p.phase;
      // Nothing to write once the explainer is stored: the checkpoint folder goes with it.
      if (p.phase !== 'saving') write(progressOf(p));
    },
  });
  await writing;
  built.explainer.dispose();
  const v = built.validation;
  return {
    id: built.id,
    validation: {
      reference: v.reference,
      rows: v.rows,
      amortised: v.amortised,
      ...(v.kernelShap ? { kernelShap: v.kernelShap } : {}),
      ...(v.ratioToKernelShap !== undefined ? { ratioToKernelShap: v.ratioToKernelShap } : {}),
      ...(v.shapKernelExplainer ? { shapKernelExplainer: v.shapKernelExplainer } : {}),
      ...(v.ratioToShapKernelExplainer !== undefined ? { ratioToShapKernelExplainer: v.ratioToShapKernelExplainer } : {}),
    },
    trainingRows: built.training.trainingRows,
    epochs: built.training.epochs,
    modelEvaluations: built.training.modelEvaluations,
    totalMs: built.training.totalMs,
  };
}
