/**
 * Kernel SHAP (Lundberg & Lee 2017) with shap's KernelExplainer semantics, plus what shap lacks: a
 * standard error for every attribution, early stopping when they are small enough, a hard deadline,
 * and coalitions spent where they reduce the error most (measured in bench/kernelShapAccuracy.ts).
 *
 * - The game: v(S) = link(Σ_b w_b f(x_S, background_b with S replaced by x)), interventional, the link
 *   applied to the expected output as in shap; v(∅) = link(E f(background)), v(N) = link(f(x)).
 * - Players are the features, or the groups of space.groups (ungrouped features stand alone). A player
 *   whose columns equal x in every background row cannot change any masked row: it gets exactly 0 and
 *   leaves the regression (shap's varyingInds; we compare exactly, not with shap's isclose).
 * - Streams. With the identity link v is the weighted mean of the background rows' games
 *   v_b(S) = f(x_S, b), so φ = Σ_b w_b φ(v_b), and the default sampler 'per-background' estimates each
 *   φ(v_b) from its own coalitions: one model row per coalition instead of one per coalition and
 *   background row, so at the same model evaluations every row's game gets as many coalitions as the
 *   shared design had, and their sampling errors, which are not strongly correlated across rows,
 *   average out (about a third of the error of one shared sample, or of shap's scheme, at the same model
 *   evaluations: bench/kernelShapAccuracy.ts). Each row's game has as players only
 *   those where x and that row differ. The rows' samples are one design relabelled by a seeded
 *   permutation per row, so they share one factorisation. Other samplers, and the logit link, use one
 *   stream: one sample of coalitions, each evaluated against the whole background.
 * - All coalitions are enumerated when 2^M - 2 fit in the budget (exact Shapley values). Otherwise
 *   coalitions come in rounds (a single round when tolerance is 0: nothing could stop it early); after
 *   each round the regressions are solved with efficiency as an exact constraint, and the instance
 *   stops when max stderr <= tolerance x (max φ - min φ) (stopReason 'tolerance'), or when its budget
 *   is spent ('budget'). The next round's size comes from the stderr: it grows as 1/√coalitions.
 * - Masked rows: a model that offers Model.maskedRows (Dense stacks on the fused kernel) forms them itself
 *   from the instance, the background rows and the design's coalitions, so they are never written here
 *   (model calls, their sizes and the counts below are the same); other models get them written here.
 * - Deadline and cancellation are checked between model calls, which are sized (with a deadline or a
 *   signal) to take a small slice of the time left. Past the deadline every unfinished instance returns
 *   its best estimate from the coalitions evaluated so far (any prefix of a design is a design), with
 *   stopReason 'deadline'; a stream with none yet gets the equal split Δ/M with an unknown error
 *   (stderr and approximationError Infinity). With a deadline, instances go four at a time and every
 *   result is first written as that equal split, so what a cut leaves to do is solving and writing four
 *   instances, whatever the number of rows; evaluation stops early by that much, measured as it goes
 *   (CallClock). An aborted signal rejects with the signal's reason (an AbortError DOMException unless
 *   the caller gave another reason); nothing is returned.
 * - modelEvaluations counts, per instance, the masked rows evaluated + 1 (the instance) + the
 *   background rows (whose evaluation all instances of a call share); computeMs splits the call's
 *   time across instances by the rows each had evaluated.
 * - Batches: instances are processed together (in groups bounded by memory); all share each round's
 *   model calls, the designs and their factorisations. Designs depend on the seed, never on the other
 *   instances, so an instance's explanation does not depend on its batch: jobs can be split or cached.
 * - Groups: the response lists features, so a group's Shapley value is split equally among its
 *   members (the feature-level sum still equals f(x) - E f); the undivided group values and their
 *   stderr are in the instance's diagnostics.groups. Equal splitting claims nothing about which member
 *   mattered; it is a display convention, and the group value is the estimated quantity.
 */
import { checkPredictLength, predictChunked } from './rows.js';
import type { Explanation, FeatureAttribution, InstanceExplanation, MaskedRowsEvaluator, MaskedRowsSpec, Model, OutputExplanation, Rows, StopReason } from './types.js';
import { ExplainerInputError } from './types.js';
import { permutation, seededRng } from './random.js';
import { inLinkDomain, linkFunction, type LinkName } from './link.js';
import { kmeans } from './kmeans.js';
import type { SamplerName } from './coalitions.js';
import { giveBuffers, StreamStats, takeBuffer, unitValue, type DesignSnapshot } from './kernelShapRegression.js';
import { designPlan, type DesignPlan } from './kernelShapPlan.js';
import { checkKernelShapInput, type KernelShapConfig, type KernelShapOptions } from './kernelShapInput.js';

export type { KernelShapOptions, KernelShapSampler } from './kernelShapInput.js';

/** Values per model call at most (32 MB of float32), whatever maxRowsPerCall says. */
const MAX_VALUES_PER_CALL = 2 ** 23;
/** The regression is (M-1)² with an O(M³) solve per round: beyond this, group the features. */
const MAX_PLAYERS = 512;
/**
 * Running sums held at once (float64), across the instances processed together (256 KB): bounds memory,
 * and keeps the sums the model outputs are added into in cache. An instance explained against 50-100
 * background rows holds 0.3-0.6 MB of them, so a batch goes one instance at a time, as single requests
 * do: 10 and 100 rows per request 4-5% less CPU per row than with 2 MB groups (several instances whose
 * segments interleave), which had batches cost about what single requests do (held-out MLP, 100 rows).
 */
const GROUP_VALUES = 2 ** 15;
/** Instances processed together when there is a deadline: all of them are solved and written after a cut. */
const DEADLINE_GROUP = 4;
/** Per-background games of one instance hold at most this many values of running sums; else one game. */
const STREAM_VALUES = 2 ** 22;
/** Variance work (units x players x columns) per model row of the budget: bounds the units it is estimated from. */
const VARIANCE_SHARE = 2;
/** Games in a stream from which on each game's variance may rest on 2 units per size (varianceFloor). */
const MANY_GAMES = 8;

interface Background {
  rows: Rows;
  /** Normalised to sum 1. */
  weights: Float64Array;
  summary?: { originalRows: number; k: number; iterations: number; converged: boolean };
}

/**
 * Regression problems of an instance that share one design: its columns are games x explained outputs.
 * kind 'rows': game g is background row rows[g] alone (v_g(S) = f(x_S, row), identity link), one model
 * row per coalition and game, each game with its own relabelling of the design's players.
 * kind 'mean': one game, v(S) = link(Σ_b w_b f(x_S, b)) over all background rows.
 */
interface Stream {
  kind: 'rows' | 'mean';
  plan: DesignPlan;
  /** Background rows: one per game ('rows'), or all of them averaged ('mean', with weights summing to 1). */
  rows: Int32Array;
  weights: Float64Array;
  games: number;
  /** Model rows per coalition; whether rows[i] = rows[0] + i (one block copy fills a coalition's rows). */
  perCoalition: number;
  consecutive: boolean;
  /** Weight of each game in the instance's estimate. */
  share: Float64Array;
  /** Per game: base player j of the design is player players[g][j]; columns[g][j] its column when players are single columns. */
  players: Int32Array[];
  columns: (Int32Array | null)[];
  /** The same columns by player then game (colsT[j * games + g]), when every game's players are single columns. */
  colsT: Int32Array | null;
  /** With colsT, for 'rows' streams: what writing a coalition's rows reads (see Scatter). */
  scatter: Scatter | null;
  /**
   * For the model's masked rows (MaskedRowsSpec): where base player j's column is in row g (colsT), or
   * which player it is (with players: the call's players as columns, when some are groups).
   */
  mask: { cols: Int32Array; sj: number; sg: number; players?: { start: Int32Array; idx: Int32Array } } | null;
  M: number;
  budget: number;
  /** Per column (game x output): v(∅) and Δ = v(N) - v(∅). */
  empty: Float64Array;
  delta: Float64Array;
  stats: StreamStats | null;
  /** Every coalition's values, when the design repeats coalitions (shap's scheme); else pairs are folded in as they come. */
  y: Float64Array | null;
  /** Units asked for (up to the round's target), at the start of the round; coalitions evaluated for every game. */
  planned: number;
  roundFrom: number;
  evaluated: number;
  /**
   * 'mean': per column, the coalition being evaluated (running sums), and the first coalition of a pair.
   * 'rows': a coalition's values are read where the model returned them (out[r * nOut + c]: game g's
   * output o is column g * nOut + o) when they are all there; `part` gathers them when they are not
   * (a coalition split between model calls, or only some outputs explained); the first coalition of a
   * pair stays where it is (pendSrc at pendOff) while its partner is in the same model output, else is
   * copied to `pend`.
   */
  acc: Float64Array;
  pending: Float64Array;
  part: Float32Array | null;
  pend: Float32Array | null;
  pendSrc: Float32Array | null;
  pendOff: number;
  /** The latest fit: [base player][column]; the units it used (0: none yet). */
  phi: Float64Array;
  variance: Float64Array;
  units: number;
  exhaustive: boolean;
  singular: boolean;
}

