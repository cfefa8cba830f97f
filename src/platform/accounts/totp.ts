/** TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s) through otpauth, with replay protection by time step. */
import { Secret, TOTP } from 'otpauth';

const PERIOD_SECONDS = 30;

/** A new random secret (20 bytes, as RFC 4226 recommends). */
export function newTotpSecret(): Buffer {
  return Buffer.from(new Secret({ size: 20 }).bytes);
}

function totpOf(secret: Buffer, label = 'TaskFlow', issuer = 'TaskFlow'): TOTP {
  return new TOTP({ issuer, label, secret: new Secret({ buffer: Uint8Array.from(secret).buffer }), period: PERIOD_SECONDS });
}

/** The otpauth:// URI an authenticator app scans, and the secret in base32 for typing in. */
export function totpEnrolment(secret: Buffer, account: string, issuer: string): { uri: string; secret: string } {
  const totp = totpOf(secret, account, issuer);
  return { uri: totp.toString(), secret: totp.secret.base32 };
}

/**
 * Checks a code, allowing one step of clock drift either way. Returns the time step it matched, or
 * null. A caller must refuse a step at or before the last one accepted, so no code works twice.
 */
export function matchTotp(secret: Buffer, code: string, now = Date.now()): number | null {
  const token = code.replace(/\s/g, '');
  if (!/^\d{6}$/.test(token)) return null;
  const delta = totpOf(secret).validate({ token, timestamp: now, window: 1 });
  if (delta === null) return null;
  return TOTP.counter({ period: PERIOD_SECONDS, timestamp: now }) + delta;
}

/** The current code (tests, and nothing else, need to produce one). */
export function currentTotp(secret: Buffer, now = Date.now()): string {
  return totpOf(secret).generate({ timestamp: now });
}
