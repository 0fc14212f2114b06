/**
 * Ensembles of amortised-explainer networks, stored as one block-diagonal network.
 * - The merge held to an oracle written here: each member's output by a plain float64 forward pass
 *   (no tfjs), averaged; the merged network runs through the served tfjs path.
 * - Builds on the credit sample (small settings): an ensemble of 2 doubles the hidden widths, its
 *   member 0 is exactly the single network's run, the merged network's early-stopping loss is at most
 *   the members' mean (the loss is convex in the estimates: Jensen), the stored explainer reloads to
 *   the same attributions, efficiency holds against the model's own predictions, not passing
 *   `ensemble` trains the default number of networks, and a build aborted in member 1 resumes to the
 *   same explainer.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { amortisedShap } from '../explainers/amortised/amortisedShap.js';
import { checkHyperparameters, DEFAULT_HYPERPARAMETERS } from '../explainers/amortised/training.js';
import { seededRng } from '../explainers/random.js';
import type { Rows } from '../explainers/types.js';
import { selectBackend } from '../models/backend.js';
import { checkEfficiency } from './helpers/amortisedEfficiency.js';
import { mergeMembers, Mlp, weightShapes, type Activation, type NetworkSpec, type WeightArrays } from '../models/amortised/network.js';
import { loadModelFolder, type LoadedModel } from '../models/repository.js';
import { buildAmortised, type BuildAmortisedOptions, type BuildProgress, type BuildResult } from '../service/amortised/build.js';
import { checkpointDirOf, loadAmortised } from '../service/amortised/store.js';
import { progressOf } from '../service/amortised/task.js';

const SAMPLES = path.resolve('samples/models');

/** A member's output by a plain float64 forward pass of its weights (row-major [in, out] kernels). */
function forward(spec: NetworkSpec, w: WeightArrays, x: Float32Array, n: number): Float64Array {
  const act = (z: number) => (spec.activation === 'relu' ? Math.max(0, z) : spec.activation === 'elu' ? (z > 0 ? z : Math.expm1(z)) : Math.tanh(z));
  const sizes = [spec.inputs, ...spec.hidden, spec.outputs];
  const layers = spec.hidden.length + 1;
  const out = new Float64Array(n * spec.outputs);
  for (let r = 0; r < n; r++) {
    const input = Array.from(x.subarray(r * spec.inputs, (r + 1) * spec.inputs));
    let h = input;
    for (let l = 0; l < layers; l++) {
      const [a, b] = [sizes[l], sizes[l + 1]];
      const z = Array.from({ length: b }, (_, j) => {
        let s = w[2 * l + 1][j];
        for (let i = 0; i < a; i++) s += h[i] * w[2 * l][i * b + j];
        return s;
      });
      h = l + 1 < layers ? z.map(act) : z;
    }
    if (spec.linearSkip) {
      for (let j = 0; j < spec.outputs; j++) for (let i = 0; i < spec.inputs; i++) h[j] += input[i] * w[2 * layers][i * spec.outputs + j];
    }
    out.set(h, r * spec.outputs);
  }
  return out;
}

function randomWeights(spec: NetworkSpec, rng: () => number): WeightArrays {
  return weightShapes(spec).map((shape) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * rng() - 1));
}

function slice(rows: Rows, from: number, to: number): Rows {
  return { data: rows.data.slice(from * rows.d, to * rows.d), n: to - from, d: rows.d };
}

