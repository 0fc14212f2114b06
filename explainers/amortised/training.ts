/**
 * The math of training an amortised explainer, without tfjs: the hyperparameters and their checks,
 * the split of the reference rows, synthetic rows, the network's inputs (a row and its probe values)
 * and their scales, and the training targets: each row's coalitions evaluated on the model's game and
 * kept as sufficient statistics (targets.ts). The network and its training loop over these arrays
 * are the tfjs runtime's (models/amortised/); the service wires the two (service/amortised/build.ts).
 */
import { ExplainerInputError, type Model, type Rows } from '../types.js';
import { coalitionValues, varyingPlayers, type AmortisedGame } from './game.js';
import { AMORTISED_SAMPLERS, rowCoalitions, shuffled, streamRng, STREAM, type AmortisedSampler } from './sampling.js';
import type { CoalitionStats } from './targets.js';
import { withCopulaRows } from './synthetic.js';

export type AmortisedActivation = 'relu' | 'elu' | 'tanh';
export const AMORTISED_ACTIVATIONS: readonly AmortisedActivation[] = ['relu', 'elu', 'tanh'];
/** How synthetic training rows are made: a Gaussian copula of the real training rows (synthetic.ts) or hybrids of two rows. */
export type AmortisedSynthesis = 'copula' | 'hybrid';
export const AMORTISED_SYNTHESES: readonly AmortisedSynthesis[] = ['copula', 'hybrid'];
/** Default synthetic rows: this many per real training row, at most DEFAULT_MAX_SYNTHETIC. */
export const DEFAULT_SYNTHETIC_PER_ROW = 12;
export const DEFAULT_MAX_SYNTHETIC = 8000;
/** At most this many networks in an ensemble (each costs its own training and widens the served network). */
export const MAX_ENSEMBLE = 8;
/** An ensemble's merged network has at most this many hidden-to-hidden weights (2^24: 64 MB of float32; [512, 512] x 8 fits). */
export const MAX_ENSEMBLE_HIDDEN_WEIGHTS = 2 ** 24;

export interface AmortisedHyperparameters {
  /** Seeds the split, the synthetic rows, every coalition draw, the initial weights and every shuffle. */
  seed: number;
  /** Reference rows held out for validation (never trained on). Default 20% of them, at most 100, at least 1. */
  heldOutRows?: number;
  /** Share of the remaining rows used for early stopping. */
  earlyStoppingFraction: number;
  /**
   * Synthetic rows added to the training rows; default 12 per real training row, at most 8,000 (the
   * default build then takes several minutes). Measured on credit and two held-out MLPs: copula rows
   * instead of 2,000 hybrids cut the error by 3-7% at 2,000 rows and by about a third at 8,000.
   */
  syntheticRows?: number;
  /** How synthetic rows are drawn (default 'copula'; 'hybrid': each player's columns from one of two random rows). */
  synthesis: AmortisedSynthesis;
  /** Coalitions evaluated per training row (all of them when 2^M - 2 fit). */
  coalitionsPerRow: number;
  /** How coalitions are drawn (sampling.ts, rowCoalitions). */
  sampler: AmortisedSampler;
  /** Give the network each row's 2M probe values (game.ts, endpointValues) besides the row. */
  probes: boolean;
  /**
   * The probes' rows: 0 = the background's mean row (2M + 1 model rows per explained row), R = a
   * k-means summary of R background rows (2MR + 1; the whole background when R covers it: then the
   * probes are the game's own v({i}) - v(∅) and v(N) - v(N \ {i})). Default 100: the whole background
   * as the game summarises it by default (measured 1.7-1.8x less error than the mean row on credit and
   * two held-out MLPs, for 2M x 100 model rows per explained row).
   */
  probeRows: number;
  /**
   * Single-row time the probes may take when served, in ms (0: no limit). The build times the probes
   * of real rows on the model at `probeRows` and, above this, on fewer probe rows (a smaller k-means
   * summary, down to the background's mean row) until they fit (service/amortised/probeBudget.ts);
   * the rows chosen and the times measured are kept in the training record. Default 2 ms: a
   * single-row request stays near predict latency on models larger than the ones probeRows was
   * measured on (the probes grow with players x probe rows x the model's cost per row), while a
   * 20-feature 64-64 MLP keeps its 100 probe rows (1.0-2.1 ms on this machine from quiet to busy
   * hours); 60 rows there had 13% more error, enough to stop it being served (ratio 3.19 to shap's).
   */
  probeBudgetMs: number;
  hidden: number[];
  activation: AmortisedActivation;
  /** A linear path from input to output beside the hidden layers. */
  linearSkip: boolean;
  maxEpochs: number;
  /** Epochs without a better early-stopping loss before training stops. */
  patience: number;
  batchSize: number;
  /** L2 penalty on the hidden and last kernels (not the skip), relative to the loss. */
  weightDecay: number;
  learningRate: number;
  minLearningRate: number;
  /**
   * Networks trained one after another on the same labels, each from its own initial weights and row
   * order, and served as one network whose output is their mean (models/amortised/network.ts,
   * mergeMembers): hidden widths x ensemble, training time x ensemble. 1: a single network. Default 3:
   * measured on a held-out 12-feature MLP, 3 networks had 18% less error than one (17.0x against 20.8x
   * Kernel SHAP's at 2088) for three times the training.
   */
  ensemble: number;
}

