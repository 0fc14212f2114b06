/**
 * Checks a Kernel SHAP request and turns it into the plain values the algorithm runs on. Everything
 * the caller can get wrong is caught here, before the model is called, as an ExplainerInputError
 * whose code is stable and whose message says what to change.
 */
import { checkRows, playersOf } from './rows.js';
import { ExplainerInputError, type CommonOptions, type Model, type Rows } from './types.js';
import { isLinkName, LINK_NAMES, type LinkName } from './link.js';
import { SAMPLER_NAMES, type SamplerName } from './coalitions.js';

export interface KernelShapOptions extends CommonOptions {
  /** Rows standing for "feature unknown": a player outside a coalition takes its values from these. */
  background: Rows;
  /** Weight of each background row (default equal); need not sum to 1. */
  backgroundWeights?: Float32Array;
  /** Coalitions evaluated per instance (each costs one model row per background row); 'auto' = 2M + 2048. */
  nSamples?: number | 'auto';
  seed?: number;
  link?: LinkName;
  /** Stop early once max stderr <= tolerance x (max attribution - min attribution). Default 0.01. */
  tolerance?: number;
  /** Larger backgrounds are summarised by weighted k-means to this many rows. Default 100. */
  maxBackground?: number;
  /**
   * How coalitions are drawn. 'per-background' (the default with the identity link): every background
   * row gets its own sample of coalitions (a relabelled 'balanced' design) and its own regression, and the
   * estimates are averaged with the background weights; at the same model evaluations its error is
   * about a third of that of one sample shared by all rows (bench/kernelShapAccuracy.ts). It needs the identity
   * link, under which the game is the weighted mean of the rows' games. 'balanced' (the default with the
   * logit link), 'leverage' and 'shap' (shap's KernelExplainer scheme, for comparison) draw one sample
   * that every background row shares (see coalitions.ts).
   */
  sampler?: KernelShapSampler;
  /**
   * Most rows sent to one model.predict call (also capped at 2^23 values per call). Default: the rows
   * of 2^20 values (4 MB of float32; 52 428 rows of 20 features). Fewer, larger calls cost less: the
   * tfjs model runs each call about 0.2 ms slower after Kernel SHAP's own work than in a row of calls
   * (measured on the bench MLP), but calls of hundreds of thousands of rows leave their rows and outputs
   * out of the CPU cache. With a deadline or a signal, calls are also sized to take a small slice of the
   * time left, so the deadline and the signal are checked often.
   */
  maxRowsPerCall?: number;
}

export type KernelShapSampler = 'per-background' | SamplerName;
export const KERNEL_SHAP_SAMPLERS: readonly KernelShapSampler[] = ['per-background', ...SAMPLER_NAMES];

export const MAX_SAMPLES = 10_000_000;
/** Values per model call by default (see maxRowsPerCall). */
const CALL_VALUES = 2 ** 20;
export const MAX_BACKGROUND = 100_000;

export interface KernelShapConfig {
  nSamples: number | 'auto';
  seed: number;
  link: LinkName;
  tolerance: number;
  maxBackground: number;
  sampler: KernelShapSampler;
  maxRowsPerCall: number;
  outputs: number[];
  /** Players: each a list of feature columns (a group, or one feature in no group). */
  players: number[][];
  backgroundWeights: Float64Array;
}

function fail(code: string, message: string, details?: unknown): never {
  throw new ExplainerInputError(code, message, details);
}

