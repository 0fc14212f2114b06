/**
 * Attribution drift (SageMaker Clarify's model explainability monitor): global mean |attribution|
 * of each player on both sides, and NDCG = DCG / iDCG of the current ranking, with the reference
 * attribution a(f) as relevance: DCG = Σ_i a(f'_i) / log2(i + 1) over the features f' in current
 * order, iDCG the same in reference order. Flagged below 0.90, Clarify's threshold. Ties in either
 * ranking keep the players' model order.
 */
import { ExplainerInputError, type Explanation } from '../../explainers/types.js';
import { playerAttributions, type Player } from '../features.js';
import { DEFAULT_THRESHOLDS } from './thresholds.js';

export interface AttributionDrift {
  output: string;
  outputIndex: number;
  ndcg: number;
  flagged: boolean;
  referenceRows: number;
  currentRows: number;
  features: {
    feature: string;
    reference: number;
    current: number;
    change: number;
    /** change / reference; null when the reference attribution is 0. */
    relativeChange: number | null;
    referenceRank: number;
    currentRank: number;
  }[];
}

/** Clarify's NDCG of the current ranking against the reference ranking, relevance = reference scores. */
export function attributionNdcg(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  const k = reference.length;
  if (current.length !== k) throw new ExplainerInputError('BAD_DATA', 'reference and current attributions differ in length');
  const order = (s: ArrayLike<number>) => Array.from({ length: k }, (_, i) => i).sort((p, q) => s[q] - s[p] || p - q);
  const dcg = (ranking: number[]) => ranking.reduce((sum, f, i) => sum + reference[f] / Math.log2(i + 2), 0);
  const ideal = dcg(order(reference));
  return ideal > 0 ? dcg(order(current)) / ideal : 1;
}

function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return v.length ? s / v.length : 0;
}

/** Global mean |attribution| per player on both sides, the change, and Clarify's NDCG. */
export function attributionDrift(
  reference: Explanation,
  current: Explanation,
  players: Player[],
  outputIndex: number,
  outputName: string,
  threshold = DEFAULT_THRESHOLDS.ndcg,
): AttributionDrift {
  const meanAbs = (e: Explanation) => {
    const phi = playerAttributions(e, outputIndex, players);
    return Float64Array.from(players, (_, p) => mean(phi.map((row) => Math.abs(row[p]))));
  };
  const r = meanAbs(reference);
  const c = meanAbs(current);
  const rank = (s: Float64Array) => {
    const order = Array.from(s.keys()).sort((p, q) => s[q] - s[p] || p - q);
    const out = new Int32Array(s.length);
    order.forEach((p, i) => (out[p] = i + 1));
    return out;
  };
  const rr = rank(r);
  const cr = rank(c);
  const ndcg = attributionNdcg(r, c);
  return {
    output: outputName,
    outputIndex,
    ndcg,
    flagged: ndcg < threshold,
    referenceRows: reference.explanations.length,
    currentRows: current.explanations.length,
    features: players.map((p, k) => ({
      feature: p.name,
      reference: r[k],
      current: c[k],
      change: c[k] - r[k],
      relativeChange: r[k] > 0 ? (c[k] - r[k]) / r[k] : null,
      referenceRank: rr[k],
      currentRank: cr[k],
    })),
  };
}
