/** Users for account tests: a tenant's first owner through the real setup link, and invited users. */
import type { FastifyInstance } from 'fastify';
import { issueSetupLink } from '../../src/app/accounts/setup.ts';
import { Browser, lastMailTo } from './browser.ts';
import type { TestTenant } from './http-server.ts';
import type { TestPlatform } from './platform.ts';

export const GOOD_PASSWORD = 'correct horse battery staple 42';

/** Issues the setup link, accepts it in a new browser; returns the signed-in browser. */
export async function firstOwner(app: FastifyInstance, tp: TestPlatform, t: TestTenant, email = `owner@${t.tenant.slug}.example`): Promise<Browser> {
  await issueSetupLink({ platform: tp.platform, tenant: t.tenant, email, operator: 'test' });
  const mail = await lastMailTo(tp.platform.control, email);
  if (!mail?.token) throw new Error('no setup mail');
  const browser = await new Browser(app, t.host).start();
  const res = await browser.request('POST', '/api/auth/invitations/accept', { token: mail.token, displayName: 'Owner', password: GOOD_PASSWORD });
  if (res.statusCode !== 204) throw new Error(`accept: ${res.statusCode} ${res.body}`);
  return browser;
}

/** An admin's browser invites `email` as `role`; a new browser accepts. Returns that browser. */
export async function invitedUser(app: FastifyInstance, tp: TestPlatform, admin: Browser, email: string, role: string, password = GOOD_PASSWORD): Promise<Browser> {
  const invited = await admin.request('POST', '/api/invitations', { email, role });
  if (invited.statusCode !== 201) throw new Error(`invite: ${invited.statusCode} ${invited.body}`);
  const mail = await lastMailTo(tp.platform.control, email);
  if (!mail?.token) throw new Error('no invitation mail');
  const browser = await new Browser(app, admin.host).start();
  const res = await browser.request('POST', '/api/auth/invitations/accept', { token: mail.token, displayName: email.split('@')[0], password });
  if (res.statusCode !== 204) throw new Error(`accept: ${res.statusCode} ${res.body}`);
  return browser;
}
