/**
 * The cooperative game an amortised explainer learns: Kernel SHAP's own game, so the two explain
 * the same quantity and can be compared value for value.
 *
 * v(S) = link(Σ_b w_b f(x on the players of S, background row b elsewhere)); v(∅) = link(E f(background)),
 * v(N) = link(f(x)). Players are the features, or the groups of space.groups (one-hot columns move
 * together); the link is applied to the expected output, as in shap. Requests are checked by Kernel
 * SHAP's own input checks, so players, link, outputs and background weights are derived identically.
 */
import { ExplainerInputError, type FeatureSpace, type MaskedRowsSpec, type Model, type Rows } from '../types.js';
import { checkKernelShapInput } from '../kernelShapInput.js';
import { inLinkDomain, linkFunction, type LinkName } from '../link.js';
import { kmeans } from '../kmeans.js';

export interface AmortisedGameOptions {
  space: FeatureSpace;
  /** Rows standing for "feature unknown" (the model folder's background). */
  background: Rows;
  backgroundWeights?: Float32Array;
  /** Default 'identity'. */
  link?: LinkName;
  /** Model outputs to explain; default all. */
  outputs?: number[];
  /** Larger backgrounds are summarised by weighted k-means to this many rows, as Kernel SHAP does. Default 100. */
  maxBackground?: number;
  /** Seed of that k-means summary (Kernel SHAP uses its own seed for it). Default 0. */
  seed?: number;
}

export interface AmortisedGame {
  nFeatures: number;
  /** Each player's feature columns, ordered by first column (Kernel SHAP's order). */
  players: number[][];
  link: LinkName;
  /** Explained model outputs. */
  outputs: number[];
  /** The background after any k-means summary, and its weights (summing to 1). */
  background: Rows;
  weights: Float64Array;
  /** The rows an explainer's probes are taken against, with weights summing to 1 (absent: the background's mean row). */
  probeRows?: { rows: Rows; weights: Float64Array };
}

/** Most values sent to one model.predict call (32 MB of float32), as in Kernel SHAP. */
const MAX_VALUES_PER_CALL = 2 ** 23;
const MAX_ROWS_PER_CALL = 200_000;

export function createGame(model: Model, options: AmortisedGameOptions): AmortisedGame {
  if (!options || typeof options !== 'object' || !options.background) {
    throw new ExplainerInputError('BAD_BACKGROUND', 'an amortised explainer needs a background: rows that stand for "feature unknown"');
  }
  const bg = options.background;
  // Kernel SHAP's checks on one background row as the instance: same players, link, outputs, weights.
  const firstRow = { data: bg.data instanceof Float32Array ? bg.data.slice(0, bg.d) : bg.data, n: 1, d: bg.d } as Rows;
  const config = checkKernelShapInput(model, firstRow, {
    space: options.space,
    background: bg,
    backgroundWeights: options.backgroundWeights,
    link: options.link,
    outputs: options.outputs,
    maxBackground: options.maxBackground,
    seed: options.seed,
  });
  let background = bg;
  let weights = config.backgroundWeights;
  // The same summary Kernel SHAP makes of a large background (kernelShap.ts, summariseBackground).
  if (bg.n > config.maxBackground) {
    const km = kmeans(bg, { k: config.maxBackground, seed: config.seed, weights });
    background = km.centroids;
    weights = km.weights;
  }
  let total = 0;
  for (const w of weights) total += w;
  return {
    nFeatures: model.nFeatures,
    players: config.players,
    link: config.link,
    outputs: config.outputs,
    background: { data: Float32Array.from(background.data), n: background.n, d: background.d },
    weights: Float64Array.from(weights, (w) => w / total),
  };
}

/** 1 for each player whose columns differ from x in some background row; the others get exactly 0. */
export function varyingPlayers(game: AmortisedGame, x: ArrayLike<number>): Uint8Array {
  const { data, n, d } = game.background;
  return Uint8Array.from(game.players, (cols) => {
    for (let b = 0; b < n; b++) for (const c of cols) if (data[b * d + c] !== x[c]) return 1;
    return 0;
  });
}

