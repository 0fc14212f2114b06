/**
 * Signed, expiring chart URLs: HMAC-SHA256 over the exact path and query (with `expires`), so a tool
 * can mint a URL once and put it in an <img> tag while the service requires API keys.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export function signingKey(explicit: string | undefined, apiKeys: string | undefined): Buffer | undefined {
  if (explicit) return Buffer.from(explicit, 'utf8');
  // Stable across restarts without more configuration: derived from the API keys themselves.
  if (apiKeys) return createHash('sha256').update(`tfjs-explainer signing:${apiKeys}`).digest();
  return undefined;
}

const mac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest('base64url');

/** Appends `expires` and `sig` to a path with an optional query. */
export function signUrl(key: Buffer, pathAndQuery: string, expiresAt: number): string {
  const unsigned = `${pathAndQuery}${pathAndQuery.includes('?') ? '&' : '?'}expires=${expiresAt}`;
  return `${unsigned}&sig=${mac(key, unsigned)}`;
}

export type SignatureCheck = 'valid' | 'expired' | 'invalid' | 'absent';

/** Checks a URL as received (path + query, `sig` last). */
export function checkSignedUrl(key: Buffer | undefined, originalUrl: string, now = Date.now()): SignatureCheck {
  const at = originalUrl.lastIndexOf('&sig=');
  if (at < 0) return 'absent';
  if (!key) return 'invalid';
  const unsigned = originalUrl.slice(0, at);
  const given = Buffer.from(originalUrl.slice(at + 5));
  const expected = Buffer.from(mac(key, unsigned));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
  const m = /[?&]expires=(\d+)(&|$)/.exec(unsigned);
  if (!m) return 'invalid';
  return Number(m[1]) * 1000 < now ? 'expired' : 'valid';
}
