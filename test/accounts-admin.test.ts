/**
 * Roles and user administration, second factors, re-authentication, CSRF across sibling
 * subdomains and tenants, sign-in throttling and hash upgrades, against a real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { Secret } from 'otpauth';
import { withTenantDb } from '../src/app/accounts/setup.ts';
import { hashPassword } from '../src/platform/accounts/passwords.ts';
import { currentTotp } from '../src/platform/accounts/totp.ts';
import { firstOwner, GOOD_PASSWORD, invitedUser } from './helpers/accounts.ts';
import { Browser } from './helpers/browser.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';

let h: HttpTest;
let acme: TestTenant;
let globex: TestTenant;
let owner: Browser;

before(async () => {
  h = await startHttpTest({ 'server.trustProxy': true });
  acme = await makeTenant(h.tp, 'acme');
  globex = await makeTenant(h.tp, 'globex');
  owner = await firstOwner(h.app, h.tp, acme, 'owner@acme.example');
});
after(async () => {
  await h.cleanup();
});

function code(res: LightMyRequestResponse): string {
  return res.json<{ code: string }>().code;
}

async function inAcme(sql: string, params: unknown[] = []): Promise<{ rows: Record<string, unknown>[] }> {
  return withTenantDb(h.tp.platform, acme.tenant, (db) => db.read((c) => c.query<Record<string, unknown>>(sql, params)));
}

async function userId(email: string): Promise<string> {
  const users = (await owner.request('GET', '/api/users')).json<{ items: { id: string; email: string }[] }>();
  const found = users.items.find((u) => u.email === email);
  assert.ok(found, `user ${email}`);
  return found.id;
}

describe('roles', () => {
  test('viewer reads, member writes tasks, admin manages projects and users, owner manages settings', async () => {
    const viewer = await invitedUser(h.app, h.tp, owner, 'viewer@acme.example', 'viewer');
    const member = await invitedUser(h.app, h.tp, owner, 'member@acme.example', 'member');
    const admin = await invitedUser(h.app, h.tp, owner, 'admin@acme.example', 'admin');
    assert.equal((await viewer.request('GET', '/api/projects')).statusCode, 200);
    const denied = await viewer.request('POST', '/api/projects', { key: 'VIEW', name: 'No' });
    assert.equal(denied.statusCode, 403);
    assert.equal(code(denied), 'forbidden');
    assert.equal((await member.request('POST', '/api/projects', { key: 'MEMB', name: 'No' })).statusCode, 403);
    const project = await admin.request('POST', '/api/projects', { key: 'MEMB', name: 'Yes' });
    assert.equal(project.statusCode, 201);
    const projectId = project.json<{ id: string }>().id;
    assert.equal((await member.request('POST', `/api/projects/${projectId}/tasks`, { title: 'Yes' })).statusCode, 201);
    assert.equal((await viewer.request('POST', `/api/projects/${projectId}/tasks`, { title: 'No' })).statusCode, 403);
    assert.equal((await member.request('GET', '/api/users')).statusCode, 403);
    assert.equal((await admin.request('GET', '/api/users')).statusCode, 200);
    assert.equal((await admin.request('PUT', '/api/settings/accounts', { requireSecondFactor: false })).statusCode, 403);
    assert.equal((await owner.request('PUT', '/api/settings/accounts', { requireSecondFactor: false })).statusCode, 200);
  });

  test('an API token works on the product API but never on accounts', async () => {
    assert.equal((await call(h.app, acme, '/api/projects')).statusCode, 200);
    assert.equal((await call(h.app, acme, '/api/users')).statusCode, 403);
  });

  test('an admin cannot make an owner, change an owner, or change their own role', async () => {
    const admin = await invitedUser(h.app, h.tp, owner, 'admin2@acme.example', 'admin');
    const ownerId = await userId('owner@acme.example');
    const self = await userId('admin2@acme.example');
    const memberId = await userId('member@acme.example');
    assert.equal((await admin.request('PATCH', `/api/users/${memberId}`, { role: 'owner' })).statusCode, 403);
    assert.equal((await admin.request('PATCH', `/api/users/${ownerId}`, { role: 'member' })).statusCode, 403);
    assert.equal((await admin.request('PATCH', `/api/users/${self}`, { role: 'owner' })).statusCode, 403);
    assert.equal((await admin.request('POST', '/api/invitations', { email: 'boss@acme.example', role: 'owner' })).statusCode, 403);
  });

  test('a role change ends the user’s sessions; nobody changes their own role', async () => {
    const member = await invitedUser(h.app, h.tp, owner, 'promoted@acme.example', 'member');
    const id = await userId('promoted@acme.example');
    const changed = await owner.request('PATCH', `/api/users/${id}`, { role: 'admin' });
    assert.equal(changed.statusCode, 200);
    assert.equal(changed.json<{ role: string }>().role, 'admin');
    assert.equal((await member.request('GET', '/api/projects')).statusCode, 401, 'signs in again to get the new privileges');
    const ownerId = await userId('owner@acme.example');
    assert.equal((await owner.request('PATCH', `/api/users/${ownerId}`, { role: 'admin' })).statusCode, 403);
  });

  test('an owner may demote another owner; the last owner can be changed by nobody', async () => {
    const second = await invitedUser(h.app, h.tp, owner, 'co-owner@acme.example', 'owner');
    const firstId = await userId('owner@acme.example');
    const secondId = await userId('co-owner@acme.example');
    assert.equal((await owner.request('PATCH', `/api/users/${secondId}`, { role: 'admin' })).statusCode, 200, 'two owners: one may step down');
    assert.equal((await second.request('GET', '/api/users')).statusCode, 401, 'the demoted owner signs in again');
    const demoted = await new Browser(h.app, acme.host).start();
    await demoted.signIn('co-owner@acme.example', GOOD_PASSWORD);
    assert.equal((await demoted.request('PATCH', `/api/users/${firstId}`, { role: 'admin' })).statusCode, 403, 'an admin cannot change the owner');
    assert.equal((await demoted.request('POST', `/api/users/${firstId}/deactivate`)).statusCode, 403);
    assert.equal((await owner.request('POST', `/api/users/${firstId}/deactivate`)).statusCode, 403, 'nor can the owner remove themselves');
  });

  test('deactivation ends sessions and sign-in answers as for a wrong password', async () => {
    const leaver = await invitedUser(h.app, h.tp, owner, 'leaver@acme.example', 'member');
    const id = await userId('leaver@acme.example');
    assert.equal((await owner.request('POST', `/api/users/${id}/deactivate`)).statusCode, 200);
    assert.equal((await leaver.request('GET', '/api/projects')).statusCode, 401);
    const again = await new Browser(h.app, acme.host).start();
    const res = await again.signIn('leaver@acme.example', GOOD_PASSWORD);
    assert.equal(res.statusCode, 401);
    assert.equal(code(res), 'invalid-credentials');
    assert.equal((await owner.request('POST', `/api/users/${id}/reactivate`)).statusCode, 200);
    assert.equal((await again.signIn('leaver@acme.example', GOOD_PASSWORD)).statusCode, 200);
  });

  test('an admin ends all sessions of another user', async () => {
    const lost = await invitedUser(h.app, h.tp, owner, 'lost-laptop@acme.example', 'member');
    const id = await userId('lost-laptop@acme.example');
    const res = await owner.request('POST', `/api/users/${id}/sessions/end`);
    assert.equal(res.statusCode, 200);
    assert.ok(res.json<{ ended: number }>().ended >= 1);
    assert.equal((await lost.request('GET', '/api/projects')).statusCode, 401);
  });

  test('another tenant’s user id is simply not found here', async () => {
    const globexOwner = await firstOwner(h.app, h.tp, globex, 'owner@globex.example');
    const theirs = (await globexOwner.request('GET', '/api/users')).json<{ items: { id: string }[] }>();
    const id = theirs.items[0]?.id;
    assert.ok(id);
    assert.equal((await owner.request('POST', `/api/users/${id}/deactivate`)).statusCode, 404);
  });
});

describe('second factor', () => {
  const EMAIL = 'careful@acme.example';
  let user: Browser;
  let recoveryCodes: string[] = [];
  before(async () => {
    user = await invitedUser(h.app, h.tp, owner, EMAIL, 'member');
  });

  test('setting one up needs a recent password', async () => {
    await inAcme(`UPDATE app.sessions SET reauthenticated_at = now() - interval '1 hour' WHERE user_id = (SELECT id FROM app.users WHERE email = $1)`, [EMAIL]);
    const res = await user.request('POST', '/api/account/second-factor/setup');
    assert.equal(res.statusCode, 403);
    assert.equal(code(res), 'reauthentication-required');
    assert.equal((await user.request('POST', '/api/auth/reauthenticate', { password: 'wrong wrong wrong' })).statusCode, 401);
    assert.equal((await user.request('POST', '/api/auth/reauthenticate', { password: GOOD_PASSWORD })).statusCode, 204);
  });

  test('enrolment: the URI, a confirming code, and ten recovery codes', async () => {
    const setup = await user.request('POST', '/api/account/second-factor/setup');
    assert.equal(setup.statusCode, 200, setup.body);
    const { uri, secret: base32 } = setup.json<{ uri: string; secret: string }>();
    assert.match(uri, /^otpauth:\/\/totp\//);
    const secret = Buffer.from(Secret.fromBase32(base32).bytes);
    assert.equal((await user.request('POST', '/api/account/second-factor/confirm', { code: '000000' })).statusCode, 401);
    const ok = await user.request('POST', '/api/account/second-factor/confirm', { code: currentTotp(secret) });
    assert.equal(ok.statusCode, 200, ok.body);
    recoveryCodes = ok.json<{ recoveryCodes: string[] }>().recoveryCodes;
    assert.equal(recoveryCodes.length, 10);
    const stored = await inAcme(`SELECT encode(totp_secret, 'hex') AS s FROM app.users WHERE email = $1`, [EMAIL]);
    assert.ok(!String(stored.rows[0]?.s).includes(secret.toString('hex')), 'the secret is encrypted at rest');
  });

  test('sign-in then owes the code; the pending session can do nothing else', async () => {
    const b = await new Browser(h.app, acme.host).start();
    const login = await b.signIn(EMAIL, GOOD_PASSWORD);
    assert.equal(login.statusCode, 200);
    assert.equal(login.json<{ stage: string }>().stage, 'mfa');
    assert.equal(login.json<{ user: unknown }>().user, null);
    assert.equal((await b.request('GET', '/api/projects')).statusCode, 401);
    assert.equal((await b.request('POST', '/api/auth/login/second-factor', { code: '123456' })).statusCode, 401);
    const pending = b.jar.get('__Host-tf_session');
    const done = await b.request('POST', '/api/auth/login/second-factor', { recoveryCode: recoveryCodes[0] });
    assert.equal(done.statusCode, 204, done.body);
    assert.notEqual(b.jar.get('__Host-tf_session'), pending, 'a new session id once signed in');
    assert.equal((await b.request('GET', '/api/projects')).statusCode, 200);
  });

  test('a recovery code works once', async () => {
    const b = await new Browser(h.app, acme.host).start();
    await b.signIn(EMAIL, GOOD_PASSWORD);
    const reused = await b.request('POST', '/api/auth/login/second-factor', { recoveryCode: recoveryCodes[0] });
    assert.equal(reused.statusCode, 401);
    assert.equal(code(reused), 'invalid-second-factor');
    assert.equal((await b.request('POST', '/api/auth/login/second-factor', { recoveryCode: recoveryCodes[1]?.toUpperCase() })).statusCode, 204);
  });

  test('a tenant that requires a second factor sends users without one to set it up', async () => {
    const plain = await invitedUser(h.app, h.tp, owner, 'plain@acme.example', 'member');
    const early = await owner.request('PUT', '/api/settings/accounts', { requireSecondFactor: true });
    assert.equal(early.statusCode, 409, 'an owner without a second factor cannot require one');
    const setup = (await owner.request('POST', '/api/account/second-factor/setup')).json<{ secret: string }>();
    const ownerSecret = Buffer.from(Secret.fromBase32(setup.secret).bytes);
    assert.equal((await owner.request('POST', '/api/account/second-factor/confirm', { code: currentTotp(ownerSecret) })).statusCode, 200);
    assert.equal((await owner.request('PUT', '/api/settings/accounts', { requireSecondFactor: true })).statusCode, 200);
    try {
      const res = await plain.request('GET', '/api/projects');
      assert.equal(res.statusCode, 403);
      assert.equal(code(res), 'second-factor-required');
      assert.equal((await plain.request('GET', '/api/auth/session')).json<{ mustEnrolSecondFactor: boolean }>().mustEnrolSecondFactor, true);
      assert.equal((await plain.request('POST', '/api/account/second-factor/setup')).statusCode, 200, 'enrolment stays open');
      assert.equal((await user.request('DELETE', '/api/account/second-factor')).statusCode, 403, 'a required second factor stays');
    } finally {
      await owner.request('PUT', '/api/settings/accounts', { requireSecondFactor: false });
    }
  });
});

describe('CSRF', () => {
  let b: Browser;
  before(async () => {
    // An admin, whom the role check lets through to the CSRF check on project creation.
    b = await invitedUser(h.app, h.tp, owner, 'csrf@acme.example', 'admin');
  });

  test('a state change without the token is refused', async () => {
    const res = await b.request('POST', '/api/projects', { key: 'CSRF', name: 'x' }, { 'x-csrf-token': '' });
    assert.equal(res.statusCode, 403);
    assert.equal(code(res), 'csrf-failed');
  });

  test('a forged token is refused', async () => {
    const forged = `${'A'.repeat(43)}.${'B'.repeat(43)}`;
    b.jar.set('__Host-tf_csrf', forged);
    try {
      const res = await b.request('POST', '/api/projects', { key: 'CSRF', name: 'x' }, { 'x-csrf-token': forged });
      assert.equal(res.statusCode, 403);
    } finally {
      if (b.csrf) b.jar.set('__Host-tf_csrf', b.csrf);
    }
  });

  test('a request from a sibling subdomain is refused even with the right token', async () => {
    const res = await b.request('POST', '/api/projects', { key: 'CSRF', name: 'x' }, { origin: 'https://evil.taskflow.test' });
    assert.equal(res.statusCode, 403);
    assert.equal(code(res), 'csrf-failed');
    const noOrigin = await b.request('POST', '/api/projects', { key: 'CSRF', name: 'x' }, { origin: '' });
    assert.equal(noOrigin.statusCode, 403, 'no Origin and no Referer: refused');
  });

  test("another tenant's token and cookie are worthless here", async () => {
    const other = await new Browser(h.app, globex.host).start();
    assert.ok(other.csrf);
    const saved = b.csrf;
    b.csrf = other.csrf;
    b.jar.set('__Host-tf_csrf', other.csrf);
    try {
      assert.equal((await b.request('POST', '/api/projects', { key: 'CSRF', name: 'x' })).statusCode, 403);
    } finally {
      b.csrf = saved;
      if (saved) b.jar.set('__Host-tf_csrf', saved);
    }
  });

  test('with token and origin it goes through', async () => {
    assert.equal((await b.request('POST', '/api/projects', { key: 'CSRF', name: 'x' })).statusCode, 201);
  });
});

describe('sign-in throttling', () => {
  test('after five failures in a row the account must wait, with Retry-After, whatever the password', async () => {
    await invitedUser(h.app, h.tp, owner, 'target@acme.example', 'viewer');
    const b = await new Browser(h.app, acme.host).start();
    for (let i = 0; i < 5; i++) assert.equal((await b.signIn('target@acme.example', `guess number ${i} here`)).statusCode, 401);
    const blocked = await b.signIn('target@acme.example', GOOD_PASSWORD);
    assert.equal(blocked.statusCode, 429);
    assert.ok(Number(blocked.headers['retry-after']) >= 1);
    for (let i = 0; i < 5; i++) await b.signIn('nobody-here@acme.example', `guess number ${i} here`);
    assert.equal((await b.signIn('nobody-here@acme.example', 'x'.repeat(12))).statusCode, 429, 'unknown addresses are throttled alike');
    const events = await h.tp.platform.control.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events WHERE action = 'auth.throttled' AND tenant_id = $1`, [acme.tenant.id]);
    assert.ok((events.rows[0]?.n ?? 0) >= 2);
  });
});

describe('hash upgrades', () => {
  test('a hash with other parameters is replaced at the next sign-in', async () => {
    await invitedUser(h.app, h.tp, owner, 'legacy@acme.example', 'viewer');
    const old = await hashPassword(GOOD_PASSWORD, { memoryKiB: 19_456, iterations: 3, parallelism: 1 });
    await inAcme(`UPDATE app.users SET password_hash = $1 WHERE email = 'legacy@acme.example'`, [old]);
    const b = await new Browser(h.app, acme.host).start();
    assert.equal((await b.signIn('legacy@acme.example', GOOD_PASSWORD)).statusCode, 200);
    const res = await inAcme(`SELECT password_hash FROM app.users WHERE email = 'legacy@acme.example'`);
    assert.match(String(res.rows[0]?.password_hash), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });
});
