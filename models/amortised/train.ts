/**
 * Training an amortised Shapley explainer with FastSHAP's objective (Jethani et al., ICLR 2022).
 *
 * For a row x and a coalition S drawn from the Shapley kernel distribution (sampling.ts), the loss is
 * (v_x(S) - v_x(∅) - Σ_{i∈S} φ_i(x))^2, where φ(x) is the network's output after the additive
 * efficient normalisation (φ sums to v_x(N) - v_x(∅)); its expectation is minimised by the Shapley
 * values of x's game, so one network learns them for every x at once. The game is Kernel SHAP's
 * (explainers/amortised/game.ts): each coalition costs one model row per background row, which is
 * where the training time goes.
 *
 * Where we depart from FastSHAP's loop: FastSHAP draws fresh coalitions for every step and discards
 * them after one use. We give every training row a fixed budget of coalitions, evaluate them once,
 * and keep the row's objective as sufficient statistics (targets.ts), so every step uses all of
 * them at O(M²) cost per row: the same objective, without throwing model evaluations away, and
 * coalitions drawn by Kernel SHAP's stratified sampler ('balanced'; FastSHAP's own Shapley-kernel
 * draws are sampler 'kernel'), whose per-row objective is much less noisy at equal budget. When the
 * budget covers all 2^M - 2 coalitions they are enumerated with exact kernel weights. The rows are
 * evaluated over the first `samplingEpochs` epochs, a slice per epoch (the network trains on the
 * rows evaluated so far), so a checkpoint never holds more than a slice of unsaved model work;
 * later epochs only train the network, at no model cost.
 *
 * - Adam, the learning rate halved when the early-stopping loss stalls for patience/2 epochs, and
 *   training stops patience epochs after its best epoch (FastSHAP's lookback), never before sampling
 *   is complete; the best epoch's weights are kept. The early-stopping rows get one fixed coalition set.
 * - Two stages when the network has hidden layers and a linear skip: first only the linear part
 *   (skip kernel and output bias) trains until early stopping, then the whole network continues from
 *   the best linear fit with a fresh optimiser. The best epoch over both stages is kept, so a model
 *   whose explanations are linear in the inputs and probes (a linear model) keeps its exact linear
 *   fit, and the hidden layers only learn what the linear part cannot: measured on the linear
 *   sample, a network trained in one stage generalised 100x worse to held-out rows.
 * - Seeded and deterministic on one backend: every epoch's random streams come from (seed, epoch).
 *   With `checkpointDir`, weights, optimiser state, schedule and the rows' statistics are saved after
 *   every epoch and a later call with the same options continues from there: the result is the same
 *   as a run never interrupted. AbortSignal is checked between steps; aborting rejects with its reason.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { ExplainerInputError, type Model, type Rows } from '../../explainers/types.js';
import { coalitionValues, createGame, endpointValues, varyingPlayers, type AmortisedGame, type AmortisedGameOptions } from '../../explainers/amortised/game.js';
import { AMORTISED_SAMPLERS, rowCoalitions, shuffled, streamRng, STREAM, type AmortisedSampler } from '../../explainers/amortised/sampling.js';
import { CoalitionStats } from '../../explainers/amortised/targets.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointState, type EpochRecord } from './checkpoint.js';
import { networkInputs, TfjsAmortisedExplainer, type Standardisation } from './explainer.js';
import { ACTIVATIONS, Adam, initialWeights, Mlp, type Activation, type NetworkSpec } from './network.js';

export interface TrainAmortisedOptions extends AmortisedGameOptions {
  modelName: string;
  modelVersion: string;
  /** Rows the explainer learns from. */
  rows: Rows;
  /** Rows for early stopping (not trained on). */
  validationRows: Rows;
  /** Default 0. Seeds the network's initial weights, every coalition draw and every shuffle. */
  seed?: number;
  /** Coalitions evaluated per training row (all of them when 2^M - 2 fit). Default 256. */
  coalitionsPerRow?: number;
  /** Coalitions per early-stopping row. Default: coalitionsPerRow. */
  validationCoalitions?: number;
  /** How coalitions are drawn (see sampling.ts, rowCoalitions). Default 'balanced'. */
  sampler?: AmortisedSampler;
  /** Epochs over which the training rows' coalitions are evaluated, a slice of rows each. Default 8. */
  samplingEpochs?: number;
  /** Default 500. */
  maxEpochs?: number;
  /** Epochs without a better early-stopping loss before training stops. Default 20. */
  patience?: number;
  /** Rows per optimiser step. Default 128. */
  batchSize?: number;
  /** Hidden layer widths. Default [256, 256]. */
  hidden?: number[];
  /** Default 'relu'. */
  activation?: Activation;
  /** A linear path from input to output beside the hidden layers (network.ts). Default true. */
  linearSkip?: boolean;
  /**
   * Give the network each row's 2M probe values (game.ts, endpointValues) besides the row: 2M + 1
   * more model rows per explained row at serving, in the same model call. Default true.
   */
  probes?: boolean;
  /**
   * L2 penalty on the hidden layers' kernels and the last kernel (not the linear skip), relative to
   * the loss. Without it the nonlinear part overfits the training rows. Default 1e-4.
   */
  weightDecay?: number;
  /** Initial Adam learning rate. Default 0.002. */
  learningRate?: number;
  /** Default 1e-5. */
  minLearningRate?: number;
  /** Save the state here after every epoch, and resume from it when it holds a checkpoint of the same run. */
  checkpointDir?: string;
  signal?: AbortSignal;
  onProgress?: (progress: TrainProgress) => void;
}

