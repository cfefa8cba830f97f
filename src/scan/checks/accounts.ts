/**
 * Account enumeration and brute force. Sign-in and reset must answer alike, in about the same
 * time, for an address with an account and one without; repeated failures must be throttled. The
 * scan user gets at most four failed sign-ins (below the throttle) and three reset mails.
 */
import type { ScanResponse } from '../client.ts';
import type { Check, ScanContext, ScanTenant } from '../types.ts';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** The answer without what legitimately differs per request. */
function shape(res: ScanResponse): string {
  const body = res.json<Record<string, unknown>>();
  if (body && typeof body === 'object') Reflect.deleteProperty(body, 'instance');
  return `${res.status} ${JSON.stringify(body ?? res.body)}`;
}

function unknownAddress(tenant: ScanTenant): string {
  const domain = tenant.user.email.split('@')[1] ?? 'example.org';
  return `nobody-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@${domain}`;
}

/** Timings differ too much when the medians are further apart than 20 ms plus half the smaller one. */
function tooDifferent(a: number[], b: number[]): boolean {
  const ma = median(a);
  const mb = median(b);
  return Math.abs(ma - mb) > 20 + 0.5 * Math.min(ma, mb);
}

export const enumeration: Check = {
  id: 'account-enumeration',
  title: 'Sign-in and password reset tell nothing about which addresses have accounts (answers and timing)',
  severity: 'medium',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const ghost = unknownAddress(t);
    const failures: string[] = [];
    const login = async (email: string) => ctx.browser(t, await ctx.anonymous(t), 'POST', '/api/auth/login', { email, password: `wrong-${Math.random().toString(36)}-password` });
    const known: ScanResponse[] = [];
    const unknown: ScanResponse[] = [];
    // Interleaved, so drift in the server's load hits both alike; four known failures stay under the throttle.
    for (let i = 0; i < 4; i++) {
      known.push(await login(t.user.email));
      unknown.push(await login(ghost));
    }
    await ctx.signIn(t); // a success clears the scan user's failure count
    if (new Set([...known, ...unknown].map(shape)).size !== 1) failures.push(`sign-in answers differ: known address "${shape(known[0] as ScanResponse)}", unknown "${shape(unknown[0] as ScanResponse)}"`);
    if (tooDifferent(known.map((r) => r.ms), unknown.map((r) => r.ms))) {
      failures.push(`sign-in timing differs: median ${median(known.map((r) => r.ms)).toFixed(0)} ms for the known address, ${median(unknown.map((r) => r.ms)).toFixed(0)} ms for the unknown one`);
    }
    const reset = async (email: string) => ctx.browser(t, await ctx.anonymous(t), 'POST', '/api/auth/password-reset', { email });
    const knownReset: ScanResponse[] = [];
    const unknownReset: ScanResponse[] = [];
    for (let i = 0; i < 3; i++) {
      knownReset.push(await reset(t.user.email));
      unknownReset.push(await reset(ghost));
    }
    if (new Set([...knownReset, ...unknownReset].map(shape)).size !== 1) failures.push(`reset answers differ: "${shape(knownReset[0] as ScanResponse)}" vs "${shape(unknownReset[0] as ScanResponse)}"`);
    if (tooDifferent(knownReset.map((r) => r.ms), unknownReset.map((r) => r.ms))) {
      failures.push(`reset timing differs: median ${median(knownReset.map((r) => r.ms)).toFixed(0)} ms known, ${median(unknownReset.map((r) => r.ms)).toFixed(0)} ms unknown`);
    }
    return { failures, probes: 14 };
  },
};

export const bruteForce: Check = {
  id: 'brute-force',
  title: 'Repeated failed sign-ins are throttled (429 with Retry-After), whatever the address',
  severity: 'high',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const target = unknownAddress(t);
    const session = await ctx.anonymous(t);
    for (let i = 1; i <= 20; i++) {
      const res = await ctx.browser(t, session, 'POST', '/api/auth/login', { email: target, password: `guess-${i}-${Math.random().toString(36)}` });
      if (res.status === 429) {
        const failures = res.headers['retry-after'] === undefined ? ['throttled without Retry-After'] : [];
        return { failures, probes: i };
      }
      if (res.status !== 401) return { failures: [`attempt ${i} answered ${res.status}`], probes: i };
    }
    return { failures: ['20 failed sign-ins in a row for one address, none throttled'], probes: 20 };
  },
};
