/**
 * Owen values over a binary hierarchy of players, the game shap's PartitionExplainer plays (ours,
 * written from the definition). A node splits into children L and R inside a context C (players
 * fixed present): L's share of the node's marginal v(C+L+R) - v(C) is the two-player Shapley value
 * 1/2 [v(C+L) - v(C)] + 1/2 [v(C+L+R) - v(C+R)], and so for R. Recursing to the leaves gives the
 * exact Owen value. With a budget, nodes are expanded in order of weight x |marginal| and a node left
 * unexpanded spreads its marginal equally over its players. Efficiency holds exactly at any budget:
 * the attributions always sum to v(all) - v(none).
 * Each round expands a batch of nodes whose 2 new coalitions each go to the model in one call.
 */

export interface PartitionNode {
  players: number[];
  children?: [PartitionNode, PartitionNode];
}

/** Values of the game for each coalition (1 = present), one value per explained output. */
export type CoalitionValues = (coalitions: Uint8Array[]) => Promise<Float64Array[]>;

export interface OwenResult {
  phi: Float64Array[];
  /** Coalitions evaluated, including the empty and the full one. */
  evaluations: number;
  /** True when every node was expanded down to its leaves (exact Owen values). */
  exact: boolean;
  /** v(none) and v(all) per output. */
  empty: Float64Array;
  full: Float64Array;
}

interface Item {
  node: PartitionNode;
  context: Uint8Array;
  off: Float64Array;
  on: Float64Array;
  weight: number;
}

export async function owenValues(
  nPlayers: number,
  tree: PartitionNode,
  nOutputs: number,
  values: CoalitionValues,
  options: { maxEvaluations: number; batch?: number; signal?: AbortSignal; deadline?: number },
): Promise<OwenResult & { deadlineReached: boolean }> {
  const none = new Uint8Array(nPlayers);
  const all = new Uint8Array(nPlayers);
  for (const p of tree.players) all[p] = 1;
  const [empty, full] = await values([none, all]);
  let evaluations = 2;
  const phi = Array.from({ length: nOutputs }, () => new Float64Array(nPlayers));
  let queue: Item[] = [{ node: tree, context: none, off: empty, on: full, weight: 1 }];
  let exact = true;
  let deadlineReached = false;
  const settle = (it: Item) => {
    const share = it.weight / it.node.players.length;
    for (let o = 0; o < nOutputs; o++) {
      const m = (it.on[o] - it.off[o]) * share;
      for (const p of it.node.players) phi[o][p] += m;
    }
  };
  const batch = Math.max(1, options.batch ?? 32);
  while (queue.length) {
    const leaves = queue.filter((it) => !it.node.children);
    for (const it of leaves) settle(it);
    queue = queue.filter((it) => it.node.children);
    if (!queue.length) break;
    options.signal?.throwIfAborted();
    if (options.deadline !== undefined && Date.now() >= options.deadline) deadlineReached = true;
    const room = Math.floor((options.maxEvaluations - evaluations) / 2);
    if (room <= 0 || deadlineReached) {
      exact = false;
      for (const it of queue) settle(it);
      break;
    }
    const priority = (it: Item) => {
      let m = 0;
      for (let o = 0; o < nOutputs; o++) m = Math.max(m, Math.abs(it.on[o] - it.off[o]));
      return it.weight * m;
    };
    queue.sort((a, b) => priority(b) - priority(a));
    const take = queue.splice(0, Math.min(room, batch));
    const coalitions: Uint8Array[] = [];
    for (const it of take) {
      const [L, R] = it.node.children!;
      const withL = Uint8Array.from(it.context);
      for (const p of L.players) withL[p] = 1;
      const withR = Uint8Array.from(it.context);
      for (const p of R.players) withR[p] = 1;
      coalitions.push(withL, withR);
    }
    const v = await values(coalitions);
    evaluations += coalitions.length;
    take.forEach((it, t) => {
      const [L, R] = it.node.children!;
      const fL = v[2 * t];
      const fR = v[2 * t + 1];
      const half = it.weight / 2;
      queue.push(
        { node: L, context: it.context, off: it.off, on: fL, weight: half },
        { node: L, context: coalitions[2 * t + 1], off: fR, on: it.on, weight: half },
        { node: R, context: it.context, off: it.off, on: fR, weight: half },
        { node: R, context: coalitions[2 * t], off: fL, on: it.on, weight: half },
      );
    });
  }
  return { phi, evaluations, exact, empty, full, deadlineReached };
}

/** Contiguous halves: the hierarchy for sequences (tokens). */
export function sequenceTree(players: number[]): PartitionNode {
  if (players.length <= 1) return { players };
  const mid = Math.ceil(players.length / 2);
  return { players, children: [sequenceTree(players.slice(0, mid)), sequenceTree(players.slice(mid))] };
}

/** Splits at the median along the longer extent, recursively (a k-d tree): the hierarchy for image segments. */
export function spatialTree(players: number[], y: number[], x: number[]): PartitionNode {
  if (players.length <= 1) return { players };
  const ys = players.map((p) => y[p]);
  const xs = players.map((p) => x[p]);
  const alongY = Math.max(...ys) - Math.min(...ys) >= Math.max(...xs) - Math.min(...xs);
  const key = alongY ? y : x;
  const sorted = [...players].sort((a, b) => key[a] - key[b] || a - b);
  const mid = Math.ceil(sorted.length / 2);
  return { players, children: [spatialTree(sorted.slice(0, mid), y, x), spatialTree(sorted.slice(mid), y, x)] };
}
