/**
 * `tfjs-explain`: batch explanations of a CSV / NDJSON file, with a progress bar, results written in
 * order and committed per chunk (resumable after any crash with --resume) and summary charts.
 *
 *   tfjs-explain explain --model credit --input data.csv --output out.ndjson --method kernel-shap \
 *     --n-samples 500 --seed 1 --summary-dir report/ --resume
 *
 * Exit codes: 0 done (bad rows are reported in the output, not as a failure), 1 the job failed,
 * 2 the command line or its files are wrong, 130 interrupted (rerun with --resume).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { ExplainerInputError, type ExplainMethod } from '../explainers/types.js';
import { ServiceError } from '../service/errors.js';
import { runFileJob, type StartInfo } from '../jobs/fileJob.js';
import { checkMethod } from '../jobs/spec.js';
import { DEFAULT_MAX_BACKGROUND, DEFAULT_TOLERANCE } from '../explainers/defaults.js';
import { DEFAULT_METHOD, EXPLAIN_METHODS, METHOD_NAMES } from '../service/methods/index.js';
import { createProgress, formatDuration, type ProgressMode, type ProgressReporter } from './progress.js';

export const USAGE = `Usage: tfjs-explain explain --model <name|path> --input <file.csv|file.ndjson> --output <file.ndjson|file.csv> [options]

Explains every row of a dataset with a TensorFlow.js model.

  --model NAME|PATH     a model folder, or a model's name under --model-dir
  --model-dir DIR       model repository (default: $MODEL_DIR, else the sample models)
  --input FILE          .csv (header names the features; a "label" or the model's label column is
                        kept, other extra columns ignored) or .ndjson/.jsonl (one instance per line:
                        an array of numbers, a nested array of an image's shape, an object keyed by
                        feature name, or a string for text models)
  --output FILE         .ndjson (one JSON record per row) or .csv (one line per row and output)
  --method M            ${METHOD_NAMES.join(' | ')} (default ${DEFAULT_METHOD})
  --n-samples N|auto    kernel-shap coalitions per row (default auto)
  --seed S              kernel-shap seed (default 0); the same seed gives the same values
  --link L              kernel-shap link: identity | logit (default: the model's, else identity)
  --tolerance T         convergence tolerance (default ${DEFAULT_TOLERANCE}; 0 spends the whole budget);
                        rows that spend their budget first say converged false, stopReason budget,
                        and the last line counts them ("stopped before converging")
  --max-background N    kernel-shap background rows kept by k-means (default ${DEFAULT_MAX_BACKGROUND})
  --steps N|auto        integrated-gradients path points (default auto)
  --baseline B          integrated-gradients baseline: zeros | mean (default mean with a background)
  --ig-method R         integrated-gradients rule: gauss-legendre | riemann-* | exact
  --outputs A,B|all     outputs to explain, by index or name, or all (default: for a classifier with
                        several outputs each row's predicted class, else all)
  --params JSON         more explainer parameters as a JSON object (as in the REST API)
  --chunk-size N        rows per chunk (default ${METHOD_NAMES.map((m) => `${EXPLAIN_METHODS[m].chunkSize} for ${m}`).join(', ')})
  --workers N           worker threads (default: every core, ${os.availableParallelism()} here; 0 = this thread)
  --summary-dir DIR     write beeswarm.svg, mean-abs.svg and report.html there
  --resume              continue an interrupted run from its output file
  --overwrite           replace an existing output file
  --progress MODE       auto (bar on a terminal, lines otherwise) | bar | lines | none
  --backend B           tfjs backend (default: $TFJS_BACKEND, else the best available)
  -h, --help            this text
`;

class UsageError extends Error {}

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

function numOrAuto(name: string, v: string | undefined): number | 'auto' | undefined {
  if (v === 'auto') return 'auto';
  return num(name, v);
}

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream;
}

export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const say = (s: string) => io.stderr.write(s + '\n');
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        model: { type: 'string' },
        'model-dir': { type: 'string' },
        input: { type: 'string' },
        output: { type: 'string' },
        method: { type: 'string' },
        'n-samples': { type: 'string' },
        seed: { type: 'string' },
        link: { type: 'string' },
        tolerance: { type: 'string' },
        'max-background': { type: 'string' },
        steps: { type: 'string' },
        baseline: { type: 'string' },
        'ig-method': { type: 'string' },
        outputs: { type: 'string' },
        params: { type: 'string' },
        'chunk-size': { type: 'string' },
        workers: { type: 'string' },
        'summary-dir': { type: 'string' },
        resume: { type: 'boolean' },
        overwrite: { type: 'boolean' },
        progress: { type: 'string' },
        backend: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    say(`tfjs-explain: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help || positionals[0] === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (positionals[0] !== 'explain' || positionals.length > 1) {
    say(`tfjs-explain: expected the command "explain"${positionals.length ? `, got "${positionals.join(' ')}"` : ''}\n\n${USAGE}`);
    return 2;
  }

  let method: ExplainMethod;
  let parameters: Record<string, unknown>;
  let workers: number;
  let chunkSize: number | undefined;
  let progressMode: ProgressMode;
  try {
    for (const req of ['model', 'input', 'output'] as const) if (!v[req]) throw new UsageError(`--${req} is required`);
    method = checkMethod(v.method);
    parameters = {};
    if (v.params) {
      try {
        parameters = JSON.parse(v.params);
      } catch (e) {
        throw new UsageError(`--params is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!parameters || typeof parameters !== 'object' || Array.isArray(parameters))
        throw new UsageError('--params must be a JSON object');
    }
    const set = (k: string, val: unknown) => {
      if (val !== undefined) parameters[k] = val;
    };
    set('tolerance', num('tolerance', v.tolerance));
    if (method === 'kernel-shap') {
      for (const f of ['steps', 'baseline', 'ig-method'] as const)
        if (v[f] !== undefined) throw new UsageError(`--${f} is for integrated-gradients`);
      set('nSamples', numOrAuto('n-samples', v['n-samples']));
      set('seed', num('seed', v.seed));
      set('link', v.link);
      set('maxBackground', num('max-background', v['max-background']));
    } else if (method === 'integrated-gradients') {
      for (const f of ['n-samples', 'seed', 'link', 'max-background'] as const)
        if (v[f] !== undefined) throw new UsageError(`--${f} is for kernel-shap`);
      set('steps', numOrAuto('steps', v.steps));
      set('baseline', v.baseline);
      set('method', v['ig-method']);
    } else {
      // The image and text methods: --seed and --steps where they have them, the rest with --params.
      for (const f of ['n-samples', 'link', 'max-background', 'baseline', 'ig-method'] as const)
        if (v[f] !== undefined) throw new UsageError(`--${f} is for kernel-shap or integrated-gradients; give ${method}'s parameters with --params`);
      set('seed', num('seed', v.seed));
      set('steps', numOrAuto('steps', v.steps));
    }
    workers = num('workers', v.workers) ?? os.availableParallelism();
    if (!Number.isInteger(workers) || workers < 0) throw new UsageError('--workers must be a whole number >= 0');
    chunkSize = num('chunk-size', v['chunk-size']);
    progressMode = (v.progress ?? 'auto') as ProgressMode;
    if (!['auto', 'bar', 'lines', 'none'].includes(progressMode)) throw new UsageError('--progress must be auto, bar, lines or none');
    if (v.resume && v.overwrite) throw new UsageError('--resume and --overwrite contradict each other');
  } catch (e) {
    if (e instanceof UsageError || e instanceof ServiceError) {
      say(`tfjs-explain: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const outputs = v.outputs?.trim() === 'all' ? ('all' as const) : v.outputs?.split(',').map((s) => (/^\d+$/.test(s.trim()) ? Number(s) : s.trim()));

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: string) => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    say(`\n${sig}: finishing the chunk being written; rerun with --resume to continue (again to quit at once)`);
    controller.abort();
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);

  let progress: ProgressReporter | undefined;
  let started: StartInfo | undefined;
  try {
    const result = await runFileJob({
      model: v.model!,
      modelDir: v['model-dir'],
      input: v.input!,
      output: v.output!,
      method,
      parameters,
      outputs,
      chunkSize,
      workers,
      backend: v.backend,
      resume: v.resume,
      overwrite: v.overwrite,
      summaryDir: v['summary-dir'],
      signal: controller.signal,
      onStart: (s) => {
        started = s;
        say(
          `model ${s.model.name} (version ${s.model.version}), ${s.spec.method}, ${s.rowsTotal} input row(s), ` +
            `${s.workers > 0 ? `${s.workers} worker thread(s)` : 'on the main thread'}, chunks of ${s.spec.chunkSize}`,
        );
        if (s.ignoredColumns.length) say(`ignoring input column(s) that are not features: ${s.ignoredColumns.join(', ')}`);
        if (s.labelColumn) say(`keeping column "${s.labelColumn}" as each record's label`);
        if (s.alreadyDone) say(`${v.output} is already complete`);
        else if (s.resumedFrom > 0)
          say(
            `resuming at input row ${s.resumedFrom}${s.opened === 'resumed-without-checkpoint' ? ' (no checkpoint: read from the output itself)' : ''}`,
          );
        if (!s.alreadyDone)
          progress = createProgress({ mode: progressMode, stream: io.stderr, total: s.rowsTotal, initialDone: s.rowsDone });
      },
      onProgress: (p) => progress?.update(p),
    });
    progress?.stop({
      rowsDone: result.rowsDone,
      rowsFailed: result.rowsFailed,
      rowsTotal: Math.max(result.rowsDone, started?.rowsTotal ?? 0),
      rowsThisRun: result.rowsThisRun,
      elapsedMs: result.elapsedMs,
    });
    if (result.status === 'interrupted') {
      say(`interrupted after ${result.rowsDone} row(s); rerun the same command with --resume to continue`);
      return 130;
    }
    say(
      `done: ${result.rowsDone} row(s), ${result.rowsFailed} failed, ${result.rowsUnconverged} stopped before converging, ` +
        `${result.rowsThisRun} in this run in ${formatDuration(result.elapsedMs / 1000)} ` +
        `(${result.rowsPerSecond.toFixed(1)} rows/s) -> ${v.output}`,
    );
    if (result.rowsUnconverged > 0) {
      say(
        `${result.rowsUnconverged} row(s) spent their whole budget (or hit a deadline) before their error estimate met the tolerance: ` +
          'their records say converged false and stopReason budget; their values are estimates with larger standard errors. ' +
          'Raise --n-samples (or --steps for integrated-gradients) to converge them.',
      );
    }
    if (result.rowsFailed > 0) {
      say(`failed rows have an "error" record with their line; first ones:`);
      for (const e of result.checkpoint.errors.slice(0, 5))
        say(`  index ${e.index}${e.line !== undefined ? ` (line ${e.line})` : ''}: ${e.code}: ${e.message}`);
    }
    for (const f of result.summaryFiles) say(`summary: ${f}`);
    return 0;
  } catch (e) {
    progress?.stop();
    if (e instanceof ServiceError || e instanceof ExplainerInputError) {
      say(`tfjs-explain: ${e.message}`);
      return 2;
    }
    say(`tfjs-explain: the job failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    say('rows committed so far are kept; rerun with --resume to continue');
    return 1;
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
}

// Run when executed directly (tsx cli/main.ts ...); cli/bin.js calls main() itself.
if (/cli[\\/]main\.ts$/.test(process.argv[1] ?? '')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
