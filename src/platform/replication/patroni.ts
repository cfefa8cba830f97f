/**
 * The primary of a cluster that Patroni runs (with etcd as its consensus store): TaskFlow does not
 * fail over such a cluster, it follows Patroni's decision. Each configured member's REST API is asked
 * two things at once: `GET /cluster`, the cluster as the member sees it in etcd (who holds the leader
 * lock, every member's PostgreSQL address), and `GET /patroni`, what the member's own PostgreSQL is
 * (`master` or `replica`, running or not).
 *
 * The leader is used once it holds the lock and its own PostgreSQL runs as a primary. Two members
 * that claim to lead (two lock holders seen by different members, or a member running as a primary
 * without the lock) are refused, both, until only one does: TaskFlow cannot know which has the
 * writes the other lacks, and an operator must decide (an alert says so).
 */
import type { LookupResult, PrimaryLookup } from './primary-locator.ts';

/** A member as `GET /cluster` lists it. */
export interface PatroniMember {
  name: string;
  role: string;
  state?: string;
  api_url?: string;
  host?: string;
  port?: number;
  timeline?: number;
}

/** What one configured endpoint answered. */
export interface PatroniView {
  endpoint: string;
  /** `GET /cluster`, or null when it did not answer. */
  cluster: { members: PatroniMember[] } | null;
  /** `GET /patroni`: this member's own PostgreSQL. */
  self: { role?: string; state?: string; timeline?: number } | null;
  error: string | null;
}

const PRIMARY_ROLES = new Set(['master', 'primary']);

/** Which member of the cluster an endpoint is: the member whose api_url has the endpoint's host and port. */
function memberAt(endpoint: string, members: PatroniMember[]): PatroniMember | undefined {
  const host = new URL(endpoint).host;
  return members.find((m) => {
    try {
      return m.api_url !== undefined && new URL(m.api_url).host === host;
    } catch {
      return false;
    }
  });
}

/** Decides the primary from what the endpoints answered; see the module comment. */
export function decideLeader(views: PatroniView[]): LookupResult {
  const answered = views.filter((v) => v.cluster !== null || v.self !== null);
  if (answered.length === 0) {
    return { primary: null, reason: `no Patroni member answers (${views.map((v) => `${v.endpoint}: ${v.error ?? 'no answer'}`).join('; ')})` };
  }
  const members = new Map<string, PatroniMember>();
  for (const v of answered) for (const m of v.cluster?.members ?? []) if (!members.has(m.name) || m.role === 'leader') members.set(m.name, m);
  const lockHolders = new Set(answered.flatMap((v) => (v.cluster?.members ?? []).filter((m) => m.role === 'leader').map((m) => m.name)));
  const allMembers = [...members.values()];
  const runningAsPrimary = new Set(
    answered
      .filter((v) => v.self !== null && PRIMARY_ROLES.has(v.self.role ?? '') && v.self.state === 'running')
      .map((v) => memberAt(v.endpoint, allMembers)?.name ?? v.endpoint),
  );
  const claimants = [...new Set([...lockHolders, ...runningAsPrimary])].sort();
  if (claimants.length > 1) {
    const summary =
      `Patroni members ${claimants.join(' and ')} both claim to be the primary (${[...lockHolders].join(', ') || 'none'} holding the leader lock, ` +
      `${[...runningAsPrimary].join(', ') || 'none'} running as a primary); TaskFlow uses neither until only one does. ` +
      `Check 'patronictl list' and stop the one that must not lead`;
    return { primary: null, reason: summary, splitBrain: { summary, nodes: claimants } };
  }
  const [leaderName] = [...lockHolders];
  if (leaderName === undefined) return { primary: null, reason: 'no Patroni member holds the leader lock (an election is under way)' };
  const leader = members.get(leaderName);
  if (!leader?.host) return { primary: null, reason: `the Patroni leader ${leaderName} publishes no PostgreSQL address (postgresql.connect_address)` };
  const own = answered.find((v) => memberAt(v.endpoint, allMembers)?.name === leaderName);
  const ownSilent = views.some((v) => v.error !== null && memberAt(v.endpoint, allMembers)?.name === leaderName);
  if (!own && ownSilent) return { primary: null, reason: `the Patroni leader ${leaderName} does not answer; waiting for its lock to expire and another member to take over` };
  if (own?.self && !(PRIMARY_ROLES.has(own.self.role ?? '') && own.self.state === 'running')) {
    return { primary: null, reason: `the Patroni leader ${leaderName} is not running as a primary yet (${own.self.role ?? '?'}, ${own.self.state ?? '?'})` };
  }
  return { primary: { name: leaderName, host: leader.host, port: leader.port ?? 5432, timeline: leader.timeline ?? null } };
}

async function getJson(url: URL, timeoutMs: number): Promise<unknown> {
  // Patroni answers 503 on some endpoints with a body that is still the answer.
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  const text = await res.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`${url.pathname} answered ${res.status} without JSON`);
  }
}

/** Asks one endpoint both questions. */
export async function askPatroni(endpoint: string, timeoutMs: number): Promise<PatroniView> {
  const [cluster, self] = await Promise.allSettled([getJson(new URL('/cluster', endpoint), timeoutMs), getJson(new URL('/patroni', endpoint), timeoutMs)]);
  const failure = [cluster, self].find((r) => r.status === 'rejected');
  const clusterValue = cluster.status === 'fulfilled' ? (cluster.value as { members?: unknown }) : null;
  return {
    endpoint,
    cluster: clusterValue && Array.isArray(clusterValue.members) ? { members: clusterValue.members as PatroniMember[] } : null,
    self: self.status === 'fulfilled' ? (self.value as PatroniView['self']) : null,
    error: failure ? describe(failure.reason) : null,
  };
}

function describe(reason: unknown): string {
  const err = reason as { name?: string; message?: string; cause?: { code?: string } };
  if (err.name === 'TimeoutError') return 'no answer in time';
  return err.cause?.code ?? err.message ?? String(reason);
}

/** The Patroni lookup: every endpoint, every time. */
export class PatroniLookup implements PrimaryLookup {
  readonly source = 'patroni';
  readonly #endpoints: string[];
  readonly #timeoutMs: number;

  constructor(options: { endpoints: string[]; requestTimeoutMs: number }) {
    this.#endpoints = options.endpoints;
    this.#timeoutMs = options.requestTimeoutMs;
  }

  async find(): Promise<LookupResult> {
    return decideLeader(await Promise.all(this.#endpoints.map((e) => askPatroni(e, this.#timeoutMs))));
  }
}

/** The dynamic configuration (`GET /config`) of a Patroni cluster: ttl, loop_wait, synchronous_mode and the rest. */
export async function patroniDynamicConfig(endpoint: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const body = await getJson(new URL('/config', endpoint), timeoutMs);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error(`${endpoint}/config answered something other than an object`);
  return body as Record<string, unknown>;
}
