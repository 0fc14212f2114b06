/**
 * The whole life of an amortised explainer for one model version, as the training job runs it:
 *   1. split the reference rows (held-out rows for validation, early-stopping rows, training rows,
 *      plus synthetic training rows), size the probe rows to the model's speed (probeBudget.ts) and
 *      evaluate every row's probes (explainers/amortised/training.ts);
 *   2. label: evaluate each row's coalitions on the model's game (Kernel SHAP's game) and keep them as
 *      sufficient statistics, in slices, checkpointed after each;
 *   3. train the network on them (models/amortised/trainNetwork.ts), checkpointed after each epoch;
 *      with `ensemble` E > 1, E networks one after another (own initial weights and row order each),
 *      merged into one network whose output is their mean (models/amortised/network.ts);
 *   4. validate on the held-out rows against exact Shapley values (or Kernel SHAP at a large budget);
 *   5. store it beside the model version (store.ts) and remove the checkpoints.
 * Calling again with the same options after a crash, a restart or an abort resumes from the last
 * checkpoint and ends exactly where an uninterrupted run ends (validation is recomputed: it is
 * deterministic). Different options, rows or model version start over.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createGame, endpointEvaluations, endpointValues, type AmortisedGameOptions } from '../../explainers/amortised/game.js';
import { shuffled, streamRng, STREAM } from '../../explainers/amortised/sampling.js';
import { CoalitionStats } from '../../explainers/amortised/targets.js';
import {
  checkHyperparameters,
  labelRows,
  networkInputs,
  outputColumnScales,
  rowInputs,
  splitReference,
  trainingScales,
  type AmortisedHyperparameters,
} from '../../explainers/amortised/training.js';
import type { AmortisedValidation } from '../../explainers/amortised/types.js';
import { validateAmortised, type ValidateAmortisedOptions } from '../../explainers/amortised/validation.js';
import { ExplainerInputError, type Model, type Rows } from '../../explainers/types.js';
import { AmortisedNetwork } from '../../models/amortised/estimator.js';
import { mergeMembers, type WeightArrays } from '../../models/amortised/network.js';
import { CheckpointMismatch, evaluateLoss, trainNetwork, type EpochProgress, type NetworkTrainingSummary } from '../../models/amortised/trainNetwork.js';
import { ServedAmortisedExplainer } from './explainer.js';
import { applyProbeChoice, chooseProbeRows, type ProbeChoice } from './probeBudget.js';
import { checkpointDirOf, saveAmortised, type MemberRecord, type TrainingRecord } from './store.js';

export interface BuildAmortisedOptions extends Omit<AmortisedGameOptions, 'seed'>, Partial<AmortisedHyperparameters> {
  modelName: string;
  modelVersion: string;
  /** The model's reference rows: training, early-stopping and held-out rows all come from these. */
  reference: Rows;
  /** Where the explainer is stored (amortisedDir); checkpoints go to checkpointDirOf(dir). */
  dir: string;
  /** Options of the validation (reference budget, Kernel SHAP comparison budget ...). */
  validation?: Omit<ValidateAmortisedOptions, 'space' | 'signal' | 'onProgress'>;
  signal?: AbortSignal;
  onProgress?: (progress: BuildProgress) => void;
}

export type BuildPhase = 'labelling' | 'training' | 'validating' | 'saving';

export type BuildProgress =
  | { phase: 'labelling'; rowsDone: number; rowsTotal: number; modelEvaluations: number; elapsedMs: number }
  /** member (0-based) and members only for an ensemble of more than one network; epoch is the member's own. */
  | ({ phase: 'training'; member?: number; members?: number } & EpochProgress)
  | { phase: 'validating'; rowsDone: number; rowsTotal: number; elapsedMs: number }
  | { phase: 'saving'; elapsedMs: number };

export interface BuildResult {
  explainer: ServedAmortisedExplainer;
  id: string;
  training: TrainingRecord;
  validation: AmortisedValidation;
  hyperparameters: AmortisedHyperparameters;
  dir: string;
}

/**
 * Member e > 0 of an ensemble shuffles its epochs with stream index epoch + e x this (epochs are at
 * most 100,000, checkHyperparameters), so no two members share an epoch's order; member 0 uses the
 * epoch alone, as a single network does.
 */
const MEMBER_SHUFFLE_OFFSET = 100_000;

/** The probe rows chosen for this build (probeBudget.ts), in its checkpoint folder. */
const PROBES_FILE = 'probes.json';

/** Labelling slices: the training rows' coalitions are evaluated (and checkpointed) in this many parts at least. */
const LABEL_SLICES = 16;

interface LabelsMeta {
  fingerprint: string;
  /** Training rows labelled so far (the early-stopping rows are labelled first, all at once). */
  rowsDone: number;
  modelEvaluations: number;
  labellingMs: number;
  /** The statistics file of this state (labels-<rowsDone>.bin). */
  file?: string;
}

