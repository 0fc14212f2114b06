/**
 * What is stored for a model's amortised explainer, read synchronously for planning (an explain
 * request decides between the amortised explainer and the Kernel SHAP fallback before any model
 * work) and for status pages. The small JSON files are read once and kept until their mtime changes.
 *
 * Servable = an explainer stored for the model's current version, validated, with a validated mean
 * relative error at most the threshold (AMORTISED_THRESHOLD) or at most AMORTISED_MAX_RATIO times
 * that of shap's KernelExplainer scheme at 2088 coalitions on the same rows. Otherwise the reason is one of
 * not-trained (nothing for this version), stale (only other versions have one: the model changed),
 * not-validated, above-threshold.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { servable as withinPolicy, DEFAULT_SERVABLE_RATIO, DEFAULT_SERVABLE_THRESHOLD, type ServingPolicy } from '../../explainers/amortised/validation.js';
import type { ServedModel } from '../../models/served.js';
import { amortisedDir, amortisedModelDir, type ExplainerFile, type StoredInfo, type TrainingRecord } from './store.js';
import type { AmortisedValidation } from '../../explainers/amortised/types.js';

export type FallbackReason = 'not-trained' | 'stale' | 'not-validated' | 'above-threshold' | 'unsupported';

export interface Servability {
  servable: boolean;
  threshold: number;
  maxRatio: number;
  /** The stored explainer of the current version, when there is one. */
  info?: StoredInfo;
  /** Versions of the model, other than the current one, with a stored explainer. */
  otherVersions: string[];
  /** Why it is not servable, in words a caller can act on. */
  reason?: FallbackReason;
  message?: string;
}

interface Cached<T> {
  mtimeMs: number;
  value: T;
}
const files = new Map<string, Cached<unknown>>();

function readCached<T>(file: string): T | undefined {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    files.delete(file);
    return undefined;
  }
  const hit = files.get(file);
  if (hit && hit.mtimeMs === mtimeMs) return hit.value as T;
  let value: T;
  try {
    value = JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined; // being replaced (a rename is atomic, so this is rare): read again next time
  }
  if (files.size > 1000) files.clear();
  files.set(file, { mtimeMs, value });
  return value;
}

/** The stored explainer of one model version (sync, cached), or undefined. */
export function storedInfoSync(dir: string): StoredInfo | undefined {
  const explainer = readCached<ExplainerFile>(path.join(dir, 'explainer.json'));
  if (!explainer) return undefined;
  return {
    explainer,
    training: readCached<TrainingRecord>(path.join(dir, 'training.json')),
    validation: readCached<AmortisedValidation>(path.join(dir, 'validation.json')),
  };
}

function otherVersionsSync(dataDir: string, m: Pick<ServedModel, 'name' | 'version'>): string[] {
  let entries: string[];
  try {
    entries = readdirSync(amortisedModelDir(dataDir, m.name));
  } catch {
    return [];
  }
  return entries.filter((v) => v !== m.version && !v.includes('.') && storedInfoSync(path.join(amortisedModelDir(dataDir, m.name), v)) !== undefined);
}

export function servability(dataDir: string, m: Pick<ServedModel, 'name' | 'version'>, policy: Partial<ServingPolicy> = {}): Servability {
  const threshold = policy.threshold ?? DEFAULT_SERVABLE_THRESHOLD;
  const maxRatio = policy.maxRatio ?? DEFAULT_SERVABLE_RATIO;
  const info = storedInfoSync(amortisedDir(dataDir, m.name, m.version));
  const otherVersions = info ? [] : otherVersionsSync(dataDir, m);
  const base = { threshold, maxRatio, info, otherVersions };
  if (info && info.explainer.modelVersion === m.version && info.validation && withinPolicy(info.validation, { threshold, maxRatio })) {
    return { ...base, servable: true };
  }
  const train = `train one with POST /v1/models/${m.name}/amortised`;
  if (!info) {
    return otherVersions.length
      ? {
          ...base,
          servable: false,
          reason: 'stale',
          message: `the amortised explainer of model "${m.name}" was trained on another version (${otherVersions.join(', ')}); the model is now version ${m.version}: ${train}`,
        }
      : { ...base, servable: false, reason: 'not-trained', message: `no amortised explainer has been trained for model "${m.name}" version ${m.version}: ${train}` };
  }
  if (!info.validation) {
    return { ...base, servable: false, reason: 'not-validated', message: `the amortised explainer of model "${m.name}" has no validation: ${train}` };
  }
  const v = info.validation.amortised;
  const ratio = info.validation.ratioToShapKernelExplainer;
  const relative =
    maxRatio > 0
      ? ratio !== undefined
        ? ` and ${ratio.toFixed(2)}x the error of shap's KernelExplainer scheme at 2088 coalitions, above ${maxRatio}x (AMORTISED_MAX_RATIO)`
        : " (no comparison with shap's KernelExplainer scheme was measured)"
      : '';
  return {
    ...base,
    servable: false,
    reason: 'above-threshold',
    message:
      `the amortised explainer of model "${m.name}" validated at a mean max-error of ${(100 * v.meanRelative).toFixed(2)}% of the attribution range, ` +
      `above the threshold of ${(100 * threshold).toFixed(2)}% (AMORTISED_THRESHOLD)${relative}: train it with a larger budget`,
  };
}