export function checkKernelShapInput(model: Model, instances: Rows, options: KernelShapOptions): KernelShapConfig {
  const d = model.nFeatures;
  if (!options || typeof options !== 'object') fail('BAD_PARAMETER', 'kernel-shap needs options with a background');
  checkRows(instances, d, { code: 'BAD_INSTANCES', what: 'instances' });
  if (!options.background) fail('BAD_BACKGROUND', 'kernel-shap needs a background: rows that stand for "feature unknown"');
  checkRows(options.background, d, { code: 'BAD_BACKGROUND', what: 'background' });
  const nBg = options.background.n;

  let backgroundWeights: Float64Array;
  if (options.backgroundWeights !== undefined) {
    const w = options.backgroundWeights;
    if (w.length !== nBg) fail('BAD_BACKGROUND', `backgroundWeights has ${w.length} values for ${nBg} background rows`);
    let sum = 0;
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i]) || w[i] < 0) fail('BAD_BACKGROUND', `backgroundWeights[${i}] must be a finite number >= 0`);
      sum += w[i];
    }
    if (!(sum > 0)) fail('BAD_BACKGROUND', 'backgroundWeights are all zero: give some row a positive weight');
    backgroundWeights = Float64Array.from(w);
  } else {
    backgroundWeights = new Float64Array(nBg).fill(1);
  }

  const space = options.space;
  if (!space || !Array.isArray(space.featureNames) || space.featureNames.length !== d) {
    fail('BAD_PARAMETER', `space.featureNames must name all ${d} features`);
  }
  if (!Array.isArray(space.outputNames) || space.outputNames.length !== model.nOutputs) {
    fail('BAD_PARAMETER', `space.outputNames must name all ${model.nOutputs} outputs`);
  }

  const outputs = options.outputs ?? Array.from({ length: model.nOutputs }, (_, i) => i);
  if (!Array.isArray(outputs) || outputs.length === 0) fail('BAD_OUTPUTS', 'outputs must list at least one output index');
  for (const o of outputs) {
    if (!Number.isInteger(o) || o < 0 || o >= model.nOutputs) {
      fail('BAD_OUTPUTS', `output ${o} does not exist: the model has outputs 0..${model.nOutputs - 1}`);
    }
  }
  if (new Set(outputs).size !== outputs.length) fail('BAD_OUTPUTS', 'outputs lists an output twice');

  const players = playersOf(space.groups, d).map((p) => p.columns);

  const nSamples = options.nSamples ?? 'auto';
  if (nSamples !== 'auto' && (!Number.isInteger(nSamples) || nSamples < 2 || nSamples > MAX_SAMPLES)) {
    fail('BAD_PARAMETER', `nSamples must be 'auto' or an integer from 2 to ${MAX_SAMPLES}, got ${String(nSamples)}`);
  }
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) fail('BAD_PARAMETER', `seed must be an integer, got ${String(seed)}`);
  const link = options.link ?? 'identity';
  if (!isLinkName(link)) fail('BAD_PARAMETER', `link must be one of ${LINK_NAMES.join(', ')}, got ${String(link)}`);
  const tolerance = options.tolerance ?? 0.01;
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
    fail('BAD_PARAMETER', `tolerance must be a number >= 0, got ${String(tolerance)}`);
  }
  const maxBackground = options.maxBackground ?? 100;
  if (!Number.isInteger(maxBackground) || maxBackground < 1 || maxBackground > MAX_BACKGROUND) {
    fail('BAD_PARAMETER', `maxBackground must be an integer from 1 to ${MAX_BACKGROUND}`);
  }
  const sampler = options.sampler ?? (link === 'identity' ? 'per-background' : 'balanced');
  if (!KERNEL_SHAP_SAMPLERS.includes(sampler)) fail('BAD_PARAMETER', `sampler must be one of ${KERNEL_SHAP_SAMPLERS.join(', ')}`);
  if (sampler === 'per-background' && link !== 'identity') {
    fail(
      'BAD_PARAMETER',
      `sampler 'per-background' needs link 'identity' (under '${link}' the rows' games do not average): use sampler 'balanced'`,
    );
  }
  const maxRowsPerCall = options.maxRowsPerCall ?? Math.max(1, Math.floor(CALL_VALUES / d));
  if (!Number.isInteger(maxRowsPerCall) || maxRowsPerCall < 1) fail('BAD_PARAMETER', 'maxRowsPerCall must be a positive integer');
  if (options.deadline !== undefined && (typeof options.deadline !== 'number' || Number.isNaN(options.deadline))) {
    fail('BAD_PARAMETER', 'deadline must be epoch milliseconds');
  }
  return { nSamples, seed, link, tolerance, maxBackground, sampler, maxRowsPerCall, outputs, players, backgroundWeights };
}

