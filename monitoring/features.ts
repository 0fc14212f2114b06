/**
 * What monitoring needs to know about a model's features beyond their names (types and one-hot
 * groups, from metadata.json), and the players attributions are summed over: each one-hot group is
 * one player (its members' attributions added up), every other feature stands alone.
 */
import { ExplainerInputError, type Explanation, type FeatureSpace } from '../explainers/types.js';

export interface FeatureInfo {
  /** Per feature: numeric | integer | binary | categorical | one-hot | pixel (metadata's types). */
  types?: string[];
  /** Named groups of columns (one-hot variables). */
  groups?: { name: string; columns: number[] }[];
  /**
   * Per feature: names of its coded values (metadata `categories`: sex 0 -> "male"); on a one-hot
   * column, the value 1's label names the category the column stands for.
   */
  categories?: ({ value: number; label: string }[] | undefined)[];
}

export interface Player {
  name: string;
  columns: number[];
}

/** Players: each named group one player, every other feature alone; ordered by first column. */
export function playersOf(space: FeatureSpace, info: FeatureInfo = {}): Player[] {
  const owner = new Map<number, { name: string; columns: number[] }>();
  for (const g of info.groups ?? []) for (const c of g.columns) owner.set(c, g);
  const seen = new Set<string>();
  const players: Player[] = [];
  space.featureNames.forEach((name, c) => {
    const g = owner.get(c);
    if (!g) players.push({ name, columns: [c] });
    else if (!seen.has(g.name)) {
      seen.add(g.name);
      players.push({ name: g.name, columns: g.columns.slice().sort((a, b) => a - b) });
    }
  });
  return players;
}

/** Per explained instance, per player: the player's attribution (members summed). n x P. */
export function playerAttributions(explanation: Explanation, outputIndex: number, players: Player[]): Float64Array[] {
  return explanation.explanations.map((inst, i) => {
    const out = inst.outputs.find((o) => o.outputIndex === outputIndex);
    if (!out) throw new ExplainerInputError('BAD_DATA', `explanation of instance ${i} has no output ${outputIndex}`);
    return Float64Array.from(players, (p) => p.columns.reduce((s, c) => s + out.attributions[c].attribution, 0));
  });
}