/** Rows per model call: bounded in values (memory) and in rows. */
function rowsPerCall(d: number): number {
  return Math.max(1, Math.min(MAX_ROWS_PER_CALL, Math.floor(MAX_VALUES_PER_CALL / Math.max(d, 1))));
}

function checkOutput(game: AmortisedGame, p: number): void {
  if (!Number.isFinite(p)) throw new Error(`the model returned a non-finite output (${p})`);
  if (!inLinkDomain(game.link, p)) {
    throw new ExplainerInputError(
      'BAD_PARAMETER',
      `link 'logit' needs outputs that are probabilities, but the model returned ${p}: use link 'identity'`,
    );
  }
}

async function predictChecked(model: Model, rows: Rows): Promise<Float32Array> {
  const out = await model.predict(rows);
  if (out.length !== rows.n * model.nOutputs) {
    throw new Error(`model.predict returned ${out.length} values for ${rows.n} rows x ${model.nOutputs} outputs`);
  }
  return out;
}

/**
 * The rows the probes are taken against (below): the background's weighted mean row (one row, the
 * cheapest), or a weighted k-means summary of the background (`rows` >= the background's rows: the
 * background itself, whose probes are then exactly the game's v({i}) - v(∅) and v(N) - v(N \ {i})).
 */
export function probeBackground(game: Pick<AmortisedGame, 'background' | 'weights'>, rows: number, seed = 0): { rows: Rows; weights: Float64Array } {
  const bg = game.background;
  const d = bg.d;
  if (rows <= 0) {
    const mu = new Float64Array(d);
    for (let b = 0; b < bg.n; b++) for (let c = 0; c < d; c++) mu[c] += game.weights[b] * bg.data[b * d + c];
    return { rows: { data: Float32Array.from(mu), n: 1, d }, weights: Float64Array.of(1) };
  }
  if (rows >= bg.n) return { rows: { data: Float32Array.from(bg.data), n: bg.n, d }, weights: Float64Array.from(game.weights) };
  const km = kmeans(bg, { k: rows, seed, weights: game.weights });
  let total = 0;
  for (const w of km.weights) total += w;
  return { rows: { data: Float32Array.from(km.centroids.data), n: km.centroids.n, d }, weights: Float64Array.from(km.weights, (w) => w / total) };
}

/**
 * v(N) = link(f(x)) for every row and v(∅) = link(E f(background)). `grand` is rows x outputs
 * (explained outputs only), `empty` one value per explained output. What does not depend on the rows
 * (the background's mean output, and the probe rows' with probes) is computed on a model's first call
 * for a game and kept for that model object (sharedMeans): a single-row request then evaluates only
 * its own row and probe points, not the background again (a new model version is a new model object).
 *
 * With probes (game.probes: R rows c_r with weights u_r, see probeBackground), the same call also
 * evaluates 2MR + 1 probe points per row, which the network takes as extra inputs: player i's "first"
 * probe is link(Σ_r u_r f(c_r with i's columns from x)) - link(Σ_r u_r f(c_r)) and its "last" probe
 * link(f(x)) - link(Σ_r u_r f(x with i's columns from c_r)): the first and last marginal contributions
 * of the game played on the probe rows. For a game without interactions both equal the Shapley value,
 * and with pairwise interactions at most their mean does; for others they carry each player's local
 * effect, which the network would otherwise have to infer from x. `probes` is rows x outputs x 2M: M
 * first probes, then M last probes.
 */
