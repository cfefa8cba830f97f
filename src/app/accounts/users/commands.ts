/**
 * User administration by admins and owners: invitations, roles, deactivation, ending sessions,
 * tenant account settings. Rules beyond the route's permission: only an owner grants, changes or
 * removes the owner role or acts on an owner; nobody changes their own role or deactivates
 * themselves; the last active owner stays.
 */
import { AppError } from '../../../errors.ts';
import { normaliseEmail } from '../../../platform/accounts/email.ts';
import { newSecretToken } from '../../../platform/accounts/secrets.ts';
import type { Role } from '../../policies.ts';
import type { Db, TenantDb } from '../../tenant-db.ts';
import { recordAccountEvent, userActor } from '../audit.ts';
import type { SessionUser } from '../principal.ts';
import type { AccountServices, Caller } from '../services.ts';
import { endUserSessions } from '../sessions.ts';
import { userByEmail, userById, viewOfUser, type UserRecord, type UserView } from './store.ts';

interface AdminProps {
  tenantDb: TenantDb;
  services: AccountServices;
  caller: Caller;
  actor: SessionUser;
}

export async function listUsers(db: Db): Promise<UserView[]> {
  const res = await db.query<{ id: string }>('SELECT id FROM app.users ORDER BY created_at, id');
  const users = await Promise.all(res.rows.map((r) => userById(db, r.id)));
  return users.filter((u): u is UserRecord => u !== null).map(viewOfUser);
}

function assertMayActOn(actor: SessionUser, target: UserRecord, newRole?: Role): void {
  if (target.id === actor.id) throw new AppError('forbidden', 'you cannot change your own role or deactivate yourself; ask another administrator');
  if ((target.role === 'owner' || newRole === 'owner') && actor.role !== 'owner') throw new AppError('forbidden', 'only an owner can grant the owner role or change an owner');
}

