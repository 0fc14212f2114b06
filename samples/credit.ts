/**
 * `credit`: a binary classifier of loan approval on synthetic applicants with known drivers,
 * a planted direct dependence on sex, a proxy of sex, and a feature with no effect at all.
 */
import { join } from 'node:path';
import { writeModelFolder } from './lib/folder.js';
import { accuracyBinary, auc, logLossBinary, pearson, r4 } from './lib/metrics.js';
import { applyScaler, denseStack, fitScaler, foldStandardisation, maxAbsDiff, predict, train } from './lib/nn.js';
import { bernoulli, clamp, gaussian, intBetween, mulberry32, poisson, round, shuffledIndices } from './lib/rng.js';
import type { SampleSummary } from './lib/folder.js';

export const FEATURES = [
  { name: 'age', type: 'integer', unit: 'years', description: 'Applicant age, uniform 21..70', monotone: 'increasing' },
  { name: 'income', type: 'numeric', unit: 'USD/year', description: 'Annual income, log-normal, rounded to 100', min: 0 },
  { name: 'debt_ratio', type: 'numeric', description: 'Monthly debt payments / monthly income', min: 0 },
  { name: 'credit_history_years', type: 'integer', unit: 'years', description: 'Length of credit history', monotone: 'increasing' },
  { name: 'late_payments', type: 'integer', description: 'Late payments in the last 24 months', min: 0 },
  { name: 'loan_amount', type: 'numeric', unit: 'USD', description: 'Requested loan amount, rounded to 100', min: 0 },
  { name: 'employment_years', type: 'numeric', unit: 'years', description: 'Years with the current employer', min: 0 },
  { name: 'savings', type: 'numeric', unit: 'USD', description: 'Savings balance, rounded to 10', min: 0 },
  { name: 'housing_rent', type: 'one-hot', group: 'housing', description: 'Housing = rent', categories: [{ value: 1, label: 'rent' }] },
  { name: 'housing_own', type: 'one-hot', group: 'housing', description: 'Housing = own outright', categories: [{ value: 1, label: 'own' }] },
  { name: 'housing_mortgage', type: 'one-hot', group: 'housing', description: 'Housing = mortgage', categories: [{ value: 1, label: 'mortgage' }] },
  {
    name: 'sex',
    type: 'binary',
    description: '1 = female, 0 = male (protected attribute)',
    immutable: true,
    categories: [
      { value: 0, label: 'male' },
      { value: 1, label: 'female' },
    ],
  },
  {
    name: 'part_time',
    type: 'binary',
    description: '1 = works part time. Proxy of sex: no direct effect on the label',
    categories: [
      { value: 0, label: 'full time' },
      { value: 1, label: 'part time' },
    ],
  },
  {
    name: 'application_weekday',
    type: 'integer',
    description: 'Weekday of the application, 0 = Monday .. 6 = Sunday. No effect on the label',
    categories: ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'].map((label, value) => ({ value, label })),
  },
] as const;

const NAMES = FEATURES.map((f) => f.name);
const col = (name: string) => NAMES.indexOf(name as (typeof NAMES)[number]);

/** Coefficients of the true approval logit (see LOGIT_FORMULA). */
export const COEF = {
  intercept: 0.5,
  log_income_over_42000: 2.0,
  debt_ratio_minus_0_35: -7.0,
  late_payments_minus_1: -0.9,
  credit_history_years_minus_15: 0.03,
  loan_amount_k_minus_15: -0.03,
  savings_k_minus_8: 0.03,
  employment_years_minus_10: 0.03,
  age_minus_45: 0.01,
  housing_own: 0.4,
  housing_mortgage: 0.2,
  sex: -0.9,
  part_time: 0,
  application_weekday: 0,
};

