/**
 * The training loop of the amortised explainer's network, over targets the caller has already
 * computed (service/amortised/ evaluates the model's game; explainers/amortised/targets.ts keeps each
 * row's objective as sufficient statistics). For a row with network output φ (K explained outputs x M
 * players), after FastSHAP's additive efficient normalisation (the varying players' values made to sum
 * to the row's total), the row's loss is φᵀAφ - 2bᵀφ + c per output: the weighted mean over the row's
 * coalitions S of (v(S) - v(∅) - Σ_{i∈S} φ_i)² (Jethani et al., ICLR 2022).
 *
 * - Adam (network.ts, ours, so a resumed run is bit-identical), the learning rate halved when the
 *   early-stopping loss stalls for patience/2 epochs; training stops `patience` epochs after its best
 *   epoch (FastSHAP's lookback) and the best epoch's weights are kept.
 * - Two stages when the network has hidden layers and a linear skip: first only the linear part (skip
 *   kernel and output bias) trains until its loss settles, then the whole network continues from the
 *   best linear fit with a fresh optimiser. A model whose explanations are linear in the inputs keeps
 *   its exact linear fit, and the hidden layers only learn what the linear part cannot (measured on the
 *   linear sample: one stage generalised 100x worse to held-out rows).
 * - Deterministic on one backend: the initial weights come from the caller's seeded generator and
 *   each epoch's row order from `order(epoch, n)`. With `checkpoint`, weights, optimiser state and
 *   schedule are saved after every epoch, and a later call with the same fingerprint continues from
 *   there to the same result as a run never interrupted. AbortSignal is checked between steps.
 *
 * Only plain arrays cross this file's boundary: it imports nothing of the explainers.
 */
import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint, saveCheckpoint, type CheckpointState, type EpochRecord } from './checkpoint.js';
import { AmortisedNetwork, type Standardisation } from './estimator.js';
import { Adam, initialWeights, type Activation, type NetworkSpec, type Rng } from './network.js';

/** Each row's objective (A: M x M, b: K x M, c: K), written as float32 into slot `slot` of the arrays. */
export interface RowObjectives {
  read(row: number, A: Float32Array, b: Float32Array, c: Float32Array, slot: number): void;
}

/** The rows of one set (training or early stopping), everything in the network's scaled units. */
export interface TrainingRows {
  n: number;
  /** n x network inputs, before standardisation. */
  inputs: Float32Array;
  /** n x K: each row's v(N) - v(∅) per output, divided by that output's scale. */
  totals: Float32Array;
  /** n x M: 1 for players that can change the row's game, else 0 (they get exactly 0). */
  varying: Float32Array;
  objectives: RowObjectives;
}

export interface NetworkTrainingOptions {
  /** M and K: the network has K x M outputs, output-major. */
  players: number;
  outputs: number;
  hidden: number[];
  activation: Activation;
  linearSkip: boolean;
  batchSize: number;
  maxEpochs: number;
  patience: number;
  weightDecay: number;
  learningRate: number;
  minLearningRate: number;
  standardisation: Standardisation;
  /** Seeds the initial weights. */
  initRng: Rng;
  /** The order of the training rows in an epoch (a permutation of 0..n-1). */
  order: (epoch: number, n: number) => ArrayLike<number>;
  /** Save after every epoch to `dir`, and resume from it when it holds a checkpoint with this fingerprint. */
  checkpoint?: { dir: string; fingerprint: string; extra?: Record<string, unknown> };
  signal?: AbortSignal;
  onEpoch?: (progress: EpochProgress) => void;
}

export interface EpochProgress {
  epoch: number;
  maxEpochs: number;
  trainLoss: number;
  validationLoss: number;
  bestEpoch: number;
  learningRate: number;
  elapsedMs: number;
}

export interface NetworkTrainingSummary {
  epochs: number;
  bestEpoch: number;
  bestValidationLoss: number;
  /** Epochs of the linear stage (0: one stage); the best epoch after it is a nonlinear one. */
  linearStageEpochs: number;
  stoppedEarly: boolean;
  /** Epoch the run resumed from (0: started fresh). */
  resumedFromEpoch: number;
  trainMs: number;
  history: EpochRecord[];
}

/** FastSHAP's ReduceLROnPlateau: halve after patience/2 stalled epochs; improvements under 1e-4 relative do not count. */
const LR_FACTOR = 0.5;
const PLATEAU_THRESHOLD = 1e-4;
/** The linear stage is a convex least-squares problem: it takes larger steps. */
const LINEAR_STAGE_LR = 5;
/**
 * The linear stage ends once the early-stopping loss has not improved by this fraction for
 * `patience` epochs: its tail of tiny improvements is not worth the epochs (on credit the whole
 * network then gained 4x more in its first 10 epochs than the linear stage in its last 50).
 */
