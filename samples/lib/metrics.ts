/** Held-out metrics for the sample models (plain float64 arithmetic). */

export function accuracyBinary(p: number[], y: number[], threshold = 0.5): number {
  let ok = 0;
  p.forEach((v, i) => (ok += (v >= threshold ? 1 : 0) === y[i] ? 1 : 0));
  return ok / y.length;
}

export function logLossBinary(p: number[], y: number[]): number {
  const eps = 1e-7;
  let s = 0;
  p.forEach((v, i) => {
    const q = Math.min(1 - eps, Math.max(eps, v));
    s -= y[i] === 1 ? Math.log(q) : Math.log(1 - q);
  });
  return s / y.length;
}

/** ROC AUC by the rank-sum formula, ties counted half. */
export function auc(score: number[], y: number[]): number {
  const idx = score.map((s, i) => i).sort((a, b) => score[a] - score[b]);
  const ranks = new Array<number>(score.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && score[idx[j + 1]] === score[idx[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]] = r;
    i = j + 1;
  }
  const nPos = y.filter((v) => v === 1).length;
  const nNeg = y.length - nPos;
  let sumPos = 0;
  y.forEach((v, i) => (sumPos += v === 1 ? ranks[i] : 0));
  return (sumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export function argmax(r: number[]): number {
  let best = 0;
  for (let j = 1; j < r.length; j++) if (r[j] > r[best]) best = j;
  return best;
}

export function accuracyMulticlass(p: number[][], y: number[]): number {
  let ok = 0;
  p.forEach((r, i) => (ok += argmax(r) === y[i] ? 1 : 0));
  return ok / y.length;
}

export function confusion(p: number[][], y: number[], k: number): number[][] {
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  p.forEach((r, i) => m[y[i]][argmax(r)]++);
  return m;
}

export function regressionMetrics(pred: number[], y: number[]): { rmse: number; mae: number; r2: number } {
  const n = y.length;
  const mean = y.reduce((a, b) => a + b, 0) / n;
  let sse = 0;
  let sae = 0;
  let sst = 0;
  pred.forEach((v, i) => {
    sse += (v - y[i]) ** 2;
    sae += Math.abs(v - y[i]);
    sst += (y[i] - mean) ** 2;
  });
  return { rmse: Math.sqrt(sse / n), mae: sae / n, r2: 1 - sse / sst };
}

export function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n;
  const mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** Rounds a metric for metadata/README (keeps JSON short and stable). */
export function r4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
