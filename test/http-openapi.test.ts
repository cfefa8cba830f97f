/**
 * The OpenAPI document and the reference page: generated from the routes' own schemas, listing
 * every /api route, valid OpenAPI 3.1, public on tenant hosts, and a page that works without script.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { escapeHtml } from '../src/app/openapi/reference-page.ts';
import { RULES, type Permission } from '../src/app/policies.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { routesOf } from './helpers/routes.ts';
import { assertProblem } from './helpers/work.ts';

interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  parameters?: { name: string; in: string; required?: boolean; schema?: unknown }[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
  security?: Record<string, string[]>[];
  'x-permission'?: string;
}
interface Document {
  openapi: string;
  info: { title: string; version: string };
  tags: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string }> };
}

const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

let h: HttpTest;
let acme: TestTenant;
let doc: Document;

before(async () => {
  h = await startHttpTest();
  acme = await makeTenant(h.tp, 'acme');
  const res = await call(h.app, acme, '/api/openapi.json', { token: null });
  assert.equal(res.statusCode, 200, res.body);
  doc = res.json<Document>();
});
after(async () => {
  await h.cleanup();
});

/** `/api/tasks/:id` as OpenAPI writes it: `/api/tasks/{id}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function operations(): { path: string; method: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).filter(([m]) => METHODS.includes(m)).map(([method, op]) => ({ path, method, op })));
}

describe('GET /api/openapi.json', () => {
  test('is public on a tenant host, and only there', async () => {
    assert.match(String((await call(h.app, acme, '/api/openapi.json', { token: null })).headers['content-type']), /^application\/json/);
    assert.equal((await call(h.app, acme, '/api/openapi.json')).statusCode, 200, 'with a token too');
    assertProblem(await h.app.inject({ url: '/api/openapi.json', headers: { host: 'nope.taskflow.test' } }), 'tenant-not-found');
  });

  test('lists every /api route, with its method, and nothing the API does not serve', () => {
    const served = routesOf(h.app).filter((r) => r.method !== 'HEAD' && (r.url.startsWith('/api/') || ['/healthz', '/readyz', '/problems/:code'].includes(r.url)));
    assert.ok(served.length >= 50, `found only ${served.length} routes`);
    const missing = served.filter((r) => doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()] === undefined).map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(missing, []);
    const documented = operations().map((o) => `${o.method.toUpperCase()} ${o.path}`).sort();
    assert.deepEqual(documented, served.map((r) => `${r.method} ${openApiPath(r.url)}`).sort(), 'and nothing else (the web app pages are not API)');
  });

  test('is a valid OpenAPI 3.1 document', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(typeof doc.info.version, 'string');
    const tags = new Set(doc.tags.map((t) => t.name));
    const ids = new Set<string>();
    // Every schema must be a valid JSON Schema 2020-12 (the dialect of OpenAPI 3.1): Ajv checks it
    // against the meta-schema; unknown formats and OpenAPI's own keywords are allowed.
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const checkSchema = (where: string, schema: unknown) => {
      assert.ok(typeof schema === 'object' && schema !== null, `${where}: a schema`);
      assert.ok(ajv.validateSchema(schema), `${where}: ${ajv.errorsText(ajv.errors)}`);
      assert.doesNotMatch(JSON.stringify(schema), /"\$ref"/, `${where}: no dangling $ref`);
    };
    for (const { path, method, op } of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.match(path, /^\/[^?#]*$/, where);
      assert.ok(op.operationId && !ids.has(op.operationId), `${where}: a unique operationId`);
      ids.add(op.operationId);
      assert.ok(op.summary, `${where}: a summary`);
      assert.ok(op.tags?.length === 1 && tags.has(op.tags[0] ?? ''), `${where}: one declared tag`);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path');
      assert.deepEqual(pathParams.map((p) => p.name).sort(), templated, `${where}: path parameters match the template`);
      assert.ok(pathParams.every((p) => p.required === true), `${where}: path parameters are required`);
      for (const p of op.parameters ?? []) {
        assert.ok(['path', 'query', 'header', 'cookie'].includes(p.in), `${where}: parameter ${p.name} in ${p.in}`);
        checkSchema(`${where} parameter ${p.name}`, p.schema);
      }
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) checkSchema(`${where} body ${type}`, media.schema);
      const responses = Object.entries(op.responses ?? {});
      assert.ok(responses.length > 0, `${where}: responses`);
      for (const [status, response] of responses) {
        assert.match(status, /^([1-5][0-9]{2}|[1-5]XX|default)$/, `${where}: status ${status}`);
        assert.ok(response.description, `${where} ${status}: a description`);
        for (const [type, media] of Object.entries(response.content ?? {})) checkSchema(`${where} ${status} ${type}`, media.schema);
      }
      for (const requirement of op.security ?? []) {
        for (const scheme of Object.keys(requirement)) assert.ok(doc.components.securitySchemes[scheme], `${where}: security scheme ${scheme}`);
      }
    }
  });

  test('says who may call each operation, as policies.ts does', () => {
    for (const { path, method, op } of operations()) {
      const permission = op['x-permission'];
      const where = `${method.toUpperCase()} ${path}`;
      if (!path.startsWith('/api/')) {
        assert.equal(permission, 'none', where);
        continue;
      }
      assert.ok(permission !== undefined && Object.hasOwn(RULES, permission), `${where}: ${permission}`);
      const rule = RULES[permission as Permission];
      const schemes = (op.security ?? []).flatMap((r) => Object.keys(r)).sort();
      assert.deepEqual(schemes, rule.role === null ? [] : rule.tokens ? ['apiToken', 'session'] : ['session'], where);
    }
    assert.equal(doc.paths['/api/projects/{id}/workflow']?.put?.['x-permission'], 'workflows.manage');
    assert.equal(doc.paths['/api/tasks/{id}/move']?.post?.['x-permission'], 'work.write');
  });

  test('problems are application/problem+json, successes application/json', () => {
    const move = doc.paths['/api/tasks/{id}/move']?.post;
    assert.deepEqual(Object.keys(move?.responses?.['4XX']?.content ?? {}), ['application/problem+json']);
    assert.deepEqual(Object.keys(move?.responses?.['200']?.content ?? {}), ['application/json']);
    assert.deepEqual(Object.keys(doc.paths['/api/reference']?.get?.responses?.['200']?.content ?? {}), ['text/html']);
  });

  test('the task contract is the one the server checks', () => {
    const body = doc.paths['/api/tasks/{id}']?.patch?.requestBody?.content['application/json']?.schema as { properties: Record<string, unknown>; additionalProperties: boolean };
    assert.deepEqual(Object.keys(body.properties).sort(), ['assigneeId', 'description', 'dueDate', 'labels', 'priority', 'statusId', 'title']);
    assert.equal(body.additionalProperties, false);
    const query = (doc.paths['/api/tasks']?.get?.parameters ?? []).map((p) => p.name).sort();
    assert.deepEqual(query, ['assignee', 'category', 'cursor', 'dueAfter', 'dueBefore', 'label', 'limit', 'order', 'priority', 'projectId', 'q', 'sort', 'status']);
    const headers = (doc.paths['/api/tasks/{id}']?.patch?.parameters ?? []).filter((p) => p.in === 'header').map((p) => p.name);
    assert.deepEqual(headers, ['if-match']);
  });
});

describe('GET /api/reference', () => {
  test('a readable page of every operation, with no script and no inline style', async () => {
    const res = await call(h.app, acme, '/api/reference', { token: null });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'|default-src 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = res.body;
    assert.doesNotMatch(html, /<script|<style|\sstyle=|\son[a-z]+=|javascript:/i);
    assert.match(html, /<link rel="stylesheet" href="\/api\/reference\.css">/);
    for (const { path, method, op } of operations()) {
      assert.ok(html.includes(`<span class="method ${method}">${method.toUpperCase()}</span> <code>${path}</code>`), `${method} ${path} on the page`);
      assert.ok(html.includes(escapeHtml(op.summary ?? '?')), `${method} ${path}: its summary`);
    }
    assert.match(html, /statusId\?: string \(uuid\)/, 'bodies are written out as types');
    assert.match(html, /<td><code>if-match<\/code><\/td><td>header<\/td>/, 'headers are listed as parameters');
  });

  test('its stylesheet is served beside it', async () => {
    const res = await call(h.app, acme, '/api/reference.css', { token: null });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/css/);
    assert.match(res.body, /^body\{/);
  });
});
