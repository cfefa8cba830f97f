/** TLS versions, and the flags of the cookies that carry sessions and CSRF tokens. */
import type { Check, ScanContext } from '../types.ts';

export const tlsVersions: Check = {
  id: 'tls',
  title: 'TLS 1.2 or newer only, with a certificate valid for the tenant host',
  severity: 'high',
  async run(ctx: ScanContext) {
    const url = ctx.target.tenant.url;
    if (!url.startsWith('https:')) return { failures: [`${url} is not served over HTTPS`], probes: 1 };
    const failures: string[] = [];
    const modern = await ctx.client.tlsHandshake(url, { min: 'TLSv1.2', max: 'TLSv1.3' });
    if ('error' in modern) failures.push(`TLS 1.2/1.3 handshake failed: ${modern.error}`);
    for (const old of ['TLSv1', 'TLSv1.1'] as const) {
      const res = await ctx.client.tlsHandshake(url, { min: old, max: old });
      if ('protocol' in res) failures.push(`${old} is accepted`);
    }
    return { failures, probes: 3 };
  },
};

function cookieProblems(line: string): string[] {
  const [pair = ''] = line.split(';');
  const name = pair.split('=')[0]?.trim() ?? '';
  const attrs = line.toLowerCase();
  const problems: string[] = [];
  if (!name.startsWith('__Host-')) problems.push(`${name}: not a __Host- cookie (it could be set or shadowed by a sibling subdomain)`);
  if (!/;\s*secure/.test(attrs)) problems.push(`${name}: not Secure`);
  if (!/;\s*httponly/.test(attrs)) problems.push(`${name}: not HttpOnly`);
  if (!/;\s*samesite=(lax|strict)/.test(attrs)) problems.push(`${name}: no SameSite=Lax or Strict`);
  if (/;\s*domain=/.test(attrs)) problems.push(`${name}: has a Domain attribute (shared with subdomains)`);
  if (!/;\s*path=\/(;|$)/.test(attrs)) problems.push(`${name}: Path is not /`);
  return problems;
}

export const cookieFlags: Check = {
  id: 'cookie-flags',
  title: 'Session and CSRF cookies: __Host-, Secure, HttpOnly, SameSite',
  severity: 'high',
  async run(ctx: ScanContext) {
    const session = await ctx.signIn(ctx.target.tenant);
    const lines = session.jar.setCookies;
    if (lines.length < 2) return { failures: [`sign-in set ${lines.length} cookie(s); expected a session and a CSRF cookie`], probes: 1 };
    return { failures: lines.flatMap(cookieProblems), probes: lines.length };
  },
};
