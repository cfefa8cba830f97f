/**
 * Account secrets: random bearer tokens (sessions, resets, invitations, recovery codes) kept only as
 * SHA-256 hashes, and TOTP secrets encrypted at rest with a key derived from the master key.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';

/** A new random token of 32 bytes (256 bits), URL-safe, and the hash that is stored. */
export function newSecretToken(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashSecretToken(token) };
}

export function hashSecretToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Shape of a token made by newSecretToken; anything else is refused before a lookup. */
export const SECRET_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** A purpose-bound key from the master key (HKDF would do as well; HMAC keeps it one line). */
export function deriveKey(masterKey: string, purpose: string): Buffer {
  return createHmac('sha256', masterKey).update(`taskflow:${purpose}`).digest();
}

/** AES-256-GCM with a random nonce: nonce ‖ tag ‖ ciphertext; `context` binds it to one row. */
export function sealSecret(key: Buffer, plaintext: Buffer, context: string): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, cipher.getAuthTag(), body]);
}

export function openSecret(key: Buffer, sealed: Buffer, context: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
}

/** Ten recovery codes of 10 base32 characters each (50 bits), grouped for reading: `abcde-fghij`. */
export function newRecoveryCodes(count = 10): string[] {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  return Array.from({ length: count }, () => {
    const bytes = randomBytes(10);
    const chars = [...bytes].map((b) => alphabet[b % alphabet.length] ?? 'a').join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

/** Recovery codes compare without spaces, dashes or case. */
export function hashRecoveryCode(code: string): Buffer {
  return createHash('sha256').update(code.toLowerCase().replace(/[\s-]/g, ''), 'utf8').digest();
}