export interface TrainProgress {
  epoch: number;
  maxEpochs: number;
  /** Epochs that evaluate coalitions (the expensive ones) before training-only epochs. */
  samplingEpochs: number;
  trainLoss: number;
  validationLoss: number;
  bestEpoch: number;
  learningRate: number;
  modelEvaluations: number;
  elapsedMs: number;
}

type Hyperparameters = Required<
  Pick<
    TrainAmortisedOptions,
    | 'seed'
    | 'coalitionsPerRow'
    | 'validationCoalitions'
    | 'sampler'
    | 'samplingEpochs'
    | 'maxEpochs'
    | 'patience'
    | 'batchSize'
    | 'hidden'
    | 'activation'
    | 'linearSkip'
    | 'probes'
    | 'weightDecay'
    | 'learningRate'
    | 'minLearningRate'
  >
>;

export interface TrainingSummary {
  epochs: number;
  samplingEpochs: number;
  /** True when every training row's coalitions were enumerated (exact objective). */
  exactTargets: boolean;
  bestEpoch: number;
  bestValidationLoss: number;
  /** Epochs of the linear stage (0: trained in one stage); the best epoch after it is a nonlinear one. */
  linearStageEpochs: number;
  stoppedEarly: boolean;
  /** Epoch the run resumed from (0: started fresh). */
  resumedFromEpoch: number;
  /** Model rows evaluated by the run (a resumed run counts its earlier part as saved in the checkpoint). */
  modelEvaluations: number;
  trainMs: number;
  trainingRows: number;
  validationRows: number;
  hyperparameters: Hyperparameters;
  history: EpochRecord[];
}

/** FastSHAP's ReduceLROnPlateau settings: halve after patience/2 stalled epochs; improvements under 1e-4 relative do not count. */
const LR_FACTOR = 0.5;
/** The linear stage is a convex least-squares problem: it takes larger steps. */
const LINEAR_STAGE_LR = 5;
/**
 * The linear stage ends once the early-stopping loss has not improved by this fraction for
 * `patience` epochs: its tail of tiny improvements is not worth the epochs (on credit the whole
 * network then gained 4x more in its first 10 epochs than the linear stage in its last 50).
 */
const LINEAR_STAGE_THRESHOLD = 1e-3;
const PLATEAU_THRESHOLD = 1e-4;
/** Coalitions evaluated in one go (bounds memory; abort is checked between model calls). */
const JOBS_PER_EVALUATION = 65_536;

