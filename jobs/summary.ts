/**
 * Summaries of a job's results, built in one pass over the records so any number of rows fits:
 * exact mean |attribution| per output and feature over every explained row, and a uniform sample
 * (seeded reservoir, so the same results give the same charts) of at most `maxSample` rows for the
 * beeswarm and the bar chart. Text rows (attributions with positions) have features of their own,
 * their tokens: they are summarised per token, over the rows it appears in, as a bar chart.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Explanation, ExplainMethod, InstanceExplanation } from '../explainers/types.js';
import { seededRng, type Rng } from '../stats/random.js';
import { renderBeeswarm, renderHtmlReport, renderMeanAbs, type Section } from '../render/index.js';
import { items, type ChartContext } from '../render/select.js';
import { isErrorRecord, isExplainedRecord, type ResultRecord, type RowError } from './types.js';

export const DEFAULT_SAMPLE = 2000;

export class SummaryCollector {
  rowsExplained = 0;
  rowsFailed = 0;
  readonly errorsByCode = new Map<string, number>();
  readonly firstErrors: { index: number; line?: number; error: RowError }[] = [];
  /** Per output name: row names (features, one-hot groups as one row), the running sum of |attribution|, the count, and the output's index. */
  readonly absSums = new Map<string, { features: string[]; sums: Float64Array; n: number; outputIndex: number }>();
  /** Text rows, per output name: per token, the sum of |attribution| over its occurrences and their count. */
  readonly tokenSums = new Map<string, Map<string, { sum: number; n: number }>>();
  /** Text rows, per output name: the output's index and how many rows explain it. */
  private readonly textRows = new Map<string, { outputIndex: number; n: number }>();
  readonly sample: InstanceExplanation[] = [];
  notConverged = 0;
  /** Explained rows per stopReason (exact, tolerance, budget, deadline ...). */
  readonly stopReasons = new Map<string, number>();
  private seen = 0;
  private rng: Rng;

  constructor(
    readonly maxSample = DEFAULT_SAMPLE,
    seed = 0,
  ) {
    this.rng = seededRng(seed);
  }

  add(r: ResultRecord): void {
    if (isErrorRecord(r)) {
      this.rowsFailed++;
      this.errorsByCode.set(r.error.code, (this.errorsByCode.get(r.error.code) ?? 0) + 1);
      if (this.firstErrors.length < 20)
        this.firstErrors.push({ index: r.index, ...(r.line !== undefined ? { line: r.line } : {}), error: r.error });
      return;
    }
    // Counterfactual and effects rows have their own summaries (jobs/dataJobs.ts).
    if (!isExplainedRecord(r)) return;
    this.rowsExplained++;
    if (!r.converged) this.notConverged++;
    const reason = r.stopReason ?? (r.converged ? 'converged' : 'unconverged');
    this.stopReasons.set(reason, (this.stopReasons.get(reason) ?? 0) + 1);
    for (const o of r.outputs) {
      if (o.attributions[0]?.position !== undefined) {
        let t = this.tokenSums.get(o.output);
        if (!t) this.tokenSums.set(o.output, (t = new Map()));
        for (const a of o.attributions) {
          const e = t.get(a.feature) ?? { sum: 0, n: 0 };
          e.sum += Math.abs(a.attribution);
          e.n++;
          t.set(a.feature, e);
        }
        const rowsOf = this.textRows.get(o.output) ?? { outputIndex: o.outputIndex, n: 0 };
        rowsOf.n++;
        this.textRows.set(o.output, rowsOf);
        continue;
      }
      const rows = items(o);
      let s = this.absSums.get(o.output);
      if (!s)
        this.absSums.set(
          o.output,
          (s = { features: rows.map((a) => a.name), sums: new Float64Array(rows.length), n: 0, outputIndex: o.outputIndex }),
        );
      rows.forEach((a, j) => (s.sums[j] += Math.abs(a.attribution)));
      s.n++;
    }
    const inst: InstanceExplanation = {
      outputs: r.outputs,
      converged: r.converged,
      ...(r.stopReason ? { stopReason: r.stopReason } : {}),
      modelEvaluations: r.modelEvaluations,
      computeMs: r.computeMs,
    };
    // Reservoir sampling (Algorithm R).
    this.seen++;
    if (this.sample.length < this.maxSample) this.sample.push(inst);
    else {
      const j = Math.floor(this.rng() * this.seen);
      if (j < this.maxSample) this.sample[j] = inst;
    }
  }

  async addAll(records: AsyncIterable<ResultRecord> | Iterable<ResultRecord>): Promise<this> {
    for await (const r of records) this.add(r);
    return this;
  }

  /** True when the rows are texts (per-token summaries). */
  get text(): boolean {
    return this.tokenSums.size > 0;
  }

  /** The explained outputs, in model order, with how many rows explain each. */
  outputs(): { output: string; outputIndex: number; rows: number }[] {
    const all = [...this.absSums, ...this.textRows].map(([output, s]) => ({ output, outputIndex: s.outputIndex, rows: s.n }));
    return all.sort((a, b) => a.outputIndex - b.outputIndex);
  }

  /** How many text rows explain `output`. */
  textRowsOf(output: string): number {
    return this.textRows.get(output)?.n ?? 0;
  }

  meanAbs(output: string): { feature: string; meanAbs: number }[] {
    const t = this.tokenSums.get(output);
    if (t) return [...t].map(([feature, e]) => ({ feature, meanAbs: e.sum / e.n })).sort((a, b) => b.meanAbs - a.meanAbs || (a.feature < b.feature ? -1 : 1));
    const s = this.absSums.get(output);
    if (!s) return [];
    return s.features.map((feature, j) => ({ feature, meanAbs: s.n ? s.sums[j] / s.n : 0 })).sort((a, b) => b.meanAbs - a.meanAbs);
  }
}

