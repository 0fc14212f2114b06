/**
 * Deterministic, made-up data in the shapes the renderers take: used by the render tests, the browser
 * test, the render benchmark, and handy for trying a chart by hand. Not model output.
 */
import type { Explanation, FeatureAttribution, Importance, InstanceExplanation } from '../explainers/types.js';
import { seededRng } from '../stats/random.js';
import type { GroupComparison } from './groups.js';

const rng = seededRng;

const NAMES = [
  'income', 'age', 'debt_to_income_ratio', 'credit_history_months', 'num_open_accounts', 'loan_amount',
  'employment_years', 'num_late_payments_last_24_months', 'home_ownership=rent', 'purpose=debt_consolidation',
  'revolving_utilisation', 'num_credit_inquiries', 'annual_bonus', 'savings_balance', 'dependents',
  'region=north', 'education=graduate', 'months_since_last_delinquency', 'installment', 'term_60_months',
];

export function featureNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => (i < NAMES.length ? NAMES[i] : `feature_${i}`));
}

export interface ExampleOptions {
  features?: number;
  instances?: number;
  method?: Explanation['method'];
  seed?: number;
  names?: string[];
  withStderr?: boolean;
}

/** A tabular explanation whose attributions sum exactly to f(x) - baseline, as Kernel SHAP's do. */
export function exampleExplanation(o: ExampleOptions = {}): Explanation {
  const d = o.features ?? 20;
  const names = o.names ?? featureNames(d);
  const rand = rng(o.seed ?? 7);
  const weights = names.map((_, j) => (rand() - 0.45) * 0.6 * Math.exp(-j / 6));
  const means = names.map((_, j) => (j % 3 === 0 ? 50_000 * rand() : j % 3 === 1 ? 40 * rand() : rand()));
  const explanations: InstanceExplanation[] = [];
  for (let i = 0; i < (o.instances ?? 1); i++) {
    const z = names.map(() => (rand() + rand() + rand() - 1.5) * 2);
    const attributions: FeatureAttribution[] = names.map((feature, j) => ({
      feature,
      value: j % 3 === 0 ? Math.round(means[j] * (1 + z[j] / 4)) : Math.round(means[j] * (1 + z[j] / 4) * 100) / 100,
      attribution: weights[j] * z[j],
      ...(o.withStderr === false ? {} : { stderr: Math.abs(weights[j]) * 0.08 + 0.002 }),
    }));
    const base = 0.21;
    const sum = attributions.reduce((s, a) => s + a.attribution, 0);
    explanations.push({
      outputs: [
        {
          output: 'p_default',
          outputIndex: 0,
          baselineOutputValue: base,
          instanceOutputValue: base + sum,
          attributions,
          approximationError: Math.max(...attributions.map((a) => a.stderr ?? 0)),
        },
      ],
      converged: true,
      modelEvaluations: 2048 + 100 * i,
      computeMs: 12.5,
    });
  }
  return { method: o.method ?? 'kernel-shap', explanations };
}

/** A 28x28 grayscale "digit" (a ring) with IG attributions: positive on the stroke, negative inside. */
export function exampleImageExplanation(size = 28): { explanation: Explanation; image: Float32Array; shape: [number, number, number] } {
  const image = new Float32Array(size * size);
  const attributions: FeatureAttribution[] = [];
  const c = (size - 1) / 2;
  for (let r = 0; r < size; r++) {
    for (let q = 0; q < size; q++) {
      const dist = Math.hypot(r - c, (q - c) * 1.3);
      const ink = Math.max(0, 1 - Math.abs(dist - size * 0.3) / 2.2);
      image[r * size + q] = ink;
      const hole = Math.max(0, 1 - dist / (size * 0.18));
      attributions.push({ feature: `pixel_${r}_${q}`, value: ink, attribution: 0.004 * ink * (1 + Math.sin(r / 3)) - 0.006 * hole });
    }
  }
  const sum = attributions.reduce((s, a) => s + a.attribution, 0);
  const explanation: Explanation = {
    method: 'integrated-gradients',
    inputShape: [size, size, 1],
    explanations: [
      {
        outputs: [
          { output: 'zero', outputIndex: 0, baselineOutputValue: 0.1, instanceOutputValue: 0.1 + sum + 0.004, attributions, approximationError: -0.004 },
        ],
        converged: true,
        modelEvaluations: 64,
        computeMs: 30,
      },
    ],
  };
  return { explanation, image, shape: [size, size, 1] };
}

export function exampleImportance(features = 12, repeats = 8): Importance {
  const rand = rng(11);
  const names = featureNames(features);
  return {
    metric: 'roc_auc',
    baselineScore: 0.871,
    importances: names.map((feature, j) => {
      const mean = 0.12 * Math.exp(-j / 2.5) - 0.004;
      const values = Array.from({ length: repeats }, () => mean + (rand() - 0.5) * 0.03 * Math.exp(-j / 5));
      const m = values.reduce((s, v) => s + v, 0) / repeats;
      const std = Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (repeats - 1));
      return { feature, mean: m, std, values };
    }),
    nSamples: 1000,
    repeats,
    modelEvaluations: features * repeats * 1000,
    computeMs: 840,
  };
}

export function exampleGroups(): GroupComparison[] {
  return [
    { group: 'female', values: [{ label: 'selection rate', value: 0.31, lo: 0.27, hi: 0.35 }, { label: 'true positive rate', value: 0.72, lo: 0.66, hi: 0.78 }] },
    { group: 'male', values: [{ label: 'selection rate', value: 0.42, lo: 0.39, hi: 0.45 }, { label: 'true positive rate', value: 0.8, lo: 0.76, hi: 0.84 }] },
    { group: 'non-binary / not stated', values: [{ label: 'selection rate', value: 0.36, lo: 0.22, hi: 0.5 }, { label: 'true positive rate', value: 0.75, lo: 0.55, hi: 0.95 }] },
  ];
}
