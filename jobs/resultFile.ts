/**
 * A results file that survives `kill -9` at any moment.
 *
 * Chunks are appended in order as whole lines and fsync'd; then a checkpoint next to the file
 * (`<file>.checkpoint.json`, written to a temporary file, fsync'd and renamed over the old one)
 * records how many bytes are committed and the first input index not yet in them. A crash can leave
 * bytes past the checkpoint (a chunk written but not recorded, or half written): on resume they are
 * cut off and their chunk is redone from the input. The checkpoint also holds a fingerprint of the
 * job's recipe (model version, method, parameters, chunk size, input), so a resume with other
 * settings is refused instead of mixing two jobs' values in one file.
 *
 * Without a checkpoint (a file from elsewhere, or the checkpoint deleted), resume falls back to the
 * file itself: a partial last line is cut off, the last complete record's index is read, and work
 * continues after it (for CSV, the last index's lines are redone, since an instance with several
 * outputs may have been cut between them).
 */
import { createReadStream } from 'node:fs';
import { open, readFile, rename, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { ServiceError } from '../service/errors.js';
import { csvHeader, csvLine, csvLineIndex, csvRecordLines, CsvRecordReader, type CsvColumns } from './csvOutput.js';
import { csvCells } from './input.js';
import { isErrorRecord, isExplainedRecord, MAX_STATUS_ERRORS, type ResultRecord } from './types.js';

export type OutputFormat = 'ndjson' | 'csv';

export function outputFormatOf(file: string): OutputFormat {
  const f = file.toLowerCase();
  if (f.endsWith('.csv')) return 'csv';
  if (f.endsWith('.ndjson') || f.endsWith('.jsonl') || f.endsWith('.json')) return 'ndjson';
  throw new ServiceError('INVALID_REQUEST', `cannot tell the output format of ${file}: name it .ndjson, .jsonl or .csv`);
}

export interface StatusError {
  index: number;
  line?: number;
  code: string;
  message: string;
}

export interface Checkpoint {
  version: 1;
  fingerprint: string;
  /** Bytes of the results file that hold whole, committed chunks. */
  bytes: number;
  /** First input row index not in the committed bytes. */
  nextIndex: number;
  rowsDone: number;
  rowsFailed: number;
  /** Explained rows that stopped before converging (stopReason budget or deadline); absent in older checkpoints. */
  rowsUnconverged?: number;
  errors: StatusError[];
  done: boolean;
  updatedAt: string;
}

export interface OpenOptions {
  path: string;
  format: OutputFormat;
  fingerprint: string;
  /** Continue a previous run's file. */
  resume: boolean;
  /** Without resume: replace an existing non-empty file (otherwise refuse). */
  overwrite?: boolean;
  csv?: CsvColumns;
  /** fsync data and checkpoint (default true). */
  sync?: boolean;
}

export const checkpointPath = (file: string) => `${file}.checkpoint.json`;

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Complete lines of `file` (up to `limit` bytes) with their byte offsets; the tail after the last newline is not a line. */
async function* linesWithOffsets(file: string, limit = Infinity): AsyncGenerator<{ text: string; start: number; end: number }> {
  let carry: Buffer = Buffer.alloc(0);
  let base = 0; // file offset of carry[0]
  const stream = createReadStream(file, Number.isFinite(limit) ? { end: Math.max(0, limit - 1) } : {});
  if (limit <= 0) {
    stream.destroy();
    return;
  }
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let from = 0;
    for (let nl = buf.indexOf(10, from); nl >= 0; nl = buf.indexOf(10, from)) {
      yield { text: buf.toString('utf8', from, nl), start: base + from, end: base + nl + 1 };
      from = nl + 1;
    }
    base += from;
    carry = buf.subarray(from);
    buf = carry;
  }
}

function addError(cp: Pick<Checkpoint, 'errors'>, r: ResultRecord): void {
  if (isErrorRecord(r) && cp.errors.length < MAX_STATUS_ERRORS) {
    cp.errors.push({ index: r.index, ...(r.line !== undefined ? { line: r.line } : {}), code: r.error.code, message: r.error.message });
  }
}