export async function buildAmortised(model: Model, o: BuildAmortisedOptions): Promise<BuildResult> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const hp = checkHyperparameters(pickHyperparameters(o));
  const game = createGame(model, { ...o, seed: hp.seed });
  const M = game.players.length;
  const K = game.outputs.length;
  if (M < 2) {
    throw new ExplainerInputError('BAD_PARAMETER', `an amortised explainer needs at least 2 players; this model has ${M}: use kernel-shap`);
  }
  if (!o.reference || o.reference.d !== model.nFeatures) {
    throw new ExplainerInputError('BAD_REFERENCE', `the reference rows must be a matrix of rows with ${model.nFeatures} values each`);
  }
  const split = splitReference(o.reference, game.players, hp);
  const { signal } = o;
  signal?.throwIfAborted();
  const checkpoints = checkpointDirOf(o.dir);

  // Probe rows sized to the model's speed (probeBudget.ts); a resumed build takes the choice it made.
  let fingerprint = fingerprintOf(o, hp, game, split.train, split.early);
  let probeChoice: ProbeChoice | undefined;
  if (hp.probes) {
    const saved = await readJson<{ fingerprint: string; choice: ProbeChoice }>(path.join(checkpoints, PROBES_FILE));
    if (saved && saved.fingerprint === fingerprint) {
      probeChoice = saved.choice;
      applyProbeChoice(game, probeChoice, hp.seed);
    } else {
      probeChoice = await chooseProbeRows(model, game, split.early, { requested: hp.probeRows, budgetMs: hp.probeBudgetMs, seed: hp.seed, signal });
    }
  }
  const probesFingerprint = fingerprint;
  if (probeChoice) fingerprint = createHash('sha256').update(`${fingerprint}:probe-rows:${probeChoice.rows}`).digest('hex').slice(0, 32);

  // Probes and endpoints: v(N) per row and v(∅), from one model call per set.
  const trainEnds = await endpointValues(model, game, split.train, signal, hp.probes);
  const earlyEnds = await endpointValues(model, game, split.early, signal, hp.probes);
  let probeEvaluations = endpointEvaluations(game, split.train.n, hp.probes) + endpointEvaluations(game, split.early.n, hp.probes);
  const trainX = networkInputs(split.train, trainEnds.probes, K, M);
  const earlyX = networkInputs(split.early, earlyEnds.probes, K, M);
  const scales = trainingScales(trainX, split.train.n, trainEnds.grand, trainEnds.empty, K, M);
  const trainInputs = rowInputs(game, split.train, trainX, trainEnds, scales.outputScale);
  const earlyInputs = rowInputs(game, split.early, earlyX, earlyEnds, scales.outputScale);

  const labelsFile = path.join(checkpoints, 'labels.json');
  const trainStats = new CoalitionStats(split.train.n, M, K);
  const earlyStats = new CoalitionStats(split.early.n, M, K);
  let meta: LabelsMeta = { fingerprint, rowsDone: -1, modelEvaluations: 0, labellingMs: 0 };
  const saved = await readJson<LabelsMeta>(labelsFile);
  if (saved && saved.fingerprint === fingerprint) {
    const bin = await readFile(path.join(checkpoints, saved.file ?? 'labels.bin'));
    const all = new Float64Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
    restoreStats(all, [trainStats, earlyStats]);
    meta = saved;
  } else if (saved) {
    // Another run's checkpoints (other options, rows or version): start over.
    await rm(checkpoints, { recursive: true, force: true });
  }
  await mkdir(checkpoints, { recursive: true });
  if (probeChoice) await writeFile(path.join(checkpoints, PROBES_FILE), JSON.stringify({ fingerprint: probesFingerprint, choice: probeChoice }));

  // Labelling: the early-stopping rows (a stream of their own), then the training rows in slices.
  const design = (stream: number) => ({ sampler: hp.sampler, budget: hp.coalitionsPerRow, stream, seed: hp.seed });
  const slice = Math.max(1, Math.ceil(split.train.n / LABEL_SLICES));
  const report = () =>
    o.onProgress?.({ phase: 'labelling', rowsDone: Math.max(0, meta.rowsDone), rowsTotal: split.train.n, modelEvaluations: meta.modelEvaluations, elapsedMs: elapsed() });
  while (meta.rowsDone < split.train.n) {
    const t0 = performance.now();
    if (meta.rowsDone < 0) {
      meta.modelEvaluations += await labelRows(model, game, split.early, earlyEnds.empty, { from: 0, to: split.early.n }, design(STREAM.validation), earlyStats, scales.outputScale, signal);
      meta.rowsDone = 0;
    } else {
      const to = Math.min(split.train.n, meta.rowsDone + slice);
      meta.modelEvaluations += await labelRows(model, game, split.train, trainEnds.empty, { from: meta.rowsDone, to }, design(STREAM.coalitions), trainStats, scales.outputScale, signal);
      meta.rowsDone = to;
    }
    meta.labellingMs += performance.now() - t0;
    await saveLabels(checkpoints, meta, [trainStats, earlyStats]);
    report();
  }
  trainStats.computeMinimum(trainInputs.totals, trainInputs.varying);
  earlyStats.computeMinimum(earlyInputs.totals, earlyInputs.varying);

  // Training: member 0 is the single network's run (init stream 0, shuffles by epoch, folder `network`);
  // member e > 0 has its own init stream e, its own shuffles and folder network-<e>. A member already
  // finished resumes from its checkpoint at once.
  const trainMember = async (e: number) => {
    const dir = path.join(checkpoints, e === 0 ? 'network' : `network-${e}`);
    const ensemble = hp.ensemble > 1 ? { member: e, members: hp.ensemble } : {};
    const trainOnce = () =>
      trainNetwork(
        { ...trainInputs, objectives: trainStats },
        { ...earlyInputs, objectives: earlyStats },
        {
          players: M,
          outputs: K,
          hidden: hp.hidden,
          activation: hp.activation,
          linearSkip: hp.linearSkip,
          batchSize: hp.batchSize,
          maxEpochs: hp.maxEpochs,
          patience: hp.patience,
          weightDecay: hp.weightDecay,
          learningRate: hp.learningRate,
          minLearningRate: hp.minLearningRate,
          standardisation: { inputMean: scales.inputMean, inputScale: scales.inputScale, outputScale: outputColumnScales(scales.outputScale, M) },
          initRng: streamRng(hp.seed, e, STREAM.init),
          order: (epoch, n) => shuffled(streamRng(hp.seed, epoch + e * MEMBER_SHUFFLE_OFFSET, STREAM.shuffle), n),
          checkpoint: { dir, fingerprint },
          signal,
          onEpoch: o.onProgress && ((p) => o.onProgress!({ phase: 'training', ...ensemble, ...p })),
        },
      );
    return trainOnce().catch(async (err: unknown) => {
      if (!(err instanceof CheckpointMismatch)) throw err;
      await rm(dir, { recursive: true, force: true });
      return trainOnce();
    });
  };
  const summaries: NetworkTrainingSummary[] = [];
  let network: AmortisedNetwork;
  let ensembleValidationLoss: number | undefined;
  if (hp.ensemble === 1) {
    const trained = await trainMember(0);
    network = trained.network;
    summaries.push(trained.summary);
  } else {
    // Members are read into plain arrays one at a time: only one member's variables live at once.
    const weights: WeightArrays[] = [];
    let member: Pick<AmortisedNetwork, 'spec' | 'standardisation'> | undefined;
    for (let e = 0; e < hp.ensemble; e++) {
      const trained = await trainMember(e);
      try {
        weights.push(await trained.network.read());
        member = trained.network;
      } finally {
        trained.network.dispose();
      }
      summaries.push(trained.summary);
    }
    const merged = mergeMembers(member!.spec, weights);
    network = new AmortisedNetwork(merged.spec, merged.weights, member!.standardisation);
    ensembleValidationLoss = evaluateLoss(network, { ...earlyInputs, objectives: earlyStats }, M, K);
  }
  const summary = summaries[0];
  const trainMs = summaries.reduce((a, m) => a + m.trainMs, 0);
  const explainer = new ServedAmortisedExplainer(game, o.modelName, o.modelVersion, network, hp.probes);
  try {
    const v0 = performance.now();
    const validation = await validateAmortised(explainer, model, split.heldOut, {
      ...o.validation,
      space: o.space,
      seed: o.validation?.seed ?? hp.seed,
      signal,
      onProgress: o.onProgress && ((p) => o.onProgress!({ phase: 'validating', ...p, elapsedMs: elapsed() })),
    });
    explainer.validation = validation;
    const validationMs = performance.now() - v0;
    probeEvaluations += validation.modelEvaluations;
    o.onProgress?.({ phase: 'saving', elapsedMs: elapsed() });
    const training: TrainingRecord = {
      trainingRows: split.train.n,
      realTrainingRows: split.realTrainingRows,
      earlyStoppingRows: split.early.n,
      heldOutRows: split.heldOut.n,
      coalitionsPerRow: Math.min(hp.coalitionsPerRow, 2 ** M - 2),
      exactTargets: hp.coalitionsPerRow >= 2 ** M - 2,
      labellingEvaluations: meta.modelEvaluations,
      modelEvaluations: meta.modelEvaluations + probeEvaluations,
      epochs: summary.epochs,
      bestEpoch: summary.bestEpoch,
      bestValidationLoss: summary.bestValidationLoss,
      linearStageEpochs: summary.linearStageEpochs,
      stoppedEarly: summary.stoppedEarly,
      resumedFromEpoch: summary.resumedFromEpoch,
      labellingMs: meta.labellingMs,
      trainMs,
      validationMs,
      totalMs: meta.labellingMs + trainMs + validationMs,
      history: summary.history,
      ensemble: hp.ensemble,
      members: summaries.map(memberRecord),
      ...(ensembleValidationLoss !== undefined ? { ensembleValidationLoss } : {}),
      ...(probeChoice ? { probes: probeChoice } : {}),
    };
    const id = await saveAmortised(o.dir, explainer, { hyperparameters: hp, training, validation });
    // The training task writes its progress file into this folder from its own promise chain: a write
    // still in flight puts a file back while the folder is emptied (ENOTEMPTY), so the removal retries.
    await rm(checkpoints, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    return { explainer, id, training, validation, hyperparameters: hp, dir: o.dir };
  } catch (e) {
    explainer.dispose();
    throw e;
  }
}

