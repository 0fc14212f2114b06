/**
 * The OpenAPI 3.1 document, generated (zod-openapi) from the route table: every route's path,
 * parameters, request body and responses come from the same zod schemas that validate requests and
 * describe responses, so the document cannot drift from what the service does.
 */
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from 'zod-openapi';
import { ERROR_CODES, ERROR_STATUS } from '../service/errors.js';
import { pinsVersion, type RouteSpec } from './route.js';
import { errors, versionQuery } from './routes/common.js';

export type OpenApiDocument = ReturnType<typeof createDocument>;

function operation(r: RouteSpec): ZodOpenApiOperationObject {
  const pathParams = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
  const params =
    r.request?.params ?? (pathParams.length ? z.object(Object.fromEntries(pathParams.map((p) => [p, z.string()]))) : undefined);
  // Every route that answers for a pinned version takes ?version= and may answer 410 (server/route.ts).
  const pins = pinsVersion(r);
  const query = pins ? (r.request?.query ?? z.object({})).extend(versionQuery) : r.request?.query;
  const responses = pins ? { ...errors(410), ...r.responses } : r.responses;
  return {
    summary: r.summary,
    operationId: `${r.method} ${r.path}`,
    ...(r.access.from !== 'none' ? { 'x-model-access': r.access.from } : {}),
    ...(params || query ? { requestParams: { ...(params ? { path: params } : {}), ...(query ? { query } : {}) } } : {}),
    ...(r.request?.body
      ? {
          requestBody: {
            required: r.request.bodyRequired ?? false,
            content: {
              'application/json': { schema: r.request.body },
              // Streamed uploads (server/body.ts): read by the handler as they arrive.
              ...Object.fromEntries(
                Object.entries(r.request.streamed ?? {}).map(([type, description]) => [type, { schema: z.string().meta({ description }) }]),
              ),
            },
          },
        }
      : {}),
    responses: Object.fromEntries(
      Object.entries(responses).map(([status, spec]) => [
        status,
        {
          description: spec.description,
          ...(spec.headers
            ? {
                headers: z.object(
                  Object.fromEntries(Object.entries(spec.headers).map(([h, d]) => [h, z.string().meta({ description: d })])),
                ),
              }
            : {}),
          ...(spec.content
            ? { content: Object.fromEntries(Object.entries(spec.content).map(([type, schema]) => [type, schema ? { schema } : {}])) }
            : {}),
        },
      ]),
    ),
  };
}

export function openApiDocument(routes: RouteSpec[], version: string): OpenApiDocument {
  const paths: ZodOpenApiPathsObject = {};
  for (const r of routes) paths[r.path] = { ...paths[r.path], [r.method]: operation(r) };
  const codes = ERROR_CODES.map((c) => `${c} (${ERROR_STATUS[c]})`).join(', ');
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'tfjs-explainer',
      version,
      description:
        'Explains TensorFlow.js models: Kernel SHAP, Integrated Gradients, permutation importance, fairness and drift. ' +
        'Keys: `Authorization: Bearer <key>` or `X-API-Key` when API_KEYS is set; a key scoped to some models gets 403 on every route of another model. ' +
        `Error codes (status): ${codes}.`,
    },
    paths,
  });
}

/** A readable page over the document, with no external assets. */
export function docsPage(doc: OpenApiDocument): string {
  const esc = (t: string) => t.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = Object.entries(doc.paths ?? {})
    .flatMap(([p, ops]) =>
      Object.entries(ops as Record<string, { summary?: string; requestBody?: { content: Record<string, { schema?: unknown }> } }>).map(
        ([verb, op]) =>
          `<section><h2><code>${esc(verb.toUpperCase())} ${esc(p)}</code></h2><p>${esc(op.summary ?? '')}</p>${
            op.requestBody
              ? `<details><summary>Request body schema</summary><pre>${esc(JSON.stringify(op.requestBody.content['application/json']?.schema, null, 2))}</pre></details>`
              : ''
          }</section>`,
      ),
    )
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(doc.info.title)} API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.75rem;overflow:auto}h2{font-size:1.05rem;margin-top:1.5rem}</style>
</head><body><h1>${esc(doc.info.title)} ${esc(doc.info.version)}</h1><p>${esc(doc.info.description ?? '')}</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p>${rows}</body></html>`;
}
