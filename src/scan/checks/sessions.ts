/** Session fixation and sign-out: a session id known before sign-in is worthless, and sign-out ends the session on the server. */
import { SESSION_COOKIE as SESSION, type Check, type ScanContext } from '../types.ts';

export const sessionFixation: Check = {
  id: 'session-fixation',
  title: 'A session id planted before sign-in is replaced and never accepted',
  severity: 'high',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const planted = 'F'.repeat(43);
    const session = await ctx.signIn(t);
    const failures: string[] = [];
    // Sign in again in a jar that carries the planted id.
    session.jar.cookies.set(SESSION, planted);
    const res = await ctx.browser(t, session, 'POST', '/api/auth/login', { email: t.user.email, password: t.user.password });
    if (res.status !== 200) failures.push(`sign-in with a planted cookie answered ${res.status}`);
    if (session.jar.cookies.get(SESSION) === planted) failures.push('the planted session id survived sign-in');
    const probe = await ctx.client.request(`${t.url}/api/account`, { headers: { cookie: `${SESSION}=${planted}` } });
    if (probe.status !== 401) failures.push(`the planted session id is accepted (${probe.status})`);
    return { failures, probes: 3 };
  },
};

export const signOut: Check = {
  id: 'sign-out',
  title: 'Sign-out ends the session on the server; a replayed cookie is refused',
  severity: 'medium',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const session = await ctx.signIn(t);
    const cookie = session.jar.cookies.get(SESSION);
    if (!cookie) return { failures: ['no session cookie after sign-in'], probes: 1 };
    const out = await ctx.browser(t, session, 'POST', '/api/auth/logout');
    const failures: string[] = [];
    if (out.status !== 204) failures.push(`sign-out answered ${out.status}`);
    const replay = await ctx.client.request(`${t.url}/api/account`, { headers: { cookie: `${SESSION}=${cookie}` } });
    if (replay.status !== 401) failures.push(`the cookie still works after sign-out (${replay.status})`);
    return { failures, probes: 2 };
  },
};
