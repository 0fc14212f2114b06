/**
 * The model repository: one folder per model, broken folders reported by name while the others
 * load, metadata-driven names and groups, CSV data matched by column name, content-hash versions.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../models/backend.js';
import { loadModelRepository, type ModelRepository } from '../models/repository.js';
import { contentVersion } from '../models/version.js';
import { randomGraph, randomRows, relError, saveLayers, seedWeights, tempDir, writeGraphModel } from './fixtures/models-lib/build.js';

const FEATURES = ['age', 'income', 'housing_rent', 'housing_own', 'housing_mortgage', 'sex'];

function denseNet(d: number, k: number, seed: number): tf.Sequential {
  const net = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [d], units: 5, activation: 'relu' }), tf.layers.dense({ units: k, activation: k > 1 ? 'softmax' : 'sigmoid' })],
  });
  seedWeights(net, seed);
  return net;
}

const csv = (header: string[], rows: (string | number)[][]) => [header, ...rows].map((r) => r.join(',')).join('\n') + '\n';

const goodMetadata = {
  description: 'a test model',
  task: 'binary-classification',
  features: [
    { name: 'age', type: 'integer', unit: 'years', monotone: 'increasing', min: 18 },
    { name: 'income', type: 'numeric', max: 1e6 },
    { name: 'housing_rent', type: 'one-hot', group: 'housing' },
    { name: 'housing_own', type: 'one-hot', group: 'housing' },
    { name: 'housing_mortgage', type: 'one-hot', group: 'housing' },
    {
      name: 'sex',
      type: 'binary',
      description: '1 = female',
      immutable: true,
      categories: [
        { value: 0, label: 'male' },
        { value: 1, label: 'female' },
      ],
    },
  ],
  outputs: [{ name: 'approved' }],
  sensitiveFeatures: ['sex'],
  background: 'background.csv',
  reference: 'reference.csv',
  label: 'label',
  classes: ['no', 'yes'],
};

/** Background/reference rows by feature name; written with their columns in another order. */
const bgRows = [
  [30, 1.5, 1, 0, 0, 1],
  [52, 0.7, 0, 1, 0, 0],
  [41, 2.2, 0, 0, 1, 1],
];

async function writeGood(dir: string): Promise<tf.Sequential> {
  const net = denseNet(6, 1, 1);
  await saveLayers(net, dir);
  writeFileSync(path.join(dir, 'metadata.json'), JSON.stringify(goodMetadata, null, 2));
  const reversed = [...FEATURES].reverse();
  writeFileSync(path.join(dir, 'background.csv'), csv(['id', ...reversed], bgRows.map((r, i) => [i, ...[...r].reverse()])));
  const shuffled = ['sex', 'label', 'income', 'housing_mortgage', 'age', 'housing_own', 'housing_rent'];
  const pick = (r: number[], label: string) => shuffled.map((c) => (c === 'label' ? label : r[FEATURES.indexOf(c)]));
  writeFileSync(path.join(dir, 'reference.csv'), csv(shuffled, [pick(bgRows[0], 'yes'), pick(bgRows[1], 'no'), pick(bgRows[2], '1')]));
  return net;
}

