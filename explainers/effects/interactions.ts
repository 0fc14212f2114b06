/**
 * Exact Shapley interaction values for models with few features, by enumerating every coalition.
 *
 * The game is Kernel SHAP's (kernelShap.ts): v(S) = link(sum_b w_b f(x on S, background row b
 * elsewhere)), interventional, the link applied to the expected output; players are the features, or
 * the one-hot groups of space.groups; a background above maxBackground rows is summarised by the same
 * weighted k-means. The interaction values are those of shap's TreeExplainer (Lundberg et al. 2020,
 * "From local explanations to global understanding", eq. 7-8), defined for any model:
 *   Φ_ij = sum over S ⊆ N \ {i, j} of |S|! (M - |S| - 2)! / (2 (M - 1)!) · [v(S∪{i,j}) - v(S∪{i}) - v(S∪{j}) + v(S)]
 * for i ≠ j (half the Shapley interaction index of Grabisch & Roubens, so Φ_ij + Φ_ji is the whole
 * index), and Φ_ii = φ_i - sum_{j≠i} Φ_ij, where φ_i is the exact Shapley value. So each row sums to
 * the Shapley value and the whole matrix to v(N) - v(∅) = link(f(x)) - link(E f(background)).
 * Cost: 2^M coalitions x background rows model rows per instance; M is capped (maxPlayers).
 */
import { ExplainerInputError, type Model, type Rows } from '../types.js';
import { inLinkDomain, linkFunction, type LinkName } from '../link.js';
import { kmeans } from '../kmeans.js';
import { createEvaluator, evaluateRows } from './evaluate.js';
import { checkData, checkOutputs, featureCatalogue, type EffectFeature } from './features.js';
import type { EffectOptions } from './partialDependence.js';

export interface ShapleyInteractionOptions extends EffectOptions {
  /** Rows standing for "feature unknown", as Kernel SHAP's background. */
  background: Rows;
  /** Background rows kept (weighted k-means above it, as Kernel SHAP). Default 50. */
  maxBackground?: number;
  /** Seed of the k-means summary. Default 0. */
  seed?: number;
  /** Most players enumerated (2^M coalitions). Default 10; at most 16. */
  maxPlayers?: number;
}

export interface InteractionOutput {
  output: string;
  outputIndex: number;
  /** v(∅) = link(E f(background)) and v(N) = link(f(x)). */
  baselineOutputValue: number;
  instanceOutputValue: number;
  /** Exact Shapley value per player. */
  shapley: number[];
  /** interactions[i][j] = Φ_ij (symmetric); row i sums to shapley[i]. */
  interactions: number[][];
}

export interface InteractionValues {
  /** Player names: features, and one-hot groups as one player. */
  players: string[];
  /** Columns of each player. */
  playerColumns: number[][];
  link: LinkName;
  instances: { outputs: InteractionOutput[] }[];
  modelEvaluations: number;
  computeMs: number;
  background: { rows: number; originalRows: number };
}

export const MAX_INTERACTION_PLAYERS = 16;

export function checkPlayers(players: EffectFeature[], maxPlayers: unknown): void {
  if (typeof maxPlayers !== 'number' || !Number.isInteger(maxPlayers) || maxPlayers < 1 || maxPlayers > MAX_INTERACTION_PLAYERS) {
    throw new ExplainerInputError('BAD_PARAMETER', `maxPlayers must be an integer from 1 to ${MAX_INTERACTION_PLAYERS}, got ${JSON.stringify(maxPlayers)}`);
  }
  if (players.length > maxPlayers) {
    throw new ExplainerInputError(
      'TOO_MANY_PLAYERS',
      `exact Shapley interaction values enumerate 2^M coalitions; this model has M = ${players.length} features (one-hot groups count once), above the limit of ${maxPlayers}: use the approximate interactions (Kernel SHAP) instead`,
      { players: players.length, maximum: maxPlayers },
    );
  }
}

function factorial(n: number): number {
  let f = 1;
  for (let k = 2; k <= n; k++) f *= k;
  return f;
}