interface InstanceState {
  index: number;
  x: Float32Array;
  /** Players (into config.players) that differ from at least one background row. */
  varying: number[];
  budget: number;
  streams: Stream[];
  /** Games with one varying player (it gets all of their Δ) or none: exact, no coalitions. */
  fixed: { player: number; share: number; delta: Float64Array; row: number }[];
  target: number;
  rounds: number;
  /** Per explained output: link(f(x)) and link(f(x)) - link(E f(background)). */
  value: number[];
  delta: number[];
  /** Per output, per player (config.players): the combined estimate and its variance. */
  phi: Float64Array;
  variance: Float64Array;
  stop: StopReason | null;
  rowsEvaluated: number;
  computeMs: number;
  /** x repeated row after row: rows that start as x are copied from it. */
  xBlock: Float32Array;
}

/** f of the background rows and link(E f(background)), per explained output, once the first model call is back. */
interface Values {
  fb: (b: number, o: number) => number;
  baseline: number[];
}

interface CallContext {
  model: Model;
  /** Known after the call that evaluated f(x) and f(background) (see `setup`). */
  values: Values | null;
  /** f(x) of every instance and f(b) of every background row, still to be evaluated: at the head of the next model call. */
  setup: { rows: Rows; apply: (out: Float32Array) => void } | null;
  config: KernelShapConfig;
  options: KernelShapOptions;
  bg: Background;
  link: (p: number) => number;
  /** Columns of each player, CSR. */
  pcStart: Int32Array;
  pcIdx: Int32Array;
  /** Explained outputs as an Int32Array (hot loops); whether they are all the model's, in order. */
  outputs: Int32Array;
  allOutputs: boolean;
  /** Scratch for one unit's d_u (the widest stream's columns). */
  du: Float64Array;
  clock: CallClock;
  buffer: Float32Array;
  /** Per column map (colsT) of the call: its offsets and background values (see Scatter). */
  scatters: Map<Int32Array, Scatter>;
  /** The model's own masked rows (Model.maskedRows), when it has them: the rows are not written here. */
  masked: MaskedRowsEvaluator | null;
  /** Model outputs of a call through `masked`, reused. */
  outBuf: Float32Array;
}

/**
 * For a per-background stream (one column per player), per base player j and game g at j * games + g:
 * where j's column sits in the game's row of a coalition (g d + column), and the value it takes there
 * from x and from the game's background row. Writing a coalition's rows is then a block copy and, for
 * each player of its smaller side, a run of stores read from consecutive entries.
 */
interface Scatter {
  off: Int32Array;
  x: Float32Array;
  bg: Float32Array;
  /** The games' background rows when consecutive (a view: the block copied for a small coalition). */
  bgBlock: Float32Array | null;
}

export async function kernelShap(model: Model, instances: Rows, options: KernelShapOptions): Promise<Explanation> {
  const start = performance.now();
  const config = checkKernelShapInput(model, instances, options);
  options.signal?.throwIfAborted();
  const link = linkFunction(config.link);
  const bg = summariseBackground(options.background, config);
  const { outputs } = config;
  const nOut = outputs.length;
  const d = model.nFeatures;
  const P = config.players.length;

  // Who plays, and with what budget, is known before any model call: caller errors surface first.
  const plans = Array.from({ length: instances.n }, (_, i) => planInstance(i, instances, bg.rows, config));
  const pcStart = new Int32Array(P + 1);
  config.players.forEach((cols, p) => (pcStart[p + 1] = pcStart[p] + cols.length));
  const pcIdx = new Int32Array(pcStart[P]);
  config.players.forEach((cols, p) => pcIdx.set(cols, pcStart[p]));
  const clock = new CallClock(options.deadline, options.signal, rowsPerCall(config, d));
  const allOutputs = outputs.length === model.nOutputs && outputs.every((o, i) => o === i);
  const ctx: CallContext = {
    model,
    values: null,
    setup: null,
    config,
    options,
    bg,
    link,
    pcStart,
    pcIdx,
    outputs: Int32Array.from(outputs),
    allOutputs,
    du: new Float64Array(0),
    clock,
    buffer: new Float32Array(0),
    scatters: new Map(),
    masked: model.maskedRows ? await model.maskedRows(bg.rows) : null,
    outBuf: new Float32Array(0),
  };

  const setupMs = performance.now() - start;
  const states: InstanceState[] = plans.map(({ x, varying, budget }, i) => ({
    index: i,
    x,
    varying,
    budget,
    streams: [],
    fixed: [],
    target: 0,
    rounds: 0,
    value: new Array<number>(nOut).fill(0),
    delta: new Array<number>(nOut).fill(0),
    phi: new Float64Array(nOut * P),
    variance: new Float64Array(nOut * P),
    stop: null,
    rowsEvaluated: 0,
    computeMs: setupMs / instances.n,
    xBlock: new Float32Array(0),
  }));

  // f(x) for every instance and f(b) for every background row (n + B rows). Not cut by the deadline:
  // without them there is no Δ to split. They go at the head of the first model call of the coalitions
  // (one call fewer), or, with a deadline, in a call of their own first (the provisional results need Δ).
  const both = new Float32Array((instances.n + bg.rows.n) * d);
  both.set(instances.data);
  both.set(bg.rows.data, instances.n * d);
  const applySetup = (plain: Float32Array) => {
    const fx = (r: number, o: number) => plain[r * model.nOutputs + o];
    for (let r = 0; r < instances.n + bg.rows.n; r++) for (const o of outputs) checkLinkDomain(config.link, fx(r, o));
    const fb = (b: number, o: number) => fx(instances.n + b, o);
    const baseline = outputs.map((o) => {
      let s = 0;
      for (let b = 0; b < bg.rows.n; b++) s += bg.weights[b] * fb(b, o);
      return link(s);
    });
    ctx.values = { fb, baseline };
    for (const s of states) {
      outputs.forEach((o, oi) => {
        s.value[oi] = link(fx(s.index, o));
        s.delta[oi] = s.value[oi] - baseline[oi];
      });
      if (s.streams.length > 0 || s.fixed.length > 0) fillValues(s, ctx);
    }
  };
  const setupRows: Rows = { data: both, n: instances.n + bg.rows.n, d };
  // With masked rows from the model, f(x) and f(background) are a plain call of their own.
  if (options.deadline !== undefined || ctx.masked !== null) applySetup(await predictChunked(ctx.model, setupRows, () => ctx.clock.rows(), ctx.options.signal, (n, ms) => ctx.clock.record(n, ms)));
  else ctx.setup = { rows: setupRows, apply: applySetup };

  // Instances go in groups whose running sums fit in memory (and, with a deadline, small groups, so that
  // what a cut leaves to solve is little); a group runs all its rounds, then its results are written.
  const layout = columnLayout(config, d);
  const explanations: InstanceExplanation[] = new Array(states.length);
  const finish = (s: InstanceState) => (explanations[s.index] = explainInstance(s, layout, bg, ctx.values!.baseline, config, options));
  const deadline = options.deadline !== undefined;
  clock.expectFinishing(nOut * d);
  if (deadline) {
    // Every result is first written as the deadline would leave it (Δ split equally, error unknown), so
    // that a cut has only the instances in flight left to finish, however many rows the request has.
    const t0 = performance.now();
    for (const s of states) explanations[s.index] = provisional(s, layout, bg, ctx.values!.baseline, config, options);
    clock.recordFinishing(states.length, performance.now() - t0);
  }
  const groupCap = deadline ? DEADLINE_GROUP : Infinity;
  for (let first = 0; first < states.length; ) {
    // Past the deadline (less what finishing the next group would take), the rest keep their provisional results.
    clock.inFlight = Math.min(groupCap, states.length - first);
    if (!clock.proceed()) break;
    let held = 0;
    let last = first;
    do {
      buildStreams(states[last], ctx);
      held += streamValues(states[last]);
      last++;
    } while (last < states.length && held < GROUP_VALUES && last - first < groupCap);
    const group = states.slice(first, last);
    clock.inFlight = group.length;
    const cut = !(await runGroup(group, ctx));
    for (const s of group) {
      combine(s, config);
      if (cut && s.stop === null) s.stop = 'deadline';
      s.stop ??= 'budget';
      releaseStreams(s);
      finish(s);
    }
    clock.inFlight = 0;
    first = last;
    if (cut) break;
  }

  spareRows.give(ctx.buffer);
  spareOut.give(ctx.outBuf);
  return {
    method: 'kernel-shap',
    explanations,
    diagnostics: {
      link: config.link,
      sampler: config.sampler,
      seed: config.seed,
      nSamples: config.nSamples,
      tolerance: config.tolerance,
      background: { rows: bg.rows.n, kmeans: bg.summary },
      players: P,
    },
  };
}