export const DEFAULT_HYPERPARAMETERS: Readonly<AmortisedHyperparameters> = Object.freeze({
  seed: 0,
  earlyStoppingFraction: 0.15,
  synthesis: 'copula',
  coalitionsPerRow: 256,
  sampler: 'balanced',
  probes: true,
  probeRows: 100,
  probeBudgetMs: 2,
  hidden: [256, 256],
  activation: 'relu',
  linearSkip: true,
  maxEpochs: 500,
  patience: 20,
  batchSize: 128,
  weightDecay: 1e-4,
  learningRate: 0.002,
  minLearningRate: 1e-5,
  ensemble: 3,
});

/** Defaults filled in and every value checked (BAD_PARAMETER naming it). */
export function checkHyperparameters(o: Partial<AmortisedHyperparameters> = {}): AmortisedHyperparameters {
  const defined = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const hp: AmortisedHyperparameters = { ...DEFAULT_HYPERPARAMETERS, hidden: [...DEFAULT_HYPERPARAMETERS.hidden], ...defined };
  const fail = (message: string) => {
    throw new ExplainerInputError('BAD_PARAMETER', message);
  };
  const positiveInt = (name: string, v: number, max: number) => {
    if (!Number.isInteger(v) || v < 1 || v > max) fail(`${name} must be an integer from 1 to ${max}, got ${String(v)}`);
  };
  if (!Number.isSafeInteger(hp.seed) || hp.seed < 0) fail(`seed must be a non-negative integer, got ${String(hp.seed)}`);
  if (hp.heldOutRows !== undefined) positiveInt('heldOutRows', hp.heldOutRows, 1_000_000);
  if (!(hp.earlyStoppingFraction > 0 && hp.earlyStoppingFraction < 1)) fail('earlyStoppingFraction must be between 0 and 1');
  if (hp.syntheticRows !== undefined && (!Number.isInteger(hp.syntheticRows) || hp.syntheticRows < 0 || hp.syntheticRows > 1_000_000)) {
    fail('syntheticRows must be an integer from 0 to 1,000,000');
  }
  if (!AMORTISED_SYNTHESES.includes(hp.synthesis)) fail(`synthesis must be one of ${AMORTISED_SYNTHESES.join(', ')}`);
  positiveInt('coalitionsPerRow', hp.coalitionsPerRow, 1_000_000);
  if (hp.coalitionsPerRow < 4) fail('coalitionsPerRow must be at least 4');
  if (!AMORTISED_SAMPLERS.includes(hp.sampler)) fail(`sampler must be one of ${AMORTISED_SAMPLERS.join(', ')}`);
  if (!Number.isInteger(hp.probeRows) || hp.probeRows < 0 || hp.probeRows > 1000) fail(`probeRows must be an integer from 0 to 1000, got ${String(hp.probeRows)}`);
  if (typeof hp.probeBudgetMs !== 'number' || !(hp.probeBudgetMs >= 0 && hp.probeBudgetMs <= 10_000)) {
    fail(`probeBudgetMs must be a number of milliseconds from 0 (no limit) to 10,000, got ${String(hp.probeBudgetMs)}`);
  }
  if (!Array.isArray(hp.hidden) || hp.hidden.length > 8) fail('hidden must list at most 8 layer widths');
  for (const h of hp.hidden) positiveInt('each hidden width', h, 4096);
  if (!AMORTISED_ACTIVATIONS.includes(hp.activation)) fail(`activation must be one of ${AMORTISED_ACTIVATIONS.join(', ')}`);
  positiveInt('maxEpochs', hp.maxEpochs, 100_000);
  positiveInt('patience', hp.patience, 100_000);
  positiveInt('batchSize', hp.batchSize, 65_536);
  if (!Number.isInteger(hp.ensemble) || hp.ensemble < 1 || hp.ensemble > MAX_ENSEMBLE) {
    fail(`ensemble must be an integer from 1 to ${MAX_ENSEMBLE} (networks averaged), got ${String(hp.ensemble)}`);
  }
  if (hp.ensemble > 1) {
    // The merged network's hidden-to-hidden kernels are block-diagonal but stored whole: (E h) x (E h') each.
    let weights = 0;
    for (let l = 0; l + 1 < hp.hidden.length; l++) weights += hp.ensemble * hp.hidden[l] * hp.ensemble * hp.hidden[l + 1];
    if (weights > MAX_ENSEMBLE_HIDDEN_WEIGHTS) {
      fail(
        `ensemble ${hp.ensemble} of hidden [${hp.hidden.join(', ')}] makes a merged network with ${weights.toLocaleString('en-US')} hidden-to-hidden weights, ` +
          `more than ${MAX_ENSEMBLE_HIDDEN_WEIGHTS.toLocaleString('en-US')}: lower ensemble or the hidden widths`,
      );
    }
  }
  if (typeof hp.weightDecay !== 'number' || !(hp.weightDecay >= 0) || !Number.isFinite(hp.weightDecay)) fail('weightDecay must be a number >= 0');
  for (const [name, v] of [
    ['learningRate', hp.learningRate],
    ['minLearningRate', hp.minLearningRate],
  ] as const) {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) fail(`${name} must be a positive number`);
  }
  for (const name of ['probes', 'linearSkip'] as const) if (typeof hp[name] !== 'boolean') fail(`${name} must be true or false`);
  return hp;
}