export async function trainAmortised(
  model: Model,
  options: TrainAmortisedOptions,
): Promise<{ explainer: TfjsAmortisedExplainer; training: TrainingSummary }> {
  const started = performance.now();
  const game = createGame(model, options);
  const hp = hyperparameters(options);
  const rows = checkRows(options.rows, 'rows', game.nFeatures);
  const valRows = checkRows(options.validationRows, 'validationRows', game.nFeatures);
  const M = game.players.length;
  const K = game.outputs.length;
  if (M < 2) {
    throw new ExplainerInputError('BAD_PARAMETER', `an amortised explainer needs at least 2 players; this model has ${M}: use kernel-shap`);
  }
  const { signal } = options;
  signal?.throwIfAborted();
  const N = game.background.n;
  const samplingEpochs = Math.min(hp.samplingEpochs, rows.n);
  const sliceEnd = (e: number) => Math.floor((Math.min(e, samplingEpochs) * rows.n) / samplingEpochs);

  let evaluations = 0;
  const trainEnds = await endpointValues(model, game, rows, signal, hp.probes);
  const valEnds = await endpointValues(model, game, valRows, signal, hp.probes);
  const perRow = hp.probes ? 1 + 2 * M : 1;
  evaluations += (rows.n + valRows.n) * perRow + 2 * N + (hp.probes ? 2 : 0);
  const trainX = networkInputs(rows, trainEnds.probes, K, M);
  const valX = networkInputs(valRows, valEnds.probes, K, M);
  const std = standardisation(trainX, rows.n, trainEnds.grand, trainEnds.empty, K, M);
  const spec: NetworkSpec = { inputs: std.inputMean.length, hidden: hp.hidden, outputs: K * M, activation: hp.activation, linearSkip: hp.linearSkip };
  const net = new Mlp(spec, initialWeights(spec, streamRng(hp.seed, 0, STREAM.init)));
  const adam = new Adam(net.variables);
  const explainer = new TfjsAmortisedExplainer(game, options.modelName, options.modelVersion, net, std, hp.probes);
  const fingerprint = fingerprintOf(options, hp, game, rows, valRows);
  const twoStages = spec.linearSkip && spec.hidden.length > 0;
  // The linear part: the output bias and the skip kernel.
  const linearPart = new Set([2 * spec.hidden.length + 1, 2 * spec.hidden.length + 2]);
  try {
    // The early-stopping rows: their coalitions are evaluated up front (a stream of their own).
    const valStats = new CoalitionStats(valRows.n, M, K);
    evaluations += await addRows(model, game, valRows, valEnds, 0, valRows.n, hp.sampler, hp.validationCoalitions, STREAM.validation, hp.seed, valStats, std, signal);
    const valInputs = rowInputs(game, valRows, valX, valEnds, std);
    valStats.computeMinimum(valInputs.totals, valInputs.varying);

    const stats = new CoalitionStats(rows.n, M, K);
    const trainInputs = rowInputs(game, rows, trainX, trainEnds, std);
    let state: CheckpointState = {
      fingerprint,
      epochsDone: 0,
      learningRate: hp.learningRate,
      bestLoss: Infinity,
      bestEpoch: 0,
      plateauBest: Infinity,
      plateauBad: 0,
      adamStep: 0,
      modelEvaluations: evaluations,
      trainMs: 0,
      history: [],
      stopped: false,
      stage: twoStages ? 1 : 2,
      stageStart: 0,
      stageBest: Infinity,
      stageBestEpoch: 0,
      stats: new Float64Array(0),
      weights: [],
      best: await net.read(),
      m: [],
      v: [],
    };
    let resumedFrom = 0;
    if (options.checkpointDir) {
      const saved = await loadCheckpoint(options.checkpointDir);
      if (saved) {
        if (saved.fingerprint !== fingerprint || saved.stats.length !== stats.sums.length + stats.weight.length) {
          throw new ExplainerInputError(
            'AMORTISED_CHECKPOINT_MISMATCH',
            'the checkpoint folder holds a training run with other options, rows or model version: use the same options to resume, or an empty folder to start over',
          );
        }
        state = { ...saved, bestLoss: saved.bestLoss ?? Infinity, plateauBest: saved.plateauBest ?? Infinity, stageBest: saved.stageBest ?? Infinity };
        stats.sums.set(saved.stats.subarray(0, stats.sums.length));
        stats.weight.set(saved.stats.subarray(stats.sums.length));
        stats.computeMinimum(trainInputs.totals, trainInputs.varying);
        net.assign(saved.weights);
        adam.restore({ step: saved.adamStep, m: saved.m, v: saved.v });
        resumedFrom = saved.epochsDone;
      }
    }
    const segmentStart = performance.now();
    const msBefore = state.trainMs;

    while (!state.stopped && state.epochsDone < hp.maxEpochs) {
      const epoch = state.epochsDone + 1;
      if (epoch <= samplingEpochs) {
        state.modelEvaluations += await addRows(model, game, rows, trainEnds, sliceEnd(epoch - 1), sliceEnd(epoch), hp.sampler, hp.coalitionsPerRow, STREAM.coalitions, hp.seed, stats, std, signal);
        stats.computeMinimum(trainInputs.totals, trainInputs.varying);
      }
      // Train on the rows evaluated so far (all of them once sampling is over).
      const ready = sliceEnd(epoch);
      const order = shuffled(streamRng(hp.seed, epoch, STREAM.shuffle), ready);
      let lossSum = 0;
      for (let b0 = 0; b0 < ready; b0 += hp.batchSize) {
        signal?.throwIfAborted();
        const idx = order.subarray(b0, Math.min(ready, b0 + hp.batchSize));
        const only = state.stage === 1 ? linearPart : undefined;
        const lr = state.stage === 1 ? LINEAR_STAGE_LR * state.learningRate : state.learningRate;
        const loss = step(explainer, adam, batchOf(trainInputs, stats, idx), lr, hp.weightDecay, only);
        lossSum += loss * idx.length;
      }
      signal?.throwIfAborted();
      const validationLoss = evaluateLoss(explainer, valInputs, valStats);
      const record: EpochRecord = { epoch, trainLoss: lossSum / ready, validationLoss, learningRate: state.learningRate };
      state.history.push(record);
      if (state.stage === 1 && validationLoss < state.stageBest * (1 - LINEAR_STAGE_THRESHOLD)) {
        state.stageBest = validationLoss;
        state.stageBestEpoch = epoch;
      }
      if (validationLoss < state.bestLoss) {
        state.bestLoss = validationLoss;
        state.bestEpoch = epoch;
        state.best = await net.read();
      }
      if (epoch - Math.max(state.stage === 1 ? state.stageBestEpoch : state.bestEpoch, samplingEpochs, state.stageStart) >= hp.patience) {
        if (state.stage === 1) {
          // The linear fit has settled: the whole network continues from its best weights.
          state.stage = 2;
          state.stageStart = epoch;
          net.assign(state.best);
          adam.reset();
          state.learningRate = hp.learningRate;
          state.plateauBest = Infinity;
          state.plateauBad = 0;
        } else {
          state.stopped = true;
        }
      }
      // While coalitions are still being added the objective moves: the schedule waits for it to settle.
      if (epoch >= samplingEpochs) {
        if (validationLoss < state.plateauBest * (1 - PLATEAU_THRESHOLD)) {
          state.plateauBest = validationLoss;
          state.plateauBad = 0;
        } else if (++state.plateauBad > Math.floor(hp.patience / 2)) {
          state.learningRate = Math.max(hp.minLearningRate, state.learningRate * LR_FACTOR);
          state.plateauBad = 0;
        }
      }
      state.epochsDone = epoch;
      state.adamStep = adam.step;
      state.trainMs = msBefore + (performance.now() - segmentStart);
      if (options.checkpointDir) {
        const moments = await adam.read();
        const all = new Float64Array(stats.sums.length + stats.weight.length);
        all.set(stats.sums);
        all.set(stats.weight, stats.sums.length);
        await saveCheckpoint(options.checkpointDir, { ...state, stats: all, weights: await net.read(), m: moments.m, v: moments.v });
      }
      options.onProgress?.({
        epoch,
        maxEpochs: hp.maxEpochs,
        samplingEpochs,
        trainLoss: record.trainLoss,
        validationLoss,
        bestEpoch: state.bestEpoch,
        learningRate: record.learningRate,
        modelEvaluations: state.modelEvaluations,
        elapsedMs: performance.now() - started,
      });
    }
    net.assign(state.best);
    return {
      explainer,
      training: {
        epochs: state.epochsDone,
        samplingEpochs,
        exactTargets: hp.coalitionsPerRow >= 2 ** M - 2,
        bestEpoch: state.bestEpoch,
        bestValidationLoss: state.bestLoss,
        linearStageEpochs: twoStages ? (state.stage === 2 ? state.stageStart : state.epochsDone) : 0,
        stoppedEarly: state.stopped,
        resumedFromEpoch: resumedFrom,
        modelEvaluations: state.modelEvaluations,
        trainMs: msBefore + (performance.now() - segmentStart),
        trainingRows: rows.n,
        validationRows: valRows.n,
        hyperparameters: hp,
        history: state.history,
      },
    };
  } catch (e) {
    explainer.dispose();
    throw e;
  } finally {
    adam.dispose();
  }
}

