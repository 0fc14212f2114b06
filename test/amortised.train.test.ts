/**
 * The amortised explainer end to end on real tfjs sample models (wasm backend), held to oracles that
 * do not come from our code: the linear sample's closed form w_i (x_i - mean_i), Shapley values of
 * the credit sample by brute force (all 2^12 coalitions, the Shapley formula, written here), and
 * the efficiency axiom against f(x) and the background mean computed here from model.predict.
 * Training settings are small so the file runs in minutes; the bench uses the real ones.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { checkEfficiency } from './helpers/amortisedEfficiency.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { amortisedShap } from '../explainers/amortised/amortisedShap.js';
import { DEFAULT_SERVABLE_THRESHOLD, servable, validateAmortised } from '../explainers/amortised/validation.js';
import { kernelShap } from '../explainers/kernelShap.js';
import type { Rows } from '../explainers/types.js';
import { buildAmortised, type BuildAmortisedOptions, type BuildResult } from '../service/amortised/build.js';
import { amortisedDir, checkpointDirOf, loadAmortised, saveAmortised } from '../service/amortised/store.js';

const SAMPLES = path.resolve('samples/models');

function slice(rows: Rows, from: number, to: number): Rows {
  return { data: rows.data.slice(from * rows.d, to * rows.d), n: to - from, d: rows.d };
}

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => (e as { code?: string }).code === code);
}

describe('amortised SHAP on the sample models', function () {
  this.timeout(900_000);
  let linear: LoadedModel;
  let credit: LoadedModel;
  let tmp: string;
  let linearBuilt: BuildResult;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    linear = await loadModelFolder('linear', path.join(SAMPLES, 'linear'));
    credit = await loadModelFolder('credit', path.join(SAMPLES, 'credit'));
    tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-test-'));
    // Trained on the first 400 reference rows; rows 400..499 are never seen by training or validation.
    linearBuilt = await buildAmortised(linear.model, {
      space: linear.space,
      background: linear.background!,
      link: 'identity',
      modelName: 'linear',
      modelVersion: linear.version,
      reference: slice(linear.reference!.rows, 0, 400),
      dir: amortisedDir(tmp, 'linear', linear.version),
      syntheticRows: 400,
      hidden: [64, 64],
      batchSize: 64,
      maxEpochs: 120,
    });
  });

  after(async () => {
    linearBuilt?.explainer.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  it('linear: recovers the closed form w_i (x_i - mean_i) on unseen rows, with efficiency to float precision', async () => {
    const notes = linear.metadata!.notes as { w: number[] };
    const bg = linear.background!;
    const d = bg.d;
    const mean = Array.from({ length: d }, (_, c) => {
      let s = 0;
      for (let b = 0; b < bg.n; b++) s += bg.data[b * d + c];
      return s / bg.n;
    });
    const rows = slice(linear.reference!.rows, 400, 500);
    const before = tf.memory().numTensors;
    const e = await amortisedShap(linearBuilt.explainer, linear.model, rows, { space: linear.space, modelVersion: linear.version });
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    assert.equal(e.method, 'amortised-shap');
    let worst = 0;
    e.explanations.forEach((inst, i) => {
      assert.equal(inst.stopReason, 'amortised');
      assert.equal(inst.converged, true);
      const truth = Array.from({ length: d }, (_, c) => notes.w[c] * (rows.data[i * d + c] - mean[c]));
      const range = Math.max(...truth) - Math.min(...truth);
      const err = Math.max(...inst.outputs[0].attributions.map((a, c) => Math.abs(a.attribution - truth[c])));
      worst = Math.max(worst, err / range);
      assert.equal(inst.outputs[0].approximationError, linearBuilt.validation.amortisedPerOutput[0].meanAbs);
    });
    // Closed form within 1% of each row's attribution range (measured: ~1e-4).
    assert.ok(worst < 0.01, `worst error ${worst} of the attribution range`);
    await checkEfficiency(linear, rows, e, (p) => p);
    assert.ok(servable(linearBuilt.validation));
    assert.equal(linearBuilt.validation.reference, 'exact');
  });

  it('credit: error against brute-force Shapley values on unseen rows is under the servable threshold', async () => {
    const ref = credit.reference!.rows;
    const built = await buildAmortised(credit.model, {
      space: credit.space,
      background: credit.background!,
      link: 'logit',
      modelName: 'credit',
      modelVersion: credit.version,
      reference: slice(ref, 0, 900),
      dir: amortisedDir(tmp, 'credit', credit.version),
      heldOutRows: 20,
      syntheticRows: 600,
      coalitionsPerRow: 256,
      hidden: [128, 128],
      batchSize: 64,
      maxEpochs: 150,
      patience: 12,
      // The 100 probe rows whatever this machine's load (the default budget may take fewer on a busy one).
      probeBudgetMs: 0,
    });
    try {
      const v = built.validation;
      assert.equal(v.reference, 'exact');
      assert.equal(v.players, 12);
      assert.ok(v.amortised.meanRelative < DEFAULT_SERVABLE_THRESHOLD, `validated mean relative error ${v.amortised.meanRelative}`);
      assert.ok(servable(v));
      assert.equal(v.kernelShap?.nSamples, 2088);
      assert.ok(v.ratioToKernelShap! > 0);

      // Brute force on rows outside the build's reference rows.
      const rows = slice(ref, 900, 906);
      const e = await amortisedShap(built.explainer, credit.model, rows, { space: credit.space });
      await checkEfficiency(credit, rows, e, (p) => Math.log(p / (1 - p)));
      const players = playersOf(credit);
      let sumRel = 0;
      for (let i = 0; i < rows.n; i++) {
        const exact = await bruteForceShapley(credit, rows.data.subarray(i * rows.d, (i + 1) * rows.d), players);
        const truth = new Array(rows.d).fill(0);
        players.forEach((cols, p) => cols.forEach((c) => (truth[c] = exact[p] / cols.length)));
        const range = Math.max(...truth) - Math.min(...truth);
        const err = Math.max(...e.explanations[i].outputs[0].attributions.map((a, c) => Math.abs(a.attribution - truth[c])));
        sumRel += err / range;
      }
      const meanRel = sumRel / rows.n;
      assert.ok(meanRel < DEFAULT_SERVABLE_THRESHOLD, `mean relative max-error against brute force ${meanRel}`);
      // The stored validation and this independent check agree on the size of the error.
      assert.ok(meanRel < 3 * v.amortised.meanRelative + 0.005 && v.amortised.meanRelative < 3 * meanRel + 0.005, `${meanRel} vs validated ${v.amortised.meanRelative}`);

      // The comparison with shap's KernelExplainer sampling scheme: its figures are those of shap's
      // scheme at 2088 coalitions (seed 0) against brute force on the same rows, and the ratio divides by them.
      const few = slice(ref, 906, 909);
      const checked = await validateAmortised(built.explainer, credit.model, few, { space: credit.space });
      assert.equal(checked.shapKernelExplainer?.nSamples, 2088);
      assert.equal(checked.shapKernelExplainer?.count, few.n);
      const shapRun = await kernelShap(credit.model, few, {
        space: credit.space,
        background: credit.background!,
        link: 'logit',
        sampler: 'shap',
        nSamples: 2088,
        tolerance: 0,
        seed: 0,
      });
      let shapSum = 0;
      for (let i = 0; i < few.n; i++) {
        const exact = await bruteForceShapley(credit, few.data.subarray(i * few.d, (i + 1) * few.d), players);
        const truth = new Array(few.d).fill(0);
        players.forEach((cols, p) => cols.forEach((c) => (truth[c] = exact[p] / cols.length)));
        shapSum += Math.max(...shapRun.explanations[i].outputs[0].attributions.map((a, c) => Math.abs(a.attribution - truth[c])));
      }
      assert.ok(shapSum > 0, "shap's scheme samples at 2088 of 4094 coalitions: it has an error");
      assert.ok(Math.abs(checked.shapKernelExplainer!.meanAbs - shapSum / few.n) < 1e-6, `${checked.shapKernelExplainer!.meanAbs} vs ${shapSum / few.n}`);
      assert.equal(checked.ratioToShapKernelExplainer, checked.amortised.meanAbs / checked.shapKernelExplainer!.meanAbs);
      // Without the comparison, none of its fields.
      const without = await validateAmortised(built.explainer, credit.model, few, { space: credit.space, shapComparison: false });
      assert.equal(without.shapKernelExplainer, undefined);
      assert.equal(without.ratioToShapKernelExplainer, undefined);
      assert.equal(without.amortised.meanAbs, checked.amortised.meanAbs);

      // Beyond exactMaxPlayers the reference is sampled and the comparisons are made against it. A
      // sampled reference whose budget covers all 4,094 coalitions is exact: every figure equals the
      // exact reference's and its standard error is 0.
      const full = await validateAmortised(built.explainer, credit.model, few, { space: credit.space, exactMaxPlayers: 11, referenceSamples: 4094 });
      assert.equal(full.reference, 'kernel-shap');
      assert.equal(full.referenceStdErr, 0);
      for (const key of ['amortised', 'kernelShap', 'shapKernelExplainer'] as const) {
        assert.ok(Math.abs(full[key]!.meanAbs - checked[key]!.meanAbs) < 1e-9, `${key}: ${full[key]!.meanAbs} vs ${checked[key]!.meanAbs}`);
      }
      // With 1,024 coalitions the reference has an error of its own, reported, and is what the
      // comparisons measure against: shap's scheme's figure is its distance from that reference.
      const sampled = await validateAmortised(built.explainer, credit.model, few, { space: credit.space, exactMaxPlayers: 11, referenceSamples: 1024 });
      assert.ok(sampled.referenceStdErr! > 0);
      const reference = await kernelShap(credit.model, few, { space: credit.space, background: credit.background!, link: 'logit', nSamples: 1024, tolerance: 0, seed: 0 });
      let distance = 0;
      for (let i = 0; i < few.n; i++) {
        const ref1 = reference.explanations[i].outputs[0].attributions;
        distance += Math.max(...shapRun.explanations[i].outputs[0].attributions.map((a, c) => Math.abs(a.attribution - ref1[c].attribution))) / few.n;
      }
      assert.ok(Math.abs(sampled.shapKernelExplainer!.meanAbs - distance) < 1e-6, `${sampled.shapKernelExplainer!.meanAbs} vs ${distance}`);
      assert.equal(sampled.ratioToKernelShap, sampled.amortised.meanAbs / sampled.kernelShap!.meanAbs);
    } finally {
      built.explainer.dispose();
    }
  });

  it('a new model version makes the stored explainer unused until retrained', async () => {
    const modelDir = path.join(tmp, 'models', 'linear');
    await cp(path.join(SAMPLES, 'linear'), modelDir, { recursive: true });
    const v1 = await loadModelFolder('linear', modelDir);
    assert.equal(v1.version, linear.version, 'same bytes, same version');
    const dataDir = path.join(tmp, 'data');
    await saveAmortised(amortisedDir(dataDir, 'linear', v1.version), linearBuilt.explainer, linearBuilt);
    const loaded = await loadAmortised(amortisedDir(dataDir, 'linear', v1.version), { modelVersion: v1.version, modelName: 'linear' });
    loaded.dispose();

    const meta = JSON.parse(await readFile(path.join(modelDir, 'metadata.json'), 'utf8'));
    meta.description += ' (retrained)';
    await writeFile(path.join(modelDir, 'metadata.json'), JSON.stringify(meta));
    v1.model.dispose();
    const v2 = await loadModelFolder('linear', modelDir);
    try {
      assert.notEqual(v2.version, v1.version);
      // Looked up by the new version: nothing there.
      await rejectsWithCode(loadAmortised(amortisedDir(dataDir, 'linear', v2.version), { modelVersion: v2.version }), 'AMORTISED_NOT_FOUND');
      // The old folder, asked for the new version: refused.
      await rejectsWithCode(loadAmortised(amortisedDir(dataDir, 'linear', v1.version), { modelVersion: v2.version }), 'AMORTISED_STALE');
      // An explainer already in memory is refused for the new version too.
      const rows = slice(linear.reference!.rows, 400, 401);
      await rejectsWithCode(amortisedShap(linearBuilt.explainer, v2.model, rows, { space: v2.space, modelVersion: v2.version }), 'AMORTISED_STALE');
    } finally {
      v2.model.dispose();
    }
  });

  it('saved and loaded, it gives the same attributions; bad requests get stable codes; verify reports Kernel SHAP', async () => {
    const dir = linearBuilt.dir;
    const before = tf.memory().numTensors;
    const loaded = await loadAmortised(dir, { modelVersion: linear.version });
    const rows = slice(linear.reference!.rows, 450, 460);
    const a = await amortisedShap(linearBuilt.explainer, linear.model, rows, { space: linear.space });
    const b = await amortisedShap(loaded, linear.model, rows, { space: linear.space });
    assert.deepEqual(
      b.explanations.map((x) => x.outputs),
      a.explanations.map((x) => x.outputs),
    );
    await rejectsWithCode(amortisedShap(loaded, linear.model, { data: new Float32Array(5), n: 1, d: 5 }, { space: linear.space }), 'BAD_INSTANCES');
    await rejectsWithCode(amortisedShap(loaded, linear.model, rows, { space: linear.space, outputs: [1] }), 'BAD_OUTPUTS');
    const unvalidated = { ...loaded, game: loaded.game, probes: loaded.probes, estimate: loaded.estimate.bind(loaded), validation: undefined };
    await rejectsWithCode(amortisedShap(unvalidated, linear.model, rows, { space: linear.space }), 'AMORTISED_NOT_VALIDATED');

    const one = slice(rows, 0, 1);
    const checked = await amortisedShap(loaded, linear.model, one, { space: linear.space, verify: { seed: 3 } });
    const ks = await kernelShap(linear.model, one, { space: linear.space, background: linear.background!, seed: 3 });
    const verify = checked.explanations[0].diagnostics!.verify as { outputs: { differences: number[]; maxAbsDifference: number }[] };
    const mine = checked.explanations[0].outputs[0].attributions;
    verify.outputs[0].differences.forEach((diff, c) => assert.ok(Math.abs(diff - (mine[c].attribution - ks.explanations[0].outputs[0].attributions[c].attribution)) < 1e-9));
    assert.ok(verify.outputs[0].maxAbsDifference < 0.05, `amortised vs Kernel SHAP on the linear model: ${verify.outputs[0].maxAbsDifference}`);
    loaded.dispose();
    assert.equal(tf.memory().numTensors, before, 'loading, explaining and disposing leave no tensors behind');
  });

  it('resumes after an abort (while labelling, while training) and ends exactly where an uninterrupted run ends', async () => {
    const ref = credit.reference!.rows;
    const options = (dir: string): BuildAmortisedOptions => ({
      space: credit.space,
      background: credit.background!,
      link: 'logit',
      modelName: 'credit',
      modelVersion: credit.version,
      reference: slice(ref, 0, 150),
      dir,
      heldOutRows: 5,
      syntheticRows: 0,
      coalitionsPerRow: 48,
      maxEpochs: 14,
      patience: 3,
      batchSize: 16,
      hidden: [16],
      seed: 5,
      validation: { kernelShapSamples: 0 },
      // Probe rows fixed (not sized by timing the machine): these tests compare separate builds bit for bit.
      probeBudgetMs: 0,
    });
    const straight = await buildAmortised(credit.model, options(path.join(tmp, 'resume-straight')));
    const dir = path.join(tmp, 'resume-cut');
    for (const cut of [(p: { phase: string; rowsDone?: number }) => p.phase === 'labelling' && p.rowsDone! > 40, (p: { phase: string; epoch?: number }) => p.phase === 'training' && p.epoch === 2]) {
      const controller = new AbortController();
      await assert.rejects(
        buildAmortised(credit.model, {
          ...options(dir),
          signal: controller.signal,
          onProgress: (p) => {
            if (cut(p as never)) controller.abort(new Error('stop here'));
          },
        }),
        /stop here/,
      );
    }
    const phases: string[] = [];
    const resumed = await buildAmortised(credit.model, { ...options(dir), onProgress: (p) => phases.push(p.phase) });
    try {
      assert.ok(!phases.includes('labelling'), 'the labels were all restored from the checkpoint');
      assert.deepEqual(resumed.training.history, straight.training.history);
      assert.equal(resumed.training.labellingEvaluations, straight.training.labellingEvaluations);
      assert.deepEqual(await resumed.explainer.network.read(), await straight.explainer.network.read());
      assert.equal(resumed.id, straight.id, 'the same explainer, byte for byte');
      assert.deepEqual(resumed.validation.amortised, straight.validation.amortised);
      await assert.rejects(readFile(path.join(checkpointDirOf(dir), 'labels.json')), 'checkpoints are removed once the explainer is stored');
      // A checkpoint of another run is not mixed in: other options start over.
      const otherDir = path.join(tmp, 'resume-other');
      const c2 = new AbortController();
      const cutEarly = { ...options(otherDir), maxEpochs: 3, signal: c2.signal };
      await assert.rejects(buildAmortised(credit.model, { ...cutEarly, onProgress: (p) => p.phase === 'training' && c2.abort(new Error('stop')) }), /stop/);
      const other = await buildAmortised(credit.model, { ...options(otherDir), seed: 6, maxEpochs: 3 });
      const fresh = await buildAmortised(credit.model, { ...options(path.join(tmp, 'resume-fresh')), seed: 6, maxEpochs: 3 });
      assert.deepEqual(other.training.history, fresh.training.history);
      assert.equal(other.id, fresh.id);
      other.explainer.dispose();
      fresh.explainer.dispose();
    } finally {
      resumed.explainer.dispose();
      straight.explainer.dispose();
    }
  });

});

/** Players of a sample: its groups, and every other feature alone, ordered by first column. */
function playersOf(m: LoadedModel): number[][] {
  const d = m.model.nFeatures;
  const grouped = new Map<number, number[]>();
  for (const g of m.space.groups ?? []) for (const c of g) grouped.set(c, g);
  const players: number[][] = [];
  const seen = new Set<number[]>();
  for (let c = 0; c < d; c++) {
    const g = grouped.get(c);
    if (!g) players.push([c]);
    else if (!seen.has(g)) {
      seen.add(g);
      players.push([...g].sort((a, b) => a - b));
    }
  }
  return players;
}

