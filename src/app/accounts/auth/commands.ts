/**
 * Signing in and out, the second factor, re-authentication, password reset and accepting an
 * invitation. Answers never tell whether an address has an account: unknown addresses cost the same
 * argon2 verification as known ones, and reset requests are processed after the reply.
 */
import { AppError } from '../../../errors.ts';
import { normaliseEmail, localPart } from '../../../platform/accounts/email.ts';
import { burnVerification, checkPasswordPolicy, describePasswordProblem, hashPassword, needsRehash, verifyPassword } from '../../../platform/accounts/passwords.ts';
import { hashSecretToken, newSecretToken, SECRET_TOKEN } from '../../../platform/accounts/secrets.ts';
import type { TenantDb, Db } from '../../tenant-db.ts';
import { recordAccountEvent, userActor } from '../audit.ts';
import type { SessionInfo, SessionUser } from '../principal.ts';
import { consumeSecondFactor } from '../second-factor.ts';
import type { AccountServices, Caller } from '../services.ts';
import { createSession, endSession, endUserSessions, rotateSession } from '../sessions.ts';
import { requireSecondFactorSetting, userByEmail, userById, type UserRecord } from '../users/store.ts';

export interface NewSession {
  token: string;
  id: string;
  expiresAt: Date;
}

const INVALID = () => new AppError('invalid-credentials');

/** Refuses a new password that breaks the policy, with the reason. */
export function assertAcceptablePassword(password: string, context: { email: string; caller: Caller }): void {
  const problem = checkPasswordPolicy(password, [localPart(context.email), context.caller.tenantSlug, context.caller.tenantName]);
  if (problem) throw new AppError('password-rejected', describePasswordProblem(problem), { extra: { reason: problem } });
}

async function throttled(services: AccountServices, caller: Caller, email: string): Promise<void> {
  const verdict = await services.throttles.checkLogin(caller.tenantId, email, caller.ip ?? 'local');
  if (verdict.allowed) return;
  await recordAccountEvent(services, caller, { action: 'auth.throttled', outcome: 'failure', actor: { type: 'anonymous', label: email }, details: { retryAfterSeconds: verdict.retryAfterSeconds } });
  throw new AppError('rate-limited', 'too many failed attempts; try again later', { headers: { 'Retry-After': String(verdict.retryAfterSeconds) } });
}

/**
 * Checks e-mail and password. Returns a session: 'active' when done, 'mfa' when the second factor
 * is still owed.
 */
export async function signIn(props: { tenantDb: TenantDb; services: AccountServices; caller: Caller; email: string; password: string }): Promise<{ session: NewSession; stage: 'mfa' | 'active'; user: SessionUser; mustEnrolSecondFactor: boolean }> {
  const { services, caller } = props;
  const normalised = normaliseEmail(props.email);
  const email = normalised.ok ? normalised.email : props.email.trim().toLowerCase().slice(0, 254);
  await throttled(services, caller, email);
  const user = normalised.ok ? await props.tenantDb.read((db) => userByEmail(db, email)) : null;
  const ok = user !== null && user.status === 'active' ? await verifyPassword(user.passwordHash, props.password) : (await burnVerification(props.password, services.argon2), false);
  if (!ok || !user) {
    await services.throttles.loginFailed(caller.tenantId, email, caller.ip ?? 'local');
    await recordAccountEvent(services, caller, {
      action: 'auth.login',
      outcome: 'failure',
      actor: user ? userActor(user) : { type: 'anonymous', label: email },
      details: { reason: !user ? 'unknown-account' : user.status !== 'active' ? 'deactivated' : 'wrong-password' },
    });
    throw INVALID();
  }
  await services.throttles.loginSucceeded(caller.tenantId, email);
  const stage = user.totpEnabledAt ? 'mfa' : 'active';
  const { session, requireSecondFactor } = await props.tenantDb.transaction(async (db) => {
    if (needsRehash(user.passwordHash, services.argon2)) {
      await db.query('UPDATE app.users SET password_hash = $2 WHERE id = $1', [user.id, await hashPassword(props.password, services.argon2)]);
    }
    return {
      session: await createSession({ db, userId: user.id, stage, ip: caller.ip, userAgent: caller.userAgent, timeouts: services.settings }),
      requireSecondFactor: await requireSecondFactorSetting(db),
    };
  });
  await recordAccountEvent(services, caller, { action: 'auth.login', actor: userActor(user), details: { stage } });
  const secondFactor = user.totpEnabledAt !== null;
  return {
    session,
    stage,
    user: { id: user.id, email: user.email, displayName: user.displayName, role: user.role, secondFactor },
    mustEnrolSecondFactor: requireSecondFactor && !secondFactor,
  };
}