function hyperparameters(o: TrainAmortisedOptions): Hyperparameters {
  const hp: Hyperparameters = {
    seed: o.seed ?? 0,
    coalitionsPerRow: o.coalitionsPerRow ?? 256,
    validationCoalitions: o.validationCoalitions ?? o.coalitionsPerRow ?? 256,
    sampler: o.sampler ?? 'balanced',
    samplingEpochs: o.samplingEpochs ?? 8,
    maxEpochs: o.maxEpochs ?? 500,
    patience: o.patience ?? 20,
    batchSize: o.batchSize ?? 128,
    hidden: o.hidden ?? [256, 256],
    activation: o.activation ?? 'relu',
    linearSkip: o.linearSkip ?? true,
    probes: o.probes ?? true,
    weightDecay: o.weightDecay ?? 1e-4,
    learningRate: o.learningRate ?? 0.002,
    minLearningRate: o.minLearningRate ?? 1e-5,
  };
  const positiveInt = (name: string, v: number, max: number) => {
    if (!Number.isInteger(v) || v < 1 || v > max) throw new ExplainerInputError('BAD_PARAMETER', `${name} must be an integer from 1 to ${max}, got ${String(v)}`);
  };
  if (!Number.isSafeInteger(hp.seed)) throw new ExplainerInputError('BAD_PARAMETER', `seed must be an integer, got ${String(hp.seed)}`);
  positiveInt('coalitionsPerRow', hp.coalitionsPerRow, 1_000_000);
  positiveInt('validationCoalitions', hp.validationCoalitions, 1_000_000);
  positiveInt('samplingEpochs', hp.samplingEpochs, 100_000);
  if (!AMORTISED_SAMPLERS.includes(hp.sampler)) throw new ExplainerInputError('BAD_PARAMETER', `sampler must be one of ${AMORTISED_SAMPLERS.join(', ')}`);
  if (hp.coalitionsPerRow < 4 || hp.validationCoalitions < 4) throw new ExplainerInputError('BAD_PARAMETER', 'coalitionsPerRow and validationCoalitions must be at least 4');
  positiveInt('maxEpochs', hp.maxEpochs, 100_000);
  positiveInt('patience', hp.patience, 100_000);
  positiveInt('batchSize', hp.batchSize, 65_536);
  if (!Array.isArray(hp.hidden) || hp.hidden.length > 8) throw new ExplainerInputError('BAD_PARAMETER', 'hidden must list at most 8 layer widths');
  for (const h of hp.hidden) positiveInt('each hidden width', h, 4096);
  if (typeof hp.weightDecay !== 'number' || !(hp.weightDecay >= 0) || !Number.isFinite(hp.weightDecay)) throw new ExplainerInputError('BAD_PARAMETER', 'weightDecay must be a number >= 0');
  if (!ACTIVATIONS.includes(hp.activation)) throw new ExplainerInputError('BAD_PARAMETER', `activation must be one of ${ACTIVATIONS.join(', ')}`);
  for (const [name, v] of [['learningRate', hp.learningRate], ['minLearningRate', hp.minLearningRate]] as const) {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new ExplainerInputError('BAD_PARAMETER', `${name} must be a positive number`);
  }
  return hp;
}

