/**
 * A user's own account: password, e-mail, second factor and recovery codes, sessions. Changing the
 * password, e-mail or second factor needs a recent re-authentication (POST /api/auth/reauthenticate).
 */
import { AppError } from '../../../errors.ts';
import { normaliseEmail } from '../../../platform/accounts/email.ts';
import { hashPassword } from '../../../platform/accounts/passwords.ts';
import { hashRecoveryCode, newRecoveryCodes, openSecret, sealSecret } from '../../../platform/accounts/secrets.ts';
import { matchTotp, newTotpSecret, totpEnrolment } from '../../../platform/accounts/totp.ts';
import type { TenantDb, Db } from '../../tenant-db.ts';
import { recordAccountEvent, userActor } from '../audit.ts';
import { assertAcceptablePassword, notifyPasswordChanged, type NewSession } from '../auth/commands.ts';
import type { SessionInfo, SessionUser } from '../principal.ts';
import { totpContext } from '../second-factor.ts';
import type { AccountServices, Caller } from '../services.ts';
import { endSession, endUserSessions, rotateSession } from '../sessions.ts';
import { requireSecondFactorSetting, userByEmail, userById, type UserRecord } from '../users/store.ts';

interface SelfProps {
  tenantDb: TenantDb;
  services: AccountServices;
  caller: Caller;
  user: SessionUser;
  session: SessionInfo;
}

/** Refuses a sensitive change unless the password was entered within the configured minutes. */
export function assertRecentlyAuthenticated(session: SessionInfo, minutes: number, now = Date.now()): void {
  if (now - session.reauthenticatedAt.getTime() > minutes * 60_000) {
    throw new AppError('reauthentication-required', `enter your password again (POST /api/auth/reauthenticate); it is needed within ${minutes} minutes of a change like this`);
  }
}

async function lockedSelf(db: Db, userId: string): Promise<UserRecord> {
  const user = await userById(db, userId, true);
  if (!user) throw new AppError('unauthenticated');
  return user;
}

export async function updateProfile(props: SelfProps & { displayName: string }): Promise<void> {
  await props.tenantDb.read((db) => db.query('UPDATE app.users SET display_name = $2, updated_at = clock_timestamp() WHERE id = $1', [props.user.id, props.displayName.trim()]));
}

/** A new password; other sessions end, this one gets a new token, and the user is told by mail. */
export async function changePassword(props: SelfProps & { newPassword: string }): Promise<NewSession> {
  const { services, caller } = props;
  assertRecentlyAuthenticated(props.session, services.settings.reauthMinutes);
  assertAcceptablePassword(props.newPassword, { email: props.user.email, caller });
  const hash = await hashPassword(props.newPassword, services.argon2);
  const session = await props.tenantDb.transaction(async (db) => {
    await lockedSelf(db, props.user.id);
    await db.query('UPDATE app.users SET password_hash = $2, password_changed_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1', [props.user.id, hash]);
    await endUserSessions(db, { userId: props.user.id, reason: 'password-changed', exceptSessionId: props.session.id });
    return rotateSession({ db, sessionId: props.session.id, userId: props.user.id, stage: 'active', ip: caller.ip, userAgent: caller.userAgent, timeouts: services.settings });
  });
  await recordAccountEvent(services, caller, { action: 'account.password.changed', actor: userActor(props.user) });
  await notifyPasswordChanged(services, caller, props.user);
  return session;
}

/** A new sign-in address; the old address is told. */
export async function changeEmail(props: SelfProps & { email: string }): Promise<void> {
  const { services, caller } = props;
  assertRecentlyAuthenticated(props.session, services.settings.reauthMinutes);
  const normalised = normaliseEmail(props.email);
  if (!normalised.ok) throw new AppError('validation-failed', normalised.reason, { extra: { errors: [{ in: 'body', pointer: '/email', message: normalised.reason }] } });
  const email = normalised.email;
  if (email === props.user.email) return;
  await props.tenantDb.transaction(async (db) => {
    await lockedSelf(db, props.user.id);
    if (await userByEmail(db, email)) throw new AppError('conflict', 'another user of this organisation has that address');
    await db.query('UPDATE app.users SET email = $2, updated_at = clock_timestamp() WHERE id = $1', [props.user.id, email]);
  });
  await recordAccountEvent(services, caller, { action: 'account.email.changed', actor: userActor(props.user), details: { from: props.user.email, to: email } });
  await services.sendMail({
    to: props.user.email,
    kind: 'email-changed',
    tenantId: caller.tenantId,
    subject: `Your ${caller.tenantName} sign-in address was changed`,
    text: `The sign-in address of your account at ${caller.origin} was changed from ${props.user.email} to ${email}.\n\nIf this was not you, tell your administrator at once.`,
  });
}

/** Starts second-factor enrolment: a new secret, shown once as an otpauth:// URI; not active until confirmed. */
export async function beginSecondFactor(props: SelfProps): Promise<{ uri: string; secret: string }> {
  const { services } = props;
  assertRecentlyAuthenticated(props.session, services.settings.reauthMinutes);
  const secret = newTotpSecret();
  await props.tenantDb.transaction(async (db) => {
    const user = await lockedSelf(db, props.user.id);
    if (user.totpEnabledAt) throw new AppError('conflict', 'a second factor is already set up; remove it first to set up another');
    await db.query('UPDATE app.users SET totp_secret = $2, totp_last_step = NULL WHERE id = $1', [user.id, sealSecret(services.totpKey, secret, totpContext(user.id))]);
  });
  return totpEnrolment(secret, props.user.email, `TaskFlow ${props.caller.tenantName}`);
}

