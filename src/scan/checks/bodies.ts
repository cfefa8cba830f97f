/** Oversized, malformed and hostile request bodies get clean 4xx answers and change nothing. */
import type { Check, ScanContext } from '../types.ts';

export const hostileBodies: Check = {
  id: 'hostile-bodies',
  title: 'Oversized, malformed, deeply nested and prototype-polluting bodies are refused cleanly',
  severity: 'medium',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    const probes: [string, number[], () => Promise<{ status: number }>][] = [
      ['an 8 MiB body', [413], () => ctx.api(t, 'POST', '/api/projects', JSON.stringify({ key: 'BIG', name: 'x'.repeat(8 * 1024 * 1024) }))],
      ['malformed JSON', [400], () => ctx.api(t, 'POST', '/api/projects', '{"key": "AB", ')],
      ['a text/plain body', [415], () => ctx.api(t, 'POST', '/api/projects', 'key=AB', { 'content-type': 'text/plain' })],
      ['a form body', [415], () => ctx.api(t, 'POST', '/api/projects', 'key=AB&name=x', { 'content-type': 'application/x-www-form-urlencoded' })],
      ['JSON nested 5000 deep', [400, 413], () => ctx.api(t, 'POST', '/api/projects', deep)],
      ['a __proto__ key', [400], () => ctx.api(t, 'POST', '/api/projects', '{"key":"PROTO","name":"x","__proto__":{"admin":true}}')],
      ['an unknown field', [400], () => ctx.api(t, 'POST', '/api/projects', { key: 'UNKN', name: 'x', owner: 'me' })],
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