function checkRows(rows: Rows | undefined, what: string, d: number): Rows {
  if (!rows || !(rows.data instanceof Float32Array) || !(rows.n >= 1) || rows.d !== d || rows.data.length !== rows.n * d) {
    throw new ExplainerInputError('BAD_INSTANCES', `${what} must be a non-empty matrix of rows with ${d} values each`);
  }
  for (let i = 0; i < rows.data.length; i++) {
    if (!Number.isFinite(rows.data[i])) throw new ExplainerInputError('BAD_INSTANCES', `${what} row ${Math.floor(i / d)} holds a value that is not a finite number`);
  }
  return rows;
}

/** Column means and scales of the training inputs; per output, the typical size of a player's value. */
function standardisation(data: Float32Array, n: number, grand: Float64Array, empty: Float64Array, K: number, M: number): Standardisation {
  const d = data.length / n;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c] += data[i * d + c] / n;
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) sq[c] += (data[i * d + c] - mean[c]) ** 2 / n;
  const outputScale = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += (grand[i * K + k] - empty[k]) ** 2 / n;
    // RMS of v(N) - v(∅) spread over M players: the size of a typical attribution.
    const scale = Math.sqrt(s / M);
    outputScale[k] = scale > 1e-12 ? scale : 1;
  }
  return {
    inputMean: Float32Array.from(mean),
    inputScale: Float32Array.from(sq, (v) => (v > 0 ? Math.sqrt(v) : 1)),
    outputScale,
  };
}

