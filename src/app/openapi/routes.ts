/**
 * /api/openapi.json and /api/reference: the API's contract, public on every tenant's address (it
 * is the same for all, and holds nothing of any tenant's). The reference page is plain HTML under
 * a CSP that allows nothing but its own stylesheet.
 */
import { Type } from 'typebox';
import type { App } from '../app.ts';
import { PROBLEM_RESPONSES } from '../schema.ts';
import { openApiDocument } from './document.ts';
import { REFERENCE_CSS, renderReferencePage } from './reference-page.ts';

const PAGE_CSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const Document = Type.Object(
  { openapi: Type.String(), info: Type.Object({ title: Type.String(), version: Type.String() }), paths: Type.Record(Type.String(), Type.Unknown()) },
  { description: 'An OpenAPI 3.1 document' },
);

export function referenceRoutes(app: App): void {
  const open = { permission: 'public' } as const;
  let page: string | null = null;

  app.get('/openapi.json', { config: open, schema: { summary: 'This API as an OpenAPI 3.1 document', response: { 200: Document, ...PROBLEM_RESPONSES } } }, async () =>
    Promise.resolve(openApiDocument(app)),
  );

  app.get(
    '/reference',
    { config: open, schema: { summary: 'This API as a readable page', produces: ['text/html'], response: { 200: Type.String({ description: 'An HTML page' }), ...PROBLEM_RESPONSES } } },
    async (_request, reply) => {
      page ??= renderReferencePage(openApiDocument(app), { json: '/api/openapi.json', stylesheet: '/api/reference.css' });
      return reply.type('text/html; charset=utf-8').header('content-security-policy', PAGE_CSP).send(page);
    },
  );

  app.get(
    '/reference.css',
    { config: open, schema: { summary: "The reference page's stylesheet", produces: ['text/css'], response: { 200: Type.String({ description: 'A stylesheet' }), ...PROBLEM_RESPONSES } } },
    async (_request, reply) => reply.type('text/css; charset=utf-8').send(REFERENCE_CSS),
  );
}
