/** One CSV reading for model data files and job inputs: the same cells give the same rows in both. */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { csvLayout, itemFromCsv } from '../jobs/rows.js';
import { csvNumber, readCsvData } from '../models/csv.js';

describe('CSV rows', () => {
  const features = ['a', 'b', 'c', 'd'];
  const cells = [' 2.5 ', 'true', 'false', '-1e3'];

  it('csvNumber: trimmed numbers, true/false as 1/0, nothing else', () => {
    assert.deepEqual(cells.map(csvNumber), [2.5, 1, 0, -1000]);
    for (const bad of ['', '  ', 'NaN', 'Infinity', 'yes', undefined]) assert.equal(csvNumber(bad), undefined, String(bad));
  });

  it('a model data file and a job input read the same cells to the same row', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'csv-'));
    try {
      await writeFile(path.join(dir, 'data.csv'), `d,c,b,a\n${[...cells].reverse().join(',')}\n`);
      const fromFile = await readCsvData(dir, 'data.csv', features);
      const layout = csvLayout(['d', 'c', 'b', 'a'], { featureNames: features, outputNames: ['y'] });
      const item = itemFromCsv([...cells].reverse(), layout, 0, 2);
      assert.deepEqual(Array.from(fromFile.rows.data), [2.5, 1, 0, -1000]);
      assert.deepEqual(Array.from(item.row!), Array.from(fromFile.rows.data));
      const bad = itemFromCsv(['1', 'x', '2', '3'], layout, 1, 3);
      assert.match(bad.error!.message, /line 3, column "c": "x" is not a number/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
