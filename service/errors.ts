/**
 * The error catalogue: every code the service can answer with, and its HTTP status. The service and
 * its routes throw `ServiceError(code, ...)`, typed against this catalogue; the math layers
 * (explainers/, monitoring/, models/) throw `ExplainerInputError` with a code that must be in it too
 * (test/architecture.test.ts reads every code thrown in the source and checks it is listed here).
 *
 * 4xx: the caller's mistake, with a message that says what was wrong and how to fix it.
 * 5xx: the service's own fault or state (INTERNAL logged with its stack, never sent), or a deadline.
 */
import { ExplainerInputError } from '../explainers/types.js';

export const ERROR_STATUS = {
  // 400: the request itself.
  MALFORMED_JSON: 400,
  INVALID_REQUEST: 400,
  BAD_INSTANCE: 400,
  BAD_INSTANCES: 400,
  BAD_OUTPUTS: 400,
  BAD_OUTPUT: 400,
  BAD_SHAPE: 400,
  BAD_GROUPS: 400,
  BAD_DATA: 400,
  UNKNOWN_FEATURE: 400,
  MISSING_FEATURE: 400,
  UNKNOWN_OUTPUT: 400,
  UNKNOWN_METHOD: 400,
  BAD_PARAMETER: 400,
  BAD_BACKGROUND: 400,
  BAD_BASELINE: 400,
  BAD_LABELS: 400,
  NO_BACKGROUND: 400,
  NO_REFERENCE_DATA: 400,
  EMPTY_GROUP: 400,
  NO_SENSITIVE_FEATURES: 400,
  BAD_SENSITIVE_FEATURE: 400,
  METHOD_NOT_SUPPORTED: 400,
  LIMIT_EXCEEDED: 400,
  // Images and text.
  NOT_AN_IMAGE: 400,
  BAD_LAYER: 400,
  UNKNOWN_LAYER: 400,
  EMPTY_TEXT: 400,
  // Counterfactuals.
  BAD_DESIRED: 400,
  DESIRED_REQUIRED: 400,
  BAD_REFERENCE: 400,
  BAD_CONSTRAINT: 400,
  // Global effects.
  BAD_FEATURE: 400,
  EMPTY_DATA: 400,
  BAD_GRID: 400,
  GRID_TOO_LARGE: 400,
  TOO_MANY_PLAYERS: 400,
  // Keys and signatures.
  UNAUTHORIZED: 401,
  BAD_SIGNATURE: 401,
  SIGNATURE_EXPIRED: 401,
  FORBIDDEN: 403,
  // What was asked for is not there (or no longer).
  MODEL_NOT_FOUND: 404,
  VERSION_NOT_FOUND: 404,
  NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  NOT_ACCEPTABLE: 406,
  JOB_NOT_READY: 409,
  NO_LIVE_DATA: 409,
  VERSIONS_INCOMPARABLE: 409,
  MODEL_VERSION_GONE: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  OVERLOADED: 429,
  // Bounded work: a request whose estimated model evaluations exceed the per-request budget (well
  // formed and within every parameter's cap, but too much for one request: POST /v1/jobs takes it).
  TOO_EXPENSIVE: 422,
  // Undecodable Content-Encoding (e.g. a body that is not gzip under Content-Encoding: gzip).
  BAD_ENCODING: 400,
  // The client went away before the answer (nginx's 499): logged and counted, never read by anyone.
  CANCELLED: 499,
  // The service's side.
  INTERNAL: 500,
  DEADLINE_EXCEEDED: 503,
  // The job queue (Redis) cannot be reached: retry later.
  QUEUE_UNAVAILABLE: 503,
  /** The tfjs backend failed for good on the request (a wasm abort); its worker thread is replaced. */
  BACKEND_FAILURE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, code);
}

export class ServiceError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ServiceError';
    this.status = ERROR_STATUS[code];
  }
}

/** The body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/**
 * A service or explainer error as a status and a body; undefined for anything else (a bug or an
 * infrastructure failure: the caller answers 500 INTERNAL and logs it). An explainer code missing
 * from the catalogue (which the architecture test prevents) answers 400 INVALID_REQUEST.
 */
export function knownErrorResponse(err: unknown): { status: number; body: ErrorBody } | undefined {
  if (err instanceof ServiceError) {
    return { status: err.status, body: { error: { code: err.code, message: err.message, details: err.details } } };
  }
  if (err instanceof ExplainerInputError) {
    const code = isErrorCode(err.code) ? err.code : 'INVALID_REQUEST';
    return { status: ERROR_STATUS[code], body: { error: { code, message: err.message, details: err.details } } };
  }
  return undefined;
}

/** Errors cross a thread boundary as plain objects: this turns one back into what was thrown. */
export function fromPlainError(e: { code: string; message: string; details?: unknown }): ServiceError | ExplainerInputError {
  return isErrorCode(e.code) ? new ServiceError(e.code, e.message, e.details) : new ExplainerInputError(e.code, e.message, e.details);
}

/** An error that a caller can act on, as a plain, structured-cloneable object; undefined otherwise. */
export function toPlainError(err: unknown): { code: string; message: string; details?: unknown } | undefined {
  if (err instanceof ServiceError || err instanceof ExplainerInputError)
    return { code: err.code, message: err.message, details: err.details };
  return undefined;
}
