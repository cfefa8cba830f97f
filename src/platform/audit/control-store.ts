/** Audit events as rows of `audit_events` in the control database. */
import type pg from 'pg';
import type { AuditEvent, AuditStore } from './audit.ts';

export class ControlDbAuditStore implements AuditStore {
  readonly #db: Pick<pg.Pool, 'query'>;
  constructor(db: Pick<pg.Pool, 'query'>) {
    this.#db = db;
  }

  async append(event: AuditEvent & { at: Date }): Promise<void> {
    await this.#db.query(
      `INSERT INTO audit_events (at, tenant_id, action, outcome, actor_type, actor_id, actor_label, subject_type, subject_id, ip, user_agent, details)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        event.at,
        event.tenantId,
        event.action,
        event.outcome,
        event.actor.type,
        event.actor.id ?? null,
        event.actor.label ?? null,
        event.subject?.type ?? null,
        event.subject?.id ?? null,
        event.ip,
        event.userAgent,
        JSON.stringify(event.details ?? {}),
      ],
    );
  }
}

export interface StoredAuditEvent {
  id: string;
  at: string;
  tenantId: string | null;
  action: string;
  outcome: string;
  actorType: string;
  actorId: string | null;
  actorLabel: string | null;
  subjectType: string | null;
  subjectId: string | null;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
}

/** The newest events of a tenant (or of all), newest first. */
export async function listAuditEvents(
  db: Pick<pg.Pool, 'query'>,
  filter: { tenantId?: string; action?: string; limit?: number },
): Promise<StoredAuditEvent[]> {
  const res = await db.query<StoredAuditEvent>(
    `SELECT id::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at, tenant_id AS "tenantId", action, outcome,
            actor_type AS "actorType", actor_id AS "actorId", actor_label AS "actorLabel", subject_type AS "subjectType",
            subject_id AS "subjectId", host(ip) AS ip, user_agent AS "userAgent", details
       FROM audit_events
      WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR action = $2)
      ORDER BY id DESC LIMIT $3`,
    [filter.tenantId ?? null, filter.action ?? null, filter.limit ?? 100],
  );
  return res.rows;
}
