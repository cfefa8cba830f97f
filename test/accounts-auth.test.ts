/**
 * Accounts against a real server and PostgreSQL: setup link, sign-in, sessions and their cookies,
 * sign-out, password reset, the password policy, and what the audit log records.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { issueSetupLink, withTenantDb } from '../src/app/accounts/setup.ts';
import { serverInternals } from '../src/app/server.ts';
import { firstOwner, GOOD_PASSWORD, invitedUser } from './helpers/accounts.ts';
import { Browser, lastMailTo } from './helpers/browser.ts';
import { makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';

let h: HttpTest;
let acme: TestTenant;
let owner: Browser;
const OWNER = 'owner@acme.example';

before(async () => {
  h = await startHttpTest({ 'server.trustProxy': true });
  acme = await makeTenant(h.tp, 'acme');
  owner = await firstOwner(h.app, h.tp, acme, OWNER);
});
after(async () => {
  await h.cleanup();
});

function code(res: LightMyRequestResponse): string {
  return res.json<{ code: string }>().code;
}

interface AuditRow {
  outcome: string;
  actor_label: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

async function auditActions(action: string): Promise<AuditRow[]> {
  const res = await h.tp.platform.control.query<AuditRow>(
    'SELECT outcome, actor_label, host(ip) AS ip, user_agent, details FROM audit_events WHERE tenant_id = $1 AND action = $2 ORDER BY id',
    [acme.tenant.id, action],
  );
  return res.rows;
}

/** Runs SQL in acme's database as its login role (to age a session or a link). */
async function inAcme(sql: string, params: unknown[] = []): Promise<{ rows: Record<string, unknown>[] }> {
  return withTenantDb(h.tp.platform, acme.tenant, (db) => db.read((c) => c.query<Record<string, unknown>>(sql, params)));
}

describe('the first owner and sign-in', () => {
  test('the setup link signs the owner in with a host-only, Secure, HttpOnly, SameSite=Lax cookie', async () => {
    const state = await owner.request('GET', '/api/auth/session');
    assert.equal(state.statusCode, 200);
    const body = state.json<{ signedIn: boolean; user: { email: string; role: string } }>();
    assert.equal(body.signedIn, true);
    assert.equal(body.user.email, OWNER);
    assert.equal(body.user.role, 'owner');

    const browser = await new Browser(h.app, acme.host).start();
    const login = await browser.signIn(OWNER, GOOD_PASSWORD);
    assert.equal(login.statusCode, 200, login.body);
    const header = String(login.headers['set-cookie']);
    assert.match(header, /__Host-tf_session=[A-Za-z0-9_-]{43};/);
    assert.match(header, /Secure/);
    assert.match(header, /HttpOnly/);
    assert.match(header, /SameSite=Lax/);
    assert.match(header, /Path=\//);
    assert.doesNotMatch(header, /Domain=/i, 'host-only: never shared with sibling subdomains');
  });

  test('a setup link works once', async () => {
    await issueSetupLink({ platform: h.tp.platform, tenant: acme.tenant, email: 'second-owner@acme.example', operator: 'test' });
    const mail = await lastMailTo(h.tp.platform.control, 'second-owner@acme.example');
    assert.ok(mail?.token);
    assert.equal(mail.kind, 'setup');
    const b = await new Browser(h.app, acme.host).start();
    const first = await b.request('POST', '/api/auth/invitations/accept', { token: mail.token, displayName: 'Two', password: GOOD_PASSWORD });
    assert.equal(first.statusCode, 204);
    const again = await new Browser(h.app, acme.host).start();
    const second = await again.request('POST', '/api/auth/invitations/accept', { token: mail.token, displayName: 'Three', password: GOOD_PASSWORD });
    assert.equal(second.statusCode, 400);
    assert.equal(code(second), 'token-invalid');
  });

  test('a wrong password and an unknown address get the same answer, and both are audited', async () => {
    const b = await new Browser(h.app, acme.host).start();
    const wrong = await b.signIn(OWNER, 'not the password at all');
    const unknown = await b.signIn('nobody@acme.example', 'not the password at all');
    assert.equal(wrong.statusCode, 401);
    assert.equal(unknown.statusCode, 401);
    const strip = (r: LightMyRequestResponse) => {
      const { instance: _i, ...rest } = r.json<Record<string, unknown>>();
      return rest;
    };
    assert.deepEqual(strip(wrong), strip(unknown));
    assert.equal(wrong.cookies.length, 0, 'no session for a failed sign-in');
    const failures = (await auditActions('auth.login')).filter((e) => e.outcome === 'failure');
    assert.ok(failures.some((e) => e.actor_label === OWNER && e.details.reason === 'wrong-password'));
    assert.ok(failures.some((e) => e.actor_label === 'nobody@acme.example' && e.details.reason === 'unknown-account'));
    assert.ok(failures.every((e) => e.ip === '127.0.0.1' && e.user_agent === 'TestBrowser/1.0'));
  });

  test('a session cookie planted before sign-in is not the one after it (no fixation)', async () => {
    const b = await new Browser(h.app, acme.host).start();
    const planted = 'A'.repeat(43);
    b.jar.set('__Host-tf_session', planted);
    const login = await b.signIn(OWNER, GOOD_PASSWORD);
    assert.equal(login.statusCode, 200);
    assert.notEqual(b.jar.get('__Host-tf_session'), planted);
    const other = await new Browser(h.app, acme.host).start();
    other.jar.set('__Host-tf_session', planted);
    assert.equal((await other.request('GET', '/api/projects')).statusCode, 401);
  });

  test('sign-out ends the session on the server, not only the cookie', async () => {
    const b = await new Browser(h.app, acme.host).start();
    await b.signIn(OWNER, GOOD_PASSWORD);
    const cookie = b.jar.get('__Host-tf_session');
    assert.ok(cookie);
    assert.equal((await b.request('GET', '/api/projects')).statusCode, 200);
    assert.equal((await b.request('POST', '/api/auth/logout')).statusCode, 204);
    assert.equal(b.jar.has('__Host-tf_session'), false, 'the cookie is cleared');
    b.jar.set('__Host-tf_session', cookie);
    assert.equal((await b.request('GET', '/api/projects')).statusCode, 401, 'the old cookie is dead');
  });

  test('an idle session ends after the idle timeout', async () => {
    const b = await new Browser(h.app, acme.host).start();
    await b.signIn(OWNER, GOOD_PASSWORD);
    const sessions = (await b.request('GET', '/api/account/sessions')).json<{ items: { id: string; current: boolean }[] }>();
    const current = sessions.items.find((s) => s.current);
    assert.ok(current);
    await inAcme(`UPDATE app.sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = $1`, [current.id]);
    assert.equal((await b.request('GET', '/api/projects')).statusCode, 401);
  });

  test('sign-in needs HTTPS: over plain HTTP no cookie is ever set', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/api/auth/csrf', headers: { host: acme.host } });
    assert.equal(res.statusCode, 403);
    assert.equal(code(res), 'https-required');
    assert.equal(res.cookies.length, 0);
  });
});