export async function endpointValues(
  model: Model,
  game: AmortisedGame,
  rows: Rows,
  signal?: AbortSignal,
  withProbes = false,
): Promise<{ grand: Float64Array; empty: Float64Array; probes?: Float32Array }> {
  const d = game.nFeatures;
  const bg = game.background;
  const K = game.outputs.length;
  const M = game.players.length;
  const link = linkFunction(game.link);
  const pb = withProbes ? (game.probeRows ?? meanProbeRow(game)) : undefined;
  const R = pb ? pb.rows.n : 0;
  const means = await sharedMeans(model, game, bg, game.weights, signal);
  const pbMeans = pb ? await sharedMeans(model, game, pb.rows, pb.weights, signal) : undefined;
  // A model that forms masked rows itself (Model.maskedRows: Dense stacks on the fused kernel) evaluates
  // the probes there, the first layer summed from the changed columns; else they are written here.
  const masked = pb && model.maskedRows ? await model.maskedRows(pb.rows) : null;
  const perRow = masked ? 1 : 1 + 2 * M * R;
  // Row layout: per row x, then (when the model does not form them) for each probe row r its M first
  // probes and M last probes.
  const total = rows.n * perRow;
  // Each call's rows are written straight into its buffer, column by column (no per-row views).
  const fillRow = (t: number, buf: Float32Array, at: number) => {
    const i = Math.floor(t / perRow);
    const slot = t % perRow;
    const xAt = i * d;
    const xs = rows.data;
    if (slot === 0) {
      for (let c = 0; c < d; c++) buf[at + c] = xs[xAt + c];
      return;
    }
    const r = Math.floor((slot - 1) / (2 * M));
    const within = (slot - 1) % (2 * M);
    const p = within % M;
    const first = within < M;
    const cs = pb!.rows.data;
    const cAt = r * d;
    // First probe: the probe row with player p's columns from x; last: x with p's columns from the probe row.
    if (first) for (let c = 0; c < d; c++) buf[at + c] = cs[cAt + c];
    else for (let c = 0; c < d; c++) buf[at + c] = xs[xAt + c];
    for (const col of game.players[p]) buf[at + col] = first ? xs[xAt + col] : cs[cAt + col];
  };
  const values = new Float64Array(total * K);
  const step = rowsPerCall(d);
  let buf = new Float32Array(0);
  for (let start = 0; start < total; start += step) {
    signal?.throwIfAborted();
    const end = Math.min(total, start + step);
    if (buf.length !== (end - start) * d) buf = new Float32Array((end - start) * d);
    for (let t = start; t < end; t++) fillRow(t, buf, (t - start) * d);
    const out = await predictChecked(model, { data: buf, n: end - start, d });
    const nOut = model.nOutputs;
    for (let t = start; t < end; t++) {
      for (let k = 0; k < K; k++) {
        const v = out[(t - start) * nOut + game.outputs[k]];
        checkOutput(game, v);
        values[t * K + k] = v;
      }
    }
  }
  const grand = new Float64Array(rows.n * K);
  for (let i = 0; i < rows.n; i++) for (let k = 0; k < K; k++) grand[i * K + k] = link(values[i * perRow * K + k]);
  const empty = means.map(link);
  if (!pb) return { grand, empty };
  const u = pb.weights;
  // link(Σ_r u_r f(c_r)) per output: the probe game's v(∅).
  const base = pbMeans!.map(link);
  // Per row, output and player: Σ_r u_r f(first probe) and Σ_r u_r f(last probe).
  const firstSum = new Float64Array(rows.n * K * M);
  const lastSum = new Float64Array(rows.n * K * M);
  if (masked) {
    // Coalitions k < M: {k} (the probe row with player k from x); k >= M: all but k - M (x with that
    // player from the probe row). Coalition k's rows are the R probe rows in order.
    const cStart = Int32Array.from({ length: 2 * M + 1 }, (_, k) => k);
    const cIdx = Int32Array.from({ length: 2 * M }, (_, k) => k % M);
    const small = Int32Array.from({ length: 2 * M }, (_, k) => (k < M ? 1 : 0));
    const pStart = new Int32Array(M + 1);
    game.players.forEach((cols, q) => (pStart[q + 1] = pStart[q] + cols.length));
    const spec: Omit<MaskedRowsSpec, 'x'> = {
      rows: Int32Array.from({ length: R }, (_, r) => r),
      cols: Int32Array.from({ length: M }, (_, q) => q),
      sj: 1,
      sg: 0,
      players: { start: pStart, idx: Int32Array.from(game.players.flat()) },
      M,
      cStart,
      cIdx,
      small,
    };
    const nOut = model.nOutputs;
    const out = new Float32Array(2 * M * R * nOut);
    for (let i = 0; i < rows.n; i++) {
      signal?.throwIfAborted();
      await masked.predict({ ...spec, x: rows.data.subarray(i * d, (i + 1) * d) }, 0, 0, 2 * M * R, out, 0);
      for (let kk = 0; kk < 2 * M; kk++) {
        const p = kk % M;
        const sums = kk < M ? firstSum : lastSum;
        for (let r = 0; r < R; r++) {
          const o = (kk * R + r) * nOut;
          for (let k = 0; k < K; k++) {
            const v = out[o + game.outputs[k]];
            checkOutput(game, v);
            sums[(i * K + k) * M + p] += u[r] * v;
          }
        }
      }
    }
  } else {
    for (let i = 0; i < rows.n; i++) {
      for (let k = 0; k < K; k++) {
        for (let p = 0; p < M; p++) {
          for (let r = 0; r < R; r++) {
            const at = i * perRow + 1 + r * 2 * M;
            firstSum[(i * K + k) * M + p] += u[r] * values[(at + p) * K + k];
            lastSum[(i * K + k) * M + p] += u[r] * values[(at + M + p) * K + k];
          }
        }
      }
    }
  }
  const probes = new Float32Array(rows.n * K * 2 * M);
  for (let i = 0; i < rows.n; i++) {
    for (let k = 0; k < K; k++) {
      const out = probes.subarray((i * K + k) * 2 * M, (i * K + k + 1) * 2 * M);
      for (let p = 0; p < M; p++) {
        out[p] = link(firstSum[(i * K + k) * M + p]) - base[k];
        out[M + p] = grand[i * K + k] - link(lastSum[(i * K + k) * M + p]);
      }
    }
  }
  return { grand, empty, probes };
}

