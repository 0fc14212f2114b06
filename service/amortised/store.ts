/**
 * An amortised explainer on disk, beside the model version it explains:
 * `<DATA_DIR>/amortised/<model>/<version>/` holds
 * - model.json + weights.bin: the network as a standard tfjs layers model (models/amortised/store.ts),
 * - explainer.json: its identity (a content hash), the model name and version, the game (players,
 *   link, outputs, background), the network's shape and standardisation, the hyperparameters,
 * - training.json: what training did (rows, model evaluations, epochs, the loss history),
 * - validation.json: the error measured on held-out rows (explainers/amortised/types.ts).
 * A folder is written whole under a temporary name and renamed into place, so a reader sees the old
 * explainer or the new one, never half of one. A changed model has a new version, hence a new, empty
 * folder; the loader refuses an explainer recorded for another version (it explains another function).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AmortisedGame } from '../../explainers/amortised/game.js';
import type { AmortisedHyperparameters } from '../../explainers/amortised/training.js';
import type { AmortisedValidation } from '../../explainers/amortised/types.js';
import { isLinkName } from '../../explainers/link.js';
import { readNetwork, writeNetwork } from '../../models/amortised/store.js';
import type { NetworkSpec } from '../../models/amortised/network.js';
import type { NetworkTrainingSummary } from '../../models/amortised/trainNetwork.js';
import { ServiceError } from '../errors.js';
import { ServedAmortisedExplainer } from './explainer.js';
import type { ProbeChoice } from './probeBudget.js';

export const EXPLAINER_FORMAT = 'tfjs-explainer/amortised-shap';
export const EXPLAINER_FORMAT_VERSION = 2;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Where the explainers of a model live, one folder per version. */
export function amortisedModelDir(dataDir: string, modelName: string): string {
  if (!SAFE_NAME.test(modelName)) throw new ServiceError('BAD_PARAMETER', `model name "${modelName}" cannot name a folder`);
  return path.join(dataDir, 'amortised', modelName);
}

/** Where the explainer of one model version lives. */
export function amortisedDir(dataDir: string, modelName: string, modelVersion: string): string {
  if (!SAFE_NAME.test(modelVersion)) throw new ServiceError('BAD_PARAMETER', `model version "${modelVersion}" cannot name a folder`);
  return path.join(amortisedModelDir(dataDir, modelName), modelVersion);
}

/** Where a build keeps its checkpoints until the explainer is stored. */
export function checkpointDirOf(dir: string): string {
  return `${dir}.training`;
}

export interface ExplainerFile {
  format: string;
  formatVersion: number;
  /** Content hash of the network and this file's game and standardisation: the explainer's identity. */
  id: string;
  modelName: string;
  modelVersion: string;
  createdAt: string;
  game: {
    nFeatures: number;
    players: number[][];
    link: string;
    outputs: number[];
    background: { n: number; d: number; data: number[] };
    weights: number[];
    /** The rows the probes are taken against (absent: the background's mean row). */
    probeRows?: { n: number; d: number; data: number[]; weights: number[] };
  };
  network: NetworkSpec;
  /** True when the network takes each row's probe values besides the row (explainers/amortised/game.ts). */
  probes: boolean;
  standardisation: { inputMean: number[]; inputScale: number[]; outputScale: number[] };
  hyperparameters: AmortisedHyperparameters;
}

/** One network of an ensemble: how its training went (the fields of the same names in TrainingRecord). */
export type MemberRecord = Omit<NetworkTrainingSummary, 'history'>;

/**
 * What training did: kept beside the explainer for status pages and the report. With an ensemble
 * (hyperparameter `ensemble` > 1), epochs, bestEpoch, bestValidationLoss, linearStageEpochs,
 * stoppedEarly, resumedFromEpoch and history are member 0's (as for a single network); trainMs and
 * totalMs count every member; `members` has each member's own.
 */