const LINEAR_STAGE_THRESHOLD = 1e-3;

/** Thrown when a checkpoint folder holds another run: the caller decides whether to start over. */
export class CheckpointMismatch extends Error {}

export async function trainNetwork(
  train: TrainingRows,
  validation: TrainingRows,
  o: NetworkTrainingOptions,
): Promise<{ network: AmortisedNetwork; summary: NetworkTrainingSummary }> {
  const started = performance.now();
  const M = o.players;
  const K = o.outputs;
  const spec: NetworkSpec = { inputs: o.standardisation.inputMean.length, hidden: o.hidden, outputs: K * M, activation: o.activation, linearSkip: o.linearSkip };
  for (const [what, rows] of [
    ['training', train],
    ['early-stopping', validation],
  ] as const) {
    if (rows.n < 1 || rows.inputs.length !== rows.n * spec.inputs || rows.totals.length !== rows.n * K || rows.varying.length !== rows.n * M) {
      throw new Error(`the ${what} rows do not match the network: ${rows.n} rows of ${spec.inputs} inputs, ${K} outputs, ${M} players`);
    }
  }
  o.signal?.throwIfAborted();
  const network = new AmortisedNetwork(spec, initialWeights(spec, o.initRng), o.standardisation);
  const net = network.mlp;
  const adam = new Adam(net.variables);
  const twoStages = spec.linearSkip && spec.hidden.length > 0;
  // The linear part: the output bias and the skip kernel.
  const linearPart = new Set([2 * spec.hidden.length + 1, 2 * spec.hidden.length + 2]);
  const fingerprint = o.checkpoint?.fingerprint ?? '';
  try {
    let state: CheckpointState = {
      fingerprint,
      epochsDone: 0,
      learningRate: o.learningRate,
      bestLoss: Infinity,
      bestEpoch: 0,
      plateauBest: Infinity,
      plateauBad: 0,
      adamStep: 0,
      trainMs: 0,
      history: [],
      stopped: false,
      stage: twoStages ? 1 : 2,
      stageStart: 0,
      stageBest: Infinity,
      stageBestEpoch: 0,
      extra: o.checkpoint?.extra ?? {},
      weights: [],
      best: await net.read(),
      m: [],
      v: [],
    };
    let resumedFrom = 0;
    if (o.checkpoint) {
      const saved = await loadCheckpoint(o.checkpoint.dir);
      if (saved) {
        if (saved.fingerprint !== fingerprint || saved.weights.length !== net.variables.length) {
          throw new CheckpointMismatch('the checkpoint folder holds a training run with other options, rows or model version');
        }
        state = { ...saved, bestLoss: saved.bestLoss ?? Infinity, plateauBest: saved.plateauBest ?? Infinity, stageBest: saved.stageBest ?? Infinity };
        net.assign(saved.weights);
        adam.restore({ step: saved.adamStep, m: saved.m, v: saved.v });
        resumedFrom = saved.epochsDone;
      }
    }
    const segmentStart = performance.now();
    const msBefore = state.trainMs;

    while (!state.stopped && state.epochsDone < o.maxEpochs) {
      const epoch = state.epochsDone + 1;
      const order = o.order(epoch, train.n);
      let lossSum = 0;
      for (let b0 = 0; b0 < train.n; b0 += o.batchSize) {
        o.signal?.throwIfAborted();
        const idx = Array.prototype.slice.call(order, b0, Math.min(train.n, b0 + o.batchSize)) as number[];
        const only = state.stage === 1 ? linearPart : undefined;
        const lr = state.stage === 1 ? LINEAR_STAGE_LR * state.learningRate : state.learningRate;
        const loss = step(network, adam, batchOf(train, idx, M, K), lr, o.weightDecay, only);
        lossSum += loss * idx.length;
      }
      o.signal?.throwIfAborted();
      const validationLoss = evaluateLoss(network, validation, M, K);
      const record: EpochRecord = { epoch, trainLoss: lossSum / train.n, validationLoss, learningRate: state.learningRate };
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
      if (epoch - Math.max(state.stage === 1 ? state.stageBestEpoch : state.bestEpoch, state.stageStart) >= o.patience) {
        if (state.stage === 1) {
          // The linear fit has settled: the whole network continues from its best weights.
          state.stage = 2;
          state.stageStart = epoch;
          net.assign(state.best);
          adam.reset();
          state.learningRate = o.learningRate;
          state.plateauBest = Infinity;
          state.plateauBad = 0;
        } else {
          state.stopped = true;
        }
      }
      if (validationLoss < state.plateauBest * (1 - PLATEAU_THRESHOLD)) {
        state.plateauBest = validationLoss;
        state.plateauBad = 0;
      } else if (++state.plateauBad > Math.floor(o.patience / 2)) {
        state.learningRate = Math.max(o.minLearningRate, state.learningRate * LR_FACTOR);
        state.plateauBad = 0;
      }
      state.epochsDone = epoch;
      state.adamStep = adam.step;
      state.trainMs = msBefore + (performance.now() - segmentStart);
      if (o.checkpoint) {
        const moments = await adam.read();
        await saveCheckpoint(o.checkpoint.dir, { ...state, weights: await net.read(), m: moments.m, v: moments.v });
      }
      o.onEpoch?.({
        epoch,
        maxEpochs: o.maxEpochs,
        trainLoss: record.trainLoss,
        validationLoss,
        bestEpoch: state.bestEpoch,
        learningRate: record.learningRate,
        elapsedMs: performance.now() - started,
      });
    }
    net.assign(state.best);
    return {
      network,
      summary: {
        epochs: state.epochsDone,
        bestEpoch: state.bestEpoch,
        bestValidationLoss: state.bestLoss,
        linearStageEpochs: twoStages ? (state.stage === 2 ? state.stageStart : state.epochsDone) : 0,
        stoppedEarly: state.stopped,
        resumedFromEpoch: resumedFrom,
        trainMs: msBefore + (performance.now() - segmentStart),
        history: state.history,
      },
    };
  } catch (e) {
    network.dispose();
    throw e;
  } finally {
    adam.dispose();
  }
}

