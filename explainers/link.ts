/**
 * Link functions for Kernel SHAP: the space in which attributions add up. shap applies the link to
 * the expected model output of each coalition (link(E f), not E link(f)); so do we.
 */

export type LinkName = 'identity' | 'logit';

export const LINK_NAMES: readonly LinkName[] = ['identity', 'logit'];

/**
 * Probabilities are clipped to [eps, 1 - eps] before the logit. Model outputs are float32, whose
 * spacing just below 1 is 6e-8, so 1e-7 keeps logit finite (about +-16.1) without moving any
 * probability a float32 can tell apart from its neighbours in the middle of the range.
 */
export const LOGIT_EPS = 1e-7;

/** Outputs this far outside [0, 1] mean the model does not emit probabilities (float slack allowed). */
const PROBABILITY_SLACK = 1e-4;

export function isLinkName(x: unknown): x is LinkName {
  return typeof x === 'string' && (LINK_NAMES as readonly string[]).includes(x);
}

export function linkFunction(name: LinkName): (p: number) => number {
  if (name === 'identity') return (p) => p;
  return (p) => {
    const q = p < LOGIT_EPS ? LOGIT_EPS : p > 1 - LOGIT_EPS ? 1 - LOGIT_EPS : p;
    return Math.log(q / (1 - q));
  };
}

/** True when a value can be fed to the link (the logit needs a probability). */
export function inLinkDomain(name: LinkName, p: number): boolean {
  if (!Number.isFinite(p)) return false;
  return name === 'identity' || (p >= -PROBABILITY_SLACK && p <= 1 + PROBABILITY_SLACK);
}
