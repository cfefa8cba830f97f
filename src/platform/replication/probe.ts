/** What a node says about itself, and what a primary says about the standbys streaming from it. */
import pg from 'pg';
import { clientConfig, databaseUnreachable, isCertificateError, type ConnectionTarget } from '../postgres/connection.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';

export interface NodeProbe {
  /** Accepts connections. */
  reachable: boolean;
  /** Why it does not, when it does not. */
  error: string | null;
  inRecovery: boolean | null;
  timeline: number | null;
  /** A primary's WAL write position. */
  currentLsn: string | null;
  /** A standby's WAL received and flushed by streaming, and replayed. */
  receiveLsn: string | null;
  replayLsn: string | null;
  replayPaused: boolean;
  /** Commit time (on the primary) of the last transaction a standby replayed. */
  lastReplayAt: Date | null;
  /** A standby's WAL receiver: its state and where it streams from. */
  receiver: { status: string; upstreamPort: number | null; timeline: number | null } | null;
  startedAt: Date | null;
}

export interface WalSender {
  /** application_name, which is the standby's node name. */
  name: string;
  state: string;
  syncState: string;
  replayLsn: string | null;
  flushLsn: string | null;
  ssl: boolean;
  tlsVersion: string | null;
}

export interface SlotInfo {
  name: string;
  active: boolean;
  restartLsn: string | null;
  walStatus: string | null;
  /** WAL the slot keeps on the primary, in bytes. */
  retainedBytes: number | null;
}

export interface PrimaryView {
  currentLsn: string;
  synchronousStandbyNames: string;
  senders: WalSender[];
  slots: SlotInfo[];
}

/** Runs `fn` on a short-lived admin connection to the node's maintenance database. */
export async function withNodeClient<T>(cluster: LocalCluster, fn: (client: pg.Client) => Promise<T>, timeoutMs = 5000): Promise<T> {
  const client = new pg.Client({ ...clientConfig(cluster.target(), 'postgres'), connectionTimeoutMillis: timeoutMs, application_name: 'taskflow-replication' });
  client.on('error', () => {
    /* a dropped connection surfaces on the next query */
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const UNREACHABLE: Omit<NodeProbe, 'error'> = {
  reachable: false,
  inRecovery: null,
  timeline: null,
  currentLsn: null,
  receiveLsn: null,
  replayLsn: null,
  replayPaused: false,
  lastReplayAt: null,
  receiver: null,
  startedAt: null,
};

interface SelfRow {
  in_recovery: boolean;
  started_at: Date;
  checkpoint_timeline: number;
  receive_lsn: string | null;
  replay_lsn: string | null;
  last_replay_at: Date | null;
}

/** Asks a node what it is; an unreachable node is reported, not thrown. */
export async function probeNode(cluster: LocalCluster): Promise<NodeProbe> {
  try {
    return await withNodeClient(cluster, async (client) => {
      const self = await client.query<SelfRow>(
        `SELECT pg_is_in_recovery() AS in_recovery, pg_postmaster_start_time() AS started_at,
                (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_timeline,
                pg_last_wal_receive_lsn()::text AS receive_lsn, pg_last_wal_replay_lsn()::text AS replay_lsn,
                pg_last_xact_replay_timestamp() AS last_replay_at`,
      );
      const row = self.rows[0];
      if (!row) throw new Error('no answer');
      if (!row.in_recovery) {
        // The timeline of the WAL being written now is the first 8 hex digits of its file name.
        const primary = await client.query<{ lsn: string; walfile: string }>('SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS walfile');
        const p = primary.rows[0];
        return {
          ...UNREACHABLE,
          reachable: true,
          error: null,
          inRecovery: false,
          timeline: p ? Number.parseInt(p.walfile.slice(0, 8), 16) : row.checkpoint_timeline,
          currentLsn: p?.lsn ?? null,
          startedAt: row.started_at,
        };
      }
      const paused = await client.query<{ state: string }>('SELECT pg_get_wal_replay_pause_state() AS state');
      const receiver = await client.query<{ status: string; sender_port: number | null; received_tli: number | null }>(
        'SELECT status, sender_port, received_tli FROM pg_stat_wal_receiver',
      );
      const r = receiver.rows[0];
      return {
        ...UNREACHABLE,
        reachable: true,
        error: null,
        inRecovery: true,
        timeline: r?.received_tli ?? row.checkpoint_timeline,
        receiveLsn: row.receive_lsn,
        replayLsn: row.replay_lsn,
        replayPaused: paused.rows[0]?.state !== 'not paused',
        lastReplayAt: row.last_replay_at,
        receiver: r ? { status: r.status, upstreamPort: r.sender_port, timeline: r.received_tli } : null,
        startedAt: row.started_at,
      };
    });
  } catch (err) {
    return { ...UNREACHABLE, error: describeConnectError(err, cluster.target()) };
  }
}

function describeConnectError(err: unknown, target: ConnectionTarget): string {
  const e = err as { code?: string; message?: string };
  if (e.code === 'ECONNREFUSED') return 'not running';
  if (e.code === '57P03') return 'starting up or shutting down';
  // A node whose certificate does not verify: say so in TaskFlow's words, not TLS's error code.
  if (isCertificateError(err)) return databaseUnreachable(target, err).message;
  return e.message ?? String(err);
}

/** The primary's view of replication: its WAL position, synchronous standbys, WAL senders and slots. */
export async function primaryView(cluster: LocalCluster): Promise<PrimaryView> {
  return withNodeClient(cluster, async (client) => {
    const head = await client.query<{ lsn: string; names: string }>(
      "SELECT pg_current_wal_lsn()::text AS lsn, current_setting('synchronous_standby_names') AS names",
    );
    const senders = await client.query<{ name: string; state: string; sync_state: string; replay_lsn: string | null; flush_lsn: string | null; ssl: boolean | null; version: string | null }>(
      `SELECT r.application_name AS name, r.state, r.sync_state, r.replay_lsn::text AS replay_lsn, r.flush_lsn::text AS flush_lsn, s.ssl, s.version
         FROM pg_stat_replication r LEFT JOIN pg_stat_ssl s ON s.pid = r.pid ORDER BY r.application_name`,
    );
    const slots = await client.query<{ name: string; active: boolean; restart_lsn: string | null; wal_status: string | null; retained: string | null }>(
      `SELECT slot_name AS name, active, restart_lsn::text AS restart_lsn, wal_status,
              pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained
         FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name`,
    );
    return {
      currentLsn: head.rows[0]?.lsn ?? '0/0',
      synchronousStandbyNames: head.rows[0]?.names ?? '',
      senders: senders.rows.map((s) => ({
        name: s.name,
        state: s.state,
        syncState: s.sync_state,
        replayLsn: s.replay_lsn,
        flushLsn: s.flush_lsn,
        ssl: s.ssl ?? false,
        tlsVersion: s.version,
      })),
      slots: slots.rows.map((s) => ({
        name: s.name,
        active: s.active,
        restartLsn: s.restart_lsn,
        walStatus: s.wal_status,
        retainedBytes: s.retained === null ? null : Math.max(0, Number(s.retained)),
      })),
    };
  });
}

/** Waits until `check` returns a value (not undefined), polling; null when the time runs out. */
export async function poll<T>(check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
