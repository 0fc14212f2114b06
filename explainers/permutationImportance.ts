/**
 * Permutation importance (Breiman 2001; sklearn.inspection.permutation_importance): how much a
 * score drops when one feature's column is shuffled across rows, breaking its link to the label.
 *
 * Semantics, and where we differ from sklearn on purpose:
 * - importance = baseline score - permuted score for scores where greater is better (accuracy,
 *   balanced_accuracy, roc_auc, r2), and permuted - baseline for losses (log_loss, mse, rmse, mae),
 *   as sklearn gets with its neg_* scorers: positive always means the model relies on the feature.
 *   `baselineScore` is the metric itself (a loss stays positive).
 * - mean and std over repeats; std is the population std (ddof = 0), as numpy's default in sklearn.
 * - Players: each group in `space.groups` (one-hot columns) is permuted as a block, all its columns
 *   with the same row permutation so rows stay valid one-hot vectors, and gets one entry, named by
 *   `groupNames` or else by its members' common name prefix; features in no group stand alone.
 *   Entries are ordered by their first column.
 * - The same `repeats` row permutations serve every player (sklearn also reuses one seed per
 *   column): importances of different features then differ only through the features, not through
 *   luck of the draw, and the result does not depend on how players are grouped or ordered.
 * - maxSamples subsamples rows once (seeded, without replacement), and the baseline is scored on
 *   that same subsample. sklearn scores the baseline on all rows, which adds subsample noise to
 *   every importance; with ours a feature the model ignores gets exactly 0.
 * - The deadline and the AbortSignal are checked before every model call (DEADLINE_EXCEEDED: no
 *   partial importances are returned, since features not reached would look unimportant).
 * - All permuted copies of the data for one player across all repeats go to the model in batched
 *   predict calls of `maxRowsPerCall` rows (several players per call when the data are small); every
 *   metric is scored from the same predictions.
 */
import { ExplainerInputError, type CommonOptions, type FeatureImportance, type Importance, type Model, type Rows } from './types.js';
import { classCount, isMetricName, METRICS, type Metric, type MetricName } from './metrics.js';
import { permutation, seededRng, type Rng } from './random.js';
import { checkPredictLength, checkRows, playersOf, positiveInteger, predictChunked } from './rows.js';

export interface PermutationImportanceOptions extends CommonOptions {
  /** The primary metric, reported in `metric`/`baselineScore`/`importances`. */
  metric: MetricName;
  /** Further metrics scored from the same predictions, reported in `others`. Same task as `metric`. */
  metrics?: MetricName[];
  /** Shuffles per player. Default 5. */
  repeats?: number;
  /** Default 0. The same seed gives the same bytes. */
  seed?: number;
  /** Rows to use: a fraction in (0, 1], or a count (integer >= 2, at most the number of rows). */
  maxSamples?: number;
  /** One non-negative weight per row of `data`. */
  sampleWeights?: ArrayLike<number>;
  /** Regression: the output column scored against the labels. Default `outputs[0]`, else 0. */
  output?: number;
  /** The model's task from its metadata, if known: a metric of the other kind is then refused. */
  task?: 'binary-classification' | 'multiclass-classification' | 'regression';
  /** Names for `space.groups`, index by index. */
  groupNames?: string[];
  /** Rows per predict call. Default: about 16 MB of float32 input per call. */
  maxRowsPerCall?: number;
}

interface Player {
  name: string;
  columns: number[];
}

