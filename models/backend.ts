/**
 * Picks the tfjs backend once at start: tfjs-node when it can
 * be imported (an optional dependency users may add; it cannot be installed here), else wasm (its
 * .wasm files ship in the npm package and load offline), else the slow pure-JS cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import { installWasmFixes } from './wasmFixes.js';

/** Names accepted for the native backend; tfjs-node registers itself as 'tensorflow'. */
const NATIVE = new Set(['tensorflow', 'node', 'tfjs-node']);

/** The automatic choice, remembered so repeated calls do not re-probe the optional import. */
let chosen: string | undefined;

/** Registers a backend by importing its package; false when the package is not there. */
async function register(name: string): Promise<boolean> {
  try {
    if (NATIVE.has(name)) {
      // A variable specifier keeps TypeScript from resolving a package that is not a dependency.
      const pkg = '@tensorflow/tfjs-node';
      await import(pkg);
    } else if (name === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
    }
    return true;
  } catch {
    return false;
  }
}

const PROCESS_EVENTS = ['uncaughtException', 'unhandledRejection'];
const emitter: NodeJS.EventEmitter = process;

/**
 * The wasm module (Emscripten) adds process listeners that rethrow every uncaught exception and
 * unhandled rejection, which pre-empts the application's own handlers and prints the whole minified
 * module as the "source line". Remove what it added so Node's and the app's handling apply.
 */
function dropAddedListeners(before: Map<string, Function[]>): void {
  for (const event of PROCESS_EVENTS) {
    const old = before.get(event) ?? [];
    for (const l of emitter.listeners(event)) if (!old.includes(l)) emitter.removeListener(event, l as (...a: unknown[]) => void);
  }
}

/** Switches to `name` and waits for it; false when it is unknown or fails to initialise. */
async function activate(name: string): Promise<boolean> {
  const before = new Map<string, Function[]>(PROCESS_EVENTS.map((e) => [e, emitter.listeners(e)]));
  try {
    return await activateInner(name);
  } finally {
    dropAddedListeners(before);
  }
}

async function activateInner(name: string): Promise<boolean> {
  const backend = NATIVE.has(name) ? 'tensorflow' : name;
  if (!(await register(name))) return false;
  if (tf.findBackendFactory(backend) == null) return false;
  try {
    // setBackend resolves false (instead of throwing) when initialisation fails, e.g. no .wasm file.
    if (!(await tf.setBackend(backend))) return false;
    await tf.ready();
    if (backend === 'wasm') installWasmFixes();
    return tf.getBackend() === backend;
  } catch {
    return false;
  }
}

/**
 * Selects and initialises the backend; returns its name ('tensorflow', 'wasm' or 'cpu').
 * `prefer` (usually env TFJS_BACKEND) forces one: an Error if it cannot be used, since a
 * configured backend that silently falls back would hide a deployment mistake. '' or 'auto' choose.
 * Idempotent: a second call with the same preference returns the active backend.
 */
export async function selectBackend(prefer?: string): Promise<string> {
  const wanted = prefer?.trim().toLowerCase();
  if (wanted && wanted !== 'auto') {
    const backend = NATIVE.has(wanted) ? 'tensorflow' : wanted;
    if (tf.getBackend() === backend) return backend;
    if (await activate(wanted)) return backend;
    throw new Error(
      `TFJS_BACKEND=${prefer}: this backend cannot be used here (choose one of tensorflow, wasm, cpu; ` +
        `tensorflow needs the optional package @tensorflow/tfjs-node)`,
    );
  }
  if (chosen && tf.getBackend() === chosen) return chosen;
  for (const name of ['tensorflow', 'wasm', 'cpu']) {
    if (await activate(name)) return (chosen = name);
  }
  throw new Error('no tfjs backend could be initialised (tried tensorflow, wasm, cpu)');
}

/**
 * Bytes of the wasm backend's heap in this thread (0 on other backends). A WebAssembly memory only
 * grows: this is the high-water mark of every call the thread has served.
 */
export function backendHeapBytes(): number {
  try {
    if (tf.getBackend() !== 'wasm') return 0;
    const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
    return b.wasm?.HEAPU8?.byteLength ?? 0;
  } catch {
    return 0;
  }
}