/** Model rows endpointValues evaluates for `n` rows (with the background and probe rows they share). */
export function endpointEvaluations(game: AmortisedGame, n: number, withProbes: boolean): number {
  return n * endpointEvaluationsPerRow(game, withProbes) + game.background.n + (withProbes ? (game.probeRows?.rows.n ?? 1) : 0);
}

/** Model rows endpointValues evaluates per row once the background's and probe rows' outputs are kept (sharedMeans). */
export function endpointEvaluationsPerRow(game: AmortisedGame, withProbes: boolean): number {
  const R = withProbes ? (game.probeRows?.rows.n ?? 1) : 0;
  return 1 + 2 * game.players.length * R;
}

/** The background's mean row as probe rows (probeRows 0), one per background (games stored without probe rows use it). */
const meanProbeRows = new WeakMap<Rows, { rows: Rows; weights: Float64Array }>();

function meanProbeRow(game: AmortisedGame): { rows: Rows; weights: Float64Array } {
  let pb = meanProbeRows.get(game.background);
  if (!pb) meanProbeRows.set(game.background, (pb = probeBackground(game, 0)));
  return pb;
}

/**
 * Σ_b w_b f(rows_b) per explained output (before the link), kept per model object and rows object:
 * the same for every explained row, so one model call for the first row serves every later one.
 */
const kept = new WeakMap<Model, WeakMap<Rows, { outputs: number[]; weights: ArrayLike<number>; means: Float64Array }>>();