export class ResultFile {
  private constructor(
    readonly path: string,
    readonly format: OutputFormat,
    private fh: FileHandle,
    private cp: Checkpoint,
    private readonly csv: CsvColumns | undefined,
    private readonly sync: boolean,
    /** How the file was opened, for the user. */
    readonly opened: 'new' | 'resumed' | 'resumed-without-checkpoint',
  ) {}

  get checkpoint(): Readonly<Checkpoint> {
    return this.cp;
  }

  static async open(o: OpenOptions): Promise<ResultFile> {
    if (o.format === 'csv' && !o.csv) throw new Error('a CSV results file needs its columns');
    const size = await sizeOf(o.path);
    const fresh = (): Checkpoint => ({
      version: 1,
      fingerprint: o.fingerprint,
      bytes: 0,
      nextIndex: 0,
      rowsDone: 0,
      rowsFailed: 0,
      rowsUnconverged: 0,
      errors: [],
      done: false,
      updatedAt: new Date().toISOString(),
    });
    let cp = fresh();
    let opened: ResultFile['opened'] = 'new';
    if (size !== undefined && size > 0 && !o.resume && !o.overwrite) {
      throw new ServiceError('INVALID_REQUEST', `${o.path} exists: pass --resume to continue it, or --overwrite to start it again`);
    }
    if (size !== undefined && size > 0 && o.resume) {
      const saved = await readCheckpoint(o.path);
      if (saved) {
        if (saved.fingerprint !== o.fingerprint) {
          throw new ServiceError(
            'INVALID_REQUEST',
            `${o.path} was written by a job with other settings (model version, method, parameters, chunk size or input differ); ` +
              'resume with the same settings, or use --overwrite to start again',
          );
        }
        if (size < saved.bytes) {
          throw new ServiceError(
            'BAD_DATA',
            `${o.path} is shorter (${size} bytes) than its checkpoint says (${saved.bytes}); it was changed by something else`,
          );
        }
        cp = saved;
        opened = 'resumed';
      } else {
        cp = await scanExisting(o, fresh());
        opened = 'resumed-without-checkpoint';
      }
      if (size > cp.bytes) await truncate(o.path, cp.bytes);
    } else if (size !== undefined) {
      await truncate(o.path, 0);
    }
    const fh = await open(o.path, 'a');
    const file = new ResultFile(o.path, o.format, fh, cp, o.csv, o.sync ?? true, opened);
    if (cp.bytes === 0 && o.format === 'csv') {
      await file.write(csvLine(csvHeader(o.csv!)));
      cp.bytes = (await fh.stat()).size;
    }
    if (opened === 'new' || opened === 'resumed-without-checkpoint') await file.saveCheckpoint();
    return file;
  }

  private async write(text: string): Promise<void> {
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += (await this.fh.write(buf, off, buf.length - off)).bytesWritten;
  }

  serialize(records: ResultRecord[]): string {
    let text = '';
    for (const r of records) text += this.format === 'csv' ? csvRecordLines(r, this.csv!) : JSON.stringify(r) + '\n';
    return text;
  }

  /** Appends one chunk's records and commits them; `nextIndex`: the first input index after the chunk. */
  async append(records: ResultRecord[], nextIndex: number): Promise<void> {
    const text = this.serialize(records);
    await this.write(text);
    if (this.sync) await this.fh.datasync();
    this.cp.bytes += Buffer.byteLength(text, 'utf8');
    this.cp.nextIndex = nextIndex;
    this.cp.rowsDone += records.length;
    for (const r of records) {
      if (isErrorRecord(r)) this.cp.rowsFailed++;
      // Counterfactual and effects rows have no convergence to count.
      else if (isExplainedRecord(r) && !r.converged) this.cp.rowsUnconverged = (this.cp.rowsUnconverged ?? 0) + 1;
      addError(this.cp, r);
    }
    await this.saveCheckpoint();
  }

  async markDone(): Promise<void> {
    this.cp.done = true;
    await this.saveCheckpoint();
  }

