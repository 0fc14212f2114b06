/** `cars`: regression of Miles_per_Gallon on vega-datasets cars.json. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vegaDataFile, writeModelFolder } from './lib/folder.js';
import { r4, regressionMetrics } from './lib/metrics.js';
import { applyScaler, denseStack, fitScaler, foldStandardisation, maxAbsDiff, predict, train } from './lib/nn.js';
import { mulberry32, shuffledIndices } from './lib/rng.js';
import type { SampleSummary } from './lib/folder.js';

const FEATURES = [
  { name: 'Cylinders', type: 'integer', description: 'Number of cylinders' },
  { name: 'Displacement', type: 'numeric', unit: 'cubic inches', description: 'Engine displacement' },
  { name: 'Horsepower', type: 'numeric', unit: 'hp' },
  { name: 'Weight_in_lbs', type: 'numeric', unit: 'lb' },
  { name: 'Acceleration', type: 'numeric', unit: 's', description: 'Seconds from 0 to 60 mph' },
  { name: 'Year', type: 'integer', description: 'Model year as a number (1970..1982)' },
  { name: 'origin_USA', type: 'one-hot', group: 'origin', description: 'Origin = USA' },
  { name: 'origin_Europe', type: 'one-hot', group: 'origin', description: 'Origin = Europe' },
  { name: 'origin_Japan', type: 'one-hot', group: 'origin', description: 'Origin = Japan' },
];
const ORIGINS = ['USA', 'Europe', 'Japan'];

interface CarRecord {
  Name: string;
  Miles_per_Gallon: number | null;
  Cylinders: number | null;
  Displacement: number | null;
  Horsepower: number | null;
  Weight_in_lbs: number | null;
  Acceleration: number | null;
  Year: string | null;
  Origin: string | null;
}

export function loadCars(): { x: number[][]; y: number[] } {
  const records = JSON.parse(readFileSync(vegaDataFile('cars.json'), 'utf8')) as CarRecord[];
  const x: number[][] = [];
  const y: number[] = [];
  for (const r of records) {
    const nums = [r.Cylinders, r.Displacement, r.Horsepower, r.Weight_in_lbs, r.Acceleration];
    const year = r.Year ? Number(r.Year.slice(0, 4)) : NaN;
    const origin = ORIGINS.indexOf(r.Origin ?? '');
    if (typeof r.Miles_per_Gallon !== 'number' || nums.some((v) => typeof v !== 'number') || !Number.isFinite(year) || origin < 0) continue;
    x.push([...(nums as number[]), year, ...ORIGINS.map((_, i) => (i === origin ? 1 : 0))]);
    y.push(r.Miles_per_Gallon);
  }
  return { x, y };
}

export async function buildCars(root: string): Promise<SampleSummary> {
  const { x, y } = loadCars();
  const order = shuffledIndices(mulberry32(406), x.length);
  const nTest = Math.round(x.length * 0.25);
  const testIdx = order.slice(0, nTest).sort((a, b) => a - b);
  const trainIdx = order.slice(nTest).sort((a, b) => a - b);
  const trainX = trainIdx.map((i) => x[i]);
  const trainY = trainIdx.map((i) => y[i]);
  const refX = testIdx.map((i) => x[i]);
  const refY = testIdx.map((i) => y[i]);

  const scaler = fitScaler(trainX);
  const yScale = fitScaler(trainY.map((v) => [v]));
  const target = { mean: yScale.mean[0], std: yScale.std[0] };
  const arch = [
    { units: 32, activation: 'relu' as const },
    { units: 16, activation: 'relu' as const },
    { units: 1, activation: 'linear' as const },
  ];
  const trained = denseStack('cars', FEATURES.length, arch, 301);
  const TRAINING = { epochs: 50, batchSize: 32, learningRate: 0.003 };
  const loss = await train(trained, applyScaler(trainX, scaler), trainY.map((v) => [(v - target.mean) / target.std]), {
    ...TRAINING,
    loss: 'meanSquaredError',
    rng: mulberry32(31),
  });
  const model = denseStack('cars', FEATURES.length, arch, 301);
  foldStandardisation(trained, model, scaler, target);
  const viaScaler = predict(trained, applyScaler(refX, scaler)).map((r) => [r[0] * target.std + target.mean]);
  const foldDiff = maxAbsDiff(viaScaler, predict(model, refX));
  if (foldDiff > 1e-3) throw new Error(`cars: folded model differs from scaler+model by ${foldDiff}`);
  const m = regressionMetrics(predict(model, refX).map((r) => r[0]), refY);
  const mTrain = regressionMetrics(predict(model, trainX).map((r) => r[0]), trainY);
  const metrics = { r2: r4(m.r2), rmse: r4(m.rmse), mae: r4(m.mae), train_r2: r4(mTrain.r2), train_rmse: r4(mTrain.rmse), final_training_loss_standardised: r4(loss) };
  const bgIdx = shuffledIndices(mulberry32(37), trainX.length).slice(0, 100).sort((a, b) => a - b);

  const metadata = {
    description: 'Fuel economy (miles per gallon) of 1970-1982 cars from vega-datasets cars.json (the UCI Auto MPG data).',
    task: 'regression',
    features: FEATURES,
    outputs: [{ name: 'mpg', description: 'Predicted Miles_per_Gallon' }],
    sensitiveFeatures: [],
    background: 'background.csv',
    reference: 'reference.csv',
    label: 'Miles_per_Gallon',
    link: 'identity',
    notes: {
      data_source: `vega-datasets 3 data/cars.json. Rows with any missing value dropped: ${x.length} of 406 kept. Year "1970-01-01" -> 1970; Origin one-hot.`,
      split: {
        train_rows: trainX.length,
        reference_rows: refX.length,
        background_rows: 100,
        how: '25% held out at random (mulberry32 seed 406); reference.csv is the held-out split; background = 100 random training rows',
      },
      training: {
        architecture: 'Dense 32 relu -> Dense 16 relu -> Dense 1 linear',
        inputs:
          'trained on standardised inputs and a standardised target; the input standardisation is folded into the first Dense layer and the target scaling into the last, so the saved model maps raw units to mpg',
        optimizer: `adam lr ${TRAINING.learningRate}, batch ${TRAINING.batchSize}, ${TRAINING.epochs} epochs, mean squared error, seeded init and per-epoch shuffling`,
        target_mean: target.mean,
        target_std: target.std,
        fold_check_max_abs_diff: foldDiff,
      },
      heldout_metrics: metrics,
      known_facts: 'Weight, Displacement, Horsepower and Cylinders are strongly inter-correlated (|r| > 0.8); mpg falls with weight and rises with Year.',
    },
  };

  const reloaded = await writeModelFolder({
    dir: join(root, 'cars'),
    model,
    metadata,
    header: FEATURES.map((f) => f.name),
    background: bgIdx.map((i) => trainX[i]),
    reference: { rows: refX, labels: refY, labelName: 'Miles_per_Gallon' },
    expectedRows: refX.slice(0, 15),
  });
  [trained, model, reloaded].forEach((m) => m.dispose());
  return { name: 'cars', metrics: { r2: metrics.r2, rmse: metrics.rmse, train_r2: metrics.train_r2 } };
}
