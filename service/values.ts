/**
 * Input values as a person wrote them. Rows travel as float32, so 0.278 comes back as
 * 0.27799999713897705 when its float32 is written as a double. The value echoed in an explanation is
 * the shortest decimal that reads back to the same float32 (0.278): what the user sent whenever they
 * sent at most float32's ~7 significant digits, and the same float32 in any case.
 */
import type { Explanation } from '../explainers/types.js';

/** The shortest decimal (as a number) whose float32 is `v`'s float32. */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v) || Number.isInteger(v)) return v;
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const d = Number(f.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return f;
}

/** Every attribution's `value` as its shortest float32 decimal (in place; returns `e`). */
export function withShortestValues(e: Explanation): Explanation {
  for (const inst of e.explanations)
    for (const out of inst.outputs) for (const a of out.attributions) a.value = shortestFloat32(a.value);
  return e;
}
