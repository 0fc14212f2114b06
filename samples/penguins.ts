/** `penguins`: 3-class softmax classifier of the Palmer penguins (vega-datasets penguins.json). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vegaDataFile, writeModelFolder } from './lib/folder.js';
import { accuracyMulticlass, confusion, r4 } from './lib/metrics.js';
import { applyScaler, denseStack, fitScaler, foldStandardisation, maxAbsDiff, predict, train } from './lib/nn.js';
import { mulberry32, shuffledIndices } from './lib/rng.js';
import type { SampleSummary } from './lib/folder.js';

const FEATURES = [
  { name: 'bill_length_mm', type: 'numeric', unit: 'mm', description: 'Beak length ("Beak Length (mm)")' },
  { name: 'bill_depth_mm', type: 'numeric', unit: 'mm', description: 'Beak depth ("Beak Depth (mm)")' },
  { name: 'flipper_length_mm', type: 'numeric', unit: 'mm', description: 'Flipper length' },
  { name: 'body_mass_g', type: 'numeric', unit: 'g', description: 'Body mass' },
  { name: 'island_Biscoe', type: 'one-hot', group: 'island', description: 'Island = Biscoe', categories: [{ value: 1, label: 'Biscoe' }] },
  { name: 'island_Dream', type: 'one-hot', group: 'island', description: 'Island = Dream', categories: [{ value: 1, label: 'Dream' }] },
  {
    name: 'island_Torgersen',
    type: 'one-hot',
    group: 'island',
    description: 'Island = Torgersen',
    categories: [{ value: 1, label: 'Torgersen' }],
  },
  {
    name: 'sex',
    type: 'binary',
    description: '1 = female, 0 = male',
    categories: [
      { value: 0, label: 'male' },
      { value: 1, label: 'female' },
    ],
  },
];
const CLASSES = ['Adelie', 'Chinstrap', 'Gentoo'];
const ISLANDS = ['Biscoe', 'Dream', 'Torgersen'];

interface PenguinRecord {
  Species: string;
  Island: string;
  'Beak Length (mm)': number | null;
  'Beak Depth (mm)': number | null;
  'Flipper Length (mm)': number | null;
  'Body Mass (g)': number | null;
  Sex: string | null;
}

/** Rows with every measurement and a sex of MALE/FEMALE (drops nulls and the "." entry). */
export function loadPenguins(): { x: number[][]; y: number[] } {
  const file = vegaDataFile('penguins.json');
  const records = JSON.parse(readFileSync(file, 'utf8')) as PenguinRecord[];
  const x: number[][] = [];
  const y: number[] = [];
  for (const r of records) {
    const nums = [r['Beak Length (mm)'], r['Beak Depth (mm)'], r['Flipper Length (mm)'], r['Body Mass (g)']];
    if (nums.some((v) => typeof v !== 'number' || !Number.isFinite(v))) continue;
    if (r.Sex !== 'MALE' && r.Sex !== 'FEMALE') continue;
    const cls = CLASSES.indexOf(r.Species);
    const island = ISLANDS.indexOf(r.Island);
    if (cls < 0 || island < 0) throw new Error(`penguins: unexpected species/island ${r.Species}/${r.Island}`);
    x.push([...(nums as number[]), ...ISLANDS.map((_, i) => (i === island ? 1 : 0)), r.Sex === 'FEMALE' ? 1 : 0]);
    y.push(cls);
  }
  return { x, y };
}