/** Shapley values and interaction values from v over all 2^M coalitions (bit p = player p). */
export function interactionsFromGame(v: Float64Array, M: number): { shapley: number[]; interactions: number[][] } {
  const size = new Uint8Array(1 << M);
  for (let S = 1; S < 1 << M; S++) size[S] = size[S >> 1] + (S & 1);
  const wShap = Array.from({ length: M }, (_, s) => (factorial(s) * factorial(M - s - 1)) / factorial(M));
  const wInt = Array.from({ length: Math.max(M - 1, 0) }, (_, s) => (factorial(s) * factorial(M - s - 2)) / (2 * factorial(M - 1)));
  const shapley = new Array<number>(M).fill(0);
  const I = Array.from({ length: M }, () => new Array<number>(M).fill(0));
  for (let S = 0; S < 1 << M; S++) {
    const s = size[S];
    for (let i = 0; i < M; i++) {
      const bi = 1 << i;
      if (S & bi) continue;
      shapley[i] += wShap[s] * (v[S | bi] - v[S]);
      for (let j = i + 1; j < M; j++) {
        const bj = 1 << j;
        if (S & bj) continue;
        const t = wInt[s] * (v[S | bi | bj] - v[S | bi] - v[S | bj] + v[S]);
        I[i][j] += t;
        I[j][i] += t;
      }
    }
  }
  for (let i = 0; i < M; i++) {
    let off = 0;
    for (let j = 0; j < M; j++) if (j !== i) off += I[i][j];
    I[i][i] = shapley[i] - off;
  }
  return { shapley, interactions: I };
}

export async function shapleyInteractionValues(model: Model, instances: Rows, options: ShapleyInteractionOptions): Promise<InteractionValues> {
  const started = performance.now();
  checkData(model, instances, 'instances');
  if (!options.background) throw new ExplainerInputError('NO_BACKGROUND', 'exact Shapley interaction values need a background: rows that stand for "feature unknown"');
  checkData(model, options.background, 'background');
  const outputs = checkOutputs(model, options.outputs);
  const players = featureCatalogue(options.space, model.nFeatures, options).features;
  checkPlayers(players, options.maxPlayers ?? 10);
  const maxBackground = options.maxBackground ?? 50;
  if (!Number.isInteger(maxBackground) || maxBackground < 1) throw new ExplainerInputError('BAD_PARAMETER', `maxBackground must be a positive integer, got ${maxBackground}`);
  const linkName = options.link ?? 'identity';
  const link = linkFunction(linkName);

  let bg = options.background;
  let weights = new Float64Array(bg.n).fill(1 / bg.n);
  if (bg.n > maxBackground) {
    const km = kmeans(bg, { k: maxBackground, seed: options.seed ?? 0 });
    bg = km.centroids;
    const total = km.weights.reduce((a, b) => a + b, 0);
    weights = Float64Array.from(km.weights, (w) => w / total);
  }
  const M = players.length;
  const C = 1 << M;
  const B = bg.n;
  const d = model.nFeatures;
  const m = outputs.length;
  // Raw outputs: the link goes on the background mean, not on each row.
  const ev = createEvaluator(model, { ...options, outputs, link: 'identity' });
  const result: InteractionValues['instances'] = [];
  for (let i = 0; i < instances.n; i++) {
    const x = instances.data.subarray(i * d, (i + 1) * d);
    const out = await evaluateRows(ev, C * B, bg, (r) => r % B, (r, buffer, at) => {
      const S = Math.floor(r / B);
      for (let p = 0; p < M; p++) if (S & (1 << p)) for (const c of players[p].columns) buffer[at + c] = x[c];
    });
    result.push({
      outputs: outputs.map((o, oi) => {
        const v = new Float64Array(C);
        for (let S = 0; S < C; S++) {
          let s = 0;
          for (let b = 0; b < B; b++) s += weights[b] * out[(S * B + b) * m + oi];
          if (!inLinkDomain(linkName, s)) {
            throw new ExplainerInputError('BAD_PARAMETER', `link 'logit' needs outputs that are probabilities, but the model returned ${s}: use link 'identity'`);
          }
          v[S] = link(s);
        }
        const { shapley, interactions } = interactionsFromGame(v, M);
        return {
          output: options.space.outputNames?.[o] ?? `y${o}`,
          outputIndex: o,
          baselineOutputValue: v[0],
          instanceOutputValue: v[C - 1],
          shapley,
          interactions,
        };
      }),
    });
  }
  return {
    players: players.map((p) => p.name),
    playerColumns: players.map((p) => p.columns),
    link: linkName,
    instances: result,
    modelEvaluations: ev.counter.rows,
    computeMs: performance.now() - started,
    background: { rows: bg.n, originalRows: options.background.n },
  };
}