/**
 * Evaluates the coalitions of rows [from, to) and adds them to `stats`. Each row's coalitions come
 * from a generator of its own, seeded by (seed, row, stream), so a row's objective does not depend on
 * which slice or call it was evaluated in. Returns the model rows evaluated.
 */
async function addRows(
  model: Model,
  game: AmortisedGame,
  rows: Rows,
  ends: { empty: Float64Array },
  from: number,
  to: number,
  sampler: AmortisedSampler,
  budget: number,
  stream: number,
  seed: number,
  stats: CoalitionStats,
  std: Standardisation,
  signal?: AbortSignal,
): Promise<number> {
  const M = game.players.length;
  let evaluated = 0;
  let r = from;
  while (r < to) {
    signal?.throwIfAborted();
    const rowOf: number[] = [];
    const masks: Uint8Array[] = [];
    const weights: Float64Array[] = [];
    let jobs = 0;
    // Whole rows per call, at least one.
    while (r < to && (jobs === 0 || jobs < JOBS_PER_EVALUATION)) {
      const design = rowCoalitions(sampler, M, budget, streamRng(seed, r, stream));
      const count = design.weights.length;
      for (let j = 0; j < count; j++) rowOf.push(r);
      masks.push(design.masks);
      weights.push(design.weights);
      jobs += count;
      r++;
    }
    const allMasks = new Uint8Array(jobs * M);
    const allWeights = new Float64Array(jobs);
    let at = 0;
    masks.forEach((m, i) => {
      allMasks.set(m, at * M);
      allWeights.set(weights[i], at);
      at += weights[i].length;
    });
    const y = await coalitionValues(model, game, rows, rowOf, allMasks, signal);
    stats.add(rowOf, allMasks, scaledTargets(y, ends.empty, std), allWeights);
    evaluated += jobs * game.background.n;
  }
  return evaluated;
}

/** (v(S) - v(∅)) / output scale, jobs x outputs. */
function scaledTargets(values: Float64Array, empty: Float64Array, std: Standardisation): Float64Array {
  const K = empty.length;
  return values.map((v, j) => (v - empty[j % K]) / std.outputScale[j % K]);
}

/** Per-row inputs of the loss that do not change during training. */
interface RowInputs {
  d: number;
  M: number;
  K: number;
  x: Float32Array;
  /** (v(N) - v(∅)) / output scale, rows x outputs. */
  totals: Float32Array;
  varying: Float32Array;
}

function rowInputs(game: AmortisedGame, rows: Rows, x: Float32Array, ends: { grand: Float64Array; empty: Float64Array }, std: Standardisation): RowInputs {
  const { d, n } = rows;
  const K = game.outputs.length;
  const M = game.players.length;
  const totals = new Float32Array(n * K);
  const varying = new Float32Array(n * M);
  for (let r = 0; r < n; r++) {
    varying.set(varyingPlayers(game, rows.data.subarray(r * d, (r + 1) * d)), r * M);
    for (let k = 0; k < K; k++) totals[r * K + k] = (ends.grand[r * K + k] - ends.empty[k]) / std.outputScale[k];
  }
  return { d: x.length / n, M, K, x, totals, varying };
}

interface Batch {
  n: number;
  M: number;
  K: number;
  x: Float32Array;
  totals: Float32Array;
  varying: Float32Array;
  A: Float32Array;
  b: Float32Array;
  c: Float32Array;
}

