/**
 * A wasm "Aborted()" or RuntimeError (out of memory, out-of-bounds access) leaves the tfjs wasm
 * module unusable for the rest of the process: every later call fails, often with unrelated
 * messages. Such errors are turned into a BackendFailure and remembered here, so the process that
 * owns the module can tell and replace itself. Integration: a worker thread (or process) whose
 * call rejected with a BackendFailure, or for which backendFailure() is set, must be terminated and
 * a fresh one started (its request answered with a 503, not retried on the same worker); the main
 * thread of a service that runs models in-process should report unhealthy (/readyz) and restart.
 */

export class BackendFailure extends Error {
  readonly fatal = true;
  constructor(readonly cause: unknown) {
    super(
      `the tfjs backend failed and cannot be used again in this process (${cause instanceof Error ? cause.message : String(cause)}); ` +
        'restart the worker. Large inputs: lower the chunk size (TfjsModelOptions.chunkSize / gradientChunkSize).',
    );
    this.name = 'BackendFailure';
  }
}

let failure: BackendFailure | undefined;

/** True for errors that come from inside the wasm module itself. */
export function isFatalBackendError(e: unknown): boolean {
  if (e instanceof BackendFailure) return true;
  if (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) return true;
  const msg = e instanceof Error ? e.message : String(e);
  return /^Aborted\(|memory access out of bounds|^unreachable$|Cannot enlarge memory/.test(msg);
}

/** Rethrow helper: fatal errors become (and are remembered as) a BackendFailure, others pass through. */
export function backendError(e: unknown): unknown {
  if (!isFatalBackendError(e)) return e;
  failure ??= e instanceof BackendFailure ? e : new BackendFailure(e);
  return failure;
}

/** The first fatal backend failure of this process, if any. */
export function backendFailure(): BackendFailure | undefined {
  return failure;
}
