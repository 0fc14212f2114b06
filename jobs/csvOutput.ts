/**
 * The CSV form of job results: one line per (instance, explained output), bad rows as one line with
 * error columns. Every record is exactly one physical line (text cells never hold line breaks), so
 * a file cut short by a crash can be repaired line by line, and the file reads back into the same
 * records (numbers are written in shortest round-trip form).
 */
import type { InstanceExplanation, OutputExplanation, StopReason } from '../explainers/types.js';
import { groupAttributions, type GroupInfo } from '../service/groups.js';
import { csvCells } from './input.js';
import { isErrorRecord, isExplainedRecord, type ResultRecord } from './types.js';

export interface CsvColumns {
  featureNames: string[];
  withStderr: boolean;
  withLabel: boolean;
  /**
   * The model's one-hot groups: not columns of their own (a group's row is the sum of its members'
   * columns), but rebuilt as each output's `groups` when the file is read back, as the NDJSON has them.
   */
  groups?: GroupInfo[];
}

const FIXED = [
  'output',
  'output_index',
  'baseline_output_value',
  'instance_output_value',
  'approximation_error',
  'converged',
  'stop_reason',
  'model_evaluations',
  'compute_ms',
  'error_code',
  'error_message',
];

export function csvHeader(c: CsvColumns): string[] {
  const cols = ['index', 'line', ...(c.withLabel ? ['label'] : []), ...FIXED];
  for (const f of c.featureNames) cols.push(`value_${f}`, `attribution_${f}`, ...(c.withStderr ? [`stderr_${f}`] : []));
  return cols;
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  const s = String(v).replace(/[\r\n]+/g, ' ');
  return /[",]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(values: unknown[]): string {
  return values.map(cell).join(',') + '\n';
}

/** The lines of one record. */
export function csvRecordLines(r: ResultRecord, c: CsvColumns): string {
  const lead = [r.index, r.line, ...(c.withLabel ? [r.label] : [])];
  const perFeature = c.featureNames.length * (c.withStderr ? 3 : 2);
  if (isErrorRecord(r)) {
    return csvLine([...lead, ...new Array(FIXED.length - 2).fill(''), r.error.code, r.error.message, ...new Array(perFeature).fill('')]);
  }
  // The CLI, which writes CSV, runs explain methods only.
  if (!isExplainedRecord(r)) throw new TypeError('CSV output holds explanations; counterfactual and effects jobs write NDJSON');
  let out = '';
  for (const o of r.outputs) {
    const cells: unknown[] = [
      ...lead,
      o.output,
      o.outputIndex,
      o.baselineOutputValue,
      o.instanceOutputValue,
      o.approximationError,
      r.converged,
      r.stopReason,
      r.modelEvaluations,
      r.computeMs,
      '',
      '',
    ];
    for (const a of o.attributions) cells.push(a.value, a.attribution, ...(c.withStderr ? [a.stderr] : []));
    out += csvLine(cells);
  }
  return out;
}

/** The record index a CSV result line belongs to (its first cell), or undefined for the header / junk. */
export function csvLineIndex(text: string): number | undefined {
  const comma = text.indexOf(',');
  const first = comma < 0 ? text : text.slice(0, comma);
  if (!/^\d+$/.test(first)) return undefined;
  return Number(first);
}

const num = (s: string | undefined): number => (s === undefined || s === '' ? NaN : Number(s));

/** Reads result lines back into records; lines of one index are consecutive. */
export class CsvRecordReader {
  private col: Map<string, number>;
  private pending: { lines: string[][]; index: number } | undefined;
  constructor(
    header: string[],
    private readonly columns: CsvColumns,
  ) {
    this.col = new Map(header.map((h, i) => [h, i]));
  }

  private get(cells: string[], name: string): string | undefined {
    const i = this.col.get(name);
    return i === undefined ? undefined : cells[i];
  }

  /** Feeds one line; returns the record completed by it, if any. */
  push(text: string): ResultRecord | undefined {
    const cells = csvCells(text);
    const index = Number(cells[0]);
    let done: ResultRecord | undefined;
    if (this.pending && this.pending.index !== index) done = this.flush();
    this.pending ??= { lines: [], index };
    this.pending.lines.push(cells);
    return done;
  }

  flush(): ResultRecord | undefined {
    const p = this.pending;
    this.pending = undefined;
    if (!p) return undefined;
    const first = p.lines[0];
    const lineNo = this.get(first, 'line');
    const label = this.get(first, 'label');
    const head = {
      index: p.index,
      ...(lineNo ? { line: Number(lineNo) } : {}),
      ...(label !== undefined && label !== '' ? { label: Number.isFinite(Number(label)) ? Number(label) : label } : {}),
    };
    const code = this.get(first, 'error_code');
    if (code) return { ...head, error: { code, message: this.get(first, 'error_message') ?? '' } };
    const outputs: OutputExplanation[] = p.lines.map((cells) => ({
      output: this.get(cells, 'output') ?? '',
      outputIndex: num(this.get(cells, 'output_index')),
      baselineOutputValue: num(this.get(cells, 'baseline_output_value')),
      instanceOutputValue: num(this.get(cells, 'instance_output_value')),
      attributions: this.columns.featureNames.map((f) => ({
        feature: f,
        value: num(this.get(cells, `value_${f}`)),
        attribution: num(this.get(cells, `attribution_${f}`)),
        ...(this.columns.withStderr ? { stderr: num(this.get(cells, `stderr_${f}`)) } : {}),
      })),
      approximationError: num(this.get(cells, 'approximation_error')),
    }));
    if (this.columns.groups?.length) for (const o of outputs) o.groups = groupAttributions(o.attributions, this.columns.groups);
    const stop = this.get(first, 'stop_reason');
    const inst: InstanceExplanation = {
      outputs,
      converged: this.get(first, 'converged') === 'true',
      ...(stop ? { stopReason: stop as StopReason } : {}),
      modelEvaluations: num(this.get(first, 'model_evaluations')),
      computeMs: num(this.get(first, 'compute_ms')),
    };
    return { ...head, ...inst };
  }
}
