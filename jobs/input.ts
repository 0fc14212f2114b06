/**
 * Streaming readers for input files (the CLI) and uploads (POST /v1/jobs with a CSV or NDJSON body):
 * CSV (header matched to the model's features) and NDJSON (one instance per line). Input is read
 * line by line, never whole; each non-blank line
 * after the header is one row with the next index, and blank lines are skipped without an index.
 * A CSV record is one line (quoted fields may hold commas and quotes, not line breaks), so every
 * row knows its line number and a broken line cannot swallow the lines after it.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse/sync';
import type { FeatureSpace } from '../explainers/types.js';
import { ServiceError } from '../service/errors.js';
import { csvLayout, itemFromCsv, itemFromNdjsonLine, type CsvLayout, type InputLayout } from './rows.js';
import type { Item } from './types.js';

export type InputFormat = 'csv' | 'ndjson';

export function inputFormatOf(file: string): InputFormat {
  const f = file.toLowerCase();
  if (f.endsWith('.csv') || f.endsWith('.csv.txt')) return 'csv';
  if (f.endsWith('.ndjson') || f.endsWith('.jsonl') || f.endsWith('.json')) return 'ndjson';
  throw new ServiceError('INVALID_REQUEST', `cannot tell the format of ${file}: name it .csv, .ndjson or .jsonl`);
}

interface Line {
  text: string;
  /** 1-based. */
  line: number;
}

async function* nonBlankLines(source: string | Readable): AsyncGenerator<Line> {
  const input = typeof source === 'string' ? createReadStream(source, { encoding: 'utf8' }) : source;
  const rl = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of rl) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;
      yield { text, line };
    }
  } finally {
    rl.close();
  }
}

/** Splits one CSV line into cells; throws on a malformed line (an unclosed quote ...). */
export function csvCells(text: string): string[] {
  if (!text.includes('"')) return text.split(',');
  const records = parseCsv(text, { relax_column_count: true }) as string[][];
  if (records.length !== 1) throw new Error(`expected one record, found ${records.length}`);
  return records[0];
}

export interface OpenedInput {
  format: InputFormat;
  /** CSV only: how the header maps to features. */
  csv?: CsvLayout;
  /** Rows from `startIndex` on (earlier rows are read past, not parsed). */
  items(startIndex: number): AsyncGenerator<Item>;
}

/**
 * Opens an input file. For CSV the header is read and checked at once (a missing feature column is
 * an error before any work starts). `labelNames`: columns / keys kept as the row's `label`.
 */
export async function openInput(file: string, layout: InputLayout, labelNames: string[] = ['label']): Promise<OpenedInput> {
  return openSource(file, inputFormatOf(file), file, layout, labelNames);
}

/**
 * Opens a stream (an upload) or a file in the given format; `name` names it in messages. A stream
 * can be iterated once.
 */
export async function openSource(
  source: string | Readable,
  format: InputFormat,
  name: string,
  layout: InputLayout,
  labelNames: string[] = ['label'],
): Promise<OpenedInput> {
  const file = name;
  if (format === 'ndjson') {
    const labelKey = labelNames.find((l) => !layout.space.featureNames.includes(l));
    return {
      format,
      async *items(startIndex: number) {
        let index = 0;
        for await (const { text, line } of nonBlankLines(source)) {
          if (index >= startIndex) yield itemFromNdjsonLine(text, layout, index, line, labelKey);
          index++;
        }
      },
    };
  }
  const lines = nonBlankLines(source);
  const first = await lines.next();
  if (first.done) throw new ServiceError('BAD_DATA', `${file} is empty: a CSV input needs a header line naming the features`);
  let header: string[];
  try {
    header = csvCells(first.value.text);
  } catch (e) {
    throw new ServiceError(
      'BAD_DATA',
      `${file} line ${first.value.line}: the header is not valid CSV (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  const csv = csvLayout(header, layout.space as FeatureSpace, labelNames);
  let used = false;
  return {
    format,
    csv,
    async *items(startIndex: number) {
      if (used) throw new Error('openInput(...).items() can be iterated once');
      used = true;
      let index = 0;
      for await (const { text, line } of lines) {
        if (index >= startIndex) {
          let cells: string[];
          try {
            cells = csvCells(text);
          } catch (e) {
            yield {
              index,
              line,
              error: { code: 'BAD_INSTANCE', message: `line ${line}: not valid CSV (${e instanceof Error ? e.message : String(e)})` },
            };
            index++;
            continue;
          }
          yield itemFromCsv(cells, csv, index, line);
        }
        index++;
      }
    },
  };
}

/** Data rows in a file (non-blank lines, less the CSV header), counted without holding the file. */
export async function countRows(file: string, format: InputFormat): Promise<number> {
  let rows = 0;
  let blank = true;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === 10) {
        if (!blank) rows++;
        blank = true;
      } else if (blank && c !== 13 && c !== 32 && c !== 9) blank = false;
    }
  }
  if (!blank) rows++;
  return format === 'csv' ? Math.max(0, rows - 1) : rows;
}
