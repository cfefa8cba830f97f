/** Checking a second factor: a TOTP code (each time step once) or a single-use recovery code. */
import { openSecret, hashRecoveryCode } from '../../platform/accounts/secrets.ts';
import { matchTotp } from '../../platform/accounts/totp.ts';
import type { Db } from '../tenant-db.ts';
import type { UserRecord } from './users/store.ts';

/** The AAD that binds a sealed TOTP secret to its user. */
export function totpContext(userId: string): string {
  return `totp:${userId}`;
}

/**
 * Consumes a second factor for `user` (locked by the caller's transaction); returns how it was
 * proven, or null if it was not.
 */
export async function consumeSecondFactor(
  db: Db,
  totpKey: Buffer,
  user: UserRecord,
  proof: { code?: string | undefined; recoveryCode?: string | undefined },
): Promise<'totp' | 'recovery-code' | null> {
  if (!user.totpSecret || !user.totpEnabledAt) return null;
  if (proof.code !== undefined) {
    const secret = openSecret(totpKey, user.totpSecret, totpContext(user.id));
    const step = matchTotp(secret, proof.code);
    if (step === null || (user.totpLastStep !== null && step <= user.totpLastStep)) return null;
    await db.query('UPDATE app.users SET totp_last_step = $2 WHERE id = $1', [user.id, step]);
    return 'totp';
  }
  if (proof.recoveryCode !== undefined) {
    const res = await db.query(
      'UPDATE app.recovery_codes SET used_at = clock_timestamp() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL',
      [user.id, hashRecoveryCode(proof.recoveryCode)],
    );
    return (res.rowCount ?? 0) > 0 ? 'recovery-code' : null;
  }
  return null;
}