async function assertAnotherOwnerRemains(db: Db, target: UserRecord): Promise<void> {
  if (target.role !== 'owner' || target.status !== 'active') return;
  const res = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM app.users WHERE role = 'owner' AND status = 'active' AND id <> $1`, [target.id]);
  if ((res.rows[0]?.n ?? 0) === 0) throw new AppError('conflict', 'the organisation must keep at least one active owner');
}

async function lockedTarget(db: Db, id: string): Promise<UserRecord> {
  // Owners are locked too, so two admins cannot each demote one of the last two owners at once.
  await db.query(`SELECT id FROM app.users WHERE role = 'owner' FOR UPDATE`);
  const user = await userById(db, id, true);
  if (!user) throw new AppError('not-found', 'no such user');
  return user;
}

/** Changes a user's role; their sessions end, so the new privileges start with a new session. */
export async function changeRole(props: AdminProps & { userId: string; role: Role }): Promise<UserView> {
  const { services, caller, actor } = props;
  const { before, after } = await props.tenantDb.transaction(async (db) => {
    const target = await lockedTarget(db, props.userId);
    assertMayActOn(actor, target, props.role);
    if (target.role === props.role) return { before: target, after: target };
    if (props.role !== 'owner') await assertAnotherOwnerRemains(db, target);
    await db.query('UPDATE app.users SET role = $2, updated_at = clock_timestamp() WHERE id = $1', [target.id, props.role]);
    await endUserSessions(db, { userId: target.id, reason: 'role-changed' });
    return { before: target, after: { ...target, role: props.role } };
  });
  if (before.role !== after.role) {
    await recordAccountEvent(services, caller, { action: 'user.role.changed', actor: userActor(actor), subject: { type: 'user', id: after.id }, details: { from: before.role, to: after.role, email: after.email } });
  }
  return viewOfUser(after);
}

/** Deactivates a user: they cannot sign in, and their sessions end now. */
export async function deactivateUser(props: AdminProps & { userId: string }): Promise<UserView> {
  const { services, caller, actor } = props;
  const user = await props.tenantDb.transaction(async (db) => {
    const target = await lockedTarget(db, props.userId);
    assertMayActOn(actor, target);
    if (target.status === 'deactivated') return target;
    await assertAnotherOwnerRemains(db, target);
    await db.query(`UPDATE app.users SET status = 'deactivated', deactivated_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1`, [target.id]);
    await endUserSessions(db, { userId: target.id, reason: 'deactivated' });
    return { ...target, status: 'deactivated' as const };
  });
  await recordAccountEvent(services, caller, { action: 'user.deactivated', actor: userActor(actor), subject: { type: 'user', id: user.id }, details: { email: user.email } });
  return viewOfUser(user);
}

export async function reactivateUser(props: AdminProps & { userId: string }): Promise<UserView> {
  const { services, caller, actor } = props;
  const user = await props.tenantDb.transaction(async (db) => {
    const target = await lockedTarget(db, props.userId);
    assertMayActOn(actor, target);
    await db.query(`UPDATE app.users SET status = 'active', deactivated_at = NULL, updated_at = clock_timestamp() WHERE id = $1`, [target.id]);
    return { ...target, status: 'active' as const };
  });
  await recordAccountEvent(services, caller, { action: 'user.reactivated', actor: userActor(actor), subject: { type: 'user', id: user.id }, details: { email: user.email } });
  return viewOfUser(user);
}

/** Ends every session of another user (a lost laptop). */
export async function endSessionsOf(props: AdminProps & { userId: string }): Promise<number> {
  const { services, caller, actor } = props;
  const count = await props.tenantDb.transaction(async (db) => {
    const target = await userById(db, props.userId);
    if (!target) throw new AppError('not-found', 'no such user');
    if (target.role === 'owner' && actor.role !== 'owner' && target.id !== actor.id) throw new AppError('forbidden', "only an owner can end an owner's sessions");
    return endUserSessions(db, { userId: target.id, reason: 'ended-by-admin' });
  });
  await recordAccountEvent(services, caller, { action: 'user.sessions.ended', actor: userActor(actor), subject: { type: 'user', id: props.userId }, details: { count } });
  return count;
}

export interface InvitationView {
  id: string;
  email: string;
  role: Role;
  status: 'pending' | 'accepted' | 'revoked' | 'expired';
  createdAt: string;
  expiresAt: string;
}

export async function listInvitations(db: Db): Promise<InvitationView[]> {
  const res = await db.query<{ id: string; email: string; role: Role; status: InvitationView['status']; created_at: Date; expires_at: Date }>(
    `SELECT id, email, role, created_at, expires_at,
            CASE WHEN accepted_at IS NOT NULL THEN 'accepted' WHEN revoked_at IS NOT NULL THEN 'revoked'
                 WHEN expires_at <= clock_timestamp() THEN 'expired' ELSE 'pending' END AS status
       FROM app.invitations ORDER BY created_at DESC LIMIT 500`,
  );
  return res.rows.map((r) => ({ id: r.id, email: r.email, role: r.role, status: r.status, createdAt: r.created_at.toISOString(), expiresAt: r.expires_at.toISOString() }));
}

/**
 * Creates an invitation and mails its link. Used by admins (actor set) and, for the first owner's
 * setup link, by an operator (actor null). Earlier pending invitations of the address are revoked.
 */
export async function inviteUser(props: {
  tenantDb: TenantDb;
  services: Pick<AccountServices, 'audit' | 'sendMail' | 'settings'>;
  caller: Caller;
  actor: SessionUser | null;
  operator?: string;
  email: string;
  role: Role;
}): Promise<InvitationView> {
  const { services, caller, actor } = props;
  const normalised = normaliseEmail(props.email);
  if (!normalised.ok) throw new AppError('validation-failed', normalised.reason, { extra: { errors: [{ in: 'body', pointer: '/email', message: normalised.reason }] } });
  const email = normalised.email;
  if (actor && props.role === 'owner' && actor.role !== 'owner') throw new AppError('forbidden', 'only an owner can invite an owner');
  const { token, hash } = newSecretToken();
  const invitation = await props.tenantDb.transaction(async (db) => {
    if (await userByEmail(db, email)) throw new AppError('conflict', 'a user with that address already exists');
    await db.query('UPDATE app.invitations SET revoked_at = clock_timestamp() WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL', [email]);
    const res = await db.query<{ id: string; created_at: Date; expires_at: Date }>(
      `INSERT INTO app.invitations (token_hash, email, role, invited_by, expires_at)
       VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(days => $5)) RETURNING id, created_at, expires_at`,
      [hash, email, props.role, actor?.id ?? null, services.settings.invitationDays],
    );
    const row = res.rows[0];
    if (!row) throw new Error('invitation insert returned nothing');
    return { id: row.id, email, role: props.role, status: 'pending' as const, createdAt: row.created_at.toISOString(), expiresAt: row.expires_at.toISOString() };
  });
  const setup = actor === null;
  await recordAccountEvent(services, caller, {
    action: setup ? 'tenant.setup-link.issued' : 'user.invited',
    actor: actor ? userActor(actor) : { type: 'operator', label: props.operator ?? 'operator' },
    subject: { type: 'invitation', id: invitation.id },
    details: { email, role: props.role },
  });
  const link = `${caller.origin}/invitation#token=${token}`;
  await services.sendMail({
    to: email,
    kind: setup ? 'setup' : 'invitation',
    tenantId: caller.tenantId,
    subject: setup ? `Set up ${caller.tenantName} on TaskFlow` : `You are invited to ${caller.tenantName} on TaskFlow`,
    text: [
      setup
        ? `${caller.tenantName} is ready on TaskFlow at ${caller.origin}, and you are its first owner.`
        : `${actor.displayName} invited you to ${caller.tenantName} on TaskFlow (${caller.origin}) as ${props.role}.`,
      '',
      `To choose your password and sign in, open this link within ${services.settings.invitationDays} days (it works once):`,
      link,
    ].join('\n'),
  });
  return invitation;
}

export async function revokeInvitation(props: AdminProps & { invitationId: string }): Promise<void> {
  const res = await props.tenantDb.read((db) =>
    db.query(`UPDATE app.invitations SET revoked_at = clock_timestamp() WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL`, [props.invitationId]),
  );
  if ((res.rowCount ?? 0) === 0) throw new AppError('not-found', 'no pending invitation with that id');
  await recordAccountEvent(props.services, props.caller, { action: 'user.invitation.revoked', actor: userActor(props.actor), subject: { type: 'invitation', id: props.invitationId } });
}

export async function updateAccountSettings(props: AdminProps & { requireSecondFactor: boolean }): Promise<{ requireSecondFactor: boolean }> {
  // Requiring what you do not have yourself would lock you out of this very setting.
  if (props.requireSecondFactor && !props.actor.secondFactor) throw new AppError('conflict', 'set up your own second factor before requiring one of everybody');
  await props.tenantDb.read((db) => db.query('UPDATE app.account_settings SET require_second_factor = $1, updated_at = clock_timestamp()', [props.requireSecondFactor]));
  await recordAccountEvent(props.services, props.caller, { action: 'tenant.settings.changed', actor: userActor(props.actor), details: { requireSecondFactor: props.requireSecondFactor } });
  return { requireSecondFactor: props.requireSecondFactor };
}
