/**
 * Input rows to Items, one at a time: a row that is wrong (wrong number of values, not a number,
 * NaN, unparseable JSON) becomes an Item with an error that names its line and column, and the job
 * goes on with the next row.
 */
import type { FeatureSpace } from '../explainers/types.js';
import { csvRow } from '../models/csv.js';
import { ServiceError } from '../service/errors.js';
import { parseInstances, type InputLayout } from '../service/instances.js';
import type { Item, RowError } from './types.js';

export type { InputLayout };

function where(index: number, line?: number): string {
  return line !== undefined ? `line ${line}` : `instances[${index}]`;
}

function rowError(e: unknown, fallbackCode = 'BAD_INSTANCE'): RowError {
  if (e instanceof ServiceError) return { code: e.code, message: e.message };
  return { code: fallbackCode, message: e instanceof Error ? e.message : String(e) };
}

/**
 * One JSON instance (array of numbers, nested array of the input shape, or object keyed by feature
 * name) to an Item. `labelKey`: an object key that is kept as the row's label instead of being
 * rejected as an unknown feature.
 */
export function itemFromJson(value: unknown, layout: InputLayout, index: number, line?: number, labelKey?: string): Item {
  const at = where(index, line);
  let label: string | number | undefined;
  let inst = value;
  if (labelKey && inst !== null && typeof inst === 'object' && !Array.isArray(inst) && labelKey in (inst as object)) {
    const { [labelKey]: l, ...rest } = inst as Record<string, unknown>;
    if (typeof l === 'string' || typeof l === 'number') label = l;
    inst = rest;
  }
  try {
    // parseInstances names the row "<label>[0]"; ours has its own name.
    const { rows, tokens } = parseInstances([inst], layout, at);
    const words = tokens?.[0];
    return { index, ...(line !== undefined ? { line } : {}), row: rows.data, ...(label !== undefined ? { label } : {}), ...(words ? { tokens: words } : {}) };
  } catch (e) {
    const err = rowError(e);
    err.message = err.message.split(`${at}[0]`).join(at);
    return { index, ...(line !== undefined ? { line } : {}), error: err, ...(label !== undefined ? { label } : {}) };
  }
}

/** An NDJSON line to an Item. */
export function itemFromNdjsonLine(text: string, layout: InputLayout, index: number, line: number, labelKey?: string): Item {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return {
      index,
      line,
      error: { code: 'BAD_INSTANCE', message: `line ${line}: not valid JSON (${e instanceof Error ? e.message : String(e)})` },
    };
  }
  return itemFromJson(value, layout, index, line, labelKey);
}

/** How CSV columns map to features, from the header. */
export interface CsvLayout {
  header: string[];
  /** Column of each feature, in the model's feature order. */
  columns: number[];
  /** Column kept as the row's label, if any. */
  labelColumn?: number;
  /** Columns neither a feature nor the label (ignored). */
  ignored: string[];
  featureNames: string[];
}

/**
 * Matches a CSV header to the model's features by name (any order). Throws a ServiceError naming the
 * missing columns; extra columns are allowed: `label` (or the model's own label name) is kept,
 * anything else ignored.
 */
export function csvLayout(header: string[], space: FeatureSpace, labelNames: string[] = ['label']): CsvLayout {
  const names = header.map((h) => h.trim());
  const col = new Map<string, number>();
  names.forEach((h, i) => {
    if (col.has(h)) throw new ServiceError('BAD_DATA', `the CSV header names column "${h}" twice`);
    col.set(h, i);
  });
  const missing = space.featureNames.filter((f) => !col.has(f));
  if (missing.length) {
    throw new ServiceError(
      'MISSING_FEATURE',
      `the CSV header lacks ${missing.length} of the model's feature column(s): ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''}` +
        `; the header must name every feature (${space.featureNames.slice(0, 8).join(', ')}${space.featureNames.length > 8 ? ', ...' : ''})`,
      { missing },
    );
  }
  const features = new Set(space.featureNames);
  const labelName = labelNames.find((l) => col.has(l) && !features.has(l));
  const labelColumn = labelName !== undefined ? col.get(labelName) : undefined;
  return {
    header: names,
    columns: space.featureNames.map((f) => col.get(f) as number),
    ...(labelColumn !== undefined ? { labelColumn } : {}),
    ignored: names.filter((h, i) => !features.has(h) && i !== labelColumn),
    featureNames: space.featureNames,
  };
}

function labelValue(raw: string | undefined): string | number | undefined {
  if (raw === undefined) return undefined;
  const t = raw.trim();
  if (t === '') return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : t;
}

/** One CSV record (already split into cells) to an Item. */
export function itemFromCsv(cells: string[], layout: CsvLayout, index: number, line: number): Item {
  const label = layout.labelColumn !== undefined ? labelValue(cells[layout.labelColumn]) : undefined;
  const base = { index, line, ...(label !== undefined ? { label } : {}) };
  if (cells.length !== layout.header.length) {
    return {
      ...base,
      error: {
        code: 'BAD_INSTANCE',
        message: `line ${line}: ${cells.length} value(s) but the header has ${layout.header.length} column(s)`,
      },
    };
  }
  const row = new Float32Array(layout.columns.length);
  const bad = csvRow(cells, layout.columns, row);
  if (!bad) return { ...base, row };
  const name = layout.featureNames[bad.column];
  const raw = bad.raw.trim();
  if (raw === '') return { ...base, error: { code: 'BAD_INSTANCE', message: `line ${line}, column "${name}": missing value` } };
  const shown = JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}...` : raw);
  return {
    ...base,
    error: {
      code: 'BAD_INSTANCE',
      message: `line ${line}, column "${name}": ${shown} is not a ${Number.isNaN(Number(raw)) ? 'number' : 'finite number'}`,
    },
  };
}
