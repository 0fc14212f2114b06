/**
 * SHAP dependence (shap.plots.scatter / dependence_plot): each row's attribution for a feature against
 * the feature's value, coloured by the feature it seems to interact with most.
 *
 * - Attributions come from the caller (an Explanation of exactly these rows, e.g. from kernelShap, or a
 *   batch job), or Kernel SHAP is run here (explainers/kernelShap.ts, the same game and defaults as
 *   POST /explain), or, with `interactions: 'exact'`, from exact Shapley interaction values
 *   (interactions.ts), whose row sums are the exact Shapley values.
 * - A one-hot group is one feature: its attribution is the sum over its columns (Kernel SHAP splits a
 *   group's value equally among them, so the sum is the group's Shapley value) and its value the
 *   category position.
 * - The interacting feature, unless the caller names one, is the top of shap's
 *   approximate_interactions (shap/utils/_general.py): rows (at most 10,000, a seeded sample above
 *   that) sorted by the feature's value, cut into consecutive chunks of max(min(n/10, 50), 1) rows, and
 *   every other feature scored by the sum over chunks of |Pearson correlation| between the feature's
 *   attributions and the other feature's values in the chunk (chunks where either is constant count
 *   0; a feature that is 0 in every row scores 0). We sort stably where numpy's argsort need not be;
 *   shap also scores the NaN pattern, which our finite rows never have. In exact mode the partner is
 *   instead the j with the largest mean |Φ_ij| (the true interaction effect, not its footprint).
 * - The trend (grid/values) is the mean attribution of the rows in each quantile bin of the feature
 *   (grid = mean value in the bin), or per category.
 */
import { ExplainerInputError, type Explanation, type Model, type Rows } from '../types.js';
import { kernelShap } from '../kernelShap.js';
import { permutation, seededRng } from '../random.js';
import { checkData, checkOutputs, featureCatalogue, featureValues, resolveFeature, categoryLabels, type EffectFeature } from './features.js';
import { aleEdges, binOf, observedCategories } from './grid.js';
import { shapleyInteractionValues } from './interactions.js';
import { optional, type EffectOptions } from './partialDependence.js';
import type { DependenceEffect } from './types.js';

export interface ShapDependenceOptions extends EffectOptions {
  /** Attributions of the rows of `data`, in order (e.g. kernelShap(model, data, ...)). */
  explanation?: Explanation;
  /** Kernel SHAP's (or the exact game's) background; needed unless `explanation` is given. */
  background?: Rows;
  /** Kernel SHAP budget per row ('auto' = 2M + 2048, its default). */
  nSamples?: number | 'auto';
  /** Kernel SHAP and k-means seed, and the >10,000-row sample of approximate_interactions. Default 0. */
  seed?: number;
  /** 'approximate' (default): shap's approximate_interactions; 'exact': exact Shapley interaction values. */
  interactions?: 'approximate' | 'exact';
  /** Colour by this feature instead of choosing one. */
  interactionFeature?: string;
  /** Quantile bins of the trend. Default 20. */
  bins?: number;
  /** Exact mode: most players (default 10) and background rows kept (default 50). */
  maxPlayers?: number;
  maxBackground?: number;
}

export interface ShapDependenceResult {
  effects: DependenceEffect[];
  /** Model rows this call evaluated (0 when the attributions were given). */
  modelEvaluations: number;
}

/** Rows shap's approximate_interactions looks at, at most. */
const MAX_INTERACTION_ROWS = 10_000;