function batchOf(inputs: RowInputs, stats: CoalitionStats, idx: ArrayLike<number>): Batch {
  const { d, M, K } = inputs;
  const n = idx.length;
  const batch: Batch = {
    n,
    M,
    K,
    x: new Float32Array(n * d),
    totals: new Float32Array(n * K),
    varying: new Float32Array(n * M),
    A: new Float32Array(n * M * M),
    b: new Float32Array(n * K * M),
    c: new Float32Array(n * K),
  };
  for (let i = 0; i < n; i++) {
    const r = idx[i];
    batch.x.set(inputs.x.subarray(r * d, (r + 1) * d), i * d);
    batch.totals.set(inputs.totals.subarray(r * K, (r + 1) * K), i * K);
    batch.varying.set(inputs.varying.subarray(r * M, (r + 1) * M), i * M);
    stats.read(r, batch.A, batch.b, batch.c, i);
  }
  return batch;
}

/**
 * FastSHAP's loss on a batch, scaled by M as FastSHAP does: the network's output for every row is
 * normalised to sum to v(N) - v(∅) over the varying players, then the row's weighted mean of
 * (y_S - Σ_{i∈S} φ_i)² over its coalitions is φᵀAφ - 2bᵀφ + c. Call inside tidy.
 */
function lossOf(explainer: TfjsAmortisedExplainer, b: Batch): tf.Scalar {
  const { n, M, K } = b;
  const raw = tf.reshape(explainer.network.apply(explainer.standardise(b.x, n)), [n, K, M]);
  const mask = tf.tensor3d(b.varying, [n, 1, M]);
  const phi = tf.mul(raw, mask);
  const count = tf.maximum(tf.sum(mask, 2, true), 1);
  const gap = tf.sub(tf.tensor3d(b.totals, [n, K, 1]), tf.sum(phi, 2, true));
  const normalised = tf.add(phi, tf.div(tf.mul(mask, gap), count));
  const quad = tf.sum(tf.mul(tf.matMul(normalised, tf.tensor3d(b.A, [n, M, M])), normalised), 2);
  const lin = tf.sum(tf.mul(tf.tensor3d(b.b, [n, K, M]), normalised), 2);
  const perRow = tf.add(tf.sub(quad, tf.mul(lin, 2)), tf.tensor2d(b.c, [n, K]));
  return tf.mul(tf.mean(perRow), M) as tf.Scalar;
}

/** One Adam step on the batch; with `only`, just the variables of those indices train. */
function step(explainer: TfjsAmortisedExplainer, adam: Adam, b: Batch, learningRate: number, weightDecay: number, only?: Set<number>): number {
  const net = explainer.network;
  const all = net.variables;
  const vars = only ? all.filter((_, i) => only.has(i)) : all;
  // Kernels of the hidden and last layers (every other variable up to the skip kernel).
  const decayed = all.filter((_, i) => i % 2 === 0 && i < 2 * (net.spec.hidden.length + 1) && (!only || only.has(i)));
  const objective = () => {
    const loss = lossOf(explainer, b);
    if (weightDecay === 0 || decayed.length === 0) return loss;
    return tf.add(loss, tf.mul(tf.addN(decayed.map((w) => tf.sum(tf.square(w)))), weightDecay)) as tf.Scalar;
  };
  const { value, grads } = tf.variableGrads(objective, vars);
  try {
    adam.apply(
      all.map((v) => grads[v.name]),
      learningRate,
    );
    return value.dataSync()[0];
  } finally {
    value.dispose();
    tf.dispose(Object.values(grads));
  }
}

function evaluateLoss(explainer: TfjsAmortisedExplainer, inputs: RowInputs, stats: CoalitionStats): number {
  const all = Int32Array.from({ length: stats.rows }, (_, i) => i);
  const t = tf.tidy(() => lossOf(explainer, batchOf(inputs, stats, all)));
  try {
    return t.dataSync()[0];
  } finally {
    t.dispose();
  }
}

function fingerprintOf(o: TrainAmortisedOptions, hp: Hyperparameters, game: AmortisedGame, rows: Rows, val: Rows): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ hp, modelVersion: o.modelVersion, modelName: o.modelName, players: game.players, link: game.link, outputs: game.outputs, n: rows.n, nv: val.n }));
  for (const a of [rows.data, val.data, game.background.data, Float32Array.from(game.weights)]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex').slice(0, 32);
}
