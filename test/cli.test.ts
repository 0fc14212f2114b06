/**
 * The `tfjs-explain` command, run as a real process through its bin shim: bad lines reported with
 * their line numbers, summary files, CSV output, and `kill -9` at random moments followed by
 * --resume, which must give every input row exactly once with the values of an uninterrupted run.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { seededRng } from '../explainers/random.js';
import { main } from '../cli/main.js';
import { outputColumns } from '../jobs/fileJob.js';
import { checkpointPath, readCheckpoint, readRecords } from '../jobs/resultFile.js';
import { isExplainedRecord, type ResultRecord } from '../jobs/types.js';

const BIN = path.resolve('cli/bin.js');
/** credit's one-hot group, from its metadata.json: the CSV has its columns, the records read back have the group. */
const HOUSING = [{ name: 'housing', columns: [8, 9, 10], categories: ['rent', 'own', 'mortgage'] }];
const N_GOOD = 150;

function stable(r: ResultRecord): unknown {
  const { computeMs: _t, ...rest } = r as ResultRecord & { computeMs?: number };
  return rest;
}

/** What a CSV line carries: the per-instance stopReason and diagnostics have no CSV columns. */
function csvStable(r: ResultRecord): unknown {
  const { computeMs: _t, stopReason: _s, diagnostics: _d, ...rest } = r as ResultRecord & { computeMs?: number; stopReason?: string; diagnostics?: unknown };
  return rest;
}

async function ndjson(file: string): Promise<ResultRecord[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

interface Run {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** ms since spawn at which each stderr chunk arrived. */
  startedAt: number;
}

function spawnCli(args: string[]): Run {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited, startedAt: Date.now() };
}

/** Resolves `ms` after the run reports its first committed chunk (or when it exits). */
function afterFirstCommit(run: Run, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      if (/progress: \d+\//.test(String(d))) {
        run.child.stderr!.off('data', onData);
        setTimeout(resolve, ms);
      }
    };
    run.child.stderr!.on('data', onData);
    run.child.on('exit', () => resolve());
  });
}

function sink(): Writable & { text: string; isTTY?: boolean } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      w.text += chunk;
      cb();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
}