describe('sessions of one user', () => {
  test('a user sees their sessions and ends the others', async () => {
    const laptop = await invitedUser(h.app, h.tp, owner, 'two-devices@acme.example', 'member');
    const phone = await new Browser(h.app, acme.host).start();
    await phone.signIn('two-devices@acme.example', GOOD_PASSWORD);
    const list = (await laptop.request('GET', '/api/account/sessions')).json<{ items: { id: string; current: boolean; userAgent: string }[] }>();
    assert.ok(list.items.length >= 2);
    assert.equal(list.items.filter((s) => s.current).length, 1);
    const ended = await laptop.request('POST', '/api/account/sessions/end-others');
    assert.equal(ended.statusCode, 200);
    assert.equal((await phone.request('GET', '/api/projects')).statusCode, 401);
    assert.equal((await laptop.request('GET', '/api/projects')).statusCode, 200);
  });

  test('ending a session id of another user is 404, and leaves it alone', async () => {
    const member = await invitedUser(h.app, h.tp, owner, 'sessions-member@acme.example', 'member');
    const theirs = (await member.request('GET', '/api/account/sessions')).json<{ items: { id: string }[] }>();
    const id = theirs.items[0]?.id;
    assert.ok(id);
    const res = await owner.request('DELETE', `/api/account/sessions/${id}`);
    assert.equal(res.statusCode, 404);
    assert.equal((await member.request('GET', '/api/projects')).statusCode, 200);
  });
});

