/**
 * Whether a failover may discard the commits the target never received without --force.
 *
 * In synchronous mode a commit is acknowledged to its client only once enough of the standbys
 * named in synchronous_standby_names have flushed it (`ANY 1 ("b", "c")`: one of them). A commit
 * the target lacks was therefore never acknowledged to a session that waits for synchronous commit
 * when, at the time it was made,
 *   1. the old primary ran with synchronous_standby_names set (the value on its disk, and
 *      replication.json says sync), naming no wildcard,
 *   2. and with synchronous_commit on, remote_write or remote_apply (its files, and no role or
 *      database override to local or off on the target's catalog),
 *   3. and the setting was already in effect: the first missing commit was made at least
 *      SYNC_SETTLE_MS after the file holding it was last written (TaskFlow reloads at once),
 *   4. and no other standby named there holds WAL beyond what the target received (it could have
 *      confirmed those commits), fenced nodes aside (they stream from nobody).
 * Then the missing commits are discarded as unacknowledged. Otherwise the failover is refused
 * saying which of these could not be established, and what --force would lose.
 *
 * Not covered, and documented: a session that sets synchronous_commit to local or off itself
 * (TaskFlow's replication watch does, for its alert rows), and a commit whose wait was cancelled,
 * which PostgreSQL answers with COMMIT and a warning (the app answers it 503 commit-unconfirmed).
 */
import { formatBytes, parseLsn } from './lsn.ts';
import type { NodeRole, ReplicationMode } from './topology.ts';
import { parseCommitTime, type WalGap } from './wal-gap.ts';
import type { ConfigFile } from './wal-source.ts';

/** How long after synchronous_standby_names was written a commit may still have been made without waiting (reload, checkpointer). */
export const SYNC_SETTLE_MS = 5_000;

/** synchronous_commit values under which a commit waits for the synchronous standbys. */
const WAITING_COMMIT = new Set(['on', 'true', 'yes', '1', 'remote_write', 'remote_apply']);

/** What another node holds, as far as can be told safely. */
export interface PeerPosition {
  role: NodeRole;
  /** The end of the WAL it has flushed; null when that cannot be told (why says so). */
  flushed: string | null;
  why: string | null;
}

export interface DecisionInput {
  from: string;
  to: string;
  gap: WalGap;
  /** The end of the WAL the target has flushed. */
  targetReceived: string;
  recordedMode: ReplicationMode;
  /** The old primary's configuration files, or why they could not be read. */
  config: ConfigFile[] | { unknown: string };
  /** synchronous_commit set per role or database (`acme/alice: local`), or why they could not be read. */
  overrides: { scope: string; value: string }[] | { unknown: string };
  /** The other nodes of the cluster, by name. */
  peers: Map<string, PeerPosition>;
}

export type Decision =
  | { allowed: true; discarded: { commits: number; bytes: number; lastCommitAt: string | null; why: string } | null }
  | { allowed: false; reason: string };

/** A setting's value in postgresql.conf syntax: quoted ('' and \ escapes) or a bare word. */
const SETTING = /^\s*([A-Za-z_][\w.]*)\s*=?\s*('(?:[^'\\]|''|\\.)*'|[^\s#']+)/;

/** The last value each file gives a setting, files read in order; with the file it came from. */
export function effectiveSetting(files: ConfigFile[], name: string): { value: string; file: ConfigFile } | null {
  let found: { value: string; file: ConfigFile } | null = null;
  for (const file of files) {
    for (const line of (file.content ?? '').split('\n')) {
      const m = SETTING.exec(line);
      if (!m?.[1] || m[2] === undefined || m[1].toLowerCase() !== name) continue;
      const raw = m[2];
      const value = raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'").replace(/\\(.)/g, '$1') : raw;
      found = { value, file };
    }
  }
  return found;
}

export interface SyncNames {
  method: 'any' | 'first';
  count: number;
  /** Lower-cased, as PostgreSQL compares them with application_name. */
  names: string[];
}

/** Parses synchronous_standby_names: null when empty, 'invalid' when PostgreSQL would not take it either. */
export function parseSyncNames(value: string): SyncNames | null | 'invalid' {
  const text = value.trim();
  if (text === '') return null;
  const keyword = /^(ANY|FIRST)\s/i.exec(text);
  const rest = keyword ? text.slice(keyword[0].length).trim() : text;
  const counted = /^(\d+)\s*\(/.exec(rest);
  if (keyword && !(counted && rest.endsWith(')'))) return 'invalid';
  const method = keyword?.[1]?.toLowerCase() === 'any' ? 'any' : 'first';
  const list = counted && rest.endsWith(')') ? rest.slice(counted[0].length, -1) : rest;
  const names: string[] = [];
  for (const item of list.split(',')) {
    const t = item.trim();
    const quoted = /^"((?:[^"]|"")*)"$/.exec(t);
    if (quoted) names.push((quoted[1] ?? '').replace(/""/g, '"').toLowerCase());
    else if (t === '*' || /^[A-Za-z_][\w$]*$/.test(t)) names.push(t.toLowerCase());
    else return 'invalid';
  }
  const count = counted ? Number(counted[1]) : 1;
  return count >= 1 ? { method, count, names } : 'invalid';
}