export const LOGIT_FORMULA =
  'logit P(approved = 1 | x) = 0.5 + 2.0*ln(income/42000) - 7.0*(debt_ratio - 0.35) - 0.9*(late_payments - 1)' +
  ' + 0.03*(credit_history_years - 15) - 0.03*(loan_amount/1000 - 15) + 0.03*(savings/1000 - 8)' +
  ' + 0.03*(employment_years - 10) + 0.01*(age - 45) + 0.4*housing_own + 0.2*housing_mortgage - 0.9*sex;' +
  ' part_time and application_weekday do not enter; approved ~ Bernoulli(sigmoid(logit)).';

export const GENERATION = [
  'Rows drawn independently with mulberry32(seed 20240611), in this order per row:',
  'sex ~ Bernoulli(0.5) (1 = female);',
  'part_time ~ Bernoulli(0.8) if sex = 1 else Bernoulli(0.1) (the proxy);',
  'age ~ uniform integer 21..70;',
  'employment_years = round((age - 18) * U^1.5, 1);',
  'credit_history_years = floor((age - 18) * (0.2 + 0.8 U));',
  'income = round(exp(ln 42000 + 0.01*(age - 45) + 0.45 Z), -2) clamped to [8000, 400000];',
  'debt_ratio = round(clamp(0.35 + 0.15 Z, 0.01, 1.2), 3);',
  'late_payments = min(Poisson(0.9), 10);',
  'loan_amount = round(clamp(exp(ln 15000 + 0.6 Z), 1000, 100000), -2);',
  'savings = round(income * 0.2 * Exp(1), -1);',
  'housing: p_own = 0.1 + 0.006 (age - 21), p_mortgage = 0.35, p_rent = rest;',
  'application_weekday ~ uniform integer 0..6;',
  'then the label from the logit formula. U ~ Uniform(0,1), Z ~ N(0,1), fresh for each use.',
].join(' ');

export function trueLogit(x: number[]): number {
  const v = (n: string) => x[col(n)];
  return (
    COEF.intercept +
    COEF.log_income_over_42000 * Math.log(v('income') / 42000) +
    COEF.debt_ratio_minus_0_35 * (v('debt_ratio') - 0.35) +
    COEF.late_payments_minus_1 * (v('late_payments') - 1) +
    COEF.credit_history_years_minus_15 * (v('credit_history_years') - 15) +
    COEF.loan_amount_k_minus_15 * (v('loan_amount') / 1000 - 15) +
    COEF.savings_k_minus_8 * (v('savings') / 1000 - 8) +
    COEF.employment_years_minus_10 * (v('employment_years') - 10) +
    COEF.age_minus_45 * (v('age') - 45) +
    COEF.housing_own * v('housing_own') +
    COEF.housing_mortgage * v('housing_mortgage') +
    COEF.sex * v('sex')
  );
}

