/**
 * Optional API keys. API_KEYS="key1,key2" gives each key every model; "key1:credit|penguins" scopes a
 * key to those models ("*" = all). Keys go in `Authorization: Bearer <key>` or `X-API-Key`.
 * Comparison is constant-time over fixed-length digests, and every configured key is compared, so
 * timing says nothing about which key (or how much of one) matched.
 *
 * Open without a key: /healthz (status only; the details, which name models and load errors, need a
 * key when keys are on), /readyz, /openapi.json, /docs. /metrics (model and feature names, drift)
 * needs METRICS_KEY when it is set, else any API key when API_KEYS is set, else nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { ServiceError } from '../service/errors.js';
import { checkSignedUrl } from './signing.js';

export interface ApiKey {
  digest: Buffer;
  /** A short, stable name for the key (a prefix of its digest): what jobs record as their owner. */
  id: string;
  /** Model names this key may use; undefined = all. */
  models?: Set<string>;
}

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export function parseApiKeys(raw: string | undefined): ApiKey[] {
  if (!raw || !raw.trim()) return [];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const colon = entry.indexOf(':');
      const key = colon < 0 ? entry : entry.slice(0, colon);
      const scope = colon < 0 ? '*' : entry.slice(colon + 1);
      if (key.length < 8) throw new Error('API_KEYS: every key must be at least 8 characters long');
      const models =
        scope === '*'
          ? undefined
          : new Set(
              scope
                .split('|')
                .map((m) => m.trim())
                .filter(Boolean),
            );
      const d = digest(key);
      return { digest: d, id: d.toString('hex').slice(0, 12), models };
    });
}

function presented(req: Request): string | undefined {
  const auth = req.headers.authorization;
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim();
  const x = req.headers['x-api-key'];
  return typeof x === 'string' ? x.trim() : undefined;
}

export function findKey(keys: ApiKey[], candidate: string | undefined): ApiKey | undefined {
  if (candidate === undefined) return undefined;
  const d = digest(candidate);
  let found: ApiKey | undefined;
  for (const k of keys) if (timingSafeEqual(k.digest, d) && !found) found = k;
  return found;
}

/** Paths that stay open so orchestrators work without keys (a valid key, if sent, is still recognised). */
const OPEN = new Set(['/healthz', '/readyz', '/openapi.json', '/docs']);

/** True when the request presented a valid key (API keys on) or keys are off: who may see operational details. */
export function trusted(req: Request, keysOn: boolean): boolean {
  return !keysOn || (req as { apiKey?: ApiKey }).apiKey !== undefined;
}

export function authMiddleware(keys: ApiKey[], signingKey?: Buffer, metricsKey?: string): RequestHandler {
  const metricsDigest = metricsKey ? digest(metricsKey) : undefined;
  return (req, _res, next) => {
    if (req.path === '/metrics' && (metricsDigest || keys.length)) {
      const candidate = presented(req);
      const key = findKey(keys, candidate);
      const metricsOk = metricsDigest !== undefined && candidate !== undefined && timingSafeEqual(metricsDigest, digest(candidate));
      if (!key && !metricsOk) {
        throw new ServiceError(
          'UNAUTHORIZED',
          candidate === undefined
            ? '/metrics needs a key: send "Authorization: Bearer <METRICS_KEY or an API key>"'
            : 'the key is not valid for /metrics',
        );
      }
      return next();
    }
    if (keys.length === 0) return next();
    if (OPEN.has(req.path)) {
      const key = findKey(keys, presented(req));
      if (key) (req as { apiKey?: ApiKey }).apiKey = key;
      return next();
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      // A signed chart URL stands in for a key: the key's access was checked when it was minted.
      const signed = checkSignedUrl(signingKey, req.originalUrl);
      if (signed === 'valid') return next();
      if (signed === 'expired')
        throw new ServiceError('SIGNATURE_EXPIRED', 'this signed URL has expired; mint a new one with POST /v1/signed-urls');
      if (signed === 'invalid')
        throw new ServiceError('BAD_SIGNATURE', 'the URL signature does not match; URLs must be used exactly as minted');
    }
    const candidate = presented(req);
    const key = findKey(keys, candidate);
    if (!key) {
      throw new ServiceError(
        'UNAUTHORIZED',
        candidate === undefined
          ? 'this service needs an API key: send "Authorization: Bearer <key>" or "X-API-Key: <key>"'
          : 'the API key is not valid',
      );
    }
    (req as { apiKey?: ApiKey }).apiKey = key;
    next();
  };
}

/** What a request may see: every model (no keys configured, or an unscoped key), or the key's models. */
export interface Scope {
  /** The key's id; absent without keys (or through a signed URL). */
  key?: string;
  /** null: every model. */
  models: string[] | null;
}

export function scopeOf(req: Request): Scope {
  const key = (req as { apiKey?: ApiKey }).apiKey;
  return { ...(key ? { key: key.id } : {}), models: key?.models ? [...key.models].sort() : null };
}

export function inScope(scope: Scope, model: string): boolean {
  return scope.models === null || scope.models.includes(model);
}

/** Throws 403 when the request's key is scoped away from `model`. */
export function checkModelAccess(req: Request, model: string): void {
  if (!inScope(scopeOf(req), model)) {
    throw new ServiceError('FORBIDDEN', `this API key has no access to model "${model}"`);
  }
}