export interface SummaryInfo {
  model: string;
  version: string;
  method: ExplainMethod;
  title?: string;
  /** Extra overview rows (input file, parameters ...). */
  overview?: [string, string | number][];
  topK?: number;
  /** What the charts know about the model (feature types, category labels, classifier, output selection). */
  context?: ChartContext;
}

export interface SummaryFiles {
  /** File name -> contents. */
  files: Map<string, string>;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60) || 'output';

/**
 * The beeswarm of the sampled rows that explain one output (by name; default the output most rows
 * explain: with each row's predicted class explained, the commonest class). Texts: their tokens' mean
 * |attribution| as bars (every text has its own tokens, so there is nothing to swarm).
 */
export function beeswarmOf(c: SummaryCollector, method: ExplainMethod, output?: string, topK?: number, context?: ChartContext): string {
  const name = output ?? [...c.outputs()].sort((a, b) => b.rows - a.rows || a.outputIndex - b.outputIndex)[0]?.output;
  if (c.text) return tokenBars(c, method, name ?? '', topK);
  const e: Explanation = { method, explanations: c.sample };
  return renderBeeswarm(e, { ...(name !== undefined ? { output: name } : {}), ...(topK ? { topK } : {}), ...(context ? { context } : {}) });
}

/** "153 (budget 150, deadline 3): estimates that spent their budget ..." or "0". */
export function unconvergedText(c: SummaryCollector): string {
  if (c.notConverged === 0) return '0';
  const parts = ['budget', 'deadline'].filter((k) => c.stopReasons.get(k)).map((k) => `${k} ${c.stopReasons.get(k)}`);
  return (
    `${c.notConverged}${parts.length ? ` (${parts.join(', ')})` : ''}: their error estimate had not met the tolerance ` +
    'when the budget (nSamples, maxSteps) or the deadline ran out; their values are estimates with larger standard errors'
  );
}

/** Text rows: mean |attribution| per token (over the rows it appears in), largest first. */
function tokenBars(c: SummaryCollector, method: ExplainMethod, output: string, topK = 20): string {
  const means = c.meanAbs(output);
  const e: Explanation = {
    method,
    explanations: [
      {
        outputs: [{ output, outputIndex: 0, baselineOutputValue: 0, instanceOutputValue: 0, approximationError: 0, attributions: means.map((m) => ({ feature: m.feature, value: 0, attribution: m.meanAbs })) }],
        converged: true,
        modelEvaluations: 0,
        computeMs: 0,
      },
    ],
  };
  return renderMeanAbs(e, { topK, title: `Mean |attribution| per token for “${output}”, over the rows each appears in` });
}

