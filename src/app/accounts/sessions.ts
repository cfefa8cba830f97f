/**
 * Sessions: 256-bit random tokens in a host-only `__Host-` cookie, stored only as SHA-256 hashes,
 * with an idle and an absolute timeout. A new token on every sign-in, second factor and
 * re-authentication, so a token known before (fixation) is worth nothing after.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { hashSecretToken, newSecretToken, SECRET_TOKEN } from '../../platform/accounts/secrets.ts';
import type { Role } from '../policies.ts';
import type { Db } from '../tenant-db.ts';
import type { SessionInfo, SessionUser } from './principal.ts';

export const SESSION_COOKIE = '__Host-tf_session';

export interface SessionTimeouts {
  sessionIdleMinutes: number;
  sessionAbsoluteHours: number;
}

/** Starts a session for a user; returns the token for the cookie (never stored). */
export async function createSession(props: {
  db: Db;
  userId: string;
  stage: 'mfa' | 'active';
  ip: string | null;
  userAgent: string | null;
  timeouts: SessionTimeouts;
}): Promise<{ token: string; id: string; expiresAt: Date }> {
  const { token, hash } = newSecretToken();
  // A session waiting for its second factor lives five minutes at most.
  const lifetimeMinutes = props.stage === 'mfa' ? 5 : props.timeouts.sessionAbsoluteHours * 60;
  const res = await props.db.query<{ id: string; expires_at: Date }>(
    `INSERT INTO app.sessions (token_hash, user_id, stage, ip, user_agent, expires_at)
     VALUES ($1, $2, $3, $4, $5, clock_timestamp() + make_interval(mins => $6)) RETURNING id, expires_at`,
    [hash, props.userId, props.stage, props.ip, props.userAgent?.slice(0, 512) ?? null, lifetimeMinutes],
  );
  const row = res.rows[0];
  if (!row) throw new Error('session insert returned nothing');
  return { token, id: row.id, expiresAt: row.expires_at };
}

interface SessionRow {
  id: string;
  stage: 'mfa' | 'active';
  created_at: Date;
  expires_at: Date;
  reauthenticated_at: Date;
  last_seen_at: Date;
  user_id: string;
  email: string;
  display_name: string;
  role: Role;
  totp_enabled_at: Date | null;
  require_second_factor: boolean;
}

/** The live session behind a cookie value, with its user; null when unknown, ended, timed out or the user is deactivated. */
export async function findSession(
  db: Db,
  token: string,
  timeouts: SessionTimeouts,
): Promise<{ session: SessionInfo; user: SessionUser; lastSeenAt: Date; mustEnrolSecondFactor: boolean } | null> {
  if (!SECRET_TOKEN.test(token)) return null;
  const res = await db.query<SessionRow>(
    `SELECT s.id, s.stage, s.created_at, s.expires_at, s.reauthenticated_at, s.last_seen_at,
            u.id AS user_id, u.email, u.display_name, u.role, u.totp_enabled_at,
            (SELECT require_second_factor FROM app.account_settings) AS require_second_factor
       FROM app.sessions s JOIN app.users u ON u.id = s.user_id
      WHERE s.token_hash = $1 AND s.ended_at IS NULL AND u.status = 'active'
        AND s.expires_at > clock_timestamp()
        AND s.last_seen_at > clock_timestamp() - make_interval(mins => $2)`,
    [hashSecretToken(token), timeouts.sessionIdleMinutes],
  );
  const row = res.rows[0];
  if (!row) return null;
  return {
    session: { id: row.id, stage: row.stage, createdAt: row.created_at, expiresAt: row.expires_at, reauthenticatedAt: row.reauthenticated_at },
    user: { id: row.user_id, email: row.email, displayName: row.display_name, role: row.role, secondFactor: row.totp_enabled_at !== null },
    lastSeenAt: row.last_seen_at,
    mustEnrolSecondFactor: row.require_second_factor && row.totp_enabled_at === null,
  };
}

/** Marks a session as used now (at most once a minute, to spare a write per request). */
export async function touchSession(db: Db, sessionId: string): Promise<void> {
  await db.query(`UPDATE app.sessions SET last_seen_at = clock_timestamp() WHERE id = $1 AND last_seen_at < clock_timestamp() - interval '1 minute'`, [sessionId]);
}

/** Ends one session of a user; false when there was no such live session. */
export async function endSession(db: Db, props: { sessionId: string; userId: string; reason: string }): Promise<boolean> {
  const res = await db.query(
    `UPDATE app.sessions SET ended_at = clock_timestamp(), end_reason = $3 WHERE id = $1 AND user_id = $2 AND ended_at IS NULL`,
    [props.sessionId, props.userId, props.reason],
  );
  return (res.rowCount ?? 0) > 0;
}

/** Ends every live session of a user, but `exceptSessionId`; returns how many. */
export async function endUserSessions(db: Db, props: { userId: string; reason: string; exceptSessionId?: string }): Promise<number> {
  const res = await db.query(
    `UPDATE app.sessions SET ended_at = clock_timestamp(), end_reason = $2
      WHERE user_id = $1 AND ended_at IS NULL AND ($3::uuid IS NULL OR id <> $3)`,
    [props.userId, props.reason, props.exceptSessionId ?? null],
  );
  return res.rowCount ?? 0;
}

/**
 * Replaces a session by a new one with a new token (after the second factor, a re-authentication
 * or a privilege change); the old token stops working at once.
 */
export async function rotateSession(props: {
  db: Db;
  sessionId: string;
  userId: string;
  stage: 'active';
  ip: string | null;
  userAgent: string | null;
  timeouts: SessionTimeouts;
}): Promise<{ token: string; id: string; expiresAt: Date }> {
  await endSession(props.db, { sessionId: props.sessionId, userId: props.userId, reason: 'rotated' });
  return createSession(props);
}

export interface SessionView {
  id: string;
  current: boolean;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
}

/** A user's live sessions, newest first. */
export async function listSessions(db: Db, props: { userId: string; currentSessionId: string | null; timeouts: SessionTimeouts }): Promise<SessionView[]> {
  const res = await db.query<{ id: string; created_at: Date; last_seen_at: Date; expires_at: Date; ip: string | null; user_agent: string | null }>(
    `SELECT id, created_at, last_seen_at, expires_at, host(ip) AS ip, user_agent FROM app.sessions
      WHERE user_id = $1 AND ended_at IS NULL AND stage = 'active' AND expires_at > clock_timestamp()
        AND last_seen_at > clock_timestamp() - make_interval(mins => $2)
      ORDER BY created_at DESC`,
    [props.userId, props.timeouts.sessionIdleMinutes],
  );
  return res.rows.map((r) => ({
    id: r.id,
    current: r.id === props.currentSessionId,
    createdAt: r.created_at.toISOString(),
    lastSeenAt: r.last_seen_at.toISOString(),
    expiresAt: r.expires_at.toISOString(),
    ip: r.ip,
    userAgent: r.user_agent,
  }));
}

/** Sets the session cookie: host-only, Secure, HttpOnly, SameSite=Lax, expiring with the session. */
export function setSessionCookie(reply: FastifyReply, token: string, expiresAt: Date): void {
  void reply.setCookie(SESSION_COOKIE, token, { path: '/', secure: true, httpOnly: true, sameSite: 'lax', expires: expiresAt });
}

export function clearSessionCookie(reply: FastifyReply): void {
  void reply.clearCookie(SESSION_COOKIE, { path: '/', secure: true, httpOnly: true, sameSite: 'lax' });
}

export function sessionCookieOf(request: FastifyRequest): string | undefined {
  return request.cookies[SESSION_COOKIE];
}
