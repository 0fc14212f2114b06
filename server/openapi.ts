/**
 * The OpenAPI 3.1 document, generated from the same zod schemas that validate requests, so the
 * document cannot drift from what the service accepts.
 */
import { z } from 'zod';
import type { Schemas } from './schemas.js';
import { ERROR_STATUS } from './errors.js';

const json = (schema: z.ZodType) => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const errorResponse = {
  description: "The caller's mistake (4xx) or the service's fault (5xx), with a stable code",
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

export function openApiDocument(s: Schemas, version: string, extra: { fairness?: z.ZodType; drift?: z.ZodType } = {}) {
  const explainParams = {
    oneOf: [
      { title: 'kernel-shap parameters', ...json(s.kernelShap) },
      { title: 'integrated-gradients parameters', ...json(s.integratedGradients) },
    ],
  };
  const explainBody = json(s.explain) as { properties: Record<string, unknown> };
  explainBody.properties.method = { type: 'string', enum: ['kernel-shap', 'integrated-gradients'], default: 'kernel-shap' };
  explainBody.properties.parameters = explainParams;
  const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } };
  const ok = (description: string, types: string[] = ['application/json']) => ({
    description,
    content: Object.fromEntries(types.map((t) => [t, {}])),
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'tfjs-explainer',
      version,
      description:
        'Explains TensorFlow.js models: Kernel SHAP, Integrated Gradients and permutation importance. Error codes: ' +
        Object.keys(ERROR_STATUS).join(', '),
    },
    paths: {
      '/v1/models': { get: { summary: 'List served models', responses: { 200: ok('Models with versions, features and outputs') } } },
      '/v1/models/{name}': {
        get: { summary: 'One model with its metadata', parameters: [nameParam], responses: { 200: ok('The model'), 404: errorResponse } },
      },
      '/v1/models/{name}/predict': {
        post: {
          summary: 'Predict',
          parameters: [nameParam],
          requestBody: { required: true, content: { 'application/json': { schema: json(s.predict) } } },
          responses: {
            200: ok('{"predictions": [[...], ...]}'),
            400: errorResponse,
            404: errorResponse,
            413: errorResponse,
            429: errorResponse,
          },
        },
      },
      '/v1/models/{name}/explain': {
        post: {
          summary: 'Explain instances with Kernel SHAP or Integrated Gradients',
          parameters: [nameParam],
          requestBody: { required: true, content: { 'application/json': { schema: explainBody } } },
          responses: {
            200: ok('Explanations, one per instance'),
            400: errorResponse,
            404: errorResponse,
            413: errorResponse,
            429: errorResponse,
          },
        },
      },
      '/v1/models/{name}/importance': {
        post: {
          summary: "Permutation importance on the request's data or the model's reference set",
          parameters: [nameParam],
          requestBody: { required: false, content: { 'application/json': { schema: json(s.importance) } } },
          responses: { 200: ok('Importances per feature'), 400: errorResponse, 404: errorResponse, 429: errorResponse },
        },
      },
      ...(extra.fairness && {
        '/v1/models/{name}/fairness': {
          post: {
            summary: 'Group fairness metrics with bootstrap intervals, attributions by group and proxy detection',
            parameters: [nameParam],
            requestBody: { required: false, content: { 'application/json': { schema: json(extra.fairness) } } },
            responses: {
              200: ok('Fairness report', ['application/json', 'image/svg+xml', 'text/html', 'image/png']),
              400: errorResponse,
              404: errorResponse,
            },
          },
        },
      }),
      ...(extra.drift && {
        '/v1/models/{name}/drift': {
          post: {
            summary: 'Drift of inputs, predictions and attributions: current rows against the reference set',
            parameters: [nameParam],
            requestBody: { required: true, content: { 'application/json': { schema: json(extra.drift) } } },
            responses: {
              200: ok('Drift report', ['application/json', 'image/svg+xml', 'text/html', 'image/png']),
              400: errorResponse,
              404: errorResponse,
            },
          },
        },
        '/v1/models/{name}/drift/live': {
          get: {
            summary: 'Drift of the recent predict/explain traffic (a bounded window) against the reference set',
            parameters: [nameParam],
            responses: { 200: ok('Drift report'), 409: errorResponse },
          },
        },
      }),
      '/v1/models/{name}/report': {
        get: {
          summary: 'Self-contained HTML report of a model',
          parameters: [nameParam],
          responses: { 200: ok('HTML', ['text/html']), 404: errorResponse },
        },
      },
      '/v1/models/{name}/explain.{ext}': {
        get: {
          summary: 'An explanation chart by URL: features by name in the query, missing ones from the background median',
          parameters: [nameParam],
          responses: { 200: ok('chart', ['image/svg+xml', 'image/png', 'text/html', 'application/json']), 400: errorResponse },
        },
      },
      '/v1/explanations/{id}.{ext}': {
        get: {
          summary: 'A stored explanation by id (recomputed identically when it left the cache)',
          responses: {
            200: ok('chart or JSON', ['image/svg+xml', 'image/png', 'text/html', 'application/json']),
            404: errorResponse,
            410: errorResponse,
          },
        },
      },
      '/v1/jobs': {
        post: {
          summary:
            'Start a batch explanation job: {"model", "method", "parameters", "outputs"?, "instances": [...] | "dataset": "reference"} -> 202 {"id", "status"}',
          responses: { 202: ok('The job'), 400: errorResponse, 404: errorResponse },
        },
        get: { summary: 'Recent jobs', responses: { 200: ok('{"jobs": [...]}') } },
      },
      '/v1/jobs/{id}': {
        get: {
          summary: 'Status and progress: rowsDone/rowsTotal, rate, ETA, errors',
          responses: { 200: ok('The job'), 404: errorResponse },
        },
        delete: { summary: 'Cancel', responses: { 200: ok('The job'), 404: errorResponse } },
      },
      '/v1/jobs/{id}/results': {
        get: {
          summary: 'NDJSON, one explanation (or per-row error) per line with its index; ?follow=true streams until done',
          responses: { 200: ok('NDJSON', ['application/x-ndjson']), 404: errorResponse },
        },
      },
      '/v1/jobs/{id}/summary.svg': {
        get: {
          summary: 'Beeswarm of the rows explained so far',
          responses: { 200: ok('SVG', ['image/svg+xml']), 404: errorResponse, 409: errorResponse },
        },
      },
      '/healthz': { get: { summary: 'Liveness, backend, cache', responses: { 200: ok('ok') } } },
      '/readyz': { get: { summary: 'Readiness', responses: { 200: ok('ready'), 503: ok('not ready') } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: ok('text exposition', ['text/plain']) } } },
    },
    components: {
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string', enum: Object.keys(ERROR_STATUS) }, message: { type: 'string' }, details: {} },
            },
          },
        },
      },
    },
  };
}

/** A readable page over the document, with no external assets. */
export function docsPage(doc: ReturnType<typeof openApiDocument>): string {
  const esc = (t: string) => t.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = Object.entries(doc.paths)
    .flatMap(([p, ops]) =>
      Object.entries(ops as Record<string, { summary: string; requestBody?: { content: Record<string, { schema: unknown }> } }>).map(
        ([verb, op]) =>
          `<section><h2><code>${esc(verb.toUpperCase())} ${esc(p)}</code></h2><p>${esc(op.summary)}</p>${
            op.requestBody
              ? `<details><summary>Request body schema</summary><pre>${esc(JSON.stringify(op.requestBody.content['application/json'].schema, null, 2))}</pre></details>`
              : ''
          }</section>`,
      ),
    )
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(doc.info.title)} API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.75rem;overflow:auto}h2{font-size:1.05rem;margin-top:1.5rem}</style>
</head><body><h1>${esc(doc.info.title)} ${esc(doc.info.version)}</h1><p>${esc(doc.info.description)}</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p>${rows}</body></html>`;
}