export async function buildPenguins(root: string): Promise<SampleSummary> {
  const { x, y } = loadPenguins();
  // Seeded stratified split: 30% of each species held out.
  const rng = mulberry32(333);
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  for (let c = 0; c < CLASSES.length; c++) {
    const members = y.flatMap((v, i) => (v === c ? [i] : []));
    const order = shuffledIndices(rng, members.length).map((k) => members[k]);
    const nTest = Math.round(members.length * 0.3);
    testIdx.push(...order.slice(0, nTest));
    trainIdx.push(...order.slice(nTest));
  }
  trainIdx.sort((a, b) => a - b);
  testIdx.sort((a, b) => a - b);
  const trainX = trainIdx.map((i) => x[i]);
  const trainY = trainIdx.map((i) => y[i]);
  const refX = testIdx.map((i) => x[i]);
  const refY = testIdx.map((i) => y[i]);

  const scaler = fitScaler(trainX);
  const arch = [
    { units: 16, activation: 'relu' as const },
    { units: 3, activation: 'softmax' as const },
  ];
  const trained = denseStack('penguins', FEATURES.length, arch, 201);
  const TRAINING = { epochs: 60, batchSize: 16, learningRate: 0.01 };
  const loss = await train(trained, applyScaler(trainX, scaler), trainY.map((c) => CLASSES.map((_, j) => (j === c ? 1 : 0))), {
    ...TRAINING,
    loss: 'categoricalCrossentropy',
    rng: mulberry32(17),
  });
  const model = denseStack('penguins', FEATURES.length, arch, 201);
  foldStandardisation(trained, model, scaler);
  const foldDiff = maxAbsDiff(predict(trained, applyScaler(refX, scaler)), predict(model, refX));
  if (foldDiff > 1e-4) throw new Error(`penguins: folded model differs from scaler+model by ${foldDiff}`);
  const pRef = predict(model, refX);
  const pTrain = predict(model, trainX);
  const metrics = {
    accuracy: r4(accuracyMulticlass(pRef, refY)),
    train_accuracy: r4(accuracyMulticlass(pTrain, trainY)),
    final_training_loss: r4(loss),
  };
  const bgIdx = shuffledIndices(mulberry32(23), trainX.length).slice(0, 100).sort((a, b) => a - b);

  const metadata = {
    description: 'Palmer penguins species classifier (Adelie / Chinstrap / Gentoo) from vega-datasets penguins.json.',
    task: 'multiclass-classification',
    features: FEATURES,
    outputs: CLASSES.map((c) => ({ name: c, description: `P(species = ${c})` })),
    sensitiveFeatures: ['sex'],
    background: 'background.csv',
    reference: 'reference.csv',
    label: 'species',
    classes: CLASSES,
    notes: {
      data_source:
        'vega-datasets 3 data/penguins.json (Palmer Archipelago penguins, Gorman et al. 2014). Rows with a missing measurement or a sex other than MALE/FEMALE dropped: ' +
        `${x.length} of 344 rows kept. Columns renamed: "Beak Length (mm)" -> bill_length_mm etc.`,
      label_encoding: 'species as the class index: 0 = Adelie, 1 = Chinstrap, 2 = Gentoo',
      split: {
        train_rows: trainX.length,
        reference_rows: refX.length,
        background_rows: 100,
        how: 'stratified by species, 30% of each species held out (mulberry32 seed 333); reference.csv is the held-out split; background = 100 random training rows',
      },
      class_counts_reference: CLASSES.map((_, c) => refY.filter((v) => v === c).length),
      training: {
        architecture: 'Dense 16 relu -> Dense 3 softmax',
        inputs: 'trained on standardised inputs; the standardisation is folded into the first Dense layer, so the saved model takes raw units',
        optimizer: `adam lr ${TRAINING.learningRate}, batch ${TRAINING.batchSize}, ${TRAINING.epochs} epochs, categorical cross-entropy, seeded init and per-epoch shuffling`,
        fold_check_max_abs_diff: foldDiff,
      },
      heldout_metrics: { ...metrics, confusion_rows_true_cols_predicted: confusion(pRef, refY, 3) },
      known_facts:
        'Gentoo is separated by flipper length / body mass / bill depth; Adelie vs Chinstrap by bill length; Gentoo live only on Biscoe and Chinstrap only on Dream in this data.',
    },
  };

  const reloaded = await writeModelFolder({
    dir: join(root, 'penguins'),
    model,
    metadata,
    header: FEATURES.map((f) => f.name),
    background: bgIdx.map((i) => trainX[i]),
    reference: { rows: refX, labels: refY, labelName: 'species' },
    expectedRows: [0, 1, 2, 3, 4, 40, 41, 42, 43, 44, 80, 81, 82, 83, 84].map((i) => refX[i]),
  });
  [trained, model, reloaded].forEach((m) => m.dispose());
  return { name: 'penguins', metrics: { accuracy: metrics.accuracy, train_accuracy: metrics.train_accuracy } };
}
