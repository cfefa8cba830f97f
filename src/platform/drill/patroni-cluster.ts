/**
 * What a drill needs from a cluster that Patroni runs: the leader it names (followed as it moves),
 * its members and dynamic configuration, the checks before the leader is killed, and the leader's
 * postmaster, found from its data directory's postmaster.pid. TaskFlow never fails such a cluster
 * over itself; the drill only watches Patroni do it.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../../config.ts';
import { UserError } from '../../errors.ts';
import { parseDatabaseUrl, withAdminClient, type ConnectionTarget } from '../postgres/connection.ts';
import { askPatroni, patroniDynamicConfig, PatroniLookup, type PatroniMember } from '../replication/patroni.ts';
import { PrimaryLocator, type PrimaryNode } from '../replication/primary-locator.ts';
import type { ReplicationMode } from '../replication/topology.ts';
import type { DrillScope } from './session.ts';

export type Member = PatroniMember & { lag?: number | string; tags?: Record<string, unknown> };

/** Patroni's settings that decide how fast and how safely it fails over, as the drill records them. */
export interface PatroniSettings {
  ttl: number | null;
  loopWait: number | null;
  retryTimeout: number | null;
  /** Seconds Patroni restarts a crashed leader in place before failing over (300 when not set). */
  primaryStartTimeout: number;
  maximumLagOnFailover: number;
  synchronousMode: boolean;
}

export interface PatroniFollower {
  scope: DrillScope;
  locator: PrimaryLocator;
  endpoints: string[];
  requestTimeoutMs: number;
  /** Where a member's PostgreSQL is, as the administrator. */
  targetOf(host: string, port: number): ConnectionTarget;
  close(): void;
}

function refuse(reason: string, exitCode = 4): never {
  throw new UserError(`refusing the drill: ${reason}`, exitCode);
}

/** Follows the Patroni leader (looked up every 100 ms during a drill); refuses (exit 2) when Patroni is not configured. */
export async function followPatroni(config: Config, log: Logger): Promise<PatroniFollower> {
  const patroni = config.postgres.patroni;
  if (!patroni || !config.databaseUrl) {
    refuse("--engine patroni drills a cluster that Patroni runs, and none is configured: set postgres.patroni.endpoints (each member's REST API) and databaseUrl (the credentials the drill connects with); see docs/high-availability.md#patroni", 2);
  }
  const credentials = parseDatabaseUrl(config.databaseUrl);
  const locator = new PrimaryLocator({
    lookup: new PatroniLookup({ endpoints: patroni.endpoints, requestTimeoutMs: patroni.requestTimeoutMs }),
    credentials,
    log,
    checkIntervalMs: 100,
    retryAfterSeconds: config.postgres.primary.retryAfterSeconds,
    connectTimeoutMs: config.postgres.connectTimeoutMs,
  });
  await locator.start();
  let last: PrimaryNode | null = locator.current() ?? (await locator.waitForPrimary(patroni.waitForLeaderSeconds * 1000));
  if (!last) {
    locator.close();
    refuse(`Patroni names no leader to drill (${locator.state.reason ?? 'unknown'}); see 'patronictl list'`);
  }
  locator.onChange((state) => {
    if (state.primary) last = state.primary;
  });
  const targetOf = (host: string, port: number): ConnectionTarget => ({ ...credentials, host, port, connectTimeoutMs: config.postgres.connectTimeoutMs });
  return {
    locator,
    endpoints: patroni.endpoints,
    requestTimeoutMs: patroni.requestTimeoutMs,
    targetOf,
    scope: {
      log,
      root: config.dataDir,
      primary() {
        const node = locator.current() ?? last;
        if (!node) throw new Error('no Patroni leader is known');
        return { node: node.name, target: targetOf(node.host, node.port) };
      },
    },
    close: () => {
      locator.close();
    },
  };
}

