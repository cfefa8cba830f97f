/**
 * The built web app as the real server serves it: on tenant hosts only (an unknown host stays 404
 * tenant-not-found), its pages under the strict HTML policy with nothing inline for that policy to
 * refuse, its assets cached, and the server's own routes as they were.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HTML_CSP } from '../src/app/plugins/security-headers.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { ensureWebBuilt } from './helpers/web-build.ts';

const DIST = fileURLToPath(new URL('../web/dist/', import.meta.url));

let h: HttpTest;
let acme: TestTenant;

before(async () => {
  await ensureWebBuilt();
  h = await startHttpTest();
  acme = await makeTenant(h.tp, 'acme');
});
after(async () => {
  await h.cleanup();
});

test('the built page has no inline script or style, only files of its own', () => {
  const html = readFileSync(`${DIST}index.html`, 'utf8');
  for (const script of html.match(/<script\b[^>]*>/g) ?? []) assert.match(script, /\ssrc="\/assets\/[\w.-]+\.js"/, script);
  assert.doesNotMatch(html, /<script\b[^>]*>[^<\s]/, 'an inline script');
  assert.doesNotMatch(html, /<style\b|\sstyle=|\son[a-z]+=/i, 'an inline style or event handler');
  for (const reference of html.match(/(?:src|href)="[^"]*"/g) ?? []) assert.match(reference, /="\/assets\//, `${reference}: a file of another site`);
});

test("a tenant's app paths answer the page, under the HTML policy", async () => {
  for (const url of ['/', '/projects', '/tasks?project=x', '/invitation']) {
    const res = await call(h.app, acme, url, { token: null });
    assert.equal(res.statusCode, 200, url);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.equal(res.headers['content-security-policy'], HTML_CSP);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.match(res.body, /<div id="root"><\/div>/);
  }
});

test('assets are cached for a year; a host that names no tenant gets neither page nor asset', async () => {
  const asset = readdirSync(`${DIST}assets`).find((name) => name.endsWith('.js'));
  assert.ok(asset);
  const res = await call(h.app, acme, `/assets/${asset}`, { token: null });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
  for (const url of ['/', '/projects', `/assets/${asset}`]) {
    const other = await call(h.app, acme, url, { token: null, host: 'nope.taskflow.test' });
    assert.equal(other.statusCode, 404, url);
    assert.equal(other.json<{ code: string }>().code, 'tenant-not-found', url);
  }
});

test("the server's own routes are as they were", async () => {
  assert.equal((await call(h.app, acme, '/api/projects')).statusCode, 200);
  const unknown = await call(h.app, acme, '/api/nothing-here');
  assert.equal(unknown.statusCode, 404);
  assert.equal(unknown.json<{ code: string }>().code, 'not-found');
  const wrongMethod = await call(h.app, acme, '/api/auth/login', { token: null });
  assert.equal(wrongMethod.statusCode, 405);
  assert.equal((await call(h.app, acme, '/healthz', { host: 'localhost', token: null })).json<{ status: string }>().status, 'ok');
  assert.equal((await call(h.app, acme, '/favicon.ico', { token: null })).statusCode, 404);
});