/** Terms of the logit, by feature (for the "contribution sd" facts in the notes). */
function logitTerms(x: number[]): Record<string, number> {
  const v = (n: string) => x[col(n)];
  return {
    income: COEF.log_income_over_42000 * Math.log(v('income') / 42000),
    debt_ratio: COEF.debt_ratio_minus_0_35 * (v('debt_ratio') - 0.35),
    late_payments: COEF.late_payments_minus_1 * (v('late_payments') - 1),
    credit_history_years: COEF.credit_history_years_minus_15 * (v('credit_history_years') - 15),
    loan_amount: COEF.loan_amount_k_minus_15 * (v('loan_amount') / 1000 - 15),
    savings: COEF.savings_k_minus_8 * (v('savings') / 1000 - 8),
    employment_years: COEF.employment_years_minus_10 * (v('employment_years') - 10),
    age: COEF.age_minus_45 * (v('age') - 45),
    housing: COEF.housing_own * v('housing_own') + COEF.housing_mortgage * v('housing_mortgage'),
    sex: COEF.sex * v('sex'),
    part_time: 0,
    application_weekday: 0,
  };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export function generate(n: number, seed: number): { x: number[][]; y: number[]; p: number[] } {
  const rng = mulberry32(seed);
  const x: number[][] = [];
  const y: number[] = [];
  const p: number[] = [];
  for (let i = 0; i < n; i++) {
    const sex = bernoulli(rng, 0.5);
    const partTime = bernoulli(rng, sex === 1 ? 0.8 : 0.1);
    const age = intBetween(rng, 21, 70);
    const employment = round((age - 18) * rng() ** 1.5, 1);
    const history = Math.floor((age - 18) * (0.2 + 0.8 * rng()));
    const income = round(clamp(Math.exp(Math.log(42000) + 0.01 * (age - 45) + 0.45 * gaussian(rng)), 8000, 400000), -2);
    const debtRatio = round(clamp(0.35 + 0.15 * gaussian(rng), 0.01, 1.2), 3);
    const late = Math.min(poisson(rng, 0.9), 10);
    const loan = round(clamp(Math.exp(Math.log(15000) + 0.6 * gaussian(rng)), 1000, 100000), -2);
    const savings = round(income * 0.2 * -Math.log(1 - rng()), -1);
    const pOwn = 0.1 + 0.006 * (age - 21);
    const u = rng();
    const housing = u < pOwn ? 'own' : u < pOwn + 0.35 ? 'mortgage' : 'rent';
    const weekday = intBetween(rng, 0, 6);
    const row = [
      age,
      income,
      debtRatio,
      history,
      late,
      loan,
      employment,
      savings,
      housing === 'rent' ? 1 : 0,
      housing === 'own' ? 1 : 0,
      housing === 'mortgage' ? 1 : 0,
      sex,
      partTime,
      weekday,
    ];
    const prob = sigmoid(trueLogit(row));
    x.push(row);
    p.push(prob);
    y.push(bernoulli(rng, prob));
  }
  return { x, y, p };
}

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const sd = (a: number[]) => {
  const m = mean(a);
  return Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length);
};