function planInstance(i: number, instances: Rows, bg: Rows, config: KernelShapConfig) {
  const d = instances.d;
  const x = instances.data.subarray(i * d, (i + 1) * d);
  const varying = config.players.map((_, p) => p).filter((p) => playerVaries(config.players[p], x, bg));
  const M = varying.length;
  if (M > MAX_PLAYERS) {
    throw new ExplainerInputError(
      'BAD_PARAMETER',
      `instance ${i} has ${M} features that differ from the background; Kernel SHAP handles at most ${MAX_PLAYERS}: ` +
        'group features (space.groups, e.g. superpixels) or use integrated-gradients',
      { instance: i, players: M, maximum: MAX_PLAYERS },
    );
  }
  const capacity = M >= 2 ? 2 ** M - 2 : 0;
  const asked = config.nSamples === 'auto' ? 2 * M + 2048 : config.nSamples;
  const budget = Math.min(asked, capacity);
  if (M >= 2 && budget < capacity && budget < 2 * M) {
    // Paired draws give one regression direction per pair: fewer than M - 1 pairs cannot identify φ.
    throw new ExplainerInputError(
      'BAD_PARAMETER',
      `nSamples = ${asked} cannot estimate ${M} players by sampling (instance ${i}): use at least ${2 * M}, or 'auto'`,
      { instance: i, players: M, minimum: 2 * M },
    );
  }
  return { x, varying, budget };
}

/** Seed of background row b's relabelling: mixes seed and row so nearby seeds give unrelated permutations. */
function rowSeed(seed: number, b: number): number {
  let h = Math.imul((seed | 0) ^ Math.floor(seed / 2 ** 32), 0x9e3779b1) ^ Math.imul(b + 1, 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 13)) >>> 0;
}

const orders = new Map<string, Int32Array[]>();
/**
 * The relabellings of background rows 0 .. B-1: row b's is all players in a seeded order (kept: every
 * call with this seed uses them).
 */
function rowOrders(seed: number, P: number, B: number): Int32Array[] {
  const key = `${seed}|${P}`;
  let list = orders.get(key);
  if (!list) {
    if (orders.size >= 16) orders.delete(orders.keys().next().value!);
    orders.set(key, (list = []));
  }
  while (list.length < B) list.push(Int32Array.from(permutation(seededRng(rowSeed(seed, list.length)), P)));
  return list;
}

/**
 * colsT of 'rows' streams whose games play every player in their rows' full orders, with players that
 * are single columns (player p is column p): it depends on the seed and the background rows only, so
 * instances and calls share it.
 */
const columnMaps = new Map<string, Int32Array>();
function sharedColsT(seed: number, P: number, rows: Int32Array, players: Int32Array[], ctx: CallContext): Int32Array | null {
  const { pcStart, pcIdx } = ctx;
  if (pcIdx.length !== P) return null;
  for (let p = 0; p < P; p++) if (pcIdx[p] !== p || pcStart[p] !== p) return null;
  const orders = rowOrders(seed, P, ctx.bg.rows.n);
  for (let g = 0; g < rows.length; g++) if (players[g] !== orders[rows[g]]) return null;
  const consecutive = rows.every((b, i) => b === rows[0] + i);
  const key = `${seed}|${P}|${consecutive ? `${rows[0]}+${rows.length}` : rows.join(',')}`;
  let colsT = columnMaps.get(key);
  if (!colsT) {
    const G = rows.length;
    colsT = new Int32Array(P * G);
    for (let g = 0; g < G; g++) {
      const order = players[g];
      for (let j = 0; j < P; j++) colsT[j * G + g] = order[j];
    }
    if (columnMaps.size >= 64) columnMaps.delete(columnMaps.keys().next().value!);
    columnMaps.set(key, colsT);
  }
  return colsT;
}

/**
 * Fewest variance units per stratum. One game's stderr rests on them alone: 4 per size. A stream of
 * many games reports the share-weighted sum of its games' variances, whose estimate averages the games'
 * independent ones (their designs are relabelled independently): 2 per size suffice there.
 */
function varianceFloor(games: number): number {
  return games >= MANY_GAMES ? 2 : 4;
}

/** Variance work per model row: half as much for a stream of many games (see varianceFloor). */
function varianceShare(games: number): number {
  return games >= MANY_GAMES ? VARIANCE_SHARE / 2 : VARIANCE_SHARE;
}

function newStream(
  ctx: CallContext,
  x: Float32Array,
  kind: 'rows' | 'mean',
  plan: DesignPlan,
  rows: Int32Array,
  weights: Float64Array,
  share: Float64Array,
  players: Int32Array[],
  budget: number,
  empty: Float64Array,
  delta: Float64Array,
): Stream {
  const { config } = ctx;
  const nOut = config.outputs.length;
  const games = kind === 'rows' ? rows.length : 1;
  const C = games * nOut;
  const M = plan.M;
  const H = plan.sampler.design.strata.length;
  ctx.clock.expectSolving(C, M, H);
  // Variance units per stratum: the variance costs about units x players x columns, which is kept to a
  // small share of the model rows the budget evaluates (rows x varianceShare), and at least varianceFloor per size.
  const units = (varianceShare(games) * rows.length * budget) / (M * C);
  const cap = Math.max(varianceFloor(games), Math.ceil(units / Math.max(1, H)));
  const { pcStart, pcIdx } = ctx;
  const G = players.length;
  // Every game playing all players as single columns (the common case): the shared map, nothing per game.
  let colsT = kind === 'rows' && M === config.players.length ? sharedColsT(config.seed, M, rows, players, ctx) : null;
  const columns: (Int32Array | null)[] = new Array(colsT ? 0 : G);
  if (!colsT) {
    let single = true;
    for (let g = 0; g < G; g++) {
      const ps = players[g];
      let cols: Int32Array | null = new Int32Array(M);
      for (let j = 0; j < M && cols; j++) {
        if (pcStart[ps[j] + 1] - pcStart[ps[j]] !== 1) cols = null;
        else cols[j] = pcIdx[pcStart[ps[j]]];
      }
      columns[g] = cols;
      if (!cols) single = false;
    }
    if (single) {
      colsT = new Int32Array(M * G);
      for (let g = 0; g < G; g++) for (let j = 0; j < M; j++) colsT[j * G + g] = columns[g]![j];
    }
  }
  const consecutive = rows.every((b, i) => b === rows[0] + i);
  let scatter: Scatter | null = null;
  // What the explainer reads to write the rows itself (not needed when the model forms them).
  const modelForms = ctx.masked !== null;
  if (kind === 'rows' && colsT && !modelForms) {
    const d = ctx.model.nFeatures;
    let shared = ctx.scatters.get(colsT);
    if (!shared) {
      const bgData = ctx.bg.rows.data;
      const off = new Int32Array(M * G);
      const bgAt = new Float32Array(M * G);
      for (let j = 0; j < M; j++) {
        for (let g = 0; g < G; g++) {
          const c = colsT[j * G + g];
          off[j * G + g] = g * d + c;
          bgAt[j * G + g] = bgData[rows[g] * d + c];
        }
      }
      const bgBlock = consecutive ? bgData.subarray(rows[0] * d, (rows[0] + G) * d) : null;
      shared = { off, x: new Float32Array(0), bg: bgAt, bgBlock };
      ctx.scatters.set(colsT, shared);
    }
    const xAt = new Float32Array(M * G);
    for (let i = 0; i < xAt.length; i++) xAt[i] = x[colsT[i]];
    scatter = { ...shared, x: xAt };
  }
  return {
    kind,
    plan,
    rows,
    weights,
    games,
    perCoalition: rows.length,
    consecutive,
    share,
    players,
    columns,
    colsT,
    scatter,
    mask: modelForms ? maskOf(kind, colsT, players, M, ctx) : null,
    M,
    budget,
    empty,
    delta,
    stats: new StreamStats(plan.index, H, C, cap),
    y: plan.sampler.anyPrefix ? null : new Float64Array(0),
    planned: 0,
    roundFrom: 0,
    evaluated: 0,
    acc: takeBuffer(kind === 'mean' ? C : 0),
    pending: takeBuffer(kind === 'mean' ? C : 0),
    part: null,
    pend: null,
    pendSrc: null,
    pendOff: 0,
    phi: takeBuffer(M * C),
    variance: takeBuffer(M * C),
    units: 0,
    exhaustive: false,
    singular: false,
  };
}

