/**
 * A request's bounds, without HTTP: when it started, when it must be answered, and the signal that
 * fires when its client has gone. Every compute function takes a `RequestControl` and hands each of
 * its tasks the same budget, so every task of a request (predictions, explanations, the bootstrap,
 * PNG rendering) stops at the request's deadline and when its client disconnects.
 *
 * Two deadlines: the soft one (`deadline`) is what an explainer is given: past it, one that supports
 * it returns its best estimate with stopReason "deadline". The hard one (`hard`, a few percent
 * later) is enforced on every model call by the guard (service/guard.ts) whatever the explainer
 * does: DEADLINE_EXCEEDED (503) where no estimate exists. A request without `deadlineMs` gets the
 * server's DEADLINE_MS; none gets more than MAX_DEADLINE_MS.
 */
import type { ServiceConfig } from './config.js';
import type { RunOptions } from './executor.js';

export interface RequestControl {
  /** When the request arrived (epoch ms): its deadline counts from here. Default: now. */
  started?: number;
  /** Fires when the client has gone: queued tasks leave the queue, running ones stop at their next model call. */
  signal?: AbortSignal;
}

export interface Budget {
  started: number;
  /** Epoch ms: the explainers' deadline (best estimate after it). */
  deadline: number;
  /** Epoch ms: no model call starts after it. */
  hard: number;
  signal?: AbortSignal;
}

/** The hard deadline's margin over the soft one: 3% of the time allowed, 20 ms to 2 s (the answer is due by deadline + 10%). */
export function graceMs(deadlineMs: number): number {
  return Math.min(2000, Math.max(20, Math.round(deadlineMs * 0.03)));
}

/** The budget of a request that asked for `deadlineMs` (undefined: the server's default). */
export function budgetOf(
  config: Pick<ServiceConfig, 'defaultDeadlineMs' | 'maxDeadlineMs'>,
  ctl: RequestControl = {},
  deadlineMs?: number,
): Budget {
  const started = ctl.started ?? Date.now();
  const ms = Math.max(1, Math.min(deadlineMs ?? config.defaultDeadlineMs, config.maxDeadlineMs));
  const deadline = started + ms;
  return { started, deadline, hard: deadline + graceMs(ms), ...(ctl.signal ? { signal: ctl.signal } : {}) };
}

/** What the executor needs of a budget. */
export function runOptions(b: Budget): RunOptions {
  return { deadline: b.hard, ...(b.signal ? { signal: b.signal } : {}) };
}