/** Decides; see the module comment. */
export function decideFailover(input: DecisionInput): Decision {
  const { gap, from, to } = input;
  if (!gap.known) return refuse(`cannot tell how far behind node ${to} is (${gap.reason}); add --force to fail over without knowing what might be lost`);
  if (gap.missingCommits === 0) return { allowed: true, discarded: null };
  const loss =
    `node ${to} is ${formatBytes(gap.missingBytes)} (${gap.missingBytes} bytes) of WAL behind ${from}, holding ${gap.missingCommits} committed transaction(s)` +
    (gap.lastMissingCommitAt ? `, the last committed at ${gap.lastMissingCommitAt}` : '');
  const remedy = `Start ${from} again so ${to} catches up, fail over to a standby that has them, or add --force to accept the loss of ${gap.missingCommits} committed transaction(s)`;
  const notSure = (why: string) => refuse(`${loss}, which a failover to it would lose; they may have been acknowledged to clients: ${why}. ${remedy}`);
  if (input.recordedMode !== 'sync') return refuse(`${loss}, which a failover to it would lose (asynchronous mode: they may have been acknowledged to clients). ${remedy}`);
  if ('unknown' in input.config) return notSure(`the configuration of ${from} cannot be read to confirm synchronous commit (${input.config.unknown})`);
  const names = effectiveSetting(input.config, 'synchronous_standby_names');
  const parsed = parseSyncNames(names?.value ?? '');
  if (parsed === null) return notSure(`${from} ran with synchronous_standby_names empty, so its commits did not wait for a standby`);
  if (parsed === 'invalid') return notSure(`${from} has synchronous_standby_names '${names?.value ?? ''}', which TaskFlow cannot read`);
  if (parsed.names.includes('*')) return notSure(`synchronous_standby_names '${names?.value ?? ''}' of ${from} lets any replication connection confirm a commit`);
  const commit = effectiveSetting(input.config, 'synchronous_commit')?.value.toLowerCase() ?? 'on';
  if (!WAITING_COMMIT.has(commit)) return notSure(`${from} ran with synchronous_commit = ${commit}, so its commits did not wait for a standby`);
  if ('unknown' in input.overrides) return notSure(`the per-role and per-database settings cannot be read on ${to} (${input.overrides.unknown})`);
  const local = input.overrides.filter((o) => !WAITING_COMMIT.has(o.value.toLowerCase()));
  if (local.length > 0) {
    return notSure(`synchronous_commit is set to ${local.map((o) => `${o.value} for ${o.scope}`).join(', ')} (ALTER ROLE/DATABASE … SET), and such commits do not wait for a standby`);
  }
  const since = names?.file.modifiedAt ?? null;
  const first = parseCommitTime(gap.firstMissingCommitAt);
  if (!since || !first) return notSure(`cannot tell whether synchronous commit was already in effect when the first of them was made (${!since ? `no modification time for ${names?.file.name ?? 'the configuration'}` : `commit time '${gap.firstMissingCommitAt ?? '?'}'`})`);
  if (first.getTime() < since.getTime() + SYNC_SETTLE_MS) {
    return notSure(
      `synchronous_standby_names was last written to ${names?.file.name ?? '?'} of ${from} at ${since.toISOString()} and the first of them was committed at ${first.toISOString()}, ` +
        `within ${SYNC_SETTLE_MS / 1000} s of it (or before), when commits may not have waited yet`,
    );
  }
  const received = parseLsn(input.targetReceived);
  for (const name of parsed.names) {
    if (name === to || name === from) continue;
    const peer = input.peers.get(name);
    if (!peer) return notSure(`synchronous_standby_names of ${from} names '${name}', which is no node of this cluster, and it may have confirmed them`);
    if (peer.role === 'fenced') continue;
    if (peer.flushed === null) return notSure(`node ${name} is also counted for synchronous commit and may have confirmed them, but ${peer.why ?? 'its WAL position is unknown'}; start it so it can be compared, then run the failover again`);
    if (parseLsn(peer.flushed) > received) {
      return notSure(`node ${name}, also counted for synchronous commit, has WAL up to ${peer.flushed}, beyond what ${to} received (${input.targetReceived}), so commits it confirmed would be lost; fail over to ${name} instead`);
    }
  }
  const others = parsed.names.filter((n) => n !== to && n !== from);
  const why =
    `${from} ran in synchronous mode (synchronous_standby_names '${names?.value ?? ''}' since ${since.toISOString()}, synchronous_commit ${commit})` +
    (others.length > 0 ? ` and no other standby counted for it (${others.join(', ')}) has WAL beyond ${to}'s` : '') +
    `: a commit ${to} never received was never confirmed, so no client waiting for synchronous commit saw it succeed`;
  return { allowed: true, discarded: { commits: gap.missingCommits, bytes: gap.missingBytes, lastCommitAt: gap.lastMissingCommitAt, why } };
}

function refuse(reason: string): Decision {
  return { allowed: false, reason };
}
