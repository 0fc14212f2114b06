import assert from 'node:assert/strict';
import { checkRows, playersOf, predictChunked, rowsPerCall } from '../explainers/rows.js';
import { ExplainerInputError, type Model, type Rows } from '../explainers/types.js';

/** y = (sum of the row, row index marker) per row; records every call's row count. */
function summingModel(d: number): Model & { calls: number[] } {
  return {
    nFeatures: d,
    nOutputs: 2,
    calls: [],
    async predict(r: Rows) {
      this.calls.push(r.n);
      const out = new Float32Array(r.n * 2);
      for (let i = 0; i < r.n; i++) {
        let s = 0;
        for (let j = 0; j < r.d; j++) s += r.data[i * r.d + j];
        out[2 * i] = s;
        out[2 * i + 1] = r.data[i * r.d];
      }
      return out;
    },
  };
}

function failsWith(f: () => unknown, code: string, message: RegExp, details?: unknown): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ExplainerInputError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, message);
    if (details !== undefined) assert.deepEqual(e.details, details);
    return true;
  });
}

describe('explainers/rows: the checks and model calls every explainer shares', () => {
  const rule = { code: 'BAD_INSTANCES', what: 'instances' };

  it('checkRows accepts an n x d matrix of finite numbers and returns it', () => {
    const rows = { data: Float32Array.of(1, 2, 3, 4, 5, 6), n: 2, d: 3 };
    assert.equal(checkRows(rows, 3, rule), rows);
  });

  it('checkRows names each mistake with the rule code, the rows, and the place', () => {
    failsWith(() => checkRows(undefined, 3, rule), 'BAD_INSTANCES', /^instances must be a matrix of numbers$/);
    failsWith(() => checkRows({ data: [1, 2, 3] as unknown as Float32Array, n: 1, d: 3 }, 3, rule), 'BAD_INSTANCES', /matrix of numbers/);
    failsWith(() => checkRows({ data: new Float32Array(0), n: 0, d: 3 }, 3, rule), 'BAD_INSTANCES', /^instances is empty: give at least one row$/);
    failsWith(
      () => checkRows({ data: new Float32Array(4), n: 2, d: 2 }, 3, { code: 'BAD_BACKGROUND', what: 'background' }),
      'BAD_BACKGROUND',
      /^background rows have 2 values but the model takes 3: send rows of 3 numbers$/,
      { expected: 3, got: 2 },
    );
    failsWith(() => checkRows({ data: new Float32Array(7), n: 2, d: 3 }, 3, rule), 'BAD_INSTANCES', /^instances holds 7 values, not 2 x 3$/);
    failsWith(
      () => checkRows({ data: Float32Array.of(0, 0, 0, 0, Number.NaN, 0), n: 2, d: 3 }, 3, rule),
      'BAD_INSTANCES',
      /^instances row 1, column 1 is not a finite number: replace missing values$/,
      { row: 1, column: 1 },
    );
    failsWith(() => checkRows({ data: Float32Array.of(Infinity, 0, 0), n: 1, d: 3 }, 3, rule), 'BAD_INSTANCES', /row 0, column 0/);
  });

  it('checkRows: a rule may ask for more rows, with its own code and message, and its own fix for the width', () => {
    const two = { code: 'BAD_DATA', what: 'data', minRows: 2, tooFew: { message: 'needs at least 2 rows' } };
    failsWith(() => checkRows({ data: new Float32Array(3), n: 1, d: 3 }, 3, two), 'BAD_DATA', /^needs at least 2 rows$/);
    assert.ok(checkRows({ data: new Float32Array(6), n: 2, d: 3 }, 3, two));
    const empty = { code: 'BAD_DATA', what: 'data', tooFew: { code: 'EMPTY_DATA', message: 'no rows' } };
    failsWith(() => checkRows({ data: new Float32Array(0), n: 0, d: 3 }, 3, empty), 'EMPTY_DATA', /^no rows$/);
    failsWith(() => checkRows({ data: new Float32Array(2), n: 1, d: 2 }, 3, { ...rule, fix: 'send images' }), 'BAD_INSTANCES', /takes 3: send images$/);
  });

  it('playersOf: groups as players (columns sorted), other features alone, ordered by first column', () => {
    assert.deepEqual(playersOf(undefined, 3), [{ columns: [0] }, { columns: [1] }, { columns: [2] }]);
    assert.deepEqual(playersOf([[4, 1], [2]], 5), [{ columns: [0] }, { columns: [1, 4], group: 0 }, { columns: [2], group: 1 }, { columns: [3] }]);
  });

  it('playersOf refuses empty groups, columns out of range and columns in two groups (BAD_GROUPS)', () => {
    failsWith(() => playersOf([[]], 3), 'BAD_GROUPS', /^group 0 is empty/);
    failsWith(() => playersOf([[0, 3]], 3), 'BAD_GROUPS', /^group 0 names feature 3, not in 0\.\.2$/);
    failsWith(() => playersOf([[0, 1], [1, 2]], 3), 'BAD_GROUPS', /^feature 1 is in more than one group/);
    failsWith(() => playersOf([[0, 0]], 3), 'BAD_GROUPS', /twice in group 0/);
  });

  it('predictChunked: calls of at most maxRowsPerCall rows, the same outputs as one call, in row order', async () => {
    const d = 3;
    const n = 10;
    const rows = { data: Float32Array.from({ length: n * d }, (_, k) => k), n, d };
    const whole = summingModel(d);
    const one = await predictChunked(whole, rows, 100);
    assert.deepEqual(whole.calls, [10]);
    const chunked = summingModel(d);
    const parts = await predictChunked(chunked, rows, 4);
    assert.deepEqual(chunked.calls, [4, 4, 2]);
    assert.deepEqual(parts, one);
    for (let i = 0; i < n; i++) assert.equal(one[2 * i + 1], i * d, `row ${i} in place`);
  });

  it('predictChunked: a model that returns the wrong number of values is an error (not a caller mistake); an aborted signal stops before the next call', async () => {
    const broken: Model = { nFeatures: 2, nOutputs: 2, predict: async (r) => new Float32Array(r.n) };
    await assert.rejects(predictChunked(broken, { data: new Float32Array(4), n: 2, d: 2 }, 8), (e: unknown) => {
      assert.ok(e instanceof Error && !(e instanceof ExplainerInputError));
      assert.match(e.message, /returned 2 values for 2 rows of 2 outputs/);
      return true;
    });
    const m = summingModel(2);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(predictChunked(m, { data: new Float32Array(4), n: 2, d: 2 }, 1, controller.signal));
    assert.deepEqual(m.calls, []);
  });

  it('predictChunked: a function sizes each call when asked, and onCall hears every call (rows, ms)', async () => {
    const rows = { data: Float32Array.from({ length: 20 }, (_, k) => k), n: 10, d: 2 };
    const m = summingModel(2);
    const sizes = [1, 2, 3, 100];
    const heard: number[] = [];
    const out = await predictChunked(m, rows, () => sizes.shift()!, undefined, (n, ms) => {
      assert.ok(ms >= 0 && Number.isFinite(ms));
      heard.push(n);
    });
    assert.deepEqual(m.calls, [1, 2, 3, 4]);
    assert.deepEqual(heard, [1, 2, 3, 4]);
    assert.deepEqual(out, await predictChunked(summingModel(2), rows, 10));
  });

  it('rowsPerCall: the option when given, else about `values` input values per call, at least one row', () => {
    assert.equal(rowsPerCall(100, 7), 7);
    assert.equal(rowsPerCall(1000), Math.floor(2 ** 23 / 1000));
    assert.equal(rowsPerCall(1000, undefined, 2 ** 22), Math.floor(2 ** 22 / 1000));
    assert.equal(rowsPerCall(2 ** 24), 1);
  });
});