export async function buildCredit(root: string): Promise<SampleSummary> {
  const N = 6000;
  const N_REF = 1000;
  const data = generate(N, 20240611);
  // The rows are i.i.d., so the first 5000 are the training set and the last 1000 the held-out set.
  const trainX = data.x.slice(0, N - N_REF);
  const trainY = data.y.slice(0, N - N_REF);
  const refX = data.x.slice(N - N_REF);
  const refY = data.y.slice(N - N_REF);
  const refP = data.p.slice(N - N_REF);

  const scaler = fitScaler(trainX);
  const arch = [
    { units: 32, activation: 'relu' as const },
    { units: 16, activation: 'relu' as const },
    { units: 1, activation: 'sigmoid' as const },
  ];
  const trained = denseStack('credit', NAMES.length, arch, 101);
  const TRAINING = { epochs: 10, batchSize: 64, learningRate: 0.002 };
  const loss = await train(trained, applyScaler(trainX, scaler), trainY.map((v) => [v]), { ...TRAINING, loss: 'binaryCrossentropy', rng: mulberry32(7) });
  const model = denseStack('credit', NAMES.length, arch, 101);
  foldStandardisation(trained, model, scaler);
  const foldDiff = maxAbsDiff(predict(trained, applyScaler(refX, scaler)), predict(model, refX));
  if (foldDiff > 1e-4) throw new Error(`credit: folded model differs from scaler+model by ${foldDiff}`);

  const pRef = predict(model, refX).map((r) => r[0]);
  const sexCol = col('sex');
  const bySex = (vals: number[], rows: number[][], s: number) => mean(vals.filter((_, i) => rows[i][sexCol] === s));
  const predApproved = pRef.map((v) => (v >= 0.5 ? 1 : 0));
  const terms = data.x.map(logitTerms);
  const contributionSd: Record<string, number> = {};
  for (const k of Object.keys(terms[0])) contributionSd[k] = r4(sd(terms.map((t) => t[k])));

  const bgIdx = shuffledIndices(mulberry32(11), trainX.length).slice(0, 100).sort((a, b) => a - b);
  const metrics = {
    accuracy: r4(accuracyBinary(pRef, refY)),
    auc: r4(auc(pRef, refY)),
    log_loss: r4(logLossBinary(pRef, refY)),
    bayes_accuracy: r4(accuracyBinary(refP, refY)),
    bayes_auc: r4(auc(refP, refY)),
    bayes_log_loss: r4(logLossBinary(refP, refY)),
    final_training_loss: r4(loss),
  };
  const fairness = {
    label_approval_rate_female: r4(bySex(refY, refX, 1)),
    label_approval_rate_male: r4(bySex(refY, refX, 0)),
    model_selection_rate_female: r4(bySex(predApproved, refX, 1)),
    model_selection_rate_male: r4(bySex(predApproved, refX, 0)),
    model_mean_probability_female: r4(bySex(pRef, refX, 1)),
    model_mean_probability_male: r4(bySex(pRef, refX, 0)),
    note: 'Held-out reference set, threshold 0.5. The gap comes from the planted -0.9 logit term on sex = 1 (female).',
  };

  const metadata = {
    description:
      'Synthetic loan approval (binary). Output "approved" is the probability that the application is approved. ' +
      'Known true drivers, a planted direct bias against sex = 1 (female), a proxy of sex (part_time) and a no-effect feature (application_weekday).',
    task: 'binary-classification',
    features: FEATURES,
    outputs: [{ name: 'approved', description: 'P(approved = 1): probability that the loan is approved' }],
    sensitiveFeatures: ['sex'],
    background: 'background.csv',
    reference: 'reference.csv',
    label: 'approved',
    classes: ['rejected', 'approved'],
    link: 'logit',
    notes: {
      data_generating_process: GENERATION,
      label_logit: LOGIT_FORMULA,
      coefficients: COEF,
      true_drivers: {
        strong: ['income', 'debt_ratio', 'late_payments'],
        weak: ['credit_history_years', 'loan_amount', 'savings', 'employment_years', 'age', 'housing'],
        planted_bias: { feature: 'sex', logit_coefficient: COEF.sex, meaning: 'sex = 1 (female) lowers the approval logit by 0.9 at equal other features' },
        proxy: { feature: 'part_time', of: 'sex', direct_effect: 0, correlation_with_sex: r4(pearson(data.x.map((r) => r[col('part_time')]), data.x.map((r) => r[sexCol]))) },
        no_effect: ['application_weekday'],
        no_direct_effect: ['part_time', 'application_weekday'],
        correlated_features: 'age drives employment_years, credit_history_years, income (slightly) and housing; savings scales with income',
      },
      logit_contribution_sd: contributionSd,
      label_approval_rate: r4(mean(data.y)),
      split: { train_rows: trainX.length, reference_rows: refX.length, background_rows: 100, how: 'rows are i.i.d.: first 5000 train, last 1000 held out (reference.csv); background = 100 random training rows' },
      training: {
        architecture: 'Dense 32 relu -> Dense 16 relu -> Dense 1 sigmoid',
        inputs: 'trained on standardised inputs; the standardisation is folded into the first Dense layer, so the saved model takes raw units',
        optimizer: `adam lr ${TRAINING.learningRate}, batch ${TRAINING.batchSize}, ${TRAINING.epochs} epochs, binary cross-entropy, seeded init and per-epoch shuffling`,
        fold_check_max_abs_diff: foldDiff,
      },
      heldout_metrics: metrics,
      fairness_facts: fairness,
    },
  };

  const dir = join(root, 'credit');
  const reloaded = await writeModelFolder({
    dir,
    model,
    metadata,
    header: NAMES,
    background: bgIdx.map((i) => trainX[i]),
    reference: { rows: refX, labels: refY, labelName: 'approved' },
    expectedRows: refX.slice(0, 16),
  });
  [trained, model, reloaded].forEach((m) => m.dispose());
  return { name: 'credit', metrics: { accuracy: metrics.accuracy, auc: metrics.auc, bayes_accuracy: metrics.bayes_accuracy }, extra: fairness };
}