async function replaceRecoveryCodes(db: Db, userId: string): Promise<string[]> {
  const codes = newRecoveryCodes();
  await db.query('DELETE FROM app.recovery_codes WHERE user_id = $1', [userId]);
  for (const code of codes) await db.query('INSERT INTO app.recovery_codes (user_id, code_hash) VALUES ($1, $2)', [userId, hashRecoveryCode(code)]);
  return codes;
}

/** Confirms enrolment with a first code; returns the recovery codes (shown once) and a new session. */
export async function confirmSecondFactor(props: SelfProps & { code: string }): Promise<{ recoveryCodes: string[]; session: NewSession }> {
  const { services, caller } = props;
  const outcome = await props.tenantDb.transaction(async (db) => {
    const user = await lockedSelf(db, props.user.id);
    if (user.totpEnabledAt) throw new AppError('conflict', 'the second factor is already set up');
    if (!user.totpSecret) throw new AppError('conflict', 'start with POST /api/account/second-factor/setup');
    const step = matchTotp(openSecret(services.totpKey, user.totpSecret, totpContext(user.id)), props.code);
    if (step === null) return null;
    await db.query('UPDATE app.users SET totp_enabled_at = clock_timestamp(), totp_last_step = $2, updated_at = clock_timestamp() WHERE id = $1', [user.id, step]);
    const recoveryCodes = await replaceRecoveryCodes(db, user.id);
    const session = await rotateSession({ db, sessionId: props.session.id, userId: user.id, stage: 'active', ip: caller.ip, userAgent: caller.userAgent, timeouts: services.settings });
    return { recoveryCodes, session };
  });
  if (!outcome) throw new AppError('invalid-second-factor', 'the code does not match; check the time on your device and try the next code');
  await recordAccountEvent(services, caller, { action: 'account.second-factor.enabled', actor: userActor(props.user) });
  await services.sendMail({
    to: props.user.email,
    kind: 'second-factor-changed',
    tenantId: caller.tenantId,
    subject: `A second factor was set up for your ${caller.tenantName} account`,
    text: `A second factor (authenticator app) now protects your account at ${caller.origin}.\n\nIf this was not you, tell your administrator at once.`,
  });
  return outcome;
}

/** Removes the second factor, unless the organisation requires one. */
export async function removeSecondFactor(props: SelfProps): Promise<void> {
  const { services, caller } = props;
  assertRecentlyAuthenticated(props.session, services.settings.reauthMinutes);
  await props.tenantDb.transaction(async (db) => {
    const user = await lockedSelf(db, props.user.id);
    if (!user.totpEnabledAt) throw new AppError('conflict', 'no second factor is set up');
    if (await requireSecondFactorSetting(db)) throw new AppError('forbidden', 'this organisation requires a second factor');
    await db.query('UPDATE app.users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = clock_timestamp() WHERE id = $1', [user.id]);
    await db.query('DELETE FROM app.recovery_codes WHERE user_id = $1', [user.id]);
  });
  await recordAccountEvent(services, caller, { action: 'account.second-factor.disabled', actor: userActor(props.user) });
  await services.sendMail({
    to: props.user.email,
    kind: 'second-factor-changed',
    tenantId: caller.tenantId,
    subject: `The second factor of your ${caller.tenantName} account was removed`,
    text: `Your account at ${caller.origin} no longer asks for a second factor.\n\nIf this was not you, tell your administrator at once.`,
  });
}

export async function regenerateRecoveryCodes(props: SelfProps): Promise<string[]> {
  const { services, caller } = props;
  assertRecentlyAuthenticated(props.session, services.settings.reauthMinutes);
  const codes = await props.tenantDb.transaction(async (db) => {
    const user = await lockedSelf(db, props.user.id);
    if (!user.totpEnabledAt) throw new AppError('conflict', 'set up a second factor first');
    return replaceRecoveryCodes(db, user.id);
  });
  await recordAccountEvent(services, caller, { action: 'account.recovery-codes.regenerated', actor: userActor(props.user) });
  return codes;
}

/** Ends one of the user's own sessions (not found when it is not theirs). */
export async function endOwnSession(props: SelfProps & { sessionId: string }): Promise<void> {
  const ended = await props.tenantDb.read((db) => endSession(db, { sessionId: props.sessionId, userId: props.user.id, reason: 'ended-by-user' }));
  if (!ended) throw new AppError('not-found', 'no such session');
  await recordAccountEvent(props.services, props.caller, { action: 'auth.session.ended', actor: userActor(props.user), subject: { type: 'session', id: props.sessionId } });
}

/** Ends every other session of the user. */
export async function endOtherSessions(props: SelfProps): Promise<number> {
  const count = await props.tenantDb.read((db) => endUserSessions(db, { userId: props.user.id, reason: 'ended-by-user', exceptSessionId: props.session.id }));
  await recordAccountEvent(props.services, props.caller, { action: 'user.sessions.ended', actor: userActor(props.user), subject: { type: 'user', id: props.user.id }, details: { count } });
  return count;
}