/** The stream's masked rows for the model: by columns (colsT) when its players are single columns, else by players. */
function maskOf(kind: 'rows' | 'mean', colsT: Int32Array | null, players: Int32Array[], M: number, ctx: CallContext): Stream['mask'] {
  const G = players.length;
  if (colsT) return kind === 'rows' ? { cols: colsT, sj: G, sg: 1 } : { cols: colsT, sj: 1, sg: 0 };
  const ps = { start: ctx.pcStart, idx: ctx.pcIdx };
  if (kind === 'mean') return { cols: players[0], sj: 1, sg: 0, players: ps };
  const ids = new Int32Array(M * G);
  for (let g = 0; g < G; g++) for (let j = 0; j < M; j++) ids[j * G + g] = players[g][j];
  return { cols: ids, sj: G, sg: 1, players: ps };
}

/**
 * The instance's streams: with 'per-background', each background row's own game, grouped by their
 * number of players (games with equally many share a design); else one game over the whole background.
 */
function buildStreams(s: InstanceState, ctx: CallContext): void {
  const nOut = ctx.config.outputs.length;
  const M = s.varying.length;
  s.streams = [];
  s.fixed = [];
  if (M === 1) s.fixed.push({ player: s.varying[0], share: 1, delta: new Float64Array(nOut), row: -1 });
  if (M >= 2) addStreams(s, ctx, M);
  if (ctx.values) fillValues(s, ctx);
}

/** The instance's games of M >= 2 players: see buildStreams. */
function addStreams(s: InstanceState, ctx: CallContext, M: number): void {
  const { config, bg } = ctx;
  const nOut = config.outputs.length;
  const B = bg.rows.n;
  const H = Math.floor(M / 2);
  const exact = s.budget >= 2 ** M - 2;
  const asked = config.nSamples === 'auto' ? 2 * M + 2048 : config.nSamples;
  const perRow = config.sampler === 'per-background' && !exact && B > 1 && H * (M - 1) * nOut * B <= STREAM_VALUES;
  if (!perRow) {
    const sampler: SamplerName = config.sampler === 'per-background' ? 'balanced' : config.sampler;
    const plan = designPlan(sampler, M, s.budget, config.seed);
    const all = Int32Array.from({ length: B }, (_, b) => b);
    s.streams.push(newStream(ctx, s.x, 'mean', plan, all, bg.weights, Float64Array.of(1), [Int32Array.from(s.varying)], s.budget, new Float64Array(nOut), new Float64Array(nOut)));
    return;
  }
  // Each row's players, ordered by a permutation of all players that depends on the seed and the row only.
  const P = config.players.length;
  const byM = new Map<number, number[]>();
  const playersOf: Int32Array[] = [];
  const { pcStart, pcIdx } = ctx;
  const differs = new Int32Array(M);
  const orders = rowOrders(config.seed, P, B);
  for (let b = 0; b < B; b++) {
    // Players in the row's order, kept when they differ from this row (those that vary nowhere never do).
    const order = orders[b];
    const at = b * bg.rows.d;
    let count = 0;
    for (let r = 0; r < P; r++) {
      const p = order[r];
      for (let q = pcStart[p]; q < pcStart[p + 1]; q++) {
        if (bg.rows.data[at + pcIdx[q]] !== s.x[pcIdx[q]]) {
          differs[count++] = p;
          break;
        }
      }
    }
    // Differing in every player (the usual case with continuous features): the shared order itself.
    const players = count === P ? order : differs.slice(0, count);
    playersOf.push(players);
    const Mb = players.length;
    if (Mb === 1) {
      s.fixed.push({ player: players[0], share: bg.weights[b], delta: new Float64Array(nOut), row: b });
    } else if (Mb >= 2) {
      if (!byM.has(Mb)) byM.set(Mb, []);
      byM.get(Mb)!.push(b);
    }
  }
  for (const [Mb, list] of [...byM].sort((a, b) => b[0] - a[0])) {
    const budget = Math.min(asked, 2 ** Mb - 2);
    const plan = designPlan('balanced', Mb, budget, config.seed);
    const rows = Int32Array.from(list);
    const empty = new Float64Array(rows.length * nOut);
    const delta = new Float64Array(rows.length * nOut);
    const share = new Float64Array(rows.length);
    const players: Int32Array[] = new Array(rows.length);
    for (let g = 0; g < rows.length; g++) {
      share[g] = bg.weights[rows[g]];
      players[g] = playersOf[rows[g]];
    }
    s.streams.push(newStream(ctx, s.x, 'rows', plan, rows, new Float64Array(rows.length).fill(1), share, players, budget, empty, delta));
  }
}

/** The values of the instance's games (v(∅) and Δ per column, Δ of the one-player games), from f(x) and f(background). */
function fillValues(s: InstanceState, ctx: CallContext): void {
  const { fb, baseline } = ctx.values!;
  const outputs = ctx.config.outputs;
  const nOut = outputs.length;
  for (const f of s.fixed) for (let oi = 0; oi < nOut; oi++) f.delta[oi] = f.row < 0 ? s.delta[oi] : s.value[oi] - fb(f.row, outputs[oi]);
  for (const st of s.streams) {
    if (st.kind === 'mean') {
      st.empty.set(baseline);
      st.delta.set(s.delta);
      continue;
    }
    for (let g = 0; g < st.games; g++) {
      for (let oi = 0; oi < nOut; oi++) {
        st.empty[g * nOut + oi] = fb(st.rows[g], outputs[oi]);
        st.delta[g * nOut + oi] = s.value[oi] - st.empty[g * nOut + oi];
      }
    }
  }
}

function streamValues(s: InstanceState): number {
  let v = 0;
  for (const st of s.streams) {
    const C = st.empty.length;
    v += (st.plan.sampler.design.strata.length * (st.plan.index.p + 1) + 2 * st.M) * C;
    if (st.y) v += st.budget * C;
  }
  return v;
}

function releaseStreams(s: InstanceState): void {
  for (const st of s.streams) {
    st.stats?.release();
    giveBuffers(st.phi, st.variance, st.acc, st.pending);
    st.stats = null;
    st.y = null;
  }
  s.xBlock = new Float32Array(0);
}