describe('password reset', () => {
  const EMAIL = 'resetter@acme.example';
  let user: Browser;
  before(async () => {
    user = await invitedUser(h.app, h.tp, owner, EMAIL, 'member');
  });

  async function requestReset(email: string) {
    const b = await new Browser(h.app, acme.host).start();
    const res = await b.request('POST', '/api/auth/password-reset', { email });
    await serverInternals(h.app).background.drain();
    return res;
  }

  test('answers the same for a known and an unknown address; only the known one gets mail', async () => {
    const known = await requestReset(EMAIL);
    const unknown = await requestReset('ghost@acme.example');
    assert.equal(known.statusCode, 202);
    assert.equal(unknown.statusCode, 202);
    assert.equal(known.body, unknown.body);
    assert.equal((await lastMailTo(h.tp.platform.control, EMAIL))?.kind, 'password-reset');
    assert.equal(await lastMailTo(h.tp.platform.control, 'ghost@acme.example'), null);
  });

  test('a newer request supersedes the older link; the link works once and ends every session', async () => {
    await requestReset(EMAIL);
    const older = (await lastMailTo(h.tp.platform.control, EMAIL))?.token;
    await requestReset(EMAIL);
    const newer = (await lastMailTo(h.tp.platform.control, EMAIL))?.token;
    assert.ok(older && newer && older !== newer);
    const b = await new Browser(h.app, acme.host).start();
    const stale = await b.request('POST', '/api/auth/password-reset/complete', { token: older, password: 'a brand new passphrase 77' });
    assert.equal(stale.statusCode, 400);
    assert.equal(code(stale), 'token-invalid');

    const weak = await b.request('POST', '/api/auth/password-reset/complete', { token: newer, password: 'password1234' });
    assert.equal(weak.statusCode, 422);
    assert.equal(code(weak), 'password-rejected');

    const done = await b.request('POST', '/api/auth/password-reset/complete', { token: newer, password: 'a brand new passphrase 77' });
    assert.equal(done.statusCode, 204, done.body);
    assert.equal((await user.request('GET', '/api/projects')).statusCode, 401, 'the sessions from before the reset are ended');
    assert.equal((await lastMailTo(h.tp.platform.control, EMAIL))?.kind, 'password-changed');
    const reuse = await b.request('POST', '/api/auth/password-reset/complete', { token: newer, password: 'another new passphrase 88' });
    assert.equal(reuse.statusCode, 400);
    assert.equal((await b.signIn(EMAIL, GOOD_PASSWORD)).statusCode, 401, 'the old password is gone');
    assert.equal((await b.signIn(EMAIL, 'a brand new passphrase 77')).statusCode, 200);
    const completed = await auditActions('auth.password-reset.completed');
    assert.ok(completed.some((e) => e.outcome === 'success' && e.actor_label === EMAIL));
  });

  test('an expired link is refused', async () => {
    await requestReset(EMAIL);
    const token = (await lastMailTo(h.tp.platform.control, EMAIL))?.token;
    await inAcme(`UPDATE app.password_resets SET expires_at = now() - interval '1 second' WHERE used_at IS NULL AND superseded_at IS NULL`);
    const b = await new Browser(h.app, acme.host).start();
    const res = await b.request('POST', '/api/auth/password-reset/complete', { token, password: 'yet another passphrase 99' });
    assert.equal(res.statusCode, 400);
  });

  test('the reset link is stored only as a hash', async () => {
    await requestReset(EMAIL);
    const token = (await lastMailTo(h.tp.platform.control, EMAIL))?.token;
    assert.ok(token);
    const rows = await inAcme(`SELECT encode(token_hash, 'escape') AS t FROM app.password_resets`);
    assert.ok(rows.rows.length > 0);
    assert.ok(rows.rows.every((r) => !String(r.t).includes(token)));
  });
});

describe('the password policy', () => {
  for (const [password, reason] of [
    ['short pass', 'too-short'],
    ['password1234', 'common'],
    ['iloveyou2024!!', 'common'],
    ['aaaaaaaaaaaaaaaa', 'repetitive'],
    ['our acme workspace', 'contains-personal-data'],
    ['newcomer-gets-in', 'contains-personal-data'],
  ] as const) {
    test(`refuses ${reason}: "${password}"`, async () => {
      const email = `newcomer-${password.replace(/\W/g, '')}@acme.example`;
      const invite = await owner.request('POST', '/api/invitations', { email, role: 'viewer' });
      assert.equal(invite.statusCode, 201);
      const token = (await lastMailTo(h.tp.platform.control, email))?.token;
      const b = await new Browser(h.app, acme.host).start();
      const res = await b.request('POST', '/api/auth/invitations/accept', { token, displayName: 'New', password: password.replace('newcomer', email.split('@')[0] ?? '') });
      assert.equal(res.statusCode, 422, res.body);
      assert.equal(res.json<{ reason: string }>().reason, reason);
      const retry = await b.request('POST', '/api/auth/invitations/accept', { token, displayName: 'New', password: GOOD_PASSWORD });
      assert.equal(retry.statusCode, 204, 'a refused password does not use up the link');
    });
  }

  test('a 1000-character passphrase is fine; an enormous one is a clear error', async () => {
    const b = await new Browser(h.app, acme.host).start();
    await owner.request('POST', '/api/invitations', { email: 'longpass@acme.example', role: 'viewer' });
    const token = (await lastMailTo(h.tp.platform.control, 'longpass@acme.example'))?.token;
    const enormous = await b.request('POST', '/api/auth/invitations/accept', { token, displayName: 'Long', password: 'x'.repeat(100_000) });
    assert.equal(enormous.statusCode, 400);
    const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ').slice(0, 1000);
    const ok = await b.request('POST', '/api/auth/invitations/accept', { token, displayName: 'Long', password: long });
    assert.equal(ok.statusCode, 204, ok.body);
    const again = await new Browser(h.app, acme.host).start();
    assert.equal((await again.signIn('longpass@acme.example', long)).statusCode, 200);
  });
});