/** Every member as the endpoints that answer list them (the leader's entry wins). */
export async function patroniMembers(f: PatroniFollower): Promise<Member[]> {
  const views = await Promise.all(f.endpoints.map((e) => askPatroni(e, f.requestTimeoutMs)));
  const members = new Map<string, Member>();
  for (const v of views) for (const m of (v.cluster?.members ?? []) as Member[]) if (!members.has(m.name) || m.role === 'leader') members.set(m.name, m);
  return [...members.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function seconds(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** The dynamic configuration from the first endpoint that answers. */
export async function patroniSettings(f: PatroniFollower): Promise<PatroniSettings> {
  const errors: string[] = [];
  for (const endpoint of f.endpoints) {
    try {
      const c = await patroniDynamicConfig(endpoint, f.requestTimeoutMs);
      return {
        ttl: seconds(c.ttl),
        loopWait: seconds(c.loop_wait),
        retryTimeout: seconds(c.retry_timeout),
        // Patroni 3 renamed master_start_timeout; both are read, 300 s is its default.
        primaryStartTimeout: seconds(c.primary_start_timeout) ?? seconds(c.master_start_timeout) ?? 300,
        maximumLagOnFailover: seconds(c.maximum_lag_on_failover) ?? 1_048_576,
        synchronousMode: c.synchronous_mode === true || c.synchronous_mode === 'on',
      };
    } catch (err) {
      errors.push(`${endpoint}: ${(err as Error).message}`);
    }
  }
  refuse(`no Patroni member answers GET /config (${errors.join('; ')})`);
}

/** Why a member cannot be elected, or null when Patroni can promote it. */
export function memberUnreadiness(m: Member, settings: PatroniSettings): string | null {
  if (m.role !== 'replica' && m.role !== 'sync_standby') return `${m.name} is ${m.role}`;
  if (m.state !== 'running' && m.state !== 'streaming') return `${m.name} is ${m.state ?? 'in an unknown state'}`;
  if (m.tags?.nofailover === true) return `${m.name} is tagged nofailover`;
  if (typeof m.lag !== 'number') return `${m.name} does not report its lag (${m.lag ?? 'none'})`;
  if (m.lag > settings.maximumLagOnFailover) return `${m.name} is ${m.lag} bytes behind (more than maximum_lag_on_failover, ${settings.maximumLagOnFailover})`;
  if (settings.synchronousMode && m.role !== 'sync_standby') return `${m.name} is not the synchronous standby (in synchronous_mode Patroni promotes only that one)`;
  return null;
}

/**
 * Checks that Patroni can fail over at all: a leader, a healthy replica, and a leader that is
 * failed over at once rather than restarted in place. Refuses (exit 4) with the reason otherwise.
 */
export async function assessPatroni(f: PatroniFollower): Promise<{ leader: string; members: Member[]; candidates: string[]; settings: PatroniSettings; mode: ReplicationMode }> {
  const settings = await patroniSettings(f);
  const leader = f.scope.primary().node;
  // Members publish their state once per HA loop, so a lag can be a loop old (a burst of WAL just
  // before the drill): a replica is given two loops to show it is caught up before the refusal.
  const settleBy = Date.now() + 2000 * (settings.loopWait ?? 10) + 1000;
  let members: Member[];
  let others: Member[];
  let problems: (string | null)[];
  let candidates: string[];
  for (;;) {
    members = await patroniMembers(f);
    others = members.filter((m) => m.name !== leader);
    problems = others.map((m) => memberUnreadiness(m, settings));
    candidates = others.filter((_, i) => problems[i] === null).map((m) => m.name);
    if (candidates.length > 0 || Date.now() >= settleBy) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (candidates.length === 0) {
    const why = others.length === 0 ? 'it has no member but the leader' : problems.filter((p) => p !== null).join('; ');
    refuse(`the Patroni cluster has no healthy replica to elect in place of ${leader} (${why}); a drill would take the cluster down rather than measure a failover. See 'patronictl list'`);
  }
  if (settings.primaryStartTimeout > 0) {
    refuse(
      `Patroni restarts a crashed leader in place for primary_start_timeout (${settings.primaryStartTimeout} s) before it fails over, so killing ${leader}'s postmaster would measure a restart, not a failover. ` +
        "Set primary_start_timeout: 0 ('patronictl edit-config'; with synchronous_mode on, failing over at once loses nothing acknowledged) to drill the failover",
    );
  }
  await leaderPostmaster(f.scope.primary().target, leader);
  return { leader, members, candidates, settings, mode: settings.synchronousMode ? 'sync' : 'async' };
}

/**
 * The leader's postmaster: its data directory, from PostgreSQL itself, and the pid on the first line
 * of postmaster.pid there. Refuses (exit 4) when that file cannot be read here (the drill must run
 * on the leader's host, as the root or PostgreSQL OS user, to kill it).
 */
export async function leaderPostmaster(target: ConnectionTarget, leader: string): Promise<{ pid: number; dataDir: string }> {
  const dataDir = await withAdminClient(target, 'postgres', async (c) => (await c.query<{ dir: string }>("SELECT current_setting('data_directory') AS dir")).rows[0]?.dir ?? '');
  let pid = NaN;
  try {
    pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  } catch (err) {
    refuse(`the drill kills the postmaster of the leader ${leader}, so it must run on that host as root or the PostgreSQL OS user: ${dataDir}/postmaster.pid cannot be read here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!Number.isInteger(pid) || pid <= 1) refuse(`${dataDir}/postmaster.pid of the leader ${leader} names no postmaster`);
  return { pid, dataDir };
}
