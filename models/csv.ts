/**
 * Background and reference data files of a model folder. Columns are matched by header name, so a
 * file written with its columns in another order (or with extra columns, such as an id) still
 * lines up with the model's features.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import type { Rows } from '../explainers/types.js';
import { escapes, fsReason } from './fsio.js';

export interface CsvData {
  rows: Rows;
  /** Raw cells of the label column, when one was asked for. */
  labels?: string[];
}

/** Reads `rel` (relative to `folder`) into rows in `features` order, plus the `label` column. */
export async function readCsvData(folder: string, rel: string, features: string[], label?: string): Promise<CsvData> {
  if (escapes(rel)) throw new Error(`data file "${rel}" leaves the model folder (no "..", no absolute paths)`);
  const file = path.join(folder, rel);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`data file ${rel} named in metadata.json ${fsReason(e)}`);
  }
  let records: string[][];
  try {
    records = parse(text, { bom: true, trim: true, skip_empty_lines: true }) as string[][];
  } catch (e) {
    throw new Error(`${rel}: not valid CSV (${e instanceof Error ? e.message : String(e)})`);
  }
  if (records.length < 2) throw new Error(`${rel}: needs a header row and at least one data row`);

  const header = records[0];
  const col = new Map<string, number>();
  for (const [i, h] of header.entries()) {
    if (col.has(h)) throw new Error(`${rel}: column "${h}" appears twice in the header`);
    col.set(h, i);
  }
  const missing = features.filter((f) => !col.has(f));
  if (missing.length)
    throw new Error(
      `${rel}: header lacks ${missing.length} feature column(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ' ...' : ''}`,
    );
  if (label !== undefined && !col.has(label)) throw new Error(`${rel}: header lacks the label column "${label}"`);

  const idx = features.map((f) => col.get(f) as number);
  const n = records.length - 1;
  const d = features.length;
  const data = new Float32Array(n * d);
  for (let r = 0; r < n; r++) {
    const cells = csvRow(records[r + 1], idx, data.subarray(r * d, (r + 1) * d));
    // +2: the header is line 1 and lines count from 1 (for files without blank lines).
    if (cells) throw new Error(`${rel} line ${r + 2}, column "${features[cells.column]}": "${cells.raw}" is not a number`);
  }
  const labels = label === undefined ? undefined : records.slice(1).map((rec) => rec[col.get(label) as number] ?? '');
  return { rows: { data, n, d }, labels };
}

/**
 * One CSV cell as a number: the one reading every CSV input uses (model data files, job inputs).
 * Surrounding blanks are trimmed; true/false are 1/0; empty, NaN and infinities are not numbers.
 */
export function csvNumber(cell: string | undefined): number | undefined {
  const t = cell?.trim();
  if (t === undefined || t === '') return undefined;
  if (t === 'true') return 1;
  if (t === 'false') return 0;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * Fills `out` with the cells at `columns` of one record, by csvNumber; returns the first cell that
 * is not a number (its position in `columns` and its text), or undefined when the row is whole.
 */
export function csvRow(cells: string[], columns: number[], out: Float32Array): { column: number; raw: string } | undefined {
  for (let j = 0; j < columns.length; j++) {
    const v = csvNumber(cells[columns[j]]);
    if (v === undefined) return { column: j, raw: cells[columns[j]] ?? '' };
    out[j] = v;
  }
  return undefined;
}

/** Labels as numbers: class names through `classes` (to their index), or numeric cells as they are. */
export function labelValues(rel: string, labels: string[], classes?: string[]): Float32Array {
  const byName = new Map((classes ?? []).map((c, i) => [c, i]));
  const out = new Float32Array(labels.length);
  for (const [i, cell] of labels.entries()) {
    let v = byName.get(cell) ?? csvNumber(cell);
    // With classes, a numeric label is a class index and must name one of them.
    if (classes && v !== undefined && !byName.has(cell) && !(Number.isInteger(v) && v >= 0 && v < classes.length)) v = undefined;
    if (v === undefined) {
      const known = classes ? `; classes are ${classes.join(', ')}` : '; give "classes" in metadata.json to use class names';
      throw new Error(`${rel} line ${i + 2}: label "${cell}" is not a number or a known class${known}`);
    }
    out[i] = v;
  }
  return out;
}