const HYPERPARAMETER_KEYS = [
  'seed',
  'heldOutRows',
  'earlyStoppingFraction',
  'syntheticRows',
  'synthesis',
  'coalitionsPerRow',
  'sampler',
  'probes',
  'probeRows',
  'probeBudgetMs',
  'hidden',
  'activation',
  'linearSkip',
  'maxEpochs',
  'patience',
  'batchSize',
  'weightDecay',
  'learningRate',
  'minLearningRate',
  'ensemble',
] as const satisfies readonly (keyof AmortisedHyperparameters)[];

function pickHyperparameters(o: Partial<AmortisedHyperparameters>): Partial<AmortisedHyperparameters> {
  return Object.fromEntries(HYPERPARAMETER_KEYS.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

function memberRecord(s: NetworkTrainingSummary): MemberRecord {
  return {
    epochs: s.epochs,
    bestEpoch: s.bestEpoch,
    bestValidationLoss: s.bestValidationLoss,
    linearStageEpochs: s.linearStageEpochs,
    stoppedEarly: s.stoppedEarly,
    resumedFromEpoch: s.resumedFromEpoch,
    trainMs: s.trainMs,
  };
}

/**
 * What the labels and each member's training depend on. Not the ensemble size: a member's run is the
 * same in any ensemble, so a build resumed with another `ensemble` keeps the labels and members done.
 */
function fingerprintOf(o: BuildAmortisedOptions, hyperparameters: AmortisedHyperparameters, game: ReturnType<typeof createGame>, train: Rows, early: Rows): string {
  const { ensemble: _ensemble, ...hp } = hyperparameters;
  const h = createHash('sha256');
  h.update(JSON.stringify({ hp, modelVersion: o.modelVersion, modelName: o.modelName, players: game.players, link: game.link, outputs: game.outputs, n: train.n, ne: early.n }));
  for (const a of [train.data, early.data, game.background.data, Float32Array.from(game.weights)]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex').slice(0, 32);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The statistics' sums and weights, end to end. */
function restoreStats(all: Float64Array, stats: CoalitionStats[]): void {
  const expected = stats.reduce((a, s) => a + s.sums.length + s.weight.length, 0);
  if (all.length !== expected) throw new Error(`the labelling checkpoint holds ${all.length} values, expected ${expected}`);
  let at = 0;
  for (const s of stats) {
    s.sums.set(all.subarray(at, at + s.sums.length));
    at += s.sums.length;
    s.weight.set(all.subarray(at, at + s.weight.length));
    at += s.weight.length;
  }
}

/** labels-<rows>.bin (renamed into place) before labels.json names it: a crash between the two leaves the previous pair valid. */
async function saveLabels(dir: string, meta: LabelsMeta, stats: CoalitionStats[]): Promise<void> {
  const previous = meta.file;
  meta.file = `labels-${meta.rowsDone}.bin`;
  const total = stats.reduce((a, s) => a + s.sums.length + s.weight.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const s of stats) {
    all.set(s.sums, at);
    at += s.sums.length;
    all.set(s.weight, at);
    at += s.weight.length;
  }
  await writeFile(path.join(dir, `${meta.file}.tmp`), new Uint8Array(all.buffer));
  await rename(path.join(dir, `${meta.file}.tmp`), path.join(dir, meta.file));
  await writeFile(path.join(dir, 'labels.json.tmp'), JSON.stringify(meta));
  await rename(path.join(dir, 'labels.json.tmp'), path.join(dir, 'labels.json'));
  if (previous && previous !== meta.file) await rm(path.join(dir, previous), { force: true });
}