export interface TrainingRecord {
  trainingRows: number;
  realTrainingRows: number;
  earlyStoppingRows: number;
  heldOutRows: number;
  coalitionsPerRow: number;
  /** True when every training row's coalitions were enumerated (exact targets). */
  exactTargets: boolean;
  /** Model rows evaluated for the targets (labelling) and in total (with probes and validation). */
  labellingEvaluations: number;
  modelEvaluations: number;
  epochs: number;
  bestEpoch: number;
  bestValidationLoss: number;
  linearStageEpochs: number;
  stoppedEarly: boolean;
  /** Epoch the network's training resumed from after an interruption (0: it ran in one go). */
  resumedFromEpoch: number;
  labellingMs: number;
  trainMs: number;
  validationMs: number;
  /** Wall time of the whole build, resumed parts included. */
  totalMs: number;
  history: { epoch: number; trainLoss: number; validationLoss: number; learningRate: number }[];
  /** Networks averaged into the stored one (absent in records written before ensembles: 1). */
  ensemble?: number;
  /** Each network's training, member 0 first (absent before ensembles). */
  members?: MemberRecord[];
  /** Ensembles only: the merged network's loss on the early-stopping rows (compare with each member's bestValidationLoss). */
  ensembleValidationLoss?: number;
  /** With probes: the probe rows asked for and taken, the single-row budget and the times measured (probeBudget.ts; absent before it). */
  probes?: ProbeChoice;
}

export interface StoredInfo {
  explainer: ExplainerFile;
  training?: TrainingRecord;
  validation?: AmortisedValidation;
}

/** Writes the explainer, its training record and validation to `dir`, replacing what was there; returns its id. */
export async function saveAmortised(
  dir: string,
  explainer: ServedAmortisedExplainer,
  extra: { hyperparameters: AmortisedHyperparameters; training: TrainingRecord; validation: AmortisedValidation },
): Promise<string> {
  await mkdir(path.dirname(dir), { recursive: true });
  const tag = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const tmp = `${dir}.tmp-${tag}`;
  await mkdir(tmp, { recursive: true });
  try {
    await writeNetwork(tmp, explainer.network);
    const g: AmortisedGame = explainer.game;
    const s = explainer.network.standardisation;
    const K = g.outputs.length;
    const M = g.players.length;
    const body: Omit<ExplainerFile, 'id' | 'createdAt'> = {
      format: EXPLAINER_FORMAT,
      formatVersion: EXPLAINER_FORMAT_VERSION,
      modelName: explainer.modelName,
      modelVersion: explainer.modelVersion,
      game: {
        nFeatures: g.nFeatures,
        players: g.players,
        link: g.link,
        outputs: g.outputs,
        background: { n: g.background.n, d: g.background.d, data: Array.from(g.background.data) },
        weights: Array.from(g.weights),
        ...(g.probeRows
          ? { probeRows: { n: g.probeRows.rows.n, d: g.probeRows.rows.d, data: Array.from(g.probeRows.rows.data), weights: Array.from(g.probeRows.weights) } }
          : {}),
      },
      network: explainer.network.spec,
      probes: explainer.probes,
      standardisation: {
        inputMean: Array.from(s.inputMean),
        inputScale: Array.from(s.inputScale),
        // One scale per explained output (the network's K x M output columns share their output's).
        outputScale: Array.from({ length: K }, (_, k) => s.outputScale[k * M]),
      },
      hyperparameters: extra.hyperparameters,
    };
    const id = createHash('sha256')
      .update(await readFile(path.join(tmp, 'weights.bin')))
      .update(JSON.stringify(body))
      .digest('hex')
      .slice(0, 16);
    const file: ExplainerFile = { ...body, id, createdAt: new Date().toISOString() };
    await writeFile(path.join(tmp, 'explainer.json'), JSON.stringify(file) + '\n');
    await writeFile(path.join(tmp, 'training.json'), JSON.stringify(extra.training) + '\n');
    await writeFile(path.join(tmp, 'validation.json'), JSON.stringify(extra.validation, null, 2) + '\n');
    const old = `${dir}.old-${tag}`;
    const existed = await stat(dir).then(
      () => true,
      () => false,
    );
    if (existed) await rename(dir, old);
    await rename(tmp, dir);
    if (existed) await rm(old, { recursive: true, force: true });
    explainer.id = id;
    return id;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}

/** explainer.json, training.json and validation.json of `dir`, without loading the network; undefined when there is no explainer. */
export async function readAmortisedInfo(dir: string): Promise<StoredInfo | undefined> {
  const explainer = await readJson<ExplainerFile>(path.join(dir, 'explainer.json')).catch((e: unknown) => {
    throw corrupt(`explainer.json cannot be read (${e instanceof Error ? e.message : String(e)})`);
  });
  if (!explainer) return undefined;
  const training = await readJson<TrainingRecord>(path.join(dir, 'training.json')).catch(() => undefined);
  const validation = await readJson<AmortisedValidation>(path.join(dir, 'validation.json')).catch(() => undefined);
  return { explainer, training, validation };
}

/** The versions of a model that have a stored explainer. */
export async function storedVersions(dataDir: string, modelName: string): Promise<string[]> {
  const root = amortisedModelDir(dataDir, modelName);
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || !SAFE_NAME.test(e.name) || e.name.includes('.')) continue;
    if (await stat(path.join(root, e.name, 'explainer.json')).catch(() => undefined)) out.push(e.name);
  }
  return out;
}