export interface ReferenceSplit {
  /** Validation rows: never trained on, nor used for early stopping. */
  heldOut: Rows;
  /** Early-stopping rows. */
  early: Rows;
  /** Training rows: the rest of the reference rows, then the synthetic ones. */
  train: Rows;
  realTrainingRows: number;
}

/** The reference rows split (seeded) into held-out, early-stopping and training rows, plus synthetic training rows. */
export function splitReference(reference: Rows, players: number[][], hp: AmortisedHyperparameters): ReferenceSplit {
  const ref = reference;
  if (!ref || !(ref.data instanceof Float32Array) || ref.data.length !== ref.n * ref.d) {
    throw new ExplainerInputError('BAD_REFERENCE', 'the reference rows must be a matrix of rows');
  }
  if (ref.n < 3) throw new ExplainerInputError('BAD_REFERENCE', `an amortised explainer needs at least 3 reference rows (training, early stopping, validation); got ${ref.n}`);
  for (let i = 0; i < ref.data.length; i++) {
    if (!Number.isFinite(ref.data[i])) throw new ExplainerInputError('BAD_REFERENCE', `reference row ${Math.floor(i / ref.d)} holds a value that is not a finite number`);
  }
  const heldOut = hp.heldOutRows ?? Math.max(1, Math.min(100, Math.round(0.2 * ref.n)));
  if (heldOut > ref.n - 2) throw new ExplainerInputError('BAD_PARAMETER', `heldOutRows must be at most ${ref.n - 2} (the reference has ${ref.n} rows)`);
  const rest = ref.n - heldOut;
  const early = Math.min(rest - 1, Math.max(1, Math.round(hp.earlyStoppingFraction * rest)));
  const synthetic = hp.syntheticRows ?? Math.min(DEFAULT_MAX_SYNTHETIC, DEFAULT_SYNTHETIC_PER_ROW * (rest - early));
  const order = shuffled(streamRng(hp.seed, 0, STREAM.split), ref.n);
  const pick = (from: number, to: number) => gather(ref, order.subarray(from, to));
  let train = pick(heldOut + early, ref.n);
  const realTrainingRows = train.n;
  if (synthetic > 0) {
    const rng = streamRng(hp.seed, 0, STREAM.synthetic);
    train = hp.synthesis === 'copula' ? withCopulaRows(train, synthetic, players, rng) : withHybrids(train, synthetic, players, rng);
  }
  return { heldOut: pick(0, heldOut), early: pick(heldOut, heldOut + early), train, realTrainingRows };
}