/** Runs an instance group's rounds. False when the deadline cut it short. */
async function runGroup(group: InstanceState[], ctx: CallContext): Promise<boolean> {
  const { config } = ctx;
  for (;;) {
    const active = group.filter((s) => s.stop === null);
    if (active.length === 0) return true;
    const roundStart = performance.now();
    const rowsBefore = active.map((s) => s.rowsEvaluated);
    let added = 0;
    let rows = 0;
    for (const s of active) {
      s.target = nextTarget(s, config);
      s.rounds++;
      for (const st of s.streams) {
        st.roundFrom = st.planned;
        st.planned = Math.max(st.planned, st.plan.unitsFor(Math.min(s.target, st.budget)));
        added += st.planned - st.roundFrom;
        rows += (st.plan.index.coalitionsOf(st.planned) - st.evaluated) * st.perCoalition;
      }
    }
    ctx.clock.inFlight = active.length;
    const done = await evaluateSegments(roundSegments(active), rows, ctx);
    const solveStart = performance.now();
    for (const s of active) {
      for (const st of s.streams) solveStream(st);
      combine(s, config);
      checkFinite(s);
    }
    ctx.clock.recordSolving(active.length, performance.now() - solveStart);
    const roundMs = performance.now() - roundStart;
    let evaluated = 0;
    active.forEach((s, i) => (evaluated += s.rowsEvaluated - rowsBefore[i]));
    active.forEach((s, i) => (s.computeMs += (roundMs * (s.rowsEvaluated - rowsBefore[i])) / Math.max(evaluated, 1)));
    if (!done) return false;
    for (const s of active) decide(s, config, added === 0);
  }
}

/** Coalitions per game the instance asks for in its next round. */
function nextTarget(s: InstanceState, config: KernelShapConfig): number {
  const budget = s.budget;
  const M = s.varying.length;
  if (config.tolerance === 0 || s.streams.every((st) => st.budget >= st.plan.capacity)) return budget;
  if (s.rounds === 0) return Math.min(budget, Math.max(4 * M, Math.ceil(Math.min(budget, 4096) / 8)));
  // Stderr falls as 1/√coalitions: aim 10% past the predicted need, growing 1.5x to 4x a round.
  const ratio = worstRatio(s, config);
  const want = Math.ceil(1.1 * s.target * ratio * ratio);
  return Math.min(budget, Math.max(Math.ceil(1.5 * s.target), Math.min(4 * s.target, want)));
}

/** max over outputs of (max stderr) / (tolerance x range of φ). */
function worstRatio(s: InstanceState, config: KernelShapConfig): number {
  const P = config.players.length;
  let worst = 0;
  for (let oi = 0; oi < config.outputs.length; oi++) {
    let lo = P > s.varying.length ? 0 : Infinity;
    let hi = -lo;
    let maxSe = 0;
    for (const p of s.varying) {
      const v = s.phi[oi * P + p];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      maxSe = Math.max(maxSe, Math.sqrt(s.variance[oi * P + p]));
    }
    const ratio = maxSe / (config.tolerance * (hi - lo));
    worst = Math.max(worst, Number.isNaN(ratio) ? 0 : ratio);
  }
  return worst;
}

function decide(s: InstanceState, config: KernelShapConfig, stalled: boolean): void {
  if (s.streams.every((st) => st.exhaustive)) {
    s.stop = 'exact';
    return;
  }
  // One round's variance estimate rests on few draws per size: do not stop on it alone.
  const singular = s.streams.some((st) => st.singular);
  if (config.tolerance > 0 && s.rounds >= 2 && !singular && worstRatio(s, config) <= 1) {
    s.stop = 'tolerance';
    return;
  }
  // Out of budget, or the designs could not add coalitions (the space ran out).
  if (s.target >= s.budget || stalled) s.stop = 'budget';
}

/** Brings a stream's running sums up to the units evaluated, and solves its regressions. */
function solveStream(st: Stream): void {
  const plan = st.plan;
  const stats = st.stats;
  if (!stats) return;
  const index = plan.index;
  let units = index.unitsWithin(st.evaluated);
  if (st.y) {
    // Kept values: units are added now, up to the longest valid prefix.
    units = plan.validPrefix(units);
    const C = stats.columns;
    const du = new Float64Array(C);
    for (let u = stats.units; u < units; u++) {
      const a = index.first[u];
      const b = index.second[u];
      for (let c = 0; c < C; c++) du[c] = unitValue(index, u, st.y[a * C + c], b >= 0 ? st.y[b * C + c] : 0, st.delta[c]);
      stats.add(u, du);
    }
  }
  units = Math.min(units, stats.units);
  if (units === st.units || units === 0) return;
  // Variance units in proportion to the model rows evaluated so far (stats.cap is the most the budget
  // can use), rounded up to a power of two so that streams and rounds share snapshots.
  const H = plan.sampler.design.strata.length;
  const want = (varianceShare(st.games) * st.perCoalition * index.coalitionsOf(units)) / (st.M * stats.columns * Math.max(1, H));
  const cap = Math.min(stats.cap, 2 ** Math.ceil(Math.log2(Math.max(varianceFloor(st.games), want))));
  const snap: DesignSnapshot = plan.snapshot(units, cap, stats.cap);
  stats.solve(snap, st.delta, st.phi, st.variance);
  st.units = units;
  st.exhaustive = snap.exhaustive;
  st.singular = snap.singular;
}

/** No coalition evaluated (the deadline came first): Δ split equally among the varying players, error unknown. */
function equalSplit(s: InstanceState, config: KernelShapConfig): void {
  const P = config.players.length;
  const M = s.varying.length;
  s.phi.fill(0);
  s.variance.fill(0);
  for (let oi = 0; oi < config.outputs.length; oi++) {
    for (const p of s.varying) {
      s.phi[oi * P + p] = s.delta[oi] / M;
      if (M > 1) s.variance[oi * P + p] = Infinity;
    }
  }
  s.stop = M > 1 ? 'deadline' : 'exact';
}

/** The result the instance would have if the deadline came before its first coalition (its state untouched). */
function provisional(
  s: InstanceState,
  layout: ColumnLayout,
  bg: Background,
  baseline: number[],
  config: KernelShapConfig,
  options: KernelShapOptions,
): InstanceExplanation {
  const t: InstanceState = { ...s, streams: [], fixed: [], phi: new Float64Array(s.phi.length), variance: new Float64Array(s.variance.length) };
  equalSplit(t, config);
  return explainInstance(t, layout, bg, baseline, config, options);
}

/**
 * A non-finite model output read by a per-background game (they are read in place, unchecked) reaches
 * its d_u, the running sums and the estimate: checked there, once per solve.
 */
function checkFinite(s: InstanceState): void {
  let z = 0;
  for (let i = 0; i < s.phi.length; i++) z += s.phi[i] - s.phi[i];
  if (z !== 0) throw new Error('the model returned a non-finite output (NaN or ±Infinity) for a masked row');
}

/** The instance's estimate: the games' estimates weighted by their shares, variances by shares². */
function combine(s: InstanceState, config: KernelShapConfig): void {
  const P = config.players.length;
  const nOut = config.outputs.length;
  s.phi.fill(0);
  s.variance.fill(0);
  for (const f of s.fixed) for (let oi = 0; oi < nOut; oi++) s.phi[oi * P + f.player] += f.share * f.delta[oi];
  const { phi, variance } = s;
  for (const st of s.streams) {
    const M = st.M;
    const C = st.games * nOut;
    const evaluated = st.units > 0;
    for (let g = 0; g < st.games; g++) {
      const players = st.players[g];
      const w = st.share[g];
      const w2 = w * w;
      for (let j = 0; j < M; j++) {
        const p = players[j];
        const src = j * C + g * nOut;
        for (let oi = 0; oi < nOut; oi++) {
          const at = oi * P + p;
          if (evaluated) {
            phi[at] += w * st.phi[src + oi];
            variance[at] += w2 * st.variance[src + oi];
          } else {
            // Nothing evaluated yet (cut by the deadline): the equal split, error unknown.
            phi[at] += (w * st.delta[g * nOut + oi]) / M;
            variance[at] = Infinity;
          }
        }
      }
    }
  }
}

interface Segment {
  state: InstanceState;
  stream: Stream;
  /** Coalitions [k0, k1) of the stream's design. */
  k0: number;
  k1: number;
}

/**
 * The round's work in the order it is evaluated: each stream's new units in parts that double in size
 * (the first as many units as the design has sizes: one of each), and every stream's part q before any
 * stream's part q + 1. Wherever a deadline cuts it, every stream has at least about half of what any
 * other has, from its first part on, and streams sharing a design stop at one of few prefixes.
 */
