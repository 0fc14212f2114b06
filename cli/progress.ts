/**
 * Progress on stderr: a cli-progress bar with rate and ETA when stderr is a terminal, plain lines
 * (at most one every `intervalMs`, and one at the end) when it is not (CI logs, files).
 */
import cliProgress from 'cli-progress';

export interface ProgressState {
  rowsDone: number;
  rowsFailed: number;
  rowsTotal: number;
  rowsThisRun: number;
  elapsedMs: number;
}

export interface ProgressReporter {
  update(p: ProgressState): void;
  stop(final?: ProgressState): void;
}

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'none';

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function rateAndEta(p: ProgressState): { rate: number | null; eta: number | null } {
  if (p.rowsThisRun <= 0 || p.elapsedMs <= 0) return { rate: null, eta: null };
  const rate = (p.rowsThisRun / p.elapsedMs) * 1000;
  return { rate, eta: Math.max(0, p.rowsTotal - p.rowsDone) / rate };
}

export function progressLine(p: ProgressState): string {
  const { rate, eta } = rateAndEta(p);
  const pct = p.rowsTotal > 0 ? ((100 * p.rowsDone) / p.rowsTotal).toFixed(1) : '100.0';
  return (
    `progress: ${p.rowsDone}/${p.rowsTotal} rows (${pct}%), ` +
    `${rate === null ? '?' : rate.toFixed(1)} rows/s, ETA ${formatDuration(eta)}, ${p.rowsFailed} failed`
  );
}

export function createProgress(opts: {
  mode: ProgressMode;
  stream?: NodeJS.WriteStream;
  total: number;
  initialDone: number;
  intervalMs?: number;
}): ProgressReporter {
  const stream = opts.stream ?? process.stderr;
  const mode = opts.mode === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : opts.mode;
  if (mode === 'none') return { update: () => undefined, stop: () => undefined };
  if (mode === 'lines') {
    const interval = opts.intervalMs ?? 2000;
    let last = 0;
    let lastState: ProgressState | undefined;
    return {
      update(p) {
        lastState = p;
        const now = Date.now();
        if (now - last >= interval) {
          last = now;
          stream.write(progressLine(p) + '\n');
        }
      },
      stop(final) {
        const p = final ?? lastState;
        if (p) stream.write(progressLine(p) + '\n');
      },
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: 'explaining {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {etaText} | {failed} failed',
      hideCursor: true,
      clearOnComplete: false,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(opts.total, opts.initialDone), opts.initialDone, { rate: '?', etaText: '?', failed: 0 });
  return {
    update(p) {
      const { rate, eta } = rateAndEta(p);
      bar.setTotal(Math.max(p.rowsTotal, p.rowsDone));
      bar.update(p.rowsDone, { rate: rate === null ? '?' : rate.toFixed(1), etaText: formatDuration(eta), failed: p.rowsFailed });
    },
    stop(final) {
      if (final) this.update(final);
      bar.stop();
    },
  };
}