export function gather(rows: Rows, idx: ArrayLike<number>): Rows {
  const { d } = rows;
  const data = new Float32Array(idx.length * d);
  for (let i = 0; i < idx.length; i++) data.set(rows.data.subarray(idx[i] * d, (idx[i] + 1) * d), i * d);
  return { data, n: idx.length, d };
}

/**
 * `rows` followed by `count` hybrids: each player's columns from one of two random rows, half and
 * half (like the rows the game itself evaluates). They cost model evaluations like real rows but show
 * the network more of the input space; held-out rows are always real reference rows.
 */
export function withHybrids(rows: Rows, count: number, players: number[][], rng: () => number): Rows {
  const { n, d } = rows;
  const data = new Float32Array((n + count) * d);
  data.set(rows.data);
  for (let i = 0; i < count; i++) {
    const a = Math.floor(rng() * n);
    const b = Math.floor(rng() * n);
    const at = (n + i) * d;
    data.set(rows.data.subarray(a * d, (a + 1) * d), at);
    for (const cols of players) if (rng() < 0.5) for (const c of cols) data[at + c] = rows.data[b * d + c];
  }
  return { data, n: n + count, d };
}

/** The network's input rows: each row's values, followed by its probes (outputs x 2M) when given. */
export function networkInputs(rows: Rows, probes: Float32Array | undefined, K: number, M: number): Float32Array {
  if (!probes) return rows.data;
  const { n, d } = rows;
  const p = K * 2 * M;
  if (probes.length !== n * p) throw new Error(`expected ${n * p} probe values for ${n} rows, got ${probes.length}`);
  const out = new Float32Array(n * (d + p));
  for (let i = 0; i < n; i++) {
    out.set(rows.data.subarray(i * d, (i + 1) * d), i * (d + p));
    out.set(probes.subarray(i * p, (i + 1) * p), i * (d + p) + d);
  }
  return out;
}

export interface Scales {
  /** Per network input column: mean and scale (1 for a constant column). */
  inputMean: Float32Array;
  inputScale: Float32Array;
  /** Per explained output: the typical size of a player's value (RMS of v(N) - v(∅) over √M). */
  outputScale: Float32Array;
}