function* roundSegments(active: InstanceState[]): Generator<Segment> {
  for (let q = 0; ; q++) {
    let more = false;
    for (const s of active) {
      for (const st of s.streams) {
        if (st.planned <= st.roundFrom) continue;
        const n = st.planned - st.roundFrom;
        const first = Math.max(1, st.plan.sampler.design.strata.length);
        const u0 = st.roundFrom + (q === 0 ? 0 : Math.min(n, first * 2 ** (q - 1)));
        const u1 = st.roundFrom + Math.min(n, first * 2 ** q);
        if (u1 < st.planned) more = true;
        const k0 = Math.max(st.evaluated, st.plan.index.coalitionsOf(u0));
        const k1 = st.plan.index.coalitionsOf(u1);
        if (k1 > k0) yield { state: s, stream: st, k0, k1 };
      }
    }
    if (!more) return;
  }
}

/** Segments drawn from a generator as the write cursor needs them, kept until the read cursor is past. */
class SegmentQueue {
  private readonly list: Segment[] = [];
  private offset = 0;
  private ended = false;
  constructor(private readonly source: Iterator<Segment>) {}
  get(i: number): Segment | undefined {
    while (!this.ended && i - this.offset >= this.list.length) {
      const next = this.source.next();
      if (next.done) this.ended = true;
      else this.list.push(next.value);
    }
    return this.list[i - this.offset];
  }
  /** Forgets the segments before i. */
  drop(i: number): void {
    const n = i - this.offset;
    if (n > 64) {
      this.list.splice(0, n);
      this.offset = i;
    }
  }
}

/** Position in the sequence of rows: segment, coalition, row within the coalition. */
class Cursor {
  seg = 0;
  k = 0;
  row = 0;
  current: Segment | undefined;
  constructor(private readonly queue: SegmentQueue) {
    this.current = queue.get(0);
    if (this.current) this.k = this.current.k0;
  }
  get done(): boolean {
    return this.current === undefined;
  }
  advance(n: number): void {
    const seg = this.current!;
    this.row += n;
    if (this.row < seg.stream.perCoalition) return;
    this.row = 0;
    if (++this.k < seg.k1) return;
    this.current = this.queue.get(++this.seg);
    if (this.current) this.k = this.current.k0;
  }
}

/**
 * Evaluates the segments' masked rows in model calls of clock-sized chunks, handing each coalition's
 * values to its stream as soon as its last row is back. False when the deadline stopped it.
 */
async function evaluateSegments(segments: Iterator<Segment>, rows: number, ctx: CallContext): Promise<boolean> {
  const { model, clock } = ctx;
  const d = model.nFeatures;
  const nOut = model.nOutputs;
  const queue = new SegmentQueue(segments);
  const write = new Cursor(queue);
  const read = new Cursor(queue);
  const pieces: Piece[] = [];
  while (!write.done || ctx.setup) {
    if (!clock.proceed()) return false;
    const step = clock.rows();
    // f(x) and f(background) at the head of the first call, if not evaluated yet.
    const setup = ctx.setup;
    const head = setup ? setup.rows.n : 0;
    // The call's rows: pieces of coalitions' rows, up to `step`.
    pieces.length = 0;
    let count = head;
    const inModel = ctx.masked !== null && head === 0;
    while (count - head < step && !write.done) {
      const seg = write.current!;
      const n = Math.min(step - (count - head), seg.stream.perCoalition - write.row);
      // A segment's coalitions follow one another: one piece for all of them in this call.
      const last = pieces.length > 0 ? pieces[pieces.length - 1] : undefined;
      if (last && last.seg === seg && last.at + last.n === count) last.n += n;
      else pieces.push({ seg, k: write.k, row: write.row, n, at: count });
      count += n;
      write.advance(n);
    }
    let out: Float32Array;
    if (inModel) {
      // The model forms the rows from the designs (Model.maskedRows).
      const masked = ctx.masked!;
      if (ctx.outBuf.length < count * nOut) {
        spareOut.give(ctx.outBuf);
        ctx.outBuf = spareOut.take(Math.max(count * nOut, Math.min(2 * ctx.outBuf.length, rows * nOut)));
      }
      out = ctx.outBuf;
      const t0 = performance.now();
      for (const p of pieces) await masked.predict(maskSpec(p.seg), p.k, p.row, p.n, out, p.at);
      clock.record(count, performance.now() - t0);
    } else {
      // One buffer for the call, no larger than the round needs (it is refilled after predict returns).
      const size = (head + Math.min(step, rows)) * d;
      if (ctx.buffer.length < size) {
        spareRows.give(ctx.buffer);
        ctx.buffer = spareRows.take(size);
      }
      const buf = ctx.buffer;
      if (setup) buf.set(setup.rows.data);
      for (const p of pieces) {
        // writeBlock writes within one coalition.
        const per = p.seg.stream.perCoalition;
        for (let k = p.k, row = p.row, at = p.at, left = p.n; left > 0; k++, row = 0) {
          const n = Math.min(left, per - row);
          writeBlock(buf, at, p.seg, k, row, n, ctx);
          at += n;
          left -= n;
        }
      }
      const t0 = performance.now();
      out = await model.predict({ data: count * d === buf.length ? buf : buf.subarray(0, count * d), n: count, d });
      clock.record(count, performance.now() - t0);
      checkPredictLength(model, out, count);
    }
    if (setup) {
      ctx.setup = null;
      setup.apply(out.subarray(0, head * nOut));
    }
    for (let r = head; r < count; ) {
      const seg = read.current!;
      const st = seg.stream;
      const per = st.perCoalition;
      const n = Math.min(count - r, per - read.row);
      if (st.kind === 'mean') {
        readBlock(out, nOut, r, st, read.row, n, ctx);
        if (read.row + n === per) finishCoalition(st, read.k, ctx);
      } else if (read.row === 0 && n === per && ctx.allOutputs) {
        // The whole coalition is in this output, laid out as the stream's columns: read in place. Its
        // pair partner (the next coalition) is here too when the next `per` rows are.
        finishRows(st, read.k, out, r * nOut, r + 2 * per <= count, ctx);
      } else {
        gatherRows(out, nOut, r, st, read.row, n, ctx);
        if (read.row + n === per) finishRows(st, read.k, st.part!, 0, false, ctx);
      }
      seg.state.rowsEvaluated += n;
      r += n;
      read.advance(n);
    }
    queue.drop(read.seg);
  }
  return true;
}

/** Rows [row, row + n) of coalition k of a segment, at row `at` of a model call. */
interface Piece {
  seg: Segment;
  k: number;
  row: number;
  n: number;
  at: number;
}

/** A stream's masked rows for the model (its design's coalitions as they are now: the design grows between rounds). */
function maskSpec(seg: Segment): MaskedRowsSpec {
  const st = seg.stream;
  const { cols, sj, sg, players } = st.mask!;
  const index = st.plan.index;
  return { x: seg.state.x, rows: st.rows, cols, sj, sg, M: st.M, cStart: index.cStart, cIdx: index.cIdx, small: index.cIsSmall, ...(players && { players }) };
}

/** Model outputs of rows [row, row + n) of a 'mean' stream's coalition, read from out at row r, into its running sums. */
function readBlock(out: Float32Array, nOut: number, r: number, st: Stream, row: number, n: number, ctx: CallContext): void {
  const outputs = ctx.outputs;
  const nx = outputs.length;
  const acc = st.acc;
  const link = ctx.config.link;
  for (let i = 0; i < n; i++) {
    const w = st.weights[row + i];
    const off = (r + i) * nOut;
    for (let oi = 0; oi < nx; oi++) {
      // Every row's output must be finite, and a probability under the logit link (not only their mean).
      const v = out[off + outputs[oi]];
      checkLinkDomain(link, v);
      acc[oi] += w * v;
    }
  }
}