/**
 * Exact Shapley values of v(S) = logit(mean_b f(x on S, b elsewhere)) by the Shapley formula over all
 * 2^M coalitions (interventional game, background rows equally weighted).
 */
async function bruteForceShapley(m: LoadedModel, x: Float32Array, players: number[][]): Promise<number[]> {
  const bg = m.background!;
  const d = bg.d;
  const M = players.length;
  const data = new Float32Array((1 << M) * bg.n * d);
  for (let S = 0; S < 1 << M; S++) {
    for (let b = 0; b < bg.n; b++) {
      const at = (S * bg.n + b) * d;
      data.set(bg.data.subarray(b * d, (b + 1) * d), at);
      players.forEach((cols, p) => {
        if ((S >> p) & 1) for (const c of cols) data[at + c] = x[c];
      });
    }
  }
  const out = await m.model.predict({ data, n: (1 << M) * bg.n, d });
  const v = new Float64Array(1 << M);
  for (let S = 0; S < 1 << M; S++) {
    let s = 0;
    for (let b = 0; b < bg.n; b++) s += out[S * bg.n + b];
    const p = s / bg.n;
    v[S] = Math.log(p / (1 - p));
  }
  const fact = [1];
  for (let i = 1; i <= M; i++) fact.push(fact[i - 1] * i);
  const phi = new Array(M).fill(0);
  for (let S = 0; S < 1 << M; S++) {
    let size = 0;
    for (let p = 0; p < M; p++) size += (S >> p) & 1;
    for (let i = 0; i < M; i++) {
      if ((S >> i) & 1) continue;
      phi[i] += ((fact[size] * fact[M - size - 1]) / fact[M]) * (v[S | (1 << i)] - v[S]);
    }
  }
  return phi;
}