/** Column means and scales of the training inputs; per output, the typical size of a player's value. */
export function trainingScales(inputs: Float32Array, n: number, grand: Float64Array, empty: Float64Array, K: number, M: number): Scales {
  const d = inputs.length / n;
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c] += inputs[i * d + c] / n;
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) sq[c] += (inputs[i * d + c] - mean[c]) ** 2 / n;
  const outputScale = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += (grand[i * K + k] - empty[k]) ** 2 / n;
    const scale = Math.sqrt(s / M);
    outputScale[k] = scale > 1e-12 ? scale : 1;
  }
  return {
    inputMean: Float32Array.from(mean),
    inputScale: Float32Array.from(sq, (v) => (v > 0 ? Math.sqrt(v) : 1)),
    outputScale,
  };
}

/** Per network output column (output-major: K blocks of M players), its output's scale. */
export function outputColumnScales(outputScale: Float32Array, M: number): Float32Array {
  return Float32Array.from({ length: outputScale.length * M }, (_, i) => outputScale[Math.floor(i / M)]);
}

/** Per-row inputs of the loss that do not change during training, in scaled units. */
export interface RowInputs {
  n: number;
  inputs: Float32Array;
  /** (v(N) - v(∅)) / output scale, rows x outputs. */
  totals: Float32Array;
  varying: Float32Array;
}

export function rowInputs(game: AmortisedGame, rows: Rows, inputs: Float32Array, ends: { grand: Float64Array; empty: Float64Array }, outputScale: Float32Array): RowInputs {
  const { d, n } = rows;
  const K = game.outputs.length;
  const M = game.players.length;
  const totals = new Float32Array(n * K);
  const varying = new Float32Array(n * M);
  for (let r = 0; r < n; r++) {
    varying.set(varyingPlayers(game, rows.data.subarray(r * d, (r + 1) * d)), r * M);
    for (let k = 0; k < K; k++) totals[r * K + k] = (ends.grand[r * K + k] - ends.empty[k]) / outputScale[k];
  }
  return { n, inputs, totals, varying };
}

/** Coalitions evaluated in one go (bounds memory; abort is checked between model calls). */
const JOBS_PER_EVALUATION = 65_536;

/**
 * Evaluates the coalitions of rows [from, to) on the game and adds them to `stats`, targets divided
 * by each output's scale. Each row's coalitions come from a generator of its own, seeded by (seed,
 * row, stream), so a row's objective does not depend on which slice or call it was evaluated in.
 * Returns the model rows evaluated.
 */
export async function labelRows(
  model: Model,
  game: AmortisedGame,
  rows: Rows,
  empty: Float64Array,
  range: { from: number; to: number },
  design: { sampler: AmortisedSampler; budget: number; stream: number; seed: number },
  stats: CoalitionStats,
  outputScale: Float32Array,
  signal?: AbortSignal,
): Promise<number> {
  const M = game.players.length;
  const K = game.outputs.length;
  let evaluated = 0;
  let r = range.from;
  while (r < range.to) {
    signal?.throwIfAborted();
    const rowOf: number[] = [];
    const masks: Uint8Array[] = [];
    const weights: Float64Array[] = [];
    let jobs = 0;
    // Whole rows per call, at least one.
    while (r < range.to && (jobs === 0 || jobs < JOBS_PER_EVALUATION)) {
      const coalitions = rowCoalitions(design.sampler, M, design.budget, streamRng(design.seed, r, design.stream));
      const count = coalitions.weights.length;
      for (let j = 0; j < count; j++) rowOf.push(r);
      masks.push(coalitions.masks);
      weights.push(coalitions.weights);
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
    const values = await coalitionValues(model, game, rows, rowOf, allMasks, signal);
    const y = values.map((v, j) => (v - empty[j % K]) / outputScale[j % K]);
    stats.add(rowOf, allMasks, y, allWeights);
    evaluated += jobs * game.background.n;
  }
  return evaluated;
}