/** Model outputs of rows [row, row + n) of a 'rows' stream's coalition, read from out at row r, into its `part`. */
function gatherRows(out: Float32Array, nOut: number, r: number, st: Stream, row: number, n: number, ctx: CallContext): void {
  const outputs = ctx.outputs;
  const nx = outputs.length;
  st.part ??= new Float32Array(st.empty.length);
  const part = st.part;
  for (let i = 0; i < n; i++) {
    const off = (r + i) * nOut;
    const c = (row + i) * nx;
    for (let oi = 0; oi < nx; oi++) part[c + oi] = out[off + outputs[oi]];
  }
}

/**
 * Coalition k of a 'rows' stream is complete, its values (raw outputs, column c) at src[off + c]:
 * kept (shap's scheme) as v(S) - v(∅), held as the first of a pair (in place when `stable`, i.e. src
 * stays readable until the partner is read), or turned into d_u of the unit it completes.
 */
function finishRows(st: Stream, k: number, src: Float32Array, off: number, stable: boolean, ctx: CallContext): void {
  const C = st.empty.length;
  const { empty, delta } = st;
  st.evaluated = k + 1;
  if (st.y) {
    if (st.y.length < (k + 1) * C) {
      const grown = new Float64Array(Math.max((k + 1) * C, 2 * st.y.length));
      grown.set(st.y);
      st.y = grown;
    }
    const y = st.y;
    const at = k * C;
    for (let c = 0; c < C; c++) y[at + c] = src[off + c] - empty[c];
    return;
  }
  const index = st.plan.index;
  const u = index.cCompletes[k];
  if (u < 0) {
    // First of a pair: raw outputs are all the pair difference needs.
    if (stable) {
      st.pendSrc = src;
      st.pendOff = off;
    } else {
      st.pend ??= new Float32Array(C);
      st.pend.set(src.subarray(off, off + C));
      st.pendSrc = st.pend;
      st.pendOff = 0;
    }
    return;
  }
  if (ctx.du.length < C) ctx.du = new Float64Array(C);
  const du = ctx.du;
  const s = index.sign[u];
  if (index.nc[u] === 2) {
    // s_a (ỹ_a - ỹ_b) = s_a (y_a - y_b) + Δ: exactly one of the pair holds the last player, and v(∅)
    // cancels in the difference.
    const a = st.pendSrc!;
    const ao = st.pendOff;
    for (let c = 0; c < C; c++) du[c] = s * (a[ao + c] - src[off + c]) + delta[c];
    st.pendSrc = null;
  } else {
    for (let c = 0; c < C; c++) du[c] = s * (src[off + c] - empty[c]) + (s < 0 ? delta[c] : 0);
  }
  st.stats!.add(u, du);
}

/** Coalition k of a 'mean' stream is complete: its values into v(S) - v(∅) per output, then into the unit it completes. */
function finishCoalition(st: Stream, k: number, ctx: CallContext): void {
  const { config, link } = ctx;
  const C = st.acc.length;
  const acc = st.acc;
  for (let c = 0; c < C; c++) {
    checkLinkDomain(config.link, acc[c]);
    acc[c] = link(acc[c]) - st.empty[c];
  }
  if (st.y) {
    if (st.y.length < (k + 1) * C) {
      const grown = new Float64Array(Math.max((k + 1) * C, 2 * st.y.length));
      grown.set(st.y);
      st.y = grown;
    }
    st.y.set(acc, k * C);
  } else {
    const index = st.plan.index;
    const u = index.cCompletes[k];
    if (u < 0) {
      st.pending.set(acc);
    } else {
      const s = index.sign[u];
      if (index.nc[u] === 2) {
        // s_a (ỹ_a - ỹ_b) = s_a (y_a - y_b) + Δ: exactly one of the pair holds the last player.
        for (let c = 0; c < C; c++) acc[c] = s * (st.pending[c] - acc[c]) + st.delta[c];
      } else {
        for (let c = 0; c < C; c++) acc[c] = s * acc[c] + (s < 0 ? st.delta[c] : 0);
      }
      st.stats!.add(u, acc);
    }
  }
  st.evaluated = k + 1;
  acc.fill(0);
}

/**
 * Rows [row, row + n) of coalition k of the segment's stream into buf from row `at`: each is a
 * background row with the coalition's players set to x. The coalition's smaller side decides how: rows
 * start as their background rows with x written on the coalition, or as x with the background written
 * on the complement, so at most half the players are written one by one; the starting rows are copied
 * as blocks (consecutive background rows in one copy, x from the instance's block of copies). In a
 * per-background stream the players' values come from its Scatter tables, a run per player.
 */
function writeBlock(buf: Float32Array, at: number, seg: Segment, k: number, row: number, n: number, ctx: CallContext): void {
  const d = ctx.model.nFeatures;
  const bgData = ctx.bg.rows.data;
  const x = seg.state.x;
  const st = seg.stream;
  const { cStart, cIdx, cIsSmall } = st.plan.index;
  const small = cIsSmall[k] === 1;
  const base = at * d;
  const rows = st.rows;
  const scatter = st.scatter;
  if (small) {
    const b0 = rows[row];
    if (scatter?.bgBlock && n === st.perCoalition) buf.set(scatter.bgBlock, base);
    else if (st.consecutive) buf.set(bgData.subarray(b0 * d, (b0 + n) * d), base);
    else for (let i = 0; i < n; i++) buf.set(bgData.subarray(rows[row + i] * d, (rows[row + i] + 1) * d), base + i * d);
  } else {
    // x repeated, from the instance's block of copies (made once).
    const state = seg.state;
    if (state.xBlock.length < n * d) {
      state.xBlock = new Float32Array(Math.max(n, st.perCoalition) * d);
      for (let i = 0; i < state.xBlock.length; i += d) state.xBlock.set(x, i);
    }
    buf.set(n * d === state.xBlock.length ? state.xBlock : state.xBlock.subarray(0, n * d), base);
  }
  const t0 = cStart[k];
  const t1 = cStart[k + 1];
  if (scatter) {
    // Player by player across the games (rows row .. row + n - 1 of the coalition, from buffer row `at`).
    const G = st.games;
    const { off } = scatter;
    const src = small ? scatter.x : scatter.bg;
    const b0 = base - row * d;
    for (let t = t0; t < t1; t++) {
      const from = cIdx[t] * G + row;
      const to = from + n;
      for (let i = from; i < to; i++) buf[b0 + off[i]] = src[i];
    }
    return;
  }
  const perGame = st.kind === 'rows';
  for (let i = 0; i < n; i++) {
    const off = base + i * d;
    const g = perGame ? row + i : 0;
    const b = rows[row + i] * d;
    const cols = st.columns[g];
    if (cols) {
      if (small) for (let t = t0; t < t1; t++) buf[off + cols[cIdx[t]]] = x[cols[cIdx[t]]];
      else for (let t = t0; t < t1; t++) buf[off + cols[cIdx[t]]] = bgData[b + cols[cIdx[t]]];
    } else {
      const players = st.players[g];
      const { pcStart, pcIdx } = ctx;
      for (let t = t0; t < t1; t++) {
        const p = players[cIdx[t]];
        for (let q = pcStart[p]; q < pcStart[p + 1]; q++) buf[off + pcIdx[q]] = small ? x[pcIdx[q]] : bgData[b + pcIdx[q]];
      }
    }
  }
}

/**
 * When to stop and how big a model call may be. Without a deadline or a signal a call takes the
 * largest chunk (fewest calls). With one, calls are sized from the measured rows/ms to take a small
 * slice of the time (a 40th of the deadline's, at most 50 ms, and no more than is left before the
 * stop), and evaluation stops before the deadline by one slice plus what finishing the instances in
 * flight is expected to take (solving and writing them), at the rates measured in this call (wall
 * time, so a loaded machine keeps more), guessed from the problem's size until measured. The call
 * returns within the deadline unless a call or the finishing runs over its estimate.
 */
class CallClock {
  private rate = 0;
  private readonly sliceMs: number;
  /** Instances being evaluated: solved and written if a cut comes. */
  inFlight = 0;
  /** Milliseconds to solve one instance in flight, and to write one instance's results. */
  private solveMs = 0;
  private finishMs = 0;
  private solveMeasured = false;
  private finishMeasured = false;
  constructor(
    private readonly deadline: number | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly maxRows: number,
  ) {
    const left = deadline === undefined ? Infinity : deadline - Date.now();
    this.sliceMs = deadline === undefined && !signal ? Infinity : Math.max(2, Math.min(50, left / 40));
  }