export async function permutationImportance(
  model: Model,
  data: Rows,
  labels: Float32Array,
  options: PermutationImportanceOptions,
): Promise<Importance> {
  const started = performance.now();
  const d = model.nFeatures;
  checkRows(data, d, {
    code: 'BAD_DATA',
    what: 'data',
    minRows: 2,
    tooFew: { message: 'permutation importance needs at least 2 rows' },
  });
  const metrics = resolveMetrics(options);
  const task = metrics[0].task;
  const repeats = positiveInteger(options.repeats ?? 5, 'repeats', 1);
  const maxRowsPerCall = positiveInteger(options.maxRowsPerCall ?? Math.max(1, Math.floor(4_194_304 / d)), 'maxRowsPerCall', 1);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new ExplainerInputError('BAD_PARAMETER', `seed must be an integer, got ${seed}`);
  const players = resolvePlayers(options, d);
  const weightsAll = resolveWeights(options.sampleWeights, data.n);
  if (labels.length !== data.n) {
    throw new ExplainerInputError('BAD_LABELS', `got ${labels.length} labels for ${data.n} rows`);
  }

  const rng = seededRng(seed);
  const rowsUsed = subsample(rng, data.n, options.maxSamples);
  const m = rowsUsed.length;
  const X = new Float32Array(m * d);
  rowsUsed.forEach((r, i) => X.set(data.data.subarray(r * d, (r + 1) * d), i * d));
  const y = Float32Array.from(rowsUsed, (r) => labels[r]);
  const weights = weightsAll && Float64Array.from(rowsUsed, (r) => weightsAll[r]);
  if (weights && !(weights.reduce((a, b) => a + b, 0) > 0)) {
    throw new ExplainerInputError('BAD_PARAMETER', 'the sample weights of the rows used sum to 0');
  }
  const perms = Array.from({ length: repeats }, () => permutation(rng, m));

  const { nCols, pick } = predictionView(model, task, options.output ?? options.outputs?.[0]);
  if (task === 'classification') checkClassLabels(y, classCount(nCols));
  else if (!y.every(Number.isFinite)) throw new ExplainerInputError('BAD_LABELS', 'regression labels must be finite numbers');

  const score = (predictions: Float32Array): number[] => {
    checkPredictions(predictions);
    const p = pick(predictions);
    return metrics.map((metric) => scoreOrThrow(metric, y, p, nCols, weights));
  };
  options.signal?.throwIfAborted();
  const baseline = score(await predictChunked(model, { data: X, n: m, d }, maxRowsPerCall));

  // values[metric][player][repeat]
  const values = metrics.map(() => players.map(() => new Array<number>(repeats)));
  // Small data sets: several players share one predict call, since per-call overhead dominates
  // there (a 256-pixel image model has 256 players).
  const perCall = Math.max(1, Math.floor(maxRowsPerCall / (repeats * m)));
  for (let first = 0; first < players.length; first += perCall) {
    // Checked before every model call, not only between features: one feature's copies may be many calls.
    const check = () => {
      options.signal?.throwIfAborted();
      if (options.deadline !== undefined && Date.now() >= options.deadline) {
        throw new ExplainerInputError('DEADLINE_EXCEEDED', `permutation importance stopped at feature ${first + 1} of ${players.length} at the deadline; lower repeats or maxSamples`);
      }
    };
    const group = players.slice(first, first + perCall).map((player) => player.columns);
    const predictions = await predictPermuted(model, X, m, d, group, perms, maxRowsPerCall, check);
    const perRepeat = m * model.nOutputs;
    for (let q = 0; q < group.length; q++) {
      for (let r = 0; r < repeats; r++) {
        const at = (q * repeats + r) * perRepeat;
        const scores = score(predictions.subarray(at, at + perRepeat));
        metrics.forEach((metric, k) => {
          values[k][first + q][r] = metric.greaterIsBetter ? baseline[k] - scores[k] : scores[k] - baseline[k];
        });
      }
    }
  }

  const entries = (k: number): FeatureImportance[] =>
    players.map((player, p) => ({ feature: player.name, mean: mean(values[k][p]), std: populationStd(values[k][p]), values: values[k][p] }));
  const result: Importance = {
    metric: metrics[0].name,
    baselineScore: baseline[0],
    importances: entries(0),
    nSamples: m,
    repeats,
    modelEvaluations: m + players.length * repeats * m,
    computeMs: performance.now() - started,
  };
  if (metrics.length > 1) {
    result.others = Object.fromEntries(metrics.slice(1).map((metric, k) => [metric.name, { baselineScore: baseline[k + 1], importances: entries(k + 1) }]));
  }
  return result;
}

/**
 * Predictions for copies of X, one per (player, repeat) in that order: copy (q, r) has the columns
 * of group[q] permuted by perms[r]. Sent in calls of at most maxRowsPerCall rows.
 */
async function predictPermuted(
  model: Model,
  X: Float32Array,
  m: number,
  d: number,
  group: number[][],
  perms: Uint32Array[],
  maxRowsPerCall: number,
  check: () => void,
): Promise<Float32Array> {
  const repeats = perms.length;
  const total = group.length * repeats * m;
  const out = new Float32Array(total * model.nOutputs);
  for (let start = 0; start < total; start += maxRowsPerCall) {
    check();
    const rows = Math.min(maxRowsPerCall, total - start);
    const chunk = new Float32Array(rows * d);
    // Each copy's rows are X's rows in order: copy them in runs, then overwrite the permuted columns.
    for (let v = 0; v < rows; ) {
      const copy = Math.floor((start + v) / m);
      const i0 = (start + v) % m;
      const run = Math.min(m - i0, rows - v);
      chunk.set(X.subarray(i0 * d, (i0 + run) * d), v * d);
      const perm = perms[copy % repeats];
      for (const c of group[Math.floor(copy / repeats)]) {
        for (let k = 0; k < run; k++) chunk[(v + k) * d + c] = X[perm[i0 + k] * d + c];
      }
      v += run;
    }
    out.set(checkPredictLength(model, await model.predict({ data: chunk, n: rows, d }), rows), start * model.nOutputs);
  }
  return out;
}

/** What the metrics see: all probability columns for classifiers, one output column for regressors. */
function predictionView(model: Model, task: Metric['task'], output = 0) {
  const k = model.nOutputs;
  if (task === 'classification') return { nCols: k, pick: (p: Float32Array) => p };
  const o = output;
  if (!(Number.isInteger(o) && o >= 0 && o < k)) {
    throw new ExplainerInputError('BAD_OUTPUTS', `output index ${o} is out of range: the model has ${k} outputs`);
  }
  if (k === 1) return { nCols: 1, pick: (p: Float32Array) => p };
  return {
    nCols: 1,
    pick: (p: Float32Array) => {
      const col = new Float32Array(p.length / k);
      for (let i = 0; i < col.length; i++) col[i] = p[i * k + o];
      return col;
    },
  };
}

