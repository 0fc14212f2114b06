import assert from 'node:assert/strict';
import { kmeans } from '../explainers/kmeans.js';
import { seededRng, normal } from '../explainers/random.js';
import type { Rows } from '../explainers/types.js';

/** Three well-separated blobs, an integer column and a one-hot pair. */
function blobs(n: number, seed: number): Rows {
  const rng = seededRng(seed);
  const d = 5;
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    data[i * d] = c * 10 + normal(rng);
    data[i * d + 1] = -c * 10 + normal(rng);
    data[i * d + 2] = Math.floor(rng() * 5);
    const hot = rng() < 0.5 ? 3 : 4;
    data[i * d + hot] = 1;
  }
  return { data, n, d };
}

function columnValues(rows: Rows, j: number): Set<number> {
  const s = new Set<number>();
  for (let i = 0; i < rows.n; i++) s.add(rows.data[i * rows.d + j]);
  return s;
}

describe('kmeans', () => {
  it('weights sum to the number of rows and every centroid value occurs in its column', () => {
    const rows = blobs(300, 1);
    const km = kmeans(rows, { k: 12, seed: 3 });
    assert.equal(km.centroids.d, 5);
    assert.ok(km.centroids.n <= 12 && km.centroids.n >= 3);
    assert.equal(km.weights.length, km.centroids.n);
    assert.equal(km.weights.reduce((a, b) => a + b, 0), 300);
    for (let j = 0; j < 5; j++) {
      const values = columnValues(rows, j);
      for (let c = 0; c < km.centroids.n; c++) assert.ok(values.has(km.centroids.data[c * 5 + j]), `column ${j}`);
    }
    // One-hot columns stay one-hot-ish values (0 or 1), integers stay integers.
    for (let c = 0; c < km.centroids.n; c++) {
      assert.ok(Number.isInteger(km.centroids.data[c * 5 + 2]));
      assert.ok([0, 1].includes(km.centroids.data[c * 5 + 3]));
    }
    // Cluster sizes agree with the assignment.
    const counts = new Array(km.centroids.n).fill(0);
    km.assignment.forEach((a) => counts[a]++);
    assert.deepEqual(counts, Array.from(km.weights));
  });

  it('is deterministic for a seed, and finds well-separated blobs', () => {
    const rows = blobs(240, 2);
    const a = kmeans(rows, { k: 3, seed: 5, snap: false });
    const b = kmeans(rows, { k: 3, seed: 5, snap: false });
    assert.deepEqual(a.centroids.data, b.centroids.data);
    assert.deepEqual(a.weights, b.weights);
    assert.deepEqual(Array.from(a.weights).sort((x, y) => x - y), [80, 80, 80]);
    assert.ok(a.converged);
  });

  it('uses row weights, and copes with fewer distinct rows than k', () => {
    const rows: Rows = { n: 6, d: 2, data: Float32Array.of(0, 0, 0, 0, 1, 1, 1, 1, 5, 5, 5, 5) };
    const km = kmeans(rows, { k: 5, seed: 1, weights: [1, 2, 3, 4, 5, 6] });
    assert.equal(km.centroids.n, 3);
    assert.equal(km.weights.reduce((a, b) => a + b, 0), 21);
    const byValue = new Map<number, number>();
    for (let c = 0; c < 3; c++) byValue.set(km.centroids.data[c * 2], km.weights[c]);
    assert.deepEqual([byValue.get(0), byValue.get(1), byValue.get(5)], [3, 7, 11]);
  });
});