  private async saveCheckpoint(): Promise<void> {
    this.cp.updatedAt = new Date().toISOString();
    const target = checkpointPath(this.path);
    const tmp = `${target}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(this.cp));
      if (this.sync) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

export async function readCheckpoint(file: string): Promise<Checkpoint | undefined> {
  let text: string;
  try {
    text = await readFile(checkpointPath(file), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const cp = JSON.parse(text) as Checkpoint;
    if (cp.version !== 1 || typeof cp.bytes !== 'number') return undefined;
    return cp;
  } catch {
    return undefined; // a torn checkpoint cannot exist (rename is atomic), but a hand-edited one can
  }
}

export async function removeCheckpoint(file: string): Promise<void> {
  await unlink(checkpointPath(file)).catch(() => undefined);
}

/** Rebuilds a checkpoint from the file alone (see the file comment). */
async function scanExisting(o: OpenOptions, cp: Checkpoint): Promise<Checkpoint> {
  let bytes = 0;
  let last: number | undefined;
  let lastStart = 0;
  let headerOk = o.format !== 'csv';
  const rows = new Map<number, boolean>(); // csv: index -> failed
  const unconverged = new Set<number>(); // csv: indices explained without converging
  for await (const { text, start, end } of linesWithOffsets(o.path)) {
    if (o.format === 'csv') {
      if (!headerOk) {
        const want = csvHeader(o.csv!).join(',');
        if (csvCells(text).join(',') !== want) {
          throw new ServiceError('BAD_DATA', `${o.path} does not start with this job's CSV header; use --overwrite to start again`);
        }
        headerOk = true;
        bytes = end;
        continue;
      }
      const index = csvLineIndex(text);
      if (index === undefined) break;
      if (index !== last) lastStart = start;
      last = index;
      const cells = csvCells(text);
      const code = cells[csvHeader(o.csv!).indexOf('error_code')];
      rows.set(index, !!code);
      if (!code && cells[csvHeader(o.csv!).indexOf('converged')] === 'false') unconverged.add(index);
      if (code && cp.errors.length < MAX_STATUS_ERRORS) {
        const c = csvCells(text);
        cp.errors.push({ index, code, message: c[csvHeader(o.csv!).indexOf('error_message')] ?? '' });
      }
      bytes = end;
    } else {
      let r: ResultRecord;
      try {
        r = JSON.parse(text) as ResultRecord;
      } catch {
        break;
      }
      if (typeof r?.index !== 'number') break;
      cp.rowsDone++;
      if (isErrorRecord(r)) cp.rowsFailed++;
      else if (isExplainedRecord(r) && !r.converged) cp.rowsUnconverged = (cp.rowsUnconverged ?? 0) + 1;
      addError(cp, r);
      last = r.index;
      bytes = end;
    }
  }
  if (o.format === 'csv') {
    if (last !== undefined) {
      // The last instance may have lost some of its output lines: redo it.
      rows.delete(last);
      unconverged.delete(last);
      cp.errors = cp.errors.filter((e) => e.index !== last);
      bytes = lastStart;
      cp.nextIndex = last;
    }
    cp.rowsDone = rows.size;
    cp.rowsFailed = [...rows.values()].filter(Boolean).length;
    cp.rowsUnconverged = unconverged.size;
  } else {
    cp.nextIndex = last === undefined ? 0 : last + 1;
  }
  cp.bytes = bytes;
  return cp;
}

/** The committed records of a results file, in order (`limit`: committed bytes; default the checkpoint's). */
export async function* readRecords(file: string, format: OutputFormat, csv?: CsvColumns, limit?: number): AsyncGenerator<ResultRecord> {
  const bytes = limit ?? (await readCheckpoint(file))?.bytes ?? Infinity;
  if (format === 'ndjson') {
    for await (const { text } of linesWithOffsets(file, bytes)) {
      if (text.trim()) yield JSON.parse(text) as ResultRecord;
    }
    return;
  }
  let reader: CsvRecordReader | undefined;
  for await (const { text } of linesWithOffsets(file, bytes)) {
    if (!reader) {
      reader = new CsvRecordReader(csvCells(text), csv!);
      continue;
    }
    const r = reader.push(text);
    if (r) yield r;
  }
  const r = reader?.flush();
  if (r) yield r;
}
