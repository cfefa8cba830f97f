/**
 * A user's own account: changing password and e-mail needs a recent password, ends other sessions
 * and tells the user by mail; and no password, token or link ever reaches the server log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { withTenantDb } from '../src/app/accounts/setup.ts';
import { buildServer, serverInternals } from '../src/app/server.ts';
import { createLogger } from '../src/platform/log.ts';
import { firstOwner, GOOD_PASSWORD, invitedUser } from './helpers/accounts.ts';
import { Browser, lastMailTo } from './helpers/browser.ts';
import { makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';

let h: HttpTest;
let acme: TestTenant;
let app: FastifyInstance;
const logged: string[] = [];

before(async () => {
  h = await startHttpTest({ 'server.trustProxy': true });
  acme = await makeTenant(h.tp, 'acme');
  // A server whose every log line (debug and up) is kept, to look for secrets in it.
  const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logged.push(line) } });
  app = await buildServer({ platform: { ...h.tp.platform, log } });
});
after(async () => {
  await app.close();
  await h.cleanup();
});

async function ageReauthentication(email: string): Promise<void> {
  await withTenantDb(h.tp.platform, acme.tenant, (db) =>
    db.read((c) => c.query(`UPDATE app.sessions SET reauthenticated_at = now() - interval '1 hour' WHERE user_id = (SELECT id FROM app.users WHERE email = $1)`, [email])),
  );
}

describe('changing one’s own password and e-mail', () => {
  let owner: Browser;
  before(async () => {
    owner = await firstOwner(app, h.tp, acme, 'owner@acme.example');
  });

  test('a new password: needs a recent password, ends the other sessions, keeps this one, tells the user', async () => {
    const user = await invitedUser(app, h.tp, owner, 'mover@acme.example', 'member');
    const phone = await new Browser(app, acme.host).start();
    assert.equal((await phone.signIn('mover@acme.example', GOOD_PASSWORD)).statusCode, 200);
    await ageReauthentication('mover@acme.example');
    const stale = await user.request('PUT', '/api/account/password', { newPassword: 'a fresh passphrase for me' });
    assert.equal(stale.statusCode, 403);
    assert.equal(stale.json<{ code: string }>().code, 'reauthentication-required');
    assert.equal((await user.request('POST', '/api/auth/reauthenticate', { password: GOOD_PASSWORD })).statusCode, 204);
    const weak = await user.request('PUT', '/api/account/password', { newPassword: 'password1234' });
    assert.equal(weak.statusCode, 422);
    const changed = await user.request('PUT', '/api/account/password', { newPassword: 'a fresh passphrase for me' });
    assert.equal(changed.statusCode, 204, changed.body);
    assert.equal((await user.request('GET', '/api/account')).statusCode, 200, 'this session goes on, with a new id');
    assert.equal((await phone.request('GET', '/api/account')).statusCode, 401, 'the other session ended');
    assert.equal((await lastMailTo(h.tp.platform.control, 'mover@acme.example'))?.kind, 'password-changed');
    const again = await new Browser(app, acme.host).start();
    assert.equal((await again.signIn('mover@acme.example', GOOD_PASSWORD)).statusCode, 401);
    assert.equal((await again.signIn('mover@acme.example', 'a fresh passphrase for me')).statusCode, 200);
  });

  test('a new e-mail: must be valid and free; the old address is told', async () => {
    const user = await invitedUser(app, h.tp, owner, 'renamer@acme.example', 'member');
    assert.equal((await user.request('PUT', '/api/account/email', { email: 'owner@acme.example' })).statusCode, 409, 'taken');
    const lookalike = await user.request('PUT', '/api/account/email', { email: 'renamer@аcme.example' });
    assert.equal(lookalike.statusCode, 400, 'a Cyrillic look-alike is refused');
    assert.equal((await user.request('PUT', '/api/account/email', { email: 'New.Name@Acme.example' })).statusCode, 204);
    assert.equal((await lastMailTo(h.tp.platform.control, 'renamer@acme.example'))?.kind, 'email-changed');
    const b = await new Browser(app, acme.host).start();
    assert.equal((await b.signIn('new.name@acme.example', GOOD_PASSWORD)).statusCode, 200);
    await ageReauthentication('new.name@acme.example');
    assert.equal((await b.request('PUT', '/api/account/email', { email: 'third@acme.example' })).statusCode, 403, 'needs a recent password');
  });
});

test('no password, session token, CSRF token or link token ever reaches the log', async () => {
  const b = await new Browser(app, acme.host).start();
  await b.signIn('owner@acme.example', 'a wrong password that must not be logged');
  await b.signIn('owner@acme.example', GOOD_PASSWORD);
  await b.request('POST', '/api/auth/password-reset', { email: 'owner@acme.example' });
  await serverInternals(app).background.drain();
  const reset = await lastMailTo(h.tp.platform.control, 'owner@acme.example');
  assert.ok(reset?.token);
  const text = logged.join('\n');
  assert.ok(logged.length > 5, 'the server did log');
  for (const secret of [GOOD_PASSWORD, 'a wrong password that must not be logged', b.jar.get('__Host-tf_session') ?? '?', b.csrf ?? '?', reset.token]) {
    assert.ok(!text.includes(secret), `a secret was logged: ${secret.slice(0, 8)}…`);
  }
});