/** The user behind a session that is proving itself again (second factor, re-authentication), once the throttle allows a try. */
async function signedInUser(props: { tenantDb: TenantDb; services: AccountServices; caller: Caller; userId: string }): Promise<UserRecord> {
  const user = await props.tenantDb.read((db) => userById(db, props.userId));
  if (!user) throw new AppError('unauthenticated');
  await throttled(props.services, props.caller, user.email);
  return user;
}

/** Completes a sign-in with a TOTP or recovery code; the pending session is replaced by a new one. */
export async function completeSecondFactor(props: {
  tenantDb: TenantDb;
  services: AccountServices;
  caller: Caller;
  userId: string;
  session: SessionInfo;
  code?: string | undefined;
  recoveryCode?: string | undefined;
}): Promise<NewSession> {
  const { services, caller } = props;
  const user = await signedInUser(props);
  const result = await props.tenantDb.transaction(async (db) => {
    const locked = await userById(db, props.userId, true);
    if (!locked) return null;
    const how = await consumeSecondFactor(db, services.totpKey, locked, props);
    if (!how) return null;
    const session = await rotateSession({ db, sessionId: props.session.id, userId: user.id, stage: 'active', ip: caller.ip, userAgent: caller.userAgent, timeouts: services.settings });
    return { how, session };
  });
  if (!result) {
    await services.throttles.loginFailed(caller.tenantId, user.email, caller.ip ?? 'local');
    await recordAccountEvent(services, caller, { action: 'auth.login.second-factor', outcome: 'failure', actor: userActor(user) });
    throw new AppError('invalid-second-factor');
  }
  await services.throttles.loginSucceeded(caller.tenantId, user.email);
  await recordAccountEvent(services, caller, { action: 'auth.login.second-factor', actor: userActor(user), details: { method: result.how } });
  if (result.how === 'recovery-code') await recordAccountEvent(services, caller, { action: 'account.recovery-code.used', actor: userActor(user) });
  return result.session;
}

export async function signOut(props: { tenantDb: TenantDb; services: AccountServices; caller: Caller; user: { id: string; email: string }; sessionId: string }): Promise<void> {
  await props.tenantDb.read((db) => endSession(db, { sessionId: props.sessionId, userId: props.user.id, reason: 'signed-out' }));
  await recordAccountEvent(props.services, props.caller, { action: 'auth.logout', actor: userActor(props.user) });
}

/** Re-enters the password (and second factor, if set up) before a sensitive change; gives a fresh session. */
export async function reauthenticate(props: {
  tenantDb: TenantDb;
  services: AccountServices;
  caller: Caller;
  userId: string;
  sessionId: string;
  password: string;
  code?: string | undefined;
  recoveryCode?: string | undefined;
}): Promise<NewSession> {
  const { services, caller } = props;
  const user = await signedInUser(props);
  const passwordOk = await verifyPassword(user.passwordHash, props.password);
  const result = passwordOk
    ? await props.tenantDb.transaction(async (db) => {
        const locked = await userById(db, user.id, true);
        if (!locked) return null;
        if (locked.totpEnabledAt && !(await consumeSecondFactor(db, services.totpKey, locked, props))) return null;
        return rotateSession({ db, sessionId: props.sessionId, userId: user.id, stage: 'active', ip: caller.ip, userAgent: caller.userAgent, timeouts: services.settings });
      })
    : null;
  if (!result) {
    await services.throttles.loginFailed(caller.tenantId, user.email, caller.ip ?? 'local');
    await recordAccountEvent(services, caller, { action: 'auth.reauthenticate', outcome: 'failure', actor: userActor(user) });
    throw passwordOk ? new AppError('invalid-second-factor') : INVALID();
  }
  await services.throttles.loginSucceeded(caller.tenantId, user.email);
  await recordAccountEvent(services, caller, { action: 'auth.reauthenticate', actor: userActor(user) });
  return result;
}

