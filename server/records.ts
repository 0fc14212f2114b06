/**
 * What it takes to recompute an explanation from its id: the model, its version and the request
 * body, persisted as one small JSON file per id under DATA_DIR/explanations. A link pasted into a
 * ticket keeps working after the result left the cache and after a restart.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { ExplainBody } from './routes/explain.js';

export interface ExplanationRecord {
  model: string;
  version: string;
  body: ExplainBody;
}

const ID = /^[0-9a-f]{32}$/;

export class ExplanationRecords {
  private readonly memory = new LRUCache<string, ExplanationRecord>({ max: 10_000 });
  // Bounded: forgetting an id only costs one more (idempotent) write.
  private readonly written = new LRUCache<string, Promise<void>>({ max: 100_000 });
  constructor(readonly dir: string) {}

  static isId(id: string): boolean {
    return ID.test(id);
  }

  /** Persists once per id; concurrent puts of one id share the write. */
  put(id: string, record: ExplanationRecord): Promise<void> {
    this.memory.set(id, record);
    let writing = this.written.get(id);
    if (!writing) {
      writing = this.write(id, record);
      this.written.set(id, writing);
      writing.catch(() => this.written.delete(id));
    }
    return writing;
  }

  private async write(id: string, record: ExplanationRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `${id}.json`);
    // Write then rename: a crash never leaves a half-written record behind.
    const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(tmp, JSON.stringify(record));
    await rename(tmp, file);
  }

  async get(id: string): Promise<ExplanationRecord | undefined> {
    if (!ExplanationRecords.isId(id)) return undefined;
    const hit = this.memory.get(id);
    if (hit) return hit;
    try {
      const record = JSON.parse(await readFile(path.join(this.dir, `${id}.json`), 'utf8')) as ExplanationRecord;
      this.memory.set(id, record);
      return record;
    } catch {
      return undefined;
    }
  }
}
