/**
 * Content negotiation for results that have a picture: JSON by default, `Accept: image/svg+xml` a
 * chart, `text/html` a report, `image/png` (or `?format=png`) the chart as PNG.
 */
import type { Request, Response } from 'express';
import type { Executor } from '../service/executor.js';
import { ServiceError } from '../service/errors.js';

export const FORMATS = ['json', 'svg', 'png', 'html'] as const;
export type Format = (typeof FORMATS)[number];

const BY_TYPE: Record<string, Format> = {
  'application/json': 'json',
  'image/svg+xml': 'svg',
  'image/png': 'png',
  'text/html': 'html',
};

export function chooseFormat(req: Request): Format {
  const q = req.query.format;
  if (q !== undefined) {
    if (typeof q !== 'string' || !(FORMATS as readonly string[]).includes(q)) {
      throw new ServiceError('BAD_PARAMETER', `format must be one of ${FORMATS.join(', ')}`);
    }
    return q as Format;
  }
  const type = req.accepts(Object.keys(BY_TYPE));
  if (!type) {
    throw new ServiceError(
      'NOT_ACCEPTABLE',
      `cannot answer with ${req.headers.accept}; this resource is available as ${Object.keys(BY_TYPE).join(', ')}`,
    );
  }
  return BY_TYPE[type];
}

/** Integer query option within bounds, or undefined when absent. */
export function queryInt(req: Request, name: string, min: number, max: number): number | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < min || n > max) {
    throw new ServiceError('BAD_PARAMETER', `query parameter ${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** A chart as SVG, its PNG (rendered on the executor, off the event loop), or the HTML report. */
export async function sendVisual(
  res: Response,
  executor: Executor,
  format: Exclude<Format, 'json'>,
  render: { svg: () => string; html: () => string },
): Promise<void> {
  res.vary('Accept');
  // Render first and set the type after: a chart that cannot be drawn must not leave an image type
  // on the error answer that follows.
  if (format === 'svg') {
    const svg = chart(render.svg);
    res.type('image/svg+xml').send(svg);
  } else if (format === 'png') {
    const png = await executor.run({ kind: 'png', svg: chart(render.svg) });
    res.type('image/png').send(Buffer.from(png.buffer, png.byteOffset, png.byteLength));
  } else {
    const html = chart(render.html);
    res.type('html').send(html);
  }
}

/**
 * Runs a renderer. The renderers throw RangeError for a view the data does not have (an instance,
 * output, outcome or section that is not there): the caller asked for it, so it is a 400.
 */
function chart(render: () => string): string {
  try {
    return render();
  } catch (e) {
    if (e instanceof RangeError) throw new ServiceError('BAD_PARAMETER', `cannot draw this chart: ${e.message}`);
    throw e;
  }
}

/**
 * The picture an error is answered with on an image URL (.svg, .png), which lives in an <img> tag;
 * every other route answers errors as JSON (labelled application/json, whatever the request asked
 * for or a handler had set before it failed).
 */
export function errorPictureFormat(req: Request): 'svg' | 'png' | undefined {
  const ext = /\.(svg|png)$/.exec(req.path)?.[1];
  return ext === 'svg' || ext === 'png' ? ext : undefined;
}