describe('cli: tfjs-explain explain', function () {
  this.timeout(180_000);
  let tmp: string;
  let input: string;
  let baseline: ResultRecord[];
  let baselineMs = 0;
  let firstProgressMs = 0;
  /** Input line -> what a bad line should report. */
  const bad = new Map<number, RegExp>();
  const common = (out: string, workers = 2) => [
    'explain',
    '--model',
    'credit',
    '--input',
    input,
    '--output',
    out,
    '--method',
    'kernel-shap',
    '--n-samples',
    '100',
    '--seed',
    '3',
    '--chunk-size',
    '8',
    '--workers',
    String(workers),
    '--progress',
    'lines',
  ];

  const baselineFeatures = () => {
    const good = baseline.find((r) => !('error' in r)) as ResultRecord & { outputs: { attributions: { feature: string }[] }[] };
    return good.outputs[0].attributions.map((a) => a.feature);
  };

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'cli-test-'));
    const ref = (await readFile('samples/models/credit/reference.csv', 'utf8')).trim().split('\n');
    // An extra "note" column (ignored, some cells quoted with commas), a blank line, and bad lines.
    const lines = [`${ref[0]},note`];
    for (let i = 1; i <= N_GOOD; i++) {
      lines.push(`${ref[i]},${i % 3 ? 'plain' : '"with, comma ""quoted"""'}`);
      const line = lines.length + 1; // the next line's number
      if (i === 20) {
        lines.push('1,2,3');
        bad.set(line, /3 value\(s\) but the header has 16/);
      } else if (i === 45) {
        lines.push(ref[i].replace(/^[^,]*,[^,]*/, '30,lots') + ',x');
        bad.set(line, /column "income": "lots" is not a number/);
      } else if (i === 60) {
        lines.push('');
      } else if (i === 99) {
        lines.push(`${ref[i]},"unclosed`);
        bad.set(line, /not valid CSV/);
      }
    }
    input = path.join(tmp, 'input.csv');
    await writeFile(input, lines.join('\n') + '\n');
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('explains a CSV file into NDJSON with bad lines reported by line, a summary and progress lines', async () => {
    const out = path.join(tmp, 'baseline.ndjson');
    const summary = path.join(tmp, 'summary');
    const run = spawnCli([...common(out), '--summary-dir', summary]);
    let progressAt = 0;
    run.child.stderr!.on('data', (d: Buffer) => {
      if (!progressAt && /progress: \d+\//.test(String(d))) progressAt = Date.now() - run.startedAt;
    });
    const { code, stderr } = await run.exited;
    baselineMs = Date.now() - run.startedAt;
    firstProgressMs = progressAt || baselineMs / 2;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /ignoring input column\(s\) that are not features: note/);
    assert.match(stderr, /progress: \d+\/\d+ rows \([\d.]+%\), [\d.?]+ rows\/s, ETA/);
    assert.match(stderr, /done: 153 row\(s\), 3 failed/);
    baseline = await ndjson(out);
    assert.deepEqual(
      baseline.map((r) => r.index),
      Array.from({ length: N_GOOD + 3 }, (_, i) => i),
    );
    const errors = baseline.filter((r) => 'error' in r) as (ResultRecord & { error: { message: string } })[];
    assert.deepEqual(
      errors.map((e) => e.line),
      [...bad.keys()],
    );
    for (const e of errors) assert.match(e.error.message, bad.get(e.line!)!);
    assert.match(errors[0].error.message, /^line \d+:/);
    // The last line counts the rows that stopped before converging, as their records say.
    const unconverged = baseline.filter((r) => isExplainedRecord(r) && !r.converged).length;
    assert.ok(unconverged > 0, 'nSamples 100 leaves some rows short of the tolerance');
    assert.match(stderr, new RegExp(`done: 153 row\\(s\\), 3 failed, ${unconverged} stopped before converging`));
    assert.match(stderr, /stopReason budget; their values are estimates/);
    assert.ok(baseline.every((r) => !isExplainedRecord(r) || (r.converged ? ['exact', 'tolerance'] : ['budget', 'deadline']).includes(r.stopReason!)));
    const good = baseline.find((r) => r.index === 0) as ResultRecord & { outputs: { attributions: unknown[] }[] };
    assert.equal(good.line, 2);
    assert.equal(good.label, 1);
    assert.equal(good.outputs[0].attributions.length, 14);
    for (const f of ['beeswarm.svg', 'mean-abs.svg', 'report.html']) assert.ok(existsSync(path.join(summary, f)), f);
    assert.match(await readFile(path.join(summary, 'beeswarm.svg'), 'utf8'), /^<svg[\s\S]*over 150 explanations/);
    const cp = await readCheckpoint(out);
    assert.equal(cp!.done, true);
    assert.equal(cp!.bytes, (await stat(out)).size);
  });

  it('resumes after kill -9 at random moments: every row exactly once, values equal to the uninterrupted run', async () => {
    assert.ok(baseline, 'needs the baseline run');
    const out = path.join(tmp, 'killed.ndjson');
    // Random kill moments; KILL_SEED=<n> replays a run (the seed is in every failure message).
    const seed = Number(process.env.KILL_SEED ?? Date.now() % 1e6);
    const rng = seededRng(seed);
    // Kill moments: one during start-up, one just after the first chunk is committed (surely
    // mid-work), then one anywhere in a run's lifetime.
    const kills: ({ at: number } | { afterFirstCommit: number })[] = [
      { at: firstProgressMs * 0.8 * rng() },
      { afterFirstCommit: 150 * rng() },
      { at: baselineMs * rng() },
    ];
    const partial: number[] = [];
    let completedEarly = false;
    for (const k of kills) {
      const run = spawnCli([...common(out), '--resume']);
      if ('at' in k) await new Promise((r) => setTimeout(r, k.at));
      else {
        await afterFirstCommit(run, k.afterFirstCommit);
      }
      if (run.child.exitCode !== null) {
        completedEarly = true;
        break;
      }
      run.child.kill('SIGKILL');
      const { signal } = await run.exited;
      assert.equal(signal, 'SIGKILL');
      const cp = await readCheckpoint(out);
      partial.push(cp?.rowsDone ?? 0);
    }
    assert.ok(
      completedEarly || partial.some((n) => n > 0 && n < baseline.length),
      `KILL_SEED=${seed}: no kill landed mid-work: rows done at each kill ${partial}`,
    );
    const { code, stderr } = await spawnCli([...common(out), '--resume']).exited;
    assert.equal(code, 0, `KILL_SEED=${seed}: ${stderr}`);
    const got = await ndjson(out);
    assert.deepEqual(
      got.map((r) => r.index),
      Array.from({ length: baseline.length }, (_, i) => i),
      `KILL_SEED=${seed}: every index once, in order`,
    );
    assert.deepEqual(got.map(stable), baseline.map(stable), `KILL_SEED=${seed}: values equal`);
  });

  it('writes CSV (one line per row and output), resumable after kill -9, reading back to the same values', async () => {
    const out = path.join(tmp, 'out.csv');
    const run = spawnCli([...common(out)]);
    await afterFirstCommit(run, 100);
    assert.equal(run.child.exitCode, null, 'still running after its first chunk');
    run.child.kill('SIGKILL');
    await run.exited;
    const cp = await readCheckpoint(out);
    assert.ok(cp && cp.rowsDone > 0 && cp.rowsDone < baseline.length, `killed mid-work (${cp?.rowsDone} rows done)`);
    // Resumed in this process, on this thread: the values may not depend on where rows run.
    const io = { stdout: sink(), stderr: sink() as unknown as NodeJS.WriteStream };
    assert.equal(await main([...common(out, 0), '--resume', '--progress', 'none'], io), 0, (io.stderr as unknown as { text: string }).text);
    const text = await readFile(out, 'utf8');
    const header = text.slice(0, text.indexOf('\n')).split(',');
    assert.deepEqual(header.slice(0, 4), ['index', 'line', 'label', 'output']);
    assert.ok(header.includes('attribution_income') && header.includes('stderr_income') && header.includes('value_income'));
    assert.equal(text.trim().split('\n').length, 1 + baseline.length);
    const cols = outputColumns({ featureNames: baselineFeatures(), method: 'kernel-shap' } as never, true, HOUSING);
    const back: ResultRecord[] = [];
    for await (const r of readRecords(out, 'csv', cols)) back.push(r);
    assert.deepEqual(back.map(csvStable), baseline.map(csvStable));
  });

  it('resumes a CSV without its checkpoint from the file itself, cutting a torn last line', async () => {
    const out = path.join(tmp, 'out.csv');
    await unlink(checkpointPath(out));
    const full = await readFile(out, 'utf8');
    const lines = full.split('\n');
    // Keep 40 records and half of the next line.
    await writeFile(out, lines.slice(0, 41).join('\n') + '\n' + lines[41].slice(0, 30));
    const io = { stdout: sink(), stderr: sink() as unknown as NodeJS.WriteStream };
    const code = await main([...common(out, 0), '--resume', '--progress', 'none'], io);
    assert.equal(code, 0, (io.stderr as unknown as { text: string }).text);
    assert.match((io.stderr as unknown as { text: string }).text, /no checkpoint: read from the output itself/);
    const cols = outputColumns({ featureNames: baselineFeatures(), method: 'kernel-shap' } as never, true, HOUSING);
    const back: ResultRecord[] = [];
    for await (const r of readRecords(out, 'csv', cols)) back.push(r);
    assert.deepEqual(back.map(csvStable), baseline.map(csvStable));
  });

  it('refuses bad command lines and inputs with exit code 2 and a message', async () => {
    const io = () => ({ stdout: sink(), stderr: sink() as unknown as NodeJS.WriteStream });
    const text = (x: ReturnType<typeof io>) => (x.stderr as unknown as { text: string }).text;
    let x = io();
    assert.equal(await main(['explain', '--model', 'credit', '--input', input], x), 2);
    assert.match(text(x), /--output is required/);
    x = io();
    assert.equal(await main([...common(path.join(tmp, 'baseline.ndjson')), '--workers', '0'], x), 2);
    assert.match(text(x), /exists: pass --resume to continue it, or --overwrite/);
    const noFeature = path.join(tmp, 'nofeature.csv');
    await writeFile(noFeature, 'age,income\n1,2\n');
    x = io();
    assert.equal(
      await main(['explain', '--model', 'credit', '--input', noFeature, '--output', path.join(tmp, 'nf.ndjson'), '--workers', '0'], x),
      2,
    );
    assert.match(text(x), /header lacks 12 of the model's feature column\(s\): debt_ratio/);
    x = io();
    assert.equal(
      await main(['explain', '--model', 'credit', '--input', input, '--output', path.join(tmp, 'o.ndjson'), '--steps', '4'], x),
      2,
    );
    assert.match(text(x), /--steps is for integrated-gradients/);
    x = io();
    assert.equal(
      await main(['explain', '--model', 'nope', '--input', input, '--output', path.join(tmp, 'o2.ndjson'), '--workers', '0'], x),
      2,
    );
    assert.match(text(x), /model .*nope/);
    x = io();
    assert.equal(await main(['--help'], x), 0);
    assert.match((x.stdout as unknown as { text: string }).text, /Usage: tfjs-explain explain/);
  });

  it('explains texts (NDJSON strings) of a text model token by token, an empty one as an EMPTY_TEXT row', async () => {
    const texts = path.join(tmp, 'texts.ndjson');
    await writeFile(texts, '"what a superb film"\n""\n"a boring plot"\n');
    const out = path.join(tmp, 'texts-out.ndjson');
    const x = { stdout: sink(), stderr: sink() as unknown as NodeJS.WriteStream };
    const args = ['explain', '--model', 'text', '--input', texts, '--output', out, '--method', 'partition-shap', '--outputs', 'positive', '--workers', '0'];
    assert.equal(await main(args, x), 0, (x.stderr as unknown as { text: string }).text);
    const recs = await ndjson(out);
    assert.deepEqual(
      recs.map((r) => ('error' in r ? r.error.code : (r as ResultRecord & { outputs: { attributions: { feature: string }[] }[] }).outputs[0].attributions.map((a) => a.feature).join(' '))),
      ['what a superb film', 'EMPTY_TEXT', 'a boring plot'],
    );
    // --seed belongs to kernel-shap and the sampled image methods, not to partition-shap.
    const y = { stdout: sink(), stderr: sink() as unknown as NodeJS.WriteStream };
    assert.equal(await main([...args.slice(0, 6), path.join(tmp, 'seed.ndjson'), ...args.slice(7), '--seed', '1'], y), 2);
    assert.match((y.stderr as unknown as { text: string }).text, /seed/);
  });
});
