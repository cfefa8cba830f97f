/**
 * The one alert interface. Backups, restores, replication and drills report what an operator must
 * act on through `Alerts.raise`, and clear it with `Alerts.resolve` once the condition is gone.
 * Alerts are kept in the control database (`alerts`); delivery to people (mail, webhooks, paging)
 * is a later issue and will read from the same place. Raising never throws: an alert that cannot
 * be stored is logged instead, so the failure being reported is never hidden behind a second one.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { sanitiseDetails } from '../audit/audit.ts';

/** Every alert code. A new one is added here first, so this list stays the catalogue (docs/operations.md). */
export const ALERT_CODES = [
  'backup.failed',
  'backup.repository-unreachable',
  'backup.repository-full',
  'backup.corrupted',
  'backup.wal-missing',
  'backup.wal-archive-lagging',
  'backup.wal-archive-stale',
  'backup.copy-failed',
  'backup.verify-failed',
  'backup.interrupted',
  'backup.overdue',
  'backup.unproven',
  'backup.placement',
  'restore.failed',
  'restore.interrupted',
  'replication.standby-down',
  'replication.lagging',
  'replication.fenced-primary-returned',
  'replication.failover',
  'replication.split-brain',
  'replication.credential-undelivered',
  'drill.failed',
] as const;

export type AlertCode = (typeof ALERT_CODES)[number];
export type AlertSeverity = 'critical' | 'warning' | 'info';

export interface AlertInput {
  code: AlertCode;
  severity: AlertSeverity;
  /** One line an operator reads first: what happened, where. */
  summary: string;
  /** What makes two raises "the same problem"; defaults to the code. (`backup.failed:snapshot`) */
  key?: string;
  tenantId?: string | null;
  /** Extra facts; secret-looking keys are dropped, long strings truncated. */
  details?: Record<string, unknown>;
  at?: Date;
}

export interface StoredAlert {
  id: string;
  code: AlertCode;
  severity: AlertSeverity;
  key: string;
  summary: string;
  tenantId: string | null;
  details: Record<string, unknown>;
  firstAt: string;
  lastAt: string;
  occurrences: number;
  resolvedAt: string | null;
  resolution: string | null;
}

export interface Alerts {
  raise(alert: AlertInput): Promise<void>;
  /** Marks the open alert with this key resolved; resolves false when none was open. */
  resolve(key: string, resolution: string): Promise<boolean>;
}

type Queryable = Pick<pg.Pool, 'query'>;

const SELECT = `SELECT id::text, code, severity, key, summary, tenant_id AS "tenantId", details,
  to_char(first_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "firstAt",
  to_char(last_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "lastAt", occurrences,
  to_char(resolved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "resolvedAt", resolution
  FROM alerts`;

/** Alerts stored in the control database. */
export class ControlDbAlerts implements Alerts {
  readonly #db: Queryable;
  readonly #log: Logger;

  constructor(db: Queryable, log: Logger) {
    this.#db = db;
    this.#log = log;
  }

  async raise(alert: AlertInput): Promise<void> {
    const at = alert.at ?? new Date();
    const key = alert.key ?? alert.code;
    const details = sanitiseDetails(alert.details ?? {});
    // The log line comes first: it is the record when the database itself is what failed.
    this.#log[alert.severity === 'info' ? 'info' : alert.severity === 'warning' ? 'warn' : 'error']({ alert: alert.code, key, ...details }, alert.summary);
    try {
      await this.#db.query(
        `INSERT INTO alerts (code, severity, key, summary, tenant_id, details, first_at, last_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         ON CONFLICT (key) WHERE resolved_at IS NULL DO UPDATE
           SET occurrences = alerts.occurrences + 1, last_at = EXCLUDED.last_at, summary = EXCLUDED.summary,
               severity = EXCLUDED.severity, details = EXCLUDED.details`,
        [alert.code, alert.severity, key, alert.summary, alert.tenantId ?? null, JSON.stringify(details), at],
      );
    } catch (err) {
      this.#log.error({ alert: alert.code, key, err: err instanceof Error ? err.message : String(err) }, 'alert could not be stored');
    }
  }

  async resolve(key: string, resolution: string): Promise<boolean> {
    const res = await this.#db.query(`UPDATE alerts SET resolved_at = now(), resolution = $2 WHERE key = $1 AND resolved_at IS NULL`, [key, resolution]);
    return (res.rowCount ?? 0) > 0;
  }
}

/** Alerts, newest first; open ones only unless `all`. */
export async function listAlerts(db: Queryable, filter: { all?: boolean; code?: string; limit?: number } = {}): Promise<StoredAlert[]> {
  const res = await db.query<StoredAlert>(
    `${SELECT} WHERE ($1::boolean OR resolved_at IS NULL) AND ($2::text IS NULL OR code = $2) ORDER BY last_at DESC, id DESC LIMIT $3`,
    [filter.all ?? false, filter.code ?? null, filter.limit ?? 100],
  );
  return res.rows;
}
