/** Oversized, malformed and hostile request bodies get clean 4xx answers and change nothing. */
import type { Check, ScanContext } from '../types.ts';

/**
 * Tasks of a project that does not exist: a route the scan user (a member) and API tokens may
 * write, whose body is read and checked before the project is looked up, and where nothing is made.
 */
const URL = '/api/projects/00000000-0000-4000-8000-000000000000/tasks';

export const hostileBodies: Check = {
  id: 'hostile-bodies',
  title: 'Oversized, malformed, deeply nested and prototype-polluting bodies are refused cleanly',
  severity: 'medium',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const probes: [string, number[], () => Promise<{ status: number }>][] = [
      ['an 8 MiB body', [413], () => ctx.api(t, 'POST', URL, JSON.stringify({ title: 'big', description: 'x'.repeat(8 * 1024 * 1024) }))],
      ['malformed JSON', [400], () => ctx.api(t, 'POST', URL, '{"title": "AB", ')],
      ['a text/plain body', [415], () => ctx.api(t, 'POST', URL, 'title=AB', { 'content-type': 'text/plain' })],
      ['a form body', [415], () => ctx.api(t, 'POST', URL, 'title=AB&priority=high', { 'content-type': 'application/x-www-form-urlencoded' })],
      ['JSON nested 5000 deep', [400, 413], () => ctx.api(t, 'POST', URL, deep)],
      ['a __proto__ key', [400], () => ctx.api(t, 'POST', URL, '{"title":"PROTO","__proto__":{"admin":true}}')],
      ['an unknown field', [400], () => ctx.api(t, 'POST', URL, { title: 'x', owner: 'me' })],
      ['a 200,000-character description', [400], () => ctx.api(t, 'POST', URL, { title: 'x', description: 'x'.repeat(200_000) })],
      ['a 100,000-character password', [400], async () => ctx.browser(t, await ctx.anonymous(t), 'POST', '/api/auth/login', { email: t.user.email, password: 'x'.repeat(100_000) })],
    ];
    const failures: string[] = [];
    for (const [label, expected, probe] of probes) {
      try {
        const res = await probe();
        if (!expected.includes(res.status)) failures.push(`${label}: answered ${res.status}, expected ${expected.join(' or ')}`);
      } catch (err) {
        // A server may cut off an oversized upload; that is a refusal too, as long as it keeps serving.
        const alive = await ctx.client.request(`${t.url}/healthz`).catch(() => null);
        if (!alive || alive.status !== 200) failures.push(`${label}: the server stopped answering (${(err as Error).message})`);
      }
    }
    return { failures, probes: probes.length };
  },
};