/** SVGs and the HTML report; throws a RangeError when no row was explained. */
export function renderSummary(c: SummaryCollector, info: SummaryInfo): Map<string, string> {
  if (c.sample.length === 0) throw new RangeError('no row was explained: there is nothing to summarise');
  const files = new Map<string, string>();
  const explanation: Explanation = { method: info.method, explanations: c.sample };
  const outputs = c.outputs().map((o) => o.output);
  const context = info.context ? { context: info.context } : {};
  const sampled = c.sample.length < c.rowsExplained;
  const sampleNote = sampled
    ? `Charts show a uniform sample of ${c.sample.length} of the ${c.rowsExplained} explained rows; the table covers every row.`
    : `Charts and table cover all ${c.rowsExplained} explained rows.`;
  const sections: Section[] = [
    {
      heading: 'Overview',
      table: {
        columns: ['', ''],
        rows: [
          ['Model', `${info.model} (version ${info.version})`],
          ['Method', info.method],
          ['Rows explained', c.rowsExplained],
          ['Rows failed', c.rowsFailed],
          ['Rows stopped before converging', unconvergedText(c)],
          ['Why rows stopped', [...c.stopReasons].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'],
          ...(info.overview ?? []),
        ],
      },
    },
  ];
  outputs.forEach((name) => {
    const suffix = outputs.length > 1 ? `-${slug(name)}` : '';
    if (c.text) {
      // Every text has its own tokens: no common features to swarm, so the tokens' mean |attribution|.
      const bar = tokenBars(c, info.method, name, info.topK);
      files.set(`mean-abs${suffix}.svg`, bar);
      sections.push({
        heading: `Mean |attribution| per token: ${name}`,
        svg: bar,
        table: {
          caption: `Over all ${c.textRowsOf(name)} explained texts; a token's mean over the rows it appears in`,
          columns: ['token', 'mean |attribution|'],
          rows: c.meanAbs(name).slice(0, 200).map((m) => [m.feature, m.meanAbs]),
        },
      });
      return;
    }
    // Rows explaining this output may all have left the sample (a rare class): then only the table.
    const inSample = c.sample.some((e) => e.outputs.some((o) => o.output === name));
    if (!inSample) {
      sections.push({
        heading: `Mean |attribution|: ${name}`,
        table: {
          caption: `Mean |attribution| over all ${c.absSums.get(name)?.n ?? 0} explained rows (none in the charts' sample)`,
          columns: ['feature', 'mean |attribution|'],
          rows: c.meanAbs(name).map((m) => [m.feature, m.meanAbs]),
        },
      });
      return;
    }
    const bee = renderBeeswarm(explanation, { output: name, ...(info.topK ? { topK: info.topK } : {}), ...context });
    const bar = renderMeanAbs(explanation, { output: name, ...(info.topK ? { topK: info.topK } : {}), ...context });
    files.set(`beeswarm${suffix}.svg`, bee);
    files.set(`mean-abs${suffix}.svg`, bar);
    sections.push({ heading: `Beeswarm: ${name}`, text: sampleNote, svg: bee });
    sections.push({
      heading: `Mean |attribution|: ${name}`,
      svg: bar,
      table: {
        caption: `Mean |attribution| over all ${c.absSums.get(name)?.n ?? 0} explained rows`,
        columns: ['feature', 'mean |attribution|'],
        rows: c.meanAbs(name).map((m) => [m.feature, m.meanAbs]),
      },
    });
  });
  if (c.rowsFailed > 0) {
    sections.push({
      heading: `Rows that failed (${c.rowsFailed})`,
      table: {
        caption: 'Rows per error code',
        columns: ['code', 'rows'],
        rows: [...c.errorsByCode].map(([code, n]) => [code, n]),
      },
    });
    sections.push({
      heading: 'First failed rows',
      table: {
        columns: ['index', 'line', 'code', 'message'],
        rows: c.firstErrors.map((e) => [e.index, e.line, e.error.code, e.error.message]),
      },
    });
  }
  files.set(
    'report.html',
    renderHtmlReport({
      title: info.title ?? `Batch explanations: ${info.model}`,
      subtitle: `${c.rowsExplained + c.rowsFailed} rows, method ${info.method}, model version ${info.version}`,
      sections,
    }),
  );
  return files;
}

/** Writes the summary files into `dir` (each written to a temporary name and renamed). */
export async function writeSummary(dir: string, files: Map<string, string>): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, text] of files) {
    const target = path.join(dir, name);
    await writeFile(`${target}.tmp`, text);
    await rename(`${target}.tmp`, target);
    written.push(target);
  }
  return written;
}
