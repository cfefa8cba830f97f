/**
 * Serving the web app: index.html for the app's paths (deep links) under the HTML policy, hashed
 * assets with a long cache, the server's own paths untouched, and a clear answer without a build.
 * Tenancy is left out here (test/web-app.test.ts has the real server); these run on a bare app.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { App } from '../app.ts';
import { installErrors } from './errors.ts';
import { HTML_CSP, installSecurityHeaders } from './security-headers.ts';
import { APP_SECTIONS, webApp } from './web.ts';

const INDEX = '<!doctype html><title>TaskFlow</title><script type="module" src="/assets/index-abc123.js"></script>';

async function appServing(distDir: string): Promise<App> {
  const app: App = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  installSecurityHeaders(app, { hsts: null });
  installErrors(app, { retryAfterSeconds: 300 });
  app.get('/api/things', async () => Promise.resolve({ ok: true }));
  app.post('/api/login', async () => Promise.resolve({ ok: true }));
  app.get('/healthz', async () => Promise.resolve({ status: 'ok' }));
  app.get('/api/page', async (_request, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'").send('<p>A page of its own</p>'));
  await app.register(webApp({ distDir }));
  await app.ready();
  return app;
}

describe('with a build', () => {
  let dir: string;
  let app: App;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskflow-web-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), INDEX);
    writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1);');
    app = await appServing(dir);
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the app's paths answer index.html under the HTML policy, never cached", async () => {
    for (const url of ['/', '/projects', '/projects/', '/projects/0b6f7a52-3d1e-4f0e-9a43-1f1a8d2c9e11/workflow', '/tasks?project=x&status=y', '/reset-password', '/invitation']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.body, INDEX, url);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8', url);
      assert.equal(res.headers['content-security-policy'], HTML_CSP, url);
      assert.equal(res.headers['cache-control'], 'no-store', url);
      assert.equal(res.headers['x-frame-options'], 'DENY', url);
    }
    assert.match(HTML_CSP, /script-src 'self';/);
    assert.doesNotMatch(HTML_CSP, /unsafe-inline|unsafe-eval/);
  });

  test('an HTML page that sets a narrower policy of its own keeps it', async () => {
    assert.equal((await app.inject({ url: '/api/page' })).headers['content-security-policy'], "default-src 'none'");
  });

  test('HEAD works as GET does', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/projects' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, '');
  });

  test('assets are cached for a year, as immutable', async () => {
    const res = await app.inject({ url: '/assets/index-abc123.js' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /javascript/);
    assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
  });

  test('a missing asset, a file name or a dotfile is a 404 problem, not the app', async () => {
    for (const url of ['/assets/nope.js', '/assets/', '/assets//index-abc123.js', '/assets/.hidden', '/assets/%2e%2e/index.html', '/favicon.ico', '/robots.txt', '/.env', '/etc/passwd', '/wp-admin', '/assets/../index.html', '/..%2f..%2fetc%2fpasswd', '/projects/%20', '/projects//x', '/projects/a.b']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 404, url);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/, url);
      assert.equal(res.headers['cache-control'], 'no-store', url);
    }
  });

  test("the server's own paths are untouched: unknown ones stay 404, other methods 405", async () => {
    assert.deepEqual((await app.inject({ url: '/api/things' })).json(), { ok: true });
    assert.deepEqual((await app.inject({ url: '/healthz' })).json(), { status: 'ok' });
    for (const url of ['/api', '/api/', '/api/nothing', '/api/things/1', '/healthz/', '/readyz', '/problems/x']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json<{ code: string }>().code, 'not-found', url);
    }
    const wrongMethod = await app.inject({ url: '/api/login' });
    assert.equal(wrongMethod.statusCode, 405);
    assert.equal(wrongMethod.headers.allow, 'POST');
  });

  test('only GET and HEAD serve the app', async () => {
    const res = await app.inject({ method: 'POST', url: '/projects', payload: {} });
    assert.equal(res.statusCode, 404);
  });
});

test("the server knows every section of the app's router", () => {
  const router = readFileSync(new URL('../../../web/src/router.tsx', import.meta.url), 'utf8');
  const sections = new Set([...router.matchAll(/case '\/([a-z-]+)'/g), ...router.matchAll(/\^\\\/([a-z-]+)\\\//g)].map((m) => m[1]));
  assert.deepEqual([...sections].sort(), [...APP_SECTIONS].sort());
});

describe('without a build', () => {
  let dir: string;
  let app: App;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskflow-web-'));
    app = await appServing(join(dir, 'dist'));
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the server starts, the API serves, and the app paths say how to build', async () => {
    assert.deepEqual((await app.inject({ url: '/api/things' })).json(), { ok: true });
    const res = await app.inject({ url: '/' });
    assert.equal(res.statusCode, 404);
    assert.match(res.json<{ detail: string }>().detail, /npm run build:web/);
  });

  test('a build made while the server runs is served at once', async () => {
    mkdirSync(join(dir, 'dist', 'assets'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'index.html'), INDEX);
    writeFileSync(join(dir, 'dist', 'assets', 'index-abc123.js'), 'console.log(1);');
    assert.equal((await app.inject({ url: '/' })).body, INDEX);
    assert.equal((await app.inject({ url: '/assets/index-abc123.js' })).statusCode, 200);
  });
});