/**
 * Loads the explainer of `dir` for the model version being served. ServiceError: AMORTISED_NOT_FOUND
 * (no explainer there), AMORTISED_STALE (trained on another version or model), AMORTISED_NOT_VALIDATED
 * (no validation.json); damaged files are a plain Error (the service's fault, not the caller's).
 */
export async function loadAmortised(dir: string, current: { modelVersion: string; modelName?: string }): Promise<ServedAmortisedExplainer> {
  const info = await readAmortisedInfo(dir);
  if (!info) {
    throw new ServiceError('AMORTISED_NOT_FOUND', 'no amortised explainer has been trained for this model version: train one with POST /v1/models/{name}/amortised (until then use kernel-shap)');
  }
  const f = info.explainer;
  if (f.format !== EXPLAINER_FORMAT || f.formatVersion !== EXPLAINER_FORMAT_VERSION) throw corrupt(`explainer.json is not a ${EXPLAINER_FORMAT} v${EXPLAINER_FORMAT_VERSION} file`);
  if (f.modelVersion !== current.modelVersion) throw staleError(f.modelVersion, current.modelVersion);
  if (current.modelName !== undefined && f.modelName !== current.modelName) {
    throw new ServiceError('AMORTISED_STALE', `the amortised explainer in this folder was trained for model "${f.modelName}", not "${current.modelName}"`);
  }
  if (!info.validation) throw new ServiceError('AMORTISED_NOT_VALIDATED', 'the amortised explainer has no validation.json: train it again to validate it before serving');
  if (!isLinkName(f.game.link)) throw corrupt(`explainer.json names an unknown link "${f.game.link}"`);
  const M = f.game.players.length;
  const network = await readNetwork(dir, f.network, {
    inputMean: Float32Array.from(f.standardisation.inputMean),
    inputScale: Float32Array.from(f.standardisation.inputScale),
    outputScale: Float32Array.from({ length: f.game.outputs.length * M }, (_, i) => f.standardisation.outputScale[Math.floor(i / M)]),
  }).catch((e: unknown) => {
    throw corrupt(`the network cannot be loaded (${e instanceof Error ? e.message : String(e)})`);
  });
  const game: AmortisedGame = {
    nFeatures: f.game.nFeatures,
    players: f.game.players,
    link: f.game.link,
    outputs: f.game.outputs,
    background: { n: f.game.background.n, d: f.game.background.d, data: Float32Array.from(f.game.background.data) },
    weights: Float64Array.from(f.game.weights),
    ...(f.game.probeRows
      ? {
          probeRows: {
            rows: { n: f.game.probeRows.n, d: f.game.probeRows.d, data: Float32Array.from(f.game.probeRows.data) },
            weights: Float64Array.from(f.game.probeRows.weights),
          },
        }
      : {}),
  };
  const explainer = new ServedAmortisedExplainer(game, f.modelName, f.modelVersion, network, f.probes === true, f.id);
  explainer.validation = info.validation;
  return explainer;
}

export function staleError(trained: string, current: string): ServiceError {
  return new ServiceError(
    'AMORTISED_STALE',
    `the amortised explainer was trained on model version ${trained}, but the model is now version ${current}: ` +
      'train one for this version with POST /v1/models/{name}/amortised (until then use kernel-shap)',
    { trainedVersion: trained, modelVersion: current },
  );
}

/** The service's own files are damaged: not the caller's mistake, so a plain Error (a 5xx). */
function corrupt(message: string): Error {
  return new Error(`the stored amortised explainer is damaged: ${message}; train it again`);
}