function pearsonAbs(a: ArrayLike<number>, b: ArrayLike<number>, from: number, to: number): number {
  const n = to - from;
  let ma = 0;
  let mb = 0;
  for (let k = from; k < to; k++) {
    ma += a[k];
    mb += b[k];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let k = from; k < to; k++) {
    const da = a[k] - ma;
    const db = b[k] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  // np.std(...) > 0 on both, else the chunk counts 0.
  if (!(saa > 0) || !(sbb > 0)) return 0;
  return Math.abs(sab / Math.sqrt(saa * sbb));
}

/**
 * shap's approximate_interactions scores: for each of `others` (value columns of the same rows), how
 * much the attributions of the feature vary with it among rows of similar feature value.
 */
export function approximateInteractions(values: ArrayLike<number>, attributions: ArrayLike<number>, others: ArrayLike<number>[], seed = 0): number[] {
  let rows = Array.from({ length: values.length }, (_, i) => i);
  if (rows.length > MAX_INTERACTION_ROWS) rows = Array.from(permutation(seededRng(seed), rows.length).subarray(0, MAX_INTERACTION_ROWS));
  rows.sort((a, b) => values[a] - values[b] || a - b);
  const n = rows.length;
  const ref = Float64Array.from(rows, (i) => attributions[i]);
  const inc = Math.max(Math.min(Math.floor(n / 10), 50), 1);
  return others.map((col) => {
    const v = Float64Array.from(rows, (i) => col[i]);
    let total = 0;
    for (let k = 0; k < n; k++) total += Math.abs(v[k]);
    if (total < 1e-8) return 0;
    let score = 0;
    for (let j = 0; j < n; j += inc) score += pearsonAbs(ref, v, j, Math.min(j + inc, n));
    return score;
  });
}

/** Per output, per player, per row: the attribution. From an Explanation (features summed per player). */
function fromExplanation(e: Explanation, data: Rows, players: EffectFeature[], outputs: number[]): Float64Array[][] {
  if (!e || !Array.isArray(e.explanations)) throw new ExplainerInputError('BAD_PARAMETER', 'explanation must be an Explanation (e.g. from kernelShap)');
  if (e.explanations.length !== data.n) {
    throw new ExplainerInputError('BAD_PARAMETER', `the explanation has ${e.explanations.length} instances but the data have ${data.n} rows: give the attributions of exactly these rows`);
  }
  const d = data.d;
  return outputs.map((o) =>
    players.map((p) => {
      const col = new Float64Array(data.n);
      e.explanations.forEach((inst, i) => {
        const out = inst.outputs.find((x) => x.outputIndex === o);
        if (!out) throw new ExplainerInputError('BAD_OUTPUTS', `explanation ${i} does not explain output ${o}: explain every output asked for`);
        if (out.attributions.length !== d) {
          throw new ExplainerInputError('BAD_PARAMETER', `explanation ${i} has ${out.attributions.length} attributions for a model of ${d} features`);
        }
        let s = 0;
        for (const c of p.columns) {
          const a = out.attributions[c];
          if (Math.fround(a.value) !== data.data[i * d + c]) {
            throw new ExplainerInputError('BAD_PARAMETER', `explanation ${i} explains ${a.feature} = ${a.value}, but data row ${i} has ${data.data[i * d + c]}: give the attributions of exactly these rows`, {
              row: i,
              column: c,
            });
          }
          s += a.attribution;
        }
        col[i] = s;
      });
      return col;
    }),
  );
}

export async function shapDependence(model: Model, data: Rows, features: string[], options: ShapDependenceOptions): Promise<ShapDependenceResult> {
  checkData(model, data);
  const outputs = checkOutputs(model, options.outputs);
  const catalogue = featureCatalogue(options.space, model.nFeatures, options);
  const players = catalogue.features;
  const wanted = features.map((name) => resolveFeature(catalogue, name));
  const partner = options.interactionFeature === undefined ? undefined : resolveFeature(catalogue, options.interactionFeature);
  const mode = options.interactions ?? 'approximate';
  if (mode !== 'approximate' && mode !== 'exact') throw new ExplainerInputError('BAD_PARAMETER', `interactions must be 'approximate' or 'exact', got ${JSON.stringify(mode)}`);
  const bins = options.bins ?? 20;
  if (!Number.isInteger(bins) || bins < 1 || bins > 1000) throw new ExplainerInputError('BAD_PARAMETER', `bins must be an integer from 1 to 1000, got ${bins}`);
  if (mode === 'exact' && options.explanation) throw new ExplainerInputError('BAD_PARAMETER', "interactions 'exact' computes its own attributions: leave out the explanation");

  let attributions: Float64Array[][]; // [output][player][row]
  let phi: number[][][][] | undefined; // [row][output][player][player]
  let evaluations = 0;
  let source: DependenceEffect['attributionMethod'];
  if (mode === 'exact') {
    const iv = await shapleyInteractionValues(model, data, { ...options, background: options.background!, outputs });
    evaluations = iv.modelEvaluations;
    attributions = outputs.map((_, oi) => players.map((_, p) => Float64Array.from(iv.instances, (inst) => inst.outputs[oi].shapley[p])));
    phi = iv.instances.map((inst) => inst.outputs.map((o) => o.interactions));
    source = 'exact';
  } else if (options.explanation) {
    attributions = fromExplanation(options.explanation, data, players, outputs);
    source = 'given';
  } else {
    if (!options.background) throw new ExplainerInputError('NO_BACKGROUND', 'SHAP dependence runs Kernel SHAP, which needs a background (or pass the attributions as an explanation)');
    const e = await kernelShap(model, data, {
      space: options.space,
      background: options.background,
      outputs,
      link: options.link,
      nSamples: options.nSamples,
      seed: options.seed,
      deadline: options.deadline,
      signal: options.signal,
    });
    // Kernel SHAP returns its best estimate at the deadline; effects fail instead, as everywhere else here.
    if (options.deadline !== undefined && Date.now() >= options.deadline && e.explanations.some((x) => !x.converged)) {
      throw new ExplainerInputError('DEADLINE_EXCEEDED', 'Kernel SHAP for the dependence plot was stopped at the deadline; lower maxRows or nSamples, or allow more time');
    }
    // Each instance's count includes the background rows, which the call evaluated once for all.
    const bgRows = (e.diagnostics?.background as { rows?: number } | undefined)?.rows ?? 0;
    evaluations = e.explanations.reduce((s, x) => s + x.modelEvaluations - bgRows, 0) + bgRows;
    attributions = fromExplanation(e, data, players, outputs);
    source = 'kernel-shap';
  }

  const valuesOf = players.map((p) => featureValues(p, data));
  const effects: DependenceEffect[] = [];
  for (const f of wanted) {
    const fi = players.indexOf(f);
    if (partner === f) throw new ExplainerInputError('BAD_FEATURE', `interactionFeature "${f.name}" is the feature itself: name another feature`);
    const others = players.map((_, j) => j).filter((j) => j !== fi);
    const x = valuesOf[fi];
    const trend = trendOf(f, x, bins);
    outputs.forEach((o, oi) => {
      const y = attributions[oi][fi];
      let scores: number[];
      if (phi) scores = others.map((j) => phi!.reduce((s, row) => s + Math.abs(row[oi][fi][j]), 0) / data.n);
      else scores = approximateInteractions(x, y, others.map((j) => valuesOf[j]), options.seed ?? 0);
      const ranked = others.map((j, k) => ({ j, score: scores[k] })).sort((a, b) => b.score - a.score || a.j - b.j);
      const chosen = partner ? { j: players.indexOf(partner), score: scores[others.indexOf(players.indexOf(partner))] } : ranked[0];
      const pf = chosen ? players[chosen.j] : undefined;
      effects.push({
        kind: 'dependence',
        feature: f.name,
        featureKind: f.kind,
        output: options.space.outputNames?.[o] ?? `y${o}`,
        outputIndex: o,
        link: options.link ?? 'identity',
        grid: trend.grid,
        ...optional('categories', categoryLabels(f, trend.grid)),
        values: binMeans(trend.bin, trend.grid.length, y),
        points: {
          values: Array.from(x),
          attributions: Array.from(y),
          ...optional('interaction', pf ? Array.from(valuesOf[chosen!.j]) : undefined),
          ...optional('interactionValues', pf && phi ? phi.map((row) => row[oi][fi][chosen!.j]) : undefined),
        },
        interaction: pf
          ? {
              feature: pf.name,
              kind: pf.kind,
              ...optional('categories', pf.kind === 'numeric' ? undefined : categoryLabels(pf, observedCategories(pf, valuesOf[chosen!.j]))),
              score: chosen!.score,
            }
          : null,
        interactionScores: ranked.map((r) => ({ feature: players[r.j].name, score: r.score })),
        interactionMethod: partner ? 'given' : mode,
        attributionMethod: source,
        rows: data.n,
        modelEvaluations: evaluations,
      });
    });
  }
  return { effects, modelEvaluations: evaluations };
}

/** Bins of the trend: quantile bins of a numeric feature (grid = mean value per bin), or the categories. */
function trendOf(f: EffectFeature, x: Float64Array, bins: number): { grid: number[]; bin: Int32Array } {
  if (f.kind !== 'numeric') {
    const grid = observedCategories(f, x);
    const at = new Map(grid.map((v, k) => [v, k]));
    return { grid, bin: Int32Array.from(x, (v) => at.get(v)!) };
  }
  const edges = aleEdges(x, bins);
  if (edges.length < 2) return { grid: [edges[0]], bin: new Int32Array(x.length) };
  const bin = Int32Array.from(x, (v) => binOf(edges, v));
  return { grid: binMeans(bin, edges.length - 1, x), bin };
}

function binMeans(bin: Int32Array, K: number, y: ArrayLike<number>): number[] {
  const s = new Float64Array(K);
  const c = new Float64Array(K);
  for (let i = 0; i < bin.length; i++) {
    s[bin[i]] += y[i];
    c[bin[i]]++;
  }
  return Array.from(s, (v, k) => (c[k] > 0 ? v / c[k] : 0));
}