describe('models: repository', function () {
  this.timeout(120_000);
  let root: string;
  let repo: ModelRepository;
  let goodNet: tf.Sequential;

  before(async () => {
    await selectBackend(process.env.TFJS_BACKEND);
    root = tempDir('repo');
    goodNet = await writeGood(path.join(root, 'good'));

    await saveLayers(denseNet(3, 2, 2), path.join(root, 'plain'));

    writeGraphModel(path.join(root, 'graph'), randomGraph(4, 4, 6, 2));
    writeFileSync(
      path.join(root, 'graph', 'metadata.json'),
      JSON.stringify({ task: 'regression', features: ['a', 'b', 'c', 'd'].map((name) => ({ name })), outputs: [{ name: 'u' }, { name: 'v' }] }),
    );

    const conv = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 2, activation: 'relu' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    await saveLayers(conv, path.join(root, 'image'));
    writeFileSync(
      path.join(root, 'image', 'metadata.json'),
      JSON.stringify({ task: 'multiclass-classification', inputShape: [4, 4, 1], outputs: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] }),
    );

    // Broken folders, one problem each.
    const broken = (name: string, edit: (dir: string) => void) => {
      const dir = path.join(root, name);
      cpSync(path.join(root, 'good'), dir, { recursive: true });
      edit(dir);
    };
    broken('corrupt', (d) => writeFileSync(path.join(d, 'model.json'), '{"modelTopology": {'));
    broken('noweights', (d) => unlinkSync(path.join(d, 'weights.bin')));
    broken('short', (d) => truncateSync(path.join(d, 'weights.bin'), 20));
    broken('badmeta', (d) => writeFileSync(path.join(d, 'metadata.json'), JSON.stringify({ ...goodMetadata, task: 'guessing' })));
    broken('wrongcount', (d) =>
      writeFileSync(path.join(d, 'metadata.json'), JSON.stringify({ ...goodMetadata, features: goodMetadata.features.slice(0, 4), sensitiveFeatures: [] })),
    );
    broken('baddata', (d) => writeFileSync(path.join(d, 'background.csv'), csv(FEATURES, [[30, 'abc', 1, 0, 0, 1]])));
    broken('nolabel', (d) => writeFileSync(path.join(d, 'reference.csv'), csv(['label', ...FEATURES], [['maybe', ...bgRows[0]]])));
    broken('escape', (d) => {
      const json = JSON.parse(readFileSync(path.join(d, 'model.json'), 'utf8'));
      json.weightsManifest[0].paths = ['../plain/weights.bin'];
      writeFileSync(path.join(d, 'model.json'), JSON.stringify(json));
    });
    cpSync(path.join(root, 'image'), path.join(root, 'badshape'), { recursive: true });
    writeFileSync(
      path.join(root, 'badshape', 'metadata.json'),
      JSON.stringify({ task: 'multiclass-classification', inputShape: [5, 5, 1], outputs: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] }),
    );
    mkdirSync(path.join(root, 'empty'));
    mkdirSync(path.join(root, '-bad name'));
    writeFileSync(path.join(root, 'README.md'), 'not a model');
    writeFileSync(path.join(root, '.gitkeep'), '');

    repo = await loadModelRepository(root);
  });

  after(() => {
    for (const m of repo?.models.values() ?? []) m.model.dispose();
    goodNet?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it('loads the good models, whatever their neighbours', () => {
    assert.deepEqual([...repo.models.keys()].sort(), ['good', 'graph', 'image', 'plain']);
  });

  it('reports every broken folder by name with what is wrong', () => {
    const byName = new Map(repo.errors.map((e) => [e.name, e.message]));
    const expect: Record<string, RegExp> = {
      corrupt: /model\.json: not valid JSON/,
      noweights: /weight file .*weights\.bin named in model\.json's weightsManifest is missing/,
      short: /weights\.bin .*hold 20 bytes but its 4 weight\(s\) need \d+ bytes/,
      badmeta: /^invalid metadata\.json: task/,
      wrongcount: /4 features listed but the model takes 6/,
      baddata: /background\.csv line 2, column "income": "abc" is not a number/,
      nolabel: /reference\.csv line 2: label "maybe" is not a number or a known class; classes are no, yes/,
      escape: /weight path "\.\.\/plain\/weights\.bin" leaves the model folder/,
      empty: /^model\.json is missing/,
      badshape: /^metadata\.json: inputShape \[5,5,1\] has 25 values but the model takes 16/,
      '-bad name': /not a valid model name/,
      'README.md': /is not a folder/,
    };
    for (const [name, re] of Object.entries(expect)) assert.match(byName.get(name) ?? '(no error)', re, name);
    assert.equal(repo.errors.length, Object.keys(expect).length, JSON.stringify(repo.errors));
  });

  it('a folder with only model.json and weights serves with default names', async () => {
    const m = repo.models.get('plain')!;
    assert.equal(m.format, 'layers');
    assert.equal(m.metadata, undefined);
    assert.deepEqual(m.space.featureNames, ['x0', 'x1', 'x2']);
    assert.deepEqual(m.space.outputNames, ['y0', 'y1']);
    assert.equal(m.background, undefined);
    assert.equal(m.reference, undefined);
    assert.deepEqual(m.inputShape, [3]);
    const d = m.describe();
    assert.equal(d.task, null);
    assert.equal(d.hasBackground, false);
    assert.deepEqual(d.features, [0, 1, 2].map((i) => ({ name: `x${i}`, type: 'numeric' })));
    assert.equal((await m.model.predict(randomRows(1, 4, 3))).length, 8);
  });

  it('metadata gives names, groups and data files matched by column name', async () => {
    const m = repo.models.get('good')!;
    assert.deepEqual(m.space.featureNames, FEATURES);
    assert.deepEqual(m.space.outputNames, ['approved']);
    assert.deepEqual(m.space.groups, [[2, 3, 4]]);
    assert.deepEqual(Array.from(m.background!.data), bgRows.flat().map((v) => Math.fround(v)));
    assert.equal(m.background!.d, 6);
    assert.deepEqual(Array.from(m.reference!.rows.data), bgRows.flat().map((v) => Math.fround(v)));
    assert.deepEqual(Array.from(m.reference!.labels), [1, 0, 1]);
    assert.deepEqual(m.reference!.labelNames, ['no', 'yes']);
    const y = await m.model.predict(m.background!);
    const ref = goodNet.predict(tf.tensor2d(m.background!.data, [3, 6])) as tf.Tensor;
    assert.ok(relError(y, ref.dataSync()) < 1e-6);
    ref.dispose();
  });

  it('describe() has what GET /v1/models serves', () => {
    const d = repo.models.get('good')!.describe();
    assert.equal(d.name, 'good');
    assert.match(d.version as string, /^[0-9a-f]{16}$/);
    assert.equal(d.format, 'layers');
    assert.deepEqual(d.inputShape, [6]);
    assert.equal(d.task, 'binary-classification');
    // The counterfactual constraints and category names of metadata.json are published too.
    assert.deepEqual((d.features as object[])[0], { name: 'age', type: 'integer', unit: 'years', monotone: 'increasing', min: 18 });
    assert.deepEqual((d.features as object[])[1], { name: 'income', type: 'numeric', max: 1e6 });
    assert.deepEqual((d.features as object[])[2], { name: 'housing_rent', type: 'one-hot', group: 'housing' });
    assert.deepEqual((d.features as object[])[5], {
      name: 'sex',
      type: 'binary',
      description: '1 = female',
      immutable: true,
      categories: [
        { value: 0, label: 'male' },
        { value: 1, label: 'female' },
      ],
    });
    assert.deepEqual(d.outputs, [{ name: 'approved' }]);
    assert.deepEqual(d.sensitiveFeatures, ['sex']);
    assert.deepEqual(d.groups, [{ name: 'housing', features: ['housing_rent', 'housing_own', 'housing_mortgage'] }]);
    assert.equal(d.hasBackground, true);
    assert.equal(d.hasReference, true);
    assert.equal(d.backgroundRows, 3);
    assert.equal(d.referenceRows, 3);
    assert.equal(d.description, 'a test model');
    assert.doesNotThrow(() => JSON.stringify(d));
  });

  it('graph models load from the same repository', async () => {
    const m = repo.models.get('graph')!;
    assert.equal(m.format, 'graph');
    assert.deepEqual(m.space.featureNames, ['a', 'b', 'c', 'd']);
    assert.deepEqual(m.space.outputNames, ['u', 'v']);
    assert.equal((await m.model.predict(randomRows(1, 5, 4))).length, 10);
  });

  it('image models without feature lists get pixel names and keep their shape', () => {
    const m = repo.models.get('image')!;
    assert.deepEqual(m.inputShape, [4, 4, 1]);
    assert.deepEqual(m.space.inputShape, [4, 4, 1]);
    assert.equal(m.space.featureNames.length, 16);
    assert.deepEqual(m.space.featureNames.slice(0, 5), ['p0_0_0', 'p0_1_0', 'p0_2_0', 'p0_3_0', 'p1_0_0']);
    assert.equal((m.describe() as { features: { type: string }[] }).features[0].type, 'pixel');
  });

  it('a missing repository folder is an error of its own', async () => {
    await assert.rejects(loadModelRepository(path.join(root, 'nope')), /model repository .*nope cannot be read/);
  });

  describe('versions', () => {
    let dir: string;
    before(() => {
      dir = tempDir('version');
      cpSync(path.join(root, 'good'), dir, { recursive: true });
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('are stable, and change when any file changes, appears or is renamed', async () => {
      const v0 = await contentVersion(dir);
      assert.equal(await contentVersion(dir), v0);
      assert.equal(repo.models.get('good')!.version, v0, 'the same files give the same version');

      const meta = path.join(dir, 'metadata.json');
      const text = readFileSync(meta, 'utf8');
      writeFileSync(meta, text + ' ');
      const v1 = await contentVersion(dir);
      assert.notEqual(v1, v0);
      writeFileSync(meta, text);
      assert.equal(await contentVersion(dir), v0, 'restoring the file restores the version');

      const weights = path.join(dir, 'weights.bin');
      const bytes = readFileSync(weights);
      const flipped = Buffer.from(bytes);
      flipped[0] ^= 1;
      writeFileSync(weights, flipped);
      assert.notEqual(await contentVersion(dir), v0);
      writeFileSync(weights, bytes);

      writeFileSync(path.join(dir, 'notes.txt'), 'x');
      assert.notEqual(await contentVersion(dir), v0);
      unlinkSync(path.join(dir, 'notes.txt'));

      renameSync(path.join(dir, 'background.csv'), path.join(dir, 'background2.csv'));
      assert.notEqual(await contentVersion(dir), v0, 'file names are part of the hash');
      renameSync(path.join(dir, 'background2.csv'), path.join(dir, 'background.csv'));
      assert.equal(await contentVersion(dir), v0);
    });
  });

  it('leaks no tensors when folders fail to load', async () => {
    const before = tf.memory().numTensors;
    const again = await loadModelRepository(root);
    for (const m of again.models.values()) m.model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});
