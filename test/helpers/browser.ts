/** Debian's Chromium driven by playwright-core, and supertest helpers for non-JSON bodies. */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium; CHROMIUM_PATH overrides it (a path that does not exist: the browser tests skip). */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Launches headless Chromium, or returns undefined when it is not installed. Under CI a missing
 * browser is a failure, not a skip: .ci/run installs it. Call it before starting anything that
 * must be closed (a server), so a skip leaves nothing open and mocha exits.
 */
export async function launchChromium(): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) throw new Error(`no Chromium at ${CHROMIUM}: .ci/run must install it (apt-get install chromium)`);
    console.log(`    (skipped: no Chromium at ${CHROMIUM}; apt-get install chromium)`);
    return undefined;
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    // The background-networking flags keep Chromium from calling out of this offline machine.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** supertest parser: the body as a string, whatever the content type (SVG, HTML). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- supertest types the raw response loosely
export const asText = (res: any, cb: (err: Error | null, body: string) => void) => {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (text += c));
  res.on('end', () => cb(null, text));
};
