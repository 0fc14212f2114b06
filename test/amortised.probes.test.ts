/**
 * The amortised explainer's probe rows sized to the model's speed (service/amortised/probeBudget.ts):
 * the build times the serving path's probes on real rows and takes fewer probe rows until a
 * single-row call fits the budget. Budgets here are chosen so the outcome does not depend on this
 * machine's speed: 0 (no timing), 10 s (anything fits) and 1 ns (nothing but the mean row fits).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createGame } from '../explainers/amortised/game.js';
import { amortisedShap } from '../explainers/amortised/amortisedShap.js';
import { checkHyperparameters } from '../explainers/amortised/training.js';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { buildAmortised, type BuildAmortisedOptions } from '../service/amortised/build.js';
import { chooseProbeRows, type ProbeChoice } from '../service/amortised/probeBudget.js';
import { checkpointDirOf, loadAmortised } from '../service/amortised/store.js';

const slice = (rows: Rows, from: number, to: number): Rows => ({ data: rows.data.slice(from * rows.d, to * rows.d), n: to - from, d: rows.d });

describe('amortised SHAP: probe rows sized to the model', () => {
  let credit: LoadedModel;
  let tmp: string;
  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    credit = await loadModelFolder('credit', path.resolve('samples/models/credit'));
    tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-probes-'));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  const gameOf = () => createGame(credit.model, { space: credit.space, background: credit.background!, link: 'logit' });
  const sample = () => slice(credit.reference!.rows, 0, 6);

  it('no budget: the rows asked for, untimed; a budget anything fits: one timing at those rows', async () => {
    const game = gameOf();
    const bg = game.background.n;
    const none = await chooseProbeRows(credit.model, game, sample(), { requested: 30, budgetMs: 0, seed: 1 });
    assert.deepEqual(none, { requestedRows: 30, rows: 30, budgetMs: 0, trials: [] });
    assert.equal(game.probeRows!.rows.n, 30);
    const roomy = await chooseProbeRows(credit.model, game, sample(), { requested: 1000, budgetMs: 10_000, seed: 1 });
    assert.equal(roomy.rows, bg, 'asking for more rows than the background has takes the whole background');
    assert.equal(roomy.trials.length, 1);
    assert.equal(roomy.trials[0].probeRows, bg);
    assert.ok(roomy.trials[0].ms > 0 && roomy.trials[0].ms < 10_000);
    assert.equal(game.probeRows!.rows.n, bg);
  });

  it('a budget nothing fits: fewer rows at every try, down to the mean row, which is kept', async () => {
    const game = gameOf();
    const choice = await chooseProbeRows(credit.model, game, sample(), { requested: 80, budgetMs: 1e-6, seed: 1 });
    assert.equal(choice.rows, 0);
    assert.equal(game.probeRows!.rows.n, 1);
    assert.ok(choice.trials.length >= 2, JSON.stringify(choice.trials));
    assert.equal(choice.trials[0].probeRows, 80);
    assert.equal(choice.trials.at(-1)!.probeRows, 1);
    for (let t = 1; t < choice.trials.length; t++) assert.ok(choice.trials[t].probeRows < choice.trials[t - 1].probeRows, JSON.stringify(choice.trials));
    // The mean row is the weighted mean of the background.
    const { background: bg, weights } = game;
    for (let c = 0; c < bg.d; c++) {
      let mu = 0;
      for (let b = 0; b < bg.n; b++) mu += weights[b] * bg.data[b * bg.d + c];
      assert.ok(Math.abs(game.probeRows!.rows.data[c] - mu) <= 1e-5 * Math.max(1, Math.abs(mu)));
    }
  });

  it('probeBudgetMs: default 2 ms; negative, non-numbers and more than 10 s are refused', () => {
    assert.equal(checkHyperparameters({}).probeBudgetMs, 2);
    assert.equal(checkHyperparameters({ probeBudgetMs: 0 }).probeBudgetMs, 0);
    for (const bad of [-1, 10_001, Number.NaN, '1' as unknown as number]) {
      assert.throws(() => checkHyperparameters({ probeBudgetMs: bad }), (e: Error & { code?: string }) => e.code === 'BAD_PARAMETER' && /probeBudgetMs/.test(e.message));
    }
  });

  it('a build records its choice, serves with it, and a resumed build reuses it instead of timing again', async () => {
    const dir = path.join(tmp, 'explainer');
    const options: BuildAmortisedOptions = {
      space: credit.space,
      background: credit.background!,
      link: 'logit',
      modelName: 'credit',
      modelVersion: credit.version,
      reference: slice(credit.reference!.rows, 0, 120),
      dir,
      heldOutRows: 4,
      syntheticRows: 0,
      coalitionsPerRow: 32,
      maxEpochs: 4,
      patience: 2,
      batchSize: 16,
      hidden: [8],
      ensemble: 1,
      seed: 2,
      probeRows: 40,
      probeBudgetMs: 1e-6,
      validation: { kernelShapSamples: 0 },
    };
    const controller = new AbortController();
    await assert.rejects(
      buildAmortised(credit.model, { ...options, signal: controller.signal, onProgress: (p) => p.phase === 'labelling' && p.rowsDone > 20 && controller.abort(new Error('cut')) }),
      /cut/,
    );
    const saved = JSON.parse(await readFile(path.join(checkpointDirOf(dir), 'probes.json'), 'utf8')) as { choice: ProbeChoice };
    assert.equal(saved.choice.rows, 0);
    const built = await buildAmortised(credit.model, options);
    try {
      // Timings never repeat to the last bit: equal trials mean the saved choice was taken.
      assert.deepEqual(built.training.probes, saved.choice);
      assert.equal(built.explainer.game.probeRows!.rows.n, 1);
      const loaded = await loadAmortised(dir, { modelVersion: credit.version });
      try {
        assert.equal(loaded.game.probeRows!.rows.n, 1);
        const M = loaded.game.players.length;
        const e = await amortisedShap(loaded, credit.model, slice(credit.reference!.rows, 200, 202), { space: credit.space });
        for (const inst of e.explanations) assert.equal(inst.modelEvaluations, 1 + 2 * M, 'the row and its 2M probes against the mean row');
      } finally {
        loaded.dispose();
      }
    } finally {
      built.explainer.dispose();
    }
  });
});