function scoreOrThrow(metric: Metric, y: Float32Array, p: Float32Array, nCols: number, w: Float64Array | undefined): number {
  try {
    return metric.score(y, p, nCols, w);
  } catch (err) {
    if (err instanceof RangeError) throw new ExplainerInputError('BAD_LABELS', `${metric.name}: ${err.message}`);
    throw err;
  }
}

function checkPredictions(p: Float32Array): void {
  for (let i = 0; i < p.length; i++) if (!Number.isFinite(p[i])) throw new Error(`model.predict returned a non-finite value (${p[i]})`);
}

function resolveMetrics(options: PermutationImportanceOptions): Metric[] {
  const names = [options.metric, ...(options.metrics ?? [])];
  for (const name of names) {
    if (!isMetricName(name)) {
      throw new ExplainerInputError('BAD_PARAMETER', `unknown metric "${String(name)}"; use one of ${Object.keys(METRICS).join(', ')}`);
    }
  }
  const metrics = [...new Set(names)].map((name) => METRICS[name]);
  if (metrics.some((m) => m.task !== metrics[0].task)) {
    throw new ExplainerInputError('BAD_PARAMETER', `metrics ${names.join(', ')} mix classification and regression scores; ask for one kind`);
  }
  const modelTask = options.task === undefined ? undefined : options.task === 'regression' ? 'regression' : 'classification';
  if (modelTask && modelTask !== metrics[0].task) {
    throw new ExplainerInputError('BAD_PARAMETER', `${metrics[0].name} is a ${metrics[0].task} metric and this model does ${options.task}`);
  }
  return metrics;
}

function resolvePlayers(options: PermutationImportanceOptions, d: number): Player[] {
  const names = Array.from({ length: d }, (_, j) => options.space.featureNames[j] ?? `x${j}`);
  return playersOf(options.space.groups, d).map(({ columns, group }) => ({
    name: group === undefined ? names[columns[0]] : (options.groupNames?.[group] ?? groupName(columns.map((c) => names[c]))),
    columns,
  }));
}

/**
 * "color=red", "color=blue" -> "color": the common prefix up to its last separator, so "x10", "x11"
 * do not become "x1" but "x10+x11".
 */
function groupName(members: string[]): string {
  let prefix = members[0];
  for (const name of members) while (!name.startsWith(prefix)) prefix = prefix.slice(0, -1);
  const cut = Math.max(...[...'=_:.-[( '].map((sep) => prefix.lastIndexOf(sep)));
  const name = cut > 0 ? prefix.slice(0, cut).replace(/[=_:.\-[( ]+$/, '') : '';
  return members.length > 1 && name.length > 0 ? name : members.join('+');
}

function subsample(rng: Rng, n: number, maxSamples: number | undefined): Uint32Array {
  const all = () => Uint32Array.from({ length: n }, (_, i) => i);
  if (maxSamples === undefined) return all();
  if (!(maxSamples > 0) || (maxSamples > 1 && !Number.isInteger(maxSamples)) || maxSamples > n) {
    throw new ExplainerInputError('BAD_PARAMETER', `maxSamples must be a fraction in (0, 1] or a row count up to ${n}, got ${maxSamples}`);
  }
  // 1 means all rows (as sklearn's 1.0): a single row cannot be scored.
  const m = maxSamples <= 1 ? Math.floor(maxSamples * n) : maxSamples;
  if (m < 2) throw new ExplainerInputError('BAD_PARAMETER', `maxSamples ${maxSamples} leaves ${m} rows; scoring needs at least 2`);
  if (m === n) return all();
  // Partial Fisher-Yates picks m distinct rows; sorted so rows keep their order in memory.
  return permutation(rng, n).subarray(0, m).sort();
}

function checkClassLabels(y: Float32Array, classes: number): void {
  for (let i = 0; i < y.length; i++) {
    if (!(Number.isInteger(y[i]) && y[i] >= 0 && y[i] < classes)) {
      throw new ExplainerInputError('BAD_LABELS', `label ${y[i]} of row ${i} is not a class index 0..${classes - 1}`);
    }
  }
}

function resolveWeights(w: ArrayLike<number> | undefined, n: number): ArrayLike<number> | undefined {
  if (w === undefined) return undefined;
  if (w.length !== n) throw new ExplainerInputError('BAD_PARAMETER', `got ${w.length} sample weights for ${n} rows`);
  for (let i = 0; i < n; i++) {
    if (!(w[i] >= 0 && Number.isFinite(w[i]))) throw new ExplainerInputError('BAD_PARAMETER', `sample weight ${i} is ${w[i]}; weights must be finite and >= 0`);
  }
  return w;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function populationStd(xs: number[]): number {
  const mu = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - mu) ** 2, 0) / xs.length);
}