interface Batch {
  n: number;
  x: Float32Array;
  totals: Float32Array;
  varying: Float32Array;
  A: Float32Array;
  b: Float32Array;
  c: Float32Array;
}

function batchOf(rows: TrainingRows, idx: ArrayLike<number>, M: number, K: number): Batch {
  const n = idx.length;
  const d = rows.inputs.length / rows.n;
  const batch: Batch = {
    n,
    x: new Float32Array(n * d),
    totals: new Float32Array(n * K),
    varying: new Float32Array(n * M),
    A: new Float32Array(n * M * M),
    b: new Float32Array(n * K * M),
    c: new Float32Array(n * K),
  };
  for (let i = 0; i < n; i++) {
    const r = idx[i];
    batch.x.set(rows.inputs.subarray(r * d, (r + 1) * d), i * d);
    batch.totals.set(rows.totals.subarray(r * K, (r + 1) * K), i * K);
    batch.varying.set(rows.varying.subarray(r * M, (r + 1) * M), i * M);
    rows.objectives.read(r, batch.A, batch.b, batch.c, i);
  }
  return batch;
}

/**
 * FastSHAP's loss on a batch, scaled by M as FastSHAP does: every row's output normalised to sum to its
 * total over the varying players, then φᵀAφ - 2bᵀφ + c per row and output. Call inside tidy.
 */
function lossOf(network: AmortisedNetwork, b: Batch, M: number, K: number): tf.Scalar {
  const n = b.n;
  const raw = tf.reshape(network.mlp.apply(network.standardise(b.x, n)), [n, K, M]);
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
function step(network: AmortisedNetwork, adam: Adam, b: Batch, learningRate: number, weightDecay: number, only?: Set<number>): number {
  const net = network.mlp;
  const M = b.varying.length / b.n;
  const K = b.totals.length / b.n;
  const all = net.variables;
  const vars = only ? all.filter((_, i) => only.has(i)) : all;
  // Kernels of the hidden and last layers (every other variable up to the skip kernel).
  const decayed = all.filter((_, i) => i % 2 === 0 && i < 2 * (net.spec.hidden.length + 1) && (!only || only.has(i)));
  const objective = () => {
    const loss = lossOf(network, b, M, K);
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

/** The loss (without weight decay) of `network` on all of `rows`, as training measures its early-stopping loss. */
export function evaluateLoss(network: AmortisedNetwork, rows: TrainingRows, M: number, K: number): number {
  const all = Array.from({ length: rows.n }, (_, i) => i);
  const t = tf.tidy(() => lossOf(network, batchOf(rows, all, M, K), M, K));
  try {
    return t.dataSync()[0];
  } finally {
    t.dispose();
  }
}