/**
 * Handles a reset request after the reply was sent: rate limits, then, only for an active account,
 * a new token (older ones superseded) and a mail with the link. The caller always answered 202.
 */
export async function requestPasswordReset(props: { tenantDb: TenantDb; services: AccountServices; caller: Caller; email: string }): Promise<void> {
  const { services, caller } = props;
  const normalised = normaliseEmail(props.email);
  if (!normalised.ok) return;
  const email = normalised.email;
  const verdict = await services.throttles.takeResetRequest(caller.tenantId, email, caller.ip ?? 'local');
  if (verdict !== 'ok') {
    await recordAccountEvent(services, caller, { action: 'auth.password-reset.requested', outcome: 'failure', actor: { type: 'anonymous', label: email }, details: { reason: verdict } });
    return;
  }
  const { token, hash } = newSecretToken();
  const user = await props.tenantDb.transaction(async (db) => {
    const found = await userByEmail(db, email);
    if (!found || found.status !== 'active') return null;
    await db.query('UPDATE app.password_resets SET superseded_at = clock_timestamp() WHERE user_id = $1 AND used_at IS NULL AND superseded_at IS NULL', [found.id]);
    await db.query(
      `INSERT INTO app.password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, clock_timestamp() + make_interval(mins => $3))`,
      [hash, found.id, services.settings.resetTokenMinutes],
    );
    return found;
  });
  await recordAccountEvent(services, caller, {
    action: 'auth.password-reset.requested',
    outcome: user ? 'success' : 'failure',
    actor: user ? userActor(user) : { type: 'anonymous', label: email },
    ...(user ? {} : { details: { reason: 'unknown-account' } }),
  });
  if (!user) return;
  await services.sendMail({
    to: user.email,
    kind: 'password-reset',
    tenantId: caller.tenantId,
    subject: `Reset your ${caller.tenantName} password`,
    text: [
      `Someone (hopefully you) asked to reset the password of ${user.email} at ${caller.origin}.`,
      '',
      `To choose a new password, open this link within ${services.settings.resetTokenMinutes} minutes:`,
      `${caller.origin}/reset-password#token=${token}`,
      '',
      'If you did not ask for this, ignore this message; your password stays as it is.',
    ].join('\n'),
  });
}

/** Valid (unused, unexpired, not superseded) reset token → its user id, locking the token row. */
async function claimResetToken(db: Db, token: string): Promise<{ id: string; userId: string } | null> {
  if (!SECRET_TOKEN.test(token)) return null;
  const res = await db.query<{ id: string; user_id: string }>(
    `SELECT r.id, r.user_id FROM app.password_resets r JOIN app.users u ON u.id = r.user_id
      WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.superseded_at IS NULL AND r.expires_at > clock_timestamp() AND u.status = 'active'
      FOR UPDATE OF r`,
    [hashSecretToken(token)],
  );
  const row = res.rows[0];
  return row ? { id: row.id, userId: row.user_id } : null;
}

