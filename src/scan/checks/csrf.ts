/**
 * CSRF: a harmless state-changing request (setting the display name to what it already is) must be
 * refused without the token, with a forged one, from a sibling subdomain, with no Origin, and with
 * another tenant's token; and accepted with everything right (so the refusals mean something).
 */
import type { Check, ScanContext, ScanSession, ScanTenant } from '../types.ts';

function siblingOrigin(url: string): string {
  const u = new URL(url);
  const parent = u.hostname.split('.').slice(1).join('.');
  return `${u.protocol}//evil-${Date.now().toString(36)}.${parent}${u.port ? `:${u.port}` : ''}`;
}

export const csrf: Check = {
  id: 'csrf',
  title: 'CSRF: missing, forged, cross-tenant tokens and sibling-subdomain origins are refused',
  severity: 'high',
  async run(ctx: ScanContext) {
    const t: ScanTenant = ctx.target.tenant;
    const session: ScanSession = await ctx.signIn(t);
    const me = await ctx.browser(t, session, 'GET', '/api/account');
    const name = me.json<{ displayName?: string }>()?.displayName;
    if (me.status !== 200 || !name) return { failures: [`GET /api/account answered ${me.status}`], probes: 1 };
    const body = { displayName: name };
    const attempts: [string, Record<string, string>, ScanSession | null][] = [
      ['no CSRF token', { 'x-csrf-token': '' }, session],
      ['a forged token', { 'x-csrf-token': `${'A'.repeat(43)}.${'B'.repeat(43)}` }, session],
      ['an Origin of a sibling subdomain', { origin: siblingOrigin(t.url) }, session],
      ['no Origin and no Referer', { origin: '' }, session],
      ['an Origin of another site', { origin: 'https://example.org' }, session],
    ];
    if (ctx.target.other) {
      const other = await ctx.signIn(ctx.target.other);
      // The other tenant's token in both header and cookie: valid, but signed for another tenant.
      session.jar.cookies.set('__Host-tf_csrf', other.csrf);
      attempts.push(["another tenant's CSRF token and cookie", { 'x-csrf-token': other.csrf }, session]);
    }
    const failures: string[] = [];
    for (const [label, headers, s] of attempts) {
      // The right Origin and token, then this attempt's changes ('' removes a header).
      const sent: Record<string, string> = { origin: t.url, 'x-csrf-token': session.csrf };
      for (const [name, value] of Object.entries(headers)) {
        if (value === '') Reflect.deleteProperty(sent, name);
        else sent[name] = value;
      }
      const res = await ctx.client.request(`${t.url}/api/account`, { method: 'PATCH', ...(s ? { jar: s.jar } : {}), headers: sent, body: JSON.stringify(body) });
      if (res.status !== 403) failures.push(`PATCH /api/account with ${label}: answered ${res.status}, expected 403`);
    }
    const fresh = await ctx.signIn(t);
    const control = await ctx.browser(t, fresh, 'PATCH', '/api/account', body);
    if (control.status >= 400) failures.push(`the control request with a valid token and Origin failed (${control.status}); the refusals above prove nothing`);
    return { failures, probes: attempts.length + 1 };
  },
};
