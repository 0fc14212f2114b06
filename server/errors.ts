/**
 * The error catalogue: one stable code per kind of mistake, with its HTTP status. Handlers and
 * helpers throw ApiError; explainers throw ExplainerInputError (no status) and the final middleware
 * maps both to {"error": {"code", "message", "details"}}. Anything else is a logged 500 that says
 * nothing about internals.
 */
import { ExplainerInputError } from '../explainers/types.js';

export const ERROR_STATUS = {
  MALFORMED_JSON: 400,
  INVALID_REQUEST: 400,
  BAD_INSTANCE: 400,
  BAD_INSTANCES: 400,
  BAD_OUTPUTS: 400,
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
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_ACCEPTABLE: 406,
  UNAUTHORIZED: 401,
  BAD_SIGNATURE: 401,
  SIGNATURE_EXPIRED: 401,
  FORBIDDEN: 403,
  MODEL_NOT_FOUND: 404,
  NOT_FOUND: 404,
  MODEL_VERSION_GONE: 410,
  JOB_NOT_FOUND: 404,
  JOB_NOT_READY: 409,
  NO_LIVE_DATA: 409,
  PAYLOAD_TOO_LARGE: 413,
  OVERLOADED: 429,
  DEADLINE_EXCEEDED: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERROR_STATUS[code];
  }

  static isCode(code: string): code is ErrorCode {
    return Object.hasOwn(ERROR_STATUS, code);
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Converts what was thrown into a status and a body a client can act on. */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof ApiError) {
    return { status: err.status, body: { error: { code: err.code, message: err.message, details: err.details } } };
  }
  if (err instanceof ExplainerInputError) {
    const status = (ERROR_STATUS as Record<string, number>)[err.code] ?? 400;
    return { status: status >= 500 ? 400 : status, body: { error: { code: err.code, message: err.message, details: err.details } } };
  }
  // body-parser's errors carry a `type` and a status.
  const e = err as { type?: string; status?: number; limit?: number; length?: number; message?: string };
  if (e && e.type === 'entity.parse.failed') {
    return {
      status: 400,
      body: { error: { code: 'MALFORMED_JSON', message: `the request body is not valid JSON: ${e.message ?? ''}`.trim() } },
    };
  }
  if (e && e.type === 'entity.too.large') {
    return {
      status: 413,
      body: {
        error: {
          code: 'PAYLOAD_TOO_LARGE',
          message: `the request body (${e.length} bytes) is larger than the limit of ${e.limit} bytes; send fewer instances per request or use POST /v1/jobs`,
          details: { limit: e.limit, length: e.length },
        },
      },
    };
  }
  if (e && (e.type === 'charset.unsupported' || e.type === 'encoding.unsupported')) {
    return { status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: e.message ?? 'unsupported encoding' } } };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'the service failed to handle this request; it has been logged' } } };
}