/** Sets a new password from a reset link; ends every session of the user and tells them by mail. */
export async function completePasswordReset(props: { tenantDb: TenantDb; services: AccountServices; caller: Caller; token: string; password: string }): Promise<void> {
  const { services, caller } = props;
  const user = await props.tenantDb.transaction(async (db) => {
    const claim = await claimResetToken(db, props.token);
    if (!claim) return null;
    const found = await userById(db, claim.userId, true);
    if (!found) return null;
    assertAcceptablePassword(props.password, { email: found.email, caller });
    const hash = await hashPassword(props.password, services.argon2);
    await db.query('UPDATE app.users SET password_hash = $2, password_changed_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1', [found.id, hash]);
    await db.query('UPDATE app.password_resets SET used_at = clock_timestamp() WHERE id = $1', [claim.id]);
    await endUserSessions(db, { userId: found.id, reason: 'password-reset' });
    return found;
  });
  if (!user) {
    await recordAccountEvent(services, caller, { action: 'auth.password-reset.completed', outcome: 'failure', actor: { type: 'anonymous' }, details: { reason: 'invalid-token' } });
    throw new AppError('token-invalid', 'this reset link is invalid, used or expired; ask for a new one');
  }
  await services.throttles.loginSucceeded(caller.tenantId, user.email);
  await recordAccountEvent(services, caller, { action: 'auth.password-reset.completed', actor: userActor(user) });
  await notifyPasswordChanged(services, caller, user);
}

export async function notifyPasswordChanged(services: AccountServices, caller: Caller, user: Pick<UserRecord, 'email'>): Promise<void> {
  await services.sendMail({
    to: user.email,
    kind: 'password-changed',
    tenantId: caller.tenantId,
    subject: `Your ${caller.tenantName} password was changed`,
    text: [
      `The password of ${user.email} at ${caller.origin} was just changed, and every session was signed out.`,
      '',
      `If this was not you, reset your password at ${caller.origin}/forgot-password and tell your administrator.`,
    ].join('\n'),
  });
}

/** Accepts an invitation (or the first owner's setup link): creates the user and signs them in. */
export async function acceptInvitation(props: {
  tenantDb: TenantDb;
  services: AccountServices;
  caller: Caller;
  token: string;
  displayName: string;
  password: string;
}): Promise<{ session: NewSession; userId: string }> {
  const { services, caller } = props;
  const outcome = await props.tenantDb.transaction(async (db) => {
    if (!SECRET_TOKEN.test(props.token)) return null;
    const res = await db.query<{ id: string; email: string; role: string; invited_by: string | null }>(
      `SELECT id, email, role, invited_by FROM app.invitations
        WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > clock_timestamp() FOR UPDATE`,
      [hashSecretToken(props.token)],
    );
    const invitation = res.rows[0];
    if (!invitation) return null;
    if (await userByEmail(db, invitation.email)) return null;
    assertAcceptablePassword(props.password, { email: invitation.email, caller });
    const hash = await hashPassword(props.password, services.argon2);
    const created = await db.query<{ id: string }>(
      'INSERT INTO app.users (email, display_name, role, password_hash) VALUES ($1, $2, $3, $4) RETURNING id',
      [invitation.email, props.displayName.trim(), invitation.role, hash],
    );
    const userId = created.rows[0]?.id;
    if (!userId) throw new Error('user insert returned nothing');
    await db.query('UPDATE app.invitations SET accepted_at = clock_timestamp(), accepted_user_id = $2 WHERE id = $1', [invitation.id, userId]);
    const session = await createSession({ db, userId, stage: 'active', ip: caller.ip, userAgent: caller.userAgent, timeouts: services.settings });
    return { session, userId, email: invitation.email, role: invitation.role, invitationId: invitation.id };
  });
  if (!outcome) throw new AppError('token-invalid', 'this invitation is invalid, used, revoked or expired; ask for a new one');
  await recordAccountEvent(services, caller, {
    action: 'user.invitation.accepted',
    actor: { type: 'user', id: outcome.userId, label: outcome.email },
    subject: { type: 'invitation', id: outcome.invitationId },
    details: { role: outcome.role },
  });
  return { session: outcome.session, userId: outcome.userId };
}