  /** Throws if aborted; false once the time left is what finishing is expected to take (or less). */
  proceed(): boolean {
    this.signal?.throwIfAborted();
    return this.untilStop() > 0;
  }

  /**
   * Milliseconds until evaluation must stop (Infinity without a deadline): finishing the instances in
   * flight, and one slice's margin for a call that runs long (a loaded machine).
   */
  private untilStop(): number {
    if (this.deadline === undefined) return Infinity;
    return this.deadline - Date.now() - 1 - this.sliceMs - this.inFlight * (this.solveMs + this.finishMs);
  }

  /** Rows for the next model call: a slice of the time, and no more than fit before evaluation must stop. */
  rows(): number {
    if (this.sliceMs === Infinity) return this.maxRows;
    if (this.rate === 0) return Math.min(this.maxRows, 1024);
    const ms = Math.min(this.sliceMs, this.untilStop());
    return Math.max(64, Math.min(this.maxRows, Math.floor(this.rate * ms)));
  }

  record(rows: number, ms: number): void {
    if (rows < 64) return;
    const r = rows / Math.max(ms, 0.05);
    this.rate = this.rate === 0 ? r : 0.5 * this.rate + 0.5 * r;
  }

  /**
   * Guesses before anything is measured: writing results at 0.5 µs per attribution; solving an
   * instance at 2 ns per operation of its regressions (columns x players x (strata + players + 4 x
   * strata)), the largest instance of the call.
   */
  expectFinishing(attributions: number): void {
    this.finishMs = 0.0005 * attributions;
  }
  expectSolving(columns: number, players: number, strata: number): void {
    if (!this.solveMeasured) this.solveMs = Math.max(this.solveMs, 2e-6 * columns * players * (5 * strata + players));
  }

  /** Solving `instances` instances took `ms` (recordSolving), or writing their results (recordFinishing). */
  recordSolving(instances: number, ms: number): void {
    const per = ms / Math.max(instances, 1);
    this.solveMs = this.solveMeasured ? Math.max(per, 0.5 * this.solveMs + 0.5 * per) : per;
    this.solveMeasured = true;
  }
  recordFinishing(instances: number, ms: number): void {
    const per = ms / Math.max(instances, 1);
    this.finishMs = this.finishMeasured ? Math.max(per, 0.5 * this.finishMs + 0.5 * per) : per;
    this.finishMeasured = true;
  }
}

function explainInstance(
  s: InstanceState,
  layout: ColumnLayout,
  bg: Background,
  baseline: number[],
  config: KernelShapConfig,
  options: KernelShapOptions,
): InstanceExplanation {
  const P = config.players.length;
  const { player, size } = layout;
  const d = player.length;
  const names = options.space.featureNames;
  const x = s.x;
  const outputs: OutputExplanation[] = new Array(config.outputs.length);
  for (let oi = 0; oi < outputs.length; oi++) {
    const o = config.outputs[oi];
    // A group's value is split equally among its columns; players that do not vary hold exactly 0.
    const attributions: FeatureAttribution[] = new Array(d);
    let approximationError = 0;
    for (let c = 0; c < d; c++) {
      const at = oi * P + player[c];
      const attribution = s.phi[at] / size[c];
      const stderr = Math.sqrt(s.variance[at]) / size[c];
      approximationError = Math.max(approximationError, stderr);
      // An infinite stderr (nothing evaluated before the deadline) is unknown: left out.
      attributions[c] = Number.isFinite(stderr)
        ? { feature: names[c], value: x[c], attribution, stderr }
        : { feature: names[c], value: x[c], attribution };
    }
    outputs[oi] = {
      output: options.space.outputNames[o],
      outputIndex: o,
      baselineOutputValue: baseline[oi],
      instanceOutputValue: s.value[oi],
      attributions,
      approximationError,
    };
  }
  let masked = 0;
  for (const st of s.streams) masked += st.evaluated * st.perCoalition;
  const stop = s.stop ?? 'budget';
  return {
    outputs,
    converged: stop === 'exact' || stop === 'tolerance',
    stopReason: stop,
    modelEvaluations: masked + 1 + bg.rows.n,
    computeMs: s.computeMs,
    diagnostics: instanceDiagnostics(s, config, options),
  };
}

/** Each column's player, and the number of columns that player has. */
interface ColumnLayout {
  player: Int32Array;
  size: Int32Array;
}

function columnLayout(config: KernelShapConfig, d: number): ColumnLayout {
  const player = new Int32Array(d);
  const size = new Int32Array(d);
  config.players.forEach((cols, p) => {
    for (const c of cols) {
      player[c] = p;
      size[c] = cols.length;
    }
  });
  return { player, size };
}

function instanceDiagnostics(s: InstanceState, config: KernelShapConfig, options: KernelShapOptions): Record<string, unknown> {
  const P = config.players.length;
  const grouped = config.players.map((cols, p) => ({ cols, p })).filter(({ cols }) => cols.length > 1);
  let coalitions = 0;
  let games = s.fixed.length;
  for (const st of s.streams) {
    coalitions = Math.max(coalitions, st.plan.index.coalitionsOf(st.units));
    games += st.games;
  }
  return {
    varyingPlayers: s.varying.length,
    budget: s.budget,
    coalitions,
    rounds: s.rounds,
    estimator: s.streams.some((st) => st.kind === 'rows') ? 'per-background' : 'shared',
    games,
    exact: s.streams.every((st) => st.exhaustive),
    singular: s.streams.some((st) => st.singular),
    ...(grouped.length > 0 && {
      groups: grouped.map(({ cols, p }) => ({
        features: cols.map((c) => options.space.featureNames[c]),
        attribution: config.outputs.map((_, oi) => s.phi[oi * P + p]),
        stderr: config.outputs.map((_, oi) => Math.sqrt(s.variance[oi * P + p])),
      })),
    }),
  };
}

function checkLinkDomain(link: LinkName, p: number): void {
  if (!Number.isFinite(p)) throw new Error(`the model returned a non-finite output (${p})`);
  if (!inLinkDomain(link, p)) {
    throw new ExplainerInputError(
      'BAD_PARAMETER',
      `link 'logit' needs outputs that are probabilities, but the model returned ${p}: use link 'identity'`,
    );
  }
}

function playerVaries(cols: number[], x: Float32Array, bg: Rows): boolean {
  for (let b = 0; b < bg.n; b++) for (const c of cols) if (bg.data[b * bg.d + c] !== x[c]) return true;
  return false;
}

function summariseBackground(background: Rows, config: KernelShapConfig): Background {
  const normalise = (w: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < w.length; i++) s += w[i];
    const out = new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) out[i] = w[i] / s;
    return out;
  };
  if (background.n <= config.maxBackground) return { rows: background, weights: normalise(config.backgroundWeights) };
  const km = kmeans(background, { k: config.maxBackground, seed: config.seed, weights: config.backgroundWeights });
  return {
    rows: km.centroids,
    weights: normalise(km.weights),
    summary: { originalRows: background.n, k: km.centroids.n, iterations: km.iterations, converged: km.converged },
  };
}

/**
 * One float buffer (at most 16 MB) kept between calls: a call that allocates its own makes that much
 * garbage every time. A call takes it for its duration (a concurrent call allocates another).
 */
class SpareBuffer {
  private spare: Float32Array | null = null;
  take(n: number): Float32Array {
    const b = this.spare;
    if (b && b.length >= n) {
      this.spare = null;
      return b;
    }
    return new Float32Array(n);
  }
  give(buf: Float32Array): void {
    if (buf.length > 0 && buf.length <= 1 << 22 && (!this.spare || this.spare.length < buf.length)) this.spare = buf;
  }
}
/** Masked rows written by the explainer (CallContext.buffer). */
const spareRows = new SpareBuffer();
/** Outputs of calls through the model's masked rows (CallContext.outBuf). */
const spareOut = new SpareBuffer();

function rowsPerCall(config: KernelShapConfig, d: number): number {
  return Math.max(1, Math.min(config.maxRowsPerCall, Math.floor(MAX_VALUES_PER_CALL / Math.max(d, 1))));
}

