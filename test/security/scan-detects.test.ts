/**
 * The scanner finds what it looks for: each check runs against a deliberately careless server
 * (no security headers, cookies without flags, input reflected as HTML, SQL errors shown, no CSRF
 * or throttling, telling addresses apart) and must fail. Without this, a passing scan of TaskFlow
 * would prove nothing.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { bruteForce, enumeration } from '../../src/scan/checks/accounts.ts';
import { csrf } from '../../src/scan/checks/csrf.ts';
import { errorLeaks, securityHeaders } from '../../src/scan/checks/headers.ts';
import { pathTraversal, sqlInjection, xss } from '../../src/scan/checks/injection.ts';
import { sessionFixation, signOut } from '../../src/scan/checks/sessions.ts';
import { cookieFlags } from '../../src/scan/checks/transport.ts';
import { runScan } from '../../src/scan/scan.ts';
import type { Check } from '../../src/scan/types.ts';
import { makeAuthority, makeSelfSigned } from '../../src/platform/tls/certificates.ts';

const USER = { email: 'user@careless.example', password: 'the right password' };
let server: ReturnType<typeof createServer>;
let url: string;
let ca: string;

type Answer = [status: number, headers: Record<string, string>, body: string];

function json(status: number, value: unknown, headers: Record<string, string> = {}): Answer {
  return [status, { 'content-type': 'application/json', 'x-powered-by': 'Careless/1.0', ...headers }, JSON.stringify(value)];
}

/** Everything TaskFlow does right, done wrong. */
function carelessAnswer(path: string, body: string, cookie: string): Answer {
  if (path.includes('etc/passwd')) return [200, { 'content-type': 'text/plain' }, 'root:x:0:0:root:/root:/bin/bash\n'];
  if (path.includes("'")) return json(500, { error: `syntax error at or near "'" at character 42\n    at query (/srv/app/node_modules/pg/lib/client.js:1:1)` });
  if (path.includes('<script>')) return [200, { 'content-type': 'text/html' }, `<p>Not found: ${path}</p>`];
  if (path === '/api/auth/csrf') return json(200, { csrfToken: 't' }, { 'set-cookie': 'csrf=t; Path=/' });
  if (path === '/api/auth/login') {
    let creds: { email?: string; password?: string } = {};
    try {
      creds = JSON.parse(body) as typeof creds;
    } catch {
      return json(500, { error: 'Unexpected end of JSON input at JSON.parse (/srv/app/server.js:10:5)' });
    }
    if (creds.email !== USER.email) return json(404, { error: 'no such user' });
    if (creds.password !== USER.password) return json(401, { error: 'wrong password' });
    // The session id the browser already had is kept (fixation), without any flags.
    const planted = /session=([^;]+)/.exec(cookie)?.[1];
    return json(200, { stage: 'active' }, { 'set-cookie': `session=${planted ?? 'S1'}; Path=/` });
  }
  if (path === '/api/auth/logout') return [204, {}, ''];
  if (path === '/api/account') return json(200, { displayName: 'User' });
  if (path === '/api/auth/password-reset') return json(body.includes(USER.email) ? 202 : 404, {});
  return json(404, { error: `no route ${path}` });
}

function careless(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk.toString()));
  req.on('end', () => {
    let path = req.url ?? '/';
    try {
      path = decodeURIComponent(path);
    } catch {
      // kept as sent
    }
    const [status, headers, text] = carelessAnswer(path, body, req.headers.cookie ?? '');
    res.writeHead(status, headers).end(text);
  });
}

before(async () => {
  const authority = await makeAuthority('careless');
  const leaf = await makeSelfSigned(['careless.localhost'], authority);
  ca = authority.cert;
  server = createServer({ cert: leaf.cert, key: leaf.key }, careless);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://careless.localhost:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
});

const EXPECTED_TO_FAIL: Check[] = [securityHeaders, errorLeaks, cookieFlags, csrf, sessionFixation, signOut, pathTraversal, xss, sqlInjection, enumeration, bruteForce];

for (const check of EXPECTED_TO_FAIL) {
  test(`${check.id} fails against a careless server`, async () => {
    const report = await runScan({ target: { tenant: { url, user: USER } }, client: { ca, connectTo: '127.0.0.1' }, checks: [check] });
    const outcome = report.checks[0];
    assert.ok(outcome);
    assert.equal(outcome.status, 'fail', `${check.id} should have found something; it reported ${JSON.stringify(outcome)}`);
    assert.ok(outcome.findings.length > 0);
  });
}
