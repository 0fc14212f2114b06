/**
 * The amortised explainer's forward pass in process (AmortisedNetwork.estimate), tfjs ops against
 * the fused kernel (AmortisedNetwork.serve()), on the default explainer's shape: an ensemble of 3
 * [256, 256] relu networks with a linear skip merged into one [768, 768] network, 280 inputs (a
 * 40-feature row and its probe values for 3 outputs: 40 + 2 x 3 x 40) and 120 outputs (3 x 40),
 * random weights and standardisation. Both networks hold the same weights; they are timed in
 * alternating rounds so load from elsewhere hits them alike; median ms per call, and the largest
 * difference between their estimates.
 *
 *   npx tsx bench/amortisedEstimateBench.ts [--quick]
 */
import { pathToFileURL } from 'node:url';
import { seededRng } from '../explainers/random.js';
import { selectBackend } from '../models/backend.js';
import { AmortisedNetwork, type Standardisation } from '../models/amortised/estimator.js';
import { kernelStatus } from '../models/fusedKernel.js';
import { mergeMembers, weightShapes, type NetworkSpec, type WeightArrays } from '../models/amortised/network.js';
import { percentile } from './igBench.js';

export interface AmortisedEstimateRow {
  rows: number;
  /** Median ms per call, per forward pass (tfjs ops first). */
  ms: number[];
  /** Largest |estimate - tfjs's estimate| per forward pass. */
  maxDiff: number[];
}

export interface AmortisedEstimateResult {
  /** 'tfjs ops' and the kernel builds timed, each with its member blocks. */
  passes: string[];
  rows: AmortisedEstimateRow[];
}

export async function amortisedEstimateBench(quick = false): Promise<AmortisedEstimateResult> {
  const rng = seededRng(7);
  const member: NetworkSpec = { inputs: 280, hidden: [256, 256], outputs: 120, activation: 'relu', linearSkip: true };
  const members: WeightArrays[] = Array.from({ length: 3 }, () =>
    weightShapes(member).map((shape) => {
      const limit = Math.sqrt(6 / (shape[0] + (shape[1] ?? shape[0])));
      return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * rng() - 1) * limit);
    }),
  );
  const merged = mergeMembers(member, members);
  const standardisation: Standardisation = {
    inputMean: Float32Array.from({ length: member.inputs }, () => rng() - 0.5),
    inputScale: Float32Array.from({ length: member.inputs }, () => 0.5 + rng()),
    outputScale: Float32Array.from({ length: member.outputs }, () => 0.5 + rng()),
  };
  const make = () => new AmortisedNetwork(merged.spec, merged.weights, standardisation);
  const nets = [make(), make().serve('auto')];
  if (nets[1].estimateMethod === 'fused-native' && 'isa' in kernelStatus().wasm) nets.push(make().serve('wasm'));
  const passes = nets.map((n) => (n.estimateMethod === 'tfjs' ? 'tfjs ops' : `${n.estimateMethod} (${n.fusedBlocks} blocks)`));
  const out: AmortisedEstimateRow[] = [];
  try {
    for (const n of [1, 100, 1000]) {
      const x = Float32Array.from({ length: n * member.inputs }, () => 2 * rng() - 1);
      // The first calls also check each kernel against tfjs.
      const first = await Promise.all(nets.map((net) => net.estimate(x, n)));
      const maxDiff = first.map((y) => y.reduce((m, v, i) => Math.max(m, Math.abs(v - first[0][i])), 0));
      const calls = Math.max(3, Math.round((quick ? 100 : 400) / Math.sqrt(n)));
      const times: number[][] = nets.map(() => []);
      for (let round = 0; round < (quick ? 3 : 7); round++) {
        for (const [i, net] of nets.entries()) {
          for (let c = 0; c < calls; c++) {
            const t0 = performance.now();
            await net.estimate(x, n);
            times[i].push(performance.now() - t0);
          }
        }
      }
      out.push({ rows: n, ms: times.map((t) => percentile(t, 0.5)), maxDiff });
    }
    return { passes, rows: out };
  } finally {
    for (const net of nets) net.dispose();
  }
}

export function printAmortisedEstimate(r: AmortisedEstimateResult): void {
  console.log('AmortisedNetwork.estimate on a merged ensemble of 3 [256, 256] relu networks with a linear skip (one [768, 768] network), 280 inputs, 120 outputs, same weights; median ms per call, alternating rounds; the largest difference from tfjs\'s estimates.\n');
  const [, ...kernels] = r.passes;
  console.log(`| rows | ${r.passes.map((p) => `${p} ms`).join(' | ')} | ${kernels.map((p) => `tfjs / ${p.split(' ')[0]}`).join(' | ')} | largest difference |`);
  console.log(`| ---: | ${r.passes.map(() => '---:').join(' | ')} | ${kernels.map(() => '---:').join(' | ')} | ---: |`);
  for (const row of r.rows) {
    const ratios = row.ms.slice(1).map((m) => `${(row.ms[0] / m).toFixed(1)}x`);
    console.log(`| ${row.rows} | ${row.ms.map((m) => m.toFixed(3)).join(' | ')} | ${ratios.join(' | ')} | ${Math.max(...row.maxDiff).toExponential(1)} |`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await selectBackend(process.env.TFJS_BACKEND);
  printAmortisedEstimate(await amortisedEstimateBench(process.argv.includes('--quick')));
}