async function sharedMeans(model: Model, game: AmortisedGame, rows: Rows, weights: ArrayLike<number>, signal?: AbortSignal): Promise<Float64Array> {
  let perModel = kept.get(model);
  if (!perModel) kept.set(model, (perModel = new WeakMap()));
  const hit = perModel.get(rows);
  if (hit && hit.weights === weights && hit.outputs.length === game.outputs.length && hit.outputs.every((o, k) => o === game.outputs[k])) return hit.means;
  const K = game.outputs.length;
  const means = new Float64Array(K);
  const step = rowsPerCall(rows.d);
  for (let start = 0; start < rows.n; start += step) {
    signal?.throwIfAborted();
    const end = Math.min(rows.n, start + step);
    const out = await predictChecked(model, { data: rows.data.subarray(start * rows.d, end * rows.d), n: end - start, d: rows.d });
    for (let b = start; b < end; b++) for (let k = 0; k < K; k++) means[k] += weights[b] * out[(b - start) * model.nOutputs + game.outputs[k]];
  }
  for (let k = 0; k < K; k++) checkOutput(game, means[k]);
  perModel.set(rows, { outputs: [...game.outputs], weights, means });
  return means;
}

/**
 * v(S_j) for a list of (row, coalition) jobs: job j plays coalition masks[j M .. (j + 1) M) on row
 * rowOf[j] of `rows`. Returns jobs x explained outputs, link applied. Every job costs one model row
 * per background row; jobs are laid end to end and sent in chunks of bounded size.
 */
export async function coalitionValues(
  model: Model,
  game: AmortisedGame,
  rows: Rows,
  rowOf: ArrayLike<number>,
  masks: Uint8Array,
  signal?: AbortSignal,
): Promise<Float64Array> {
  const M = game.players.length;
  const d = game.nFeatures;
  const K = game.outputs.length;
  const { n: N, data: bgData } = game.background;
  const jobs = rowOf.length;
  if (masks.length !== jobs * M) throw new Error(`masks hold ${masks.length} values, not ${jobs} x ${M}`);
  const link = linkFunction(game.link);
  // Columns each job takes from its row.
  const cols: Int32Array[] = [];
  for (let j = 0; j < jobs; j++) {
    const c: number[] = [];
    for (let p = 0; p < M; p++) if (masks[j * M + p]) for (const col of game.players[p]) c.push(col);
    cols.push(Int32Array.from(c));
  }
  const sums = new Float64Array(jobs * K);
  // Whole jobs per call (at least one), so a job's background mean is summed within one call.
  const jobsPerCall = Math.max(1, Math.floor(rowsPerCall(d) / Math.max(N, 1)));
  const buf = new Float32Array(Math.min(jobs, jobsPerCall) * N * d);
  for (let j0 = 0; j0 < jobs; j0 += jobsPerCall) {
    signal?.throwIfAborted();
    const j1 = Math.min(jobs, j0 + jobsPerCall);
    for (let j = j0; j < j1; j++) {
      const base = (j - j0) * N * d;
      buf.set(bgData.subarray(0, N * d), base);
      const x = rows.data.subarray(rowOf[j] * d, (rowOf[j] + 1) * d);
      const cj = cols[j];
      const end = base + N * d;
      // Column by column down the block (faster than row by row with a lookup per value).
      for (let t = 0; t < cj.length; t++) {
        const c = cj[t];
        const v = x[c];
        for (let off = base + c; off < end; off += d) buf[off] = v;
      }
    }
    const n = (j1 - j0) * N;
    const out = await predictChecked(model, { data: n * d === buf.length ? buf : buf.subarray(0, n * d), n, d });
    for (let j = j0; j < j1; j++) {
      for (let k = 0; k < K; k++) {
        let s = 0;
        const o = game.outputs[k];
        for (let b = 0; b < N; b++) s += game.weights[b] * out[((j - j0) * N + b) * model.nOutputs + o];
        checkOutput(game, s);
        sums[j * K + k] = link(s);
      }
    }
  }
  return sums;
}
