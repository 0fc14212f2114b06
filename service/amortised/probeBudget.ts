/**
 * How many probe rows an amortised explainer takes, sized to the model's speed on this machine. The
 * probes are most of a served single-row request: 2M x R model rows (M players, R probe rows) plus the
 * row itself, so on a model with more players or wider layers the default 100 probe rows would put a
 * request far above predict latency (a 40-feature 128-128 MLP: ~6 ms of probes against ~1 ms for a
 * 20-feature 64-64 one). Before labelling, the build times endpointValues (the serving path itself)
 * on real rows at the requested R and, while the median single-row time is above the budget, on a
 * smaller k-means summary (R scaled by budget / time, the cost being about linear in R), down to the
 * background's mean row (2M + 1 model rows), which is kept whatever it costs.
 *
 * The choice depends on the machine and its load at build time: it is kept in the build's checkpoint
 * folder so a resumed build reuses it, and in the training record (training.probes) with every time
 * measured, so what a stored explainer costs and why is on record.
 */
import { endpointValues, probeBackground, type AmortisedGame } from '../../explainers/amortised/game.js';
import type { Model, Rows } from '../../explainers/types.js';

export interface ProbeChoice {
  /** probeRows asked for. */
  requestedRows: number;
  /** probeRows taken (0: the background's mean row). */
  rows: number;
  /** The budget (0: none, nothing was timed). */
  budgetMs: number;
  /** Each size tried, in order: probe rows (as evaluated: the mean row is 1) and median single-row ms. */
  trials: { probeRows: number; ms: number }[];
}

/** Single-row calls timed per size (after WARMUP untimed ones): the median is kept. */
const TIMED_CALLS = 9;
const WARMUP_CALLS = 2;

/**
 * Sets game.probeRows to the largest summary (of the sizes tried) whose single-row probes fit the
 * budget, timed on rows of `sample`. With budget 0 it takes `requested` untimed.
 */
export async function chooseProbeRows(
  model: Model,
  game: AmortisedGame,
  sample: Rows,
  o: { requested: number; budgetMs: number; seed: number; signal?: AbortSignal },
): Promise<ProbeChoice> {
  let R = Math.min(o.requested, game.background.n);
  const trials: ProbeChoice['trials'] = [];
  for (;;) {
    game.probeRows = probeBackground(game, R, o.seed);
    if (o.budgetMs === 0) return { requestedRows: o.requested, rows: R, budgetMs: 0, trials };
    const ms = await medianProbeMs(model, game, sample, o.signal);
    trials.push({ probeRows: game.probeRows.rows.n, ms });
    if (ms <= o.budgetMs || R === 0) return { requestedRows: o.requested, rows: R, budgetMs: o.budgetMs, trials };
    let next = Math.floor((R * o.budgetMs) / ms);
    if (next >= R) next = R - 1;
    // A one-row summary is the mean row.
    R = next < 2 ? 0 : next;
  }
}

/** The game's probes exactly as set: what chooseProbeRows chose, rebuilt (k-means is seeded) for a resumed build. */
export function applyProbeChoice(game: AmortisedGame, choice: ProbeChoice, seed: number): void {
  game.probeRows = probeBackground(game, choice.rows, seed);
}

async function medianProbeMs(model: Model, game: AmortisedGame, sample: Rows, signal?: AbortSignal): Promise<number> {
  const { d } = sample;
  const times: number[] = [];
  for (let i = 0; i < WARMUP_CALLS + TIMED_CALLS; i++) {
    const r = i % sample.n;
    const row = { data: sample.data.subarray(r * d, (r + 1) * d), n: 1, d };
    const t0 = performance.now();
    await endpointValues(model, game, row, signal, true);
    if (i >= WARMUP_CALLS) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