describe('amortised ensembles: members merged into one network', function () {
  this.timeout(900_000);

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
  });

  it('the merged network outputs the mean of its members (relu/elu/tanh, with and without skip, 1-3 hidden layers, 2-3 members)', () => {
    const rng = seededRng(17);
    const n = 7;
    let cases = 0;
    for (const activation of ['relu', 'elu', 'tanh'] as Activation[]) {
      for (const linearSkip of [true, false]) {
        for (const hidden of [[5], [4, 6], [3, 5, 2]]) {
          for (const E of [2, 3]) {
            const spec: NetworkSpec = { inputs: 4, hidden, outputs: 3, activation, linearSkip };
            const members = Array.from({ length: E }, () => randomWeights(spec, rng));
            const x = Float32Array.from({ length: n * spec.inputs }, () => 4 * rng() - 2);
            const merged = mergeMembers(spec, members);
            assert.deepEqual(merged.spec, { ...spec, hidden: hidden.map((h) => h * E) });
            const mlp = new Mlp(merged.spec, merged.weights);
            let got: Float32Array;
            try {
              got = tf.tidy(() => mlp.apply(tf.tensor2d(x, [n, spec.inputs]))).dataSync() as Float32Array;
            } finally {
              mlp.dispose();
            }
            const outs = members.map((w) => forward(spec, w, x, n));
            const label = `${activation} skip=${linearSkip} hidden=[${hidden}] E=${E}`;
            for (let i = 0; i < n * spec.outputs; i++) {
              const mean = outs.reduce((s, o) => s + o[i], 0) / E;
              const scale = Math.max(1, ...outs.map((o) => Math.abs(o[i])));
              assert.ok(Math.abs(got[i] - mean) <= 2e-5 * scale, `${label}: output ${i} is ${got[i]}, the members' mean ${mean}`);
            }
            // The members differ, so the mean is not any one member's output.
            assert.ok(outs[0].some((v, i) => Math.abs(v - outs[1][i]) > 1e-3), label);
            cases++;
          }
        }
      }
    }
    assert.equal(cases, 36);
  });

  it('one member is returned as it is; members of another shape are refused', () => {
    const spec: NetworkSpec = { inputs: 3, hidden: [4], outputs: 2, activation: 'relu', linearSkip: true };
    const w = randomWeights(spec, seededRng(1));
    const one = mergeMembers(spec, [w]);
    assert.equal(one.weights, w);
    assert.deepEqual(one.spec, spec);
    const other = randomWeights({ ...spec, hidden: [5] }, seededRng(2));
    assert.throws(() => mergeMembers(spec, [w, other]), /member 1's weights do not match/);
    assert.throws(() => mergeMembers(spec, []), /at least one member/);
  });

  it('checkHyperparameters: ensemble defaults to 3; 0, 9, 1.5 and a string are BAD_PARAMETER naming it', () => {
    assert.equal(checkHyperparameters({}).ensemble, 3);
    assert.equal(checkHyperparameters({ ensemble: 8 }).ensemble, 8);
    // The merged network's size is bounded: [512, 512] x 8 (2^24 hidden-to-hidden weights) fits, one more unit does not.
    assert.equal(checkHyperparameters({ ensemble: 8, hidden: [512, 512] }).ensemble, 8);
    assert.throws(() => checkHyperparameters({ ensemble: 8, hidden: [512, 513] }), /hidden-to-hidden weights/);
    assert.equal(checkHyperparameters({ ensemble: 1, hidden: [4096, 4096] }).ensemble, 1, 'no bound for a single network (unchanged)');
    for (const ensemble of [0, 9, 1.5, '2' as unknown as number]) {
      assert.throws(
        () => checkHyperparameters({ ensemble }),
        (e: unknown) => (e as { code?: string }).code === 'BAD_PARAMETER' && /ensemble must be an integer from 1 to 8/.test((e as Error).message),
      );
    }
  });

  describe('built on the credit sample', () => {
    let credit: LoadedModel;
    let tmp: string;
    let single: BuildResult;
    let pair: BuildResult;
    const progress: BuildProgress[] = [];
    const options = (dir: string): BuildAmortisedOptions => ({
      space: credit.space,
      background: credit.background!,
      link: 'logit',
      modelName: 'credit',
      modelVersion: credit.version,
      reference: slice(credit.reference!.rows, 0, 150),
      dir,
      heldOutRows: 5,
      syntheticRows: 0,
      coalitionsPerRow: 48,
      maxEpochs: 14,
      patience: 3,
      batchSize: 16,
      hidden: [16, 8],
      seed: 5,
      ensemble: 1,
      // Probe rows fixed (not sized by timing the machine): these tests compare separate builds bit for bit.
      probeBudgetMs: 0,
      validation: { kernelShapSamples: 0 },
    });

    before(async () => {
      credit = await loadModelFolder('credit', path.join(SAMPLES, 'credit'));
      tmp = await mkdtemp(path.join(os.tmpdir(), 'amortised-ensemble-'));
      single = await buildAmortised(credit.model, options(path.join(tmp, 'single')));
      pair = await buildAmortised(credit.model, { ...options(path.join(tmp, 'pair')), ensemble: 2, onProgress: (p) => progress.push(p) });
    });

    after(async () => {
      single?.explainer.dispose();
      pair?.explainer.dispose();
      credit?.model.dispose();
      await rm(tmp, { recursive: true, force: true });
    });

    it('ensemble 2: hidden widths doubled, member 0 is the single network, loss at most the members\' mean, training recorded per member', async () => {
      assert.deepEqual(pair.explainer.network.spec.hidden, [32, 16]);
      assert.deepEqual(single.explainer.network.spec.hidden, [16, 8]);
      assert.equal(pair.hyperparameters.ensemble, 2);
      assert.deepEqual(pair.hyperparameters.hidden, [16, 8]);
      const stored = JSON.parse(await readFile(path.join(pair.dir, 'explainer.json'), 'utf8'));
      assert.deepEqual(stored.network.hidden, [32, 16]);
      assert.equal(stored.hyperparameters.ensemble, 2);

      const t = pair.training;
      assert.equal(t.ensemble, 2);
      assert.equal(t.members?.length, 2);
      // Member 0 is the single network's run, epoch for epoch; member 1 starts elsewhere.
      assert.deepEqual(t.history, single.training.history);
      assert.equal(t.members![0].bestValidationLoss, single.training.bestValidationLoss);
      assert.equal(t.members![0].epochs, single.training.epochs);
      assert.notEqual(t.members![1].bestValidationLoss, t.members![0].bestValidationLoss);
      assert.equal(t.trainMs, t.members![0].trainMs + t.members![1].trainMs);
      assert.equal(single.training.ensemble, 1);
      assert.equal(single.training.members?.length, 1);
      assert.equal(single.training.ensembleValidationLoss, undefined);
      // The loss is a weighted mean of squares of affine maps of the estimates (convex), so the mean
      // of two networks scores at most the mean of their scores (float32 slack).
      const meanLoss = (t.members![0].bestValidationLoss + t.members![1].bestValidationLoss) / 2;
      assert.ok(t.ensembleValidationLoss! <= meanLoss * (1 + 1e-5), `ensemble ${t.ensembleValidationLoss} vs members' mean ${meanLoss}`);
      assert.ok(t.ensembleValidationLoss! > 0);

      // Progress: member 0's epochs, then member 1's, and the job's fraction never goes back.
      const training = progress.filter((p): p is Extract<BuildProgress, { phase: 'training' }> => p.phase === 'training');
      assert.equal(training.filter((p) => p.member === 0).length, t.members![0].epochs);
      assert.equal(training.filter((p) => p.member === 1).length, t.members![1].epochs);
      assert.ok(training.every((p) => p.members === 2));
      const fractions = progress.map((p) => progressOf(p).fraction);
      for (let i = 1; i < fractions.length; i++) assert.ok(fractions[i] >= fractions[i - 1], `progress went back at ${i}: ${fractions[i - 1]} -> ${fractions[i]}`);
      const last = training.at(-1)!;
      assert.deepEqual({ member: progressOf(last).member, members: progressOf(last).members }, { member: 1, members: 2 });
    });

    it('ensemble 2: the stored explainer reloads to the same attributions, and efficiency holds', async () => {
      const rows = slice(credit.reference!.rows, 150, 160);
      const before = tf.memory().numTensors;
      const loaded = await loadAmortised(pair.dir, { modelVersion: credit.version, modelName: 'credit' });
      try {
        assert.equal(loaded.id, pair.id);
        assert.deepEqual(loaded.network.spec.hidden, [32, 16]);
        const a = await amortisedShap(pair.explainer, credit.model, rows, { space: credit.space });
        const b = await amortisedShap(loaded, credit.model, rows, { space: credit.space });
        assert.deepEqual(
          b.explanations.map((x) => x.outputs),
          a.explanations.map((x) => x.outputs),
        );
        await checkEfficiency(credit, rows, b, (p) => Math.log(p / (1 - p)));
        // The ensemble explains differently from its member 0 alone.
        const s = await amortisedShap(single.explainer, credit.model, rows, { space: credit.space });
        assert.notDeepEqual(
          s.explanations.map((x) => x.outputs),
          b.explanations.map((x) => x.outputs),
        );
      } finally {
        loaded.dispose();
      }
      assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    });

    it('not passing ensemble trains the default number of networks (same id as passing it)', async () => {
      const { ensemble: _drop, ...withoutEnsemble } = options(path.join(tmp, 'default'));
      const byDefault = await buildAmortised(credit.model, withoutEnsemble);
      const asked = await buildAmortised(credit.model, { ...options(path.join(tmp, 'asked')), ensemble: DEFAULT_HYPERPARAMETERS.ensemble });
      try {
        assert.equal(byDefault.hyperparameters.ensemble, DEFAULT_HYPERPARAMETERS.ensemble);
        assert.equal(byDefault.explainer.network.spec.hidden[0], 16 * DEFAULT_HYPERPARAMETERS.ensemble);
        assert.equal(byDefault.id, asked.id);
        assert.deepEqual(await byDefault.explainer.network.read(), await asked.explainer.network.read());
      } finally {
        byDefault.explainer.dispose();
        asked.explainer.dispose();
      }
    });

    it('ensemble 2 aborted while training member 1 resumes (member 0 from its checkpoint) to the same explainer', async () => {
      const dir = path.join(tmp, 'pair-cut');
      const controller = new AbortController();
      await assert.rejects(
        buildAmortised(credit.model, {
          ...options(dir),
          ensemble: 2,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.phase === 'training' && p.member === 1 && p.epoch === 2) controller.abort(new Error('stop here'));
          },
        }),
        /stop here/,
      );
      const phases: BuildProgress[] = [];
      const resumed = await buildAmortised(credit.model, { ...options(dir), ensemble: 2, onProgress: (p) => phases.push(p) });
      try {
        assert.ok(!phases.some((p) => p.phase === 'labelling'), 'the labels were restored');
        assert.ok(!phases.some((p) => p.phase === 'training' && p.member === 0), 'member 0 was finished: no epoch of it ran again');
        assert.equal(resumed.training.members![0].resumedFromEpoch, pair.training.members![0].epochs);
        assert.equal(resumed.training.members![1].resumedFromEpoch, 2);
        assert.equal(resumed.id, pair.id, 'the same explainer, byte for byte');
        assert.deepEqual(await resumed.explainer.network.read(), await pair.explainer.network.read());
        await assert.rejects(readFile(path.join(checkpointDirOf(dir), 'labels.json')), 'checkpoints are removed once the explainer is stored');
      } finally {
        resumed.explainer.dispose();
      }
    });
  });
});
