/** Security headers on every kind of response, and errors that leak nothing internal. */
import { headerOf, type ScanResponse } from '../client.ts';
import type { Check, ScanContext } from '../types.ts';

function headerProblems(label: string, res: ScanResponse, expectHsts: boolean): string[] {
  const problems: string[] = [];
  const csp = headerOf(res, 'content-security-policy');
  if (!/frame-ancestors\s+'none'/.test(csp) && headerOf(res, 'x-frame-options').toUpperCase() !== 'DENY') problems.push(`${label}: may be framed (no CSP frame-ancestors 'none', no X-Frame-Options: DENY)`);
  if (csp === '') problems.push(`${label}: no Content-Security-Policy`);
  if (headerOf(res, 'x-content-type-options').toLowerCase() !== 'nosniff') problems.push(`${label}: no X-Content-Type-Options: nosniff`);
  if (headerOf(res, 'referrer-policy') === '') problems.push(`${label}: no Referrer-Policy`);
  if (expectHsts && !/max-age=\d{7,}/.test(headerOf(res, 'strict-transport-security'))) problems.push(`${label}: no Strict-Transport-Security with a max-age of months`);
  if (headerOf(res, 'x-powered-by') !== '') problems.push(`${label}: X-Powered-By tells the stack (${headerOf(res, 'x-powered-by')})`);
  return problems;
}

export const securityHeaders: Check = {
  id: 'security-headers',
  title: 'Security headers on API answers, errors and unknown paths',
  severity: 'medium',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const https = t.url.startsWith('https:');
    const responses: [string, ScanResponse][] = [
      ['GET /api/auth/session', await ctx.client.request(`${t.url}/api/auth/session`)],
      ['GET /api/projects (unauthenticated)', await ctx.client.request(`${t.url}/api/projects`)],
      ['GET /no-such-path', await ctx.client.request(`${t.url}/no-such-path-${Date.now()}`)],
      ['GET /api/projects (authenticated)', await ctx.api(t, 'GET', '/api/projects')],
    ];
    const failures: string[] = [];
    for (const [label, res] of responses) {
      failures.push(...headerProblems(label, res, https && ctx.target.allowMissingHsts !== true));
      if (label.includes('api') && !/no-store/.test(headerOf(res, 'cache-control'))) failures.push(`${label}: API answer may be cached (no Cache-Control: no-store)`);
    }
    return { failures, probes: responses.length };
  },
};

const LEAKS = [/\bat [\w.<>]+ \(.*:\d+:\d+\)/, /node_modules/, /SQLSTATE|syntax error at or near|relation "[^"]+" does not exist|pg_catalog/i, /\/(home|usr|srv|opt|work)\/[\w.-]+\//];

/** Tasks of a project that does not exist: a route members and API tokens may write, whose body is read before the id is looked up. */
const NO_PROJECT_TASKS = '/api/projects/00000000-0000-4000-8000-000000000000/tasks';

export const errorLeaks: Check = {
  id: 'error-leaks',
  title: 'Errors tell nothing internal (stack traces, SQL, paths)',
  severity: 'medium',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const probes: [string, () => Promise<ScanResponse>][] = [
      ['malformed JSON', () => ctx.api(t, 'POST', NO_PROJECT_TASKS, '{"title": ')],
      ['bad id', () => ctx.api(t, 'GET', '/api/tasks/not-a-uuid')],
      ['bad cursor', () => ctx.api(t, 'GET', '/api/tasks?cursor=%00%ff')],
      ['broken encoding', () => ctx.api(t, 'GET', '/api/tasks/%E0%A4%A')],
      ['wrong type', () => ctx.api(t, 'POST', NO_PROJECT_TASKS, { title: 12, labels: 'x' })],
    ];
    const failures: string[] = [];
    for (const [label, probe] of probes) {
      const res = await probe();
      if (res.status >= 500) failures.push(`${label}: answered ${res.status}`);
      const leak = LEAKS.find((re) => re.test(res.body));
      if (leak) failures.push(`${label}: the answer shows internals (${leak.source}): ${res.body.slice(0, 200)}`);
      if (!headerOf(res, 'content-type').startsWith('application/problem+json')) failures.push(`${label}: not a problem+json answer (${headerOf(res, 'content-type') || 'no content type'})`);
    }
    return { failures, probes: probes.length };
  },
};
