/** Tenant credentials: derived database passwords, SCRAM verifiers and API tokens. Nothing secret is stored. */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The tenant login role's password: HMAC of the server's master key over the tenant id and a version,
 * so the server can always recompute it and no table or file holds it. Bump the version to rotate.
 */
export function tenantDbPassword(masterKey: string, tenantId: string, credentialVersion: number): string {
  return createHmac('sha256', masterKey).update(`tenant-login:${tenantId}:${credentialVersion}`).digest('base64url');
}

/**
 * A SCRAM-SHA-256 verifier in PostgreSQL's format, so `CREATE ROLE … PASSWORD` carries no plaintext
 * (nothing readable lands in the server log or pg_stat_statements).
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export const API_TOKEN_PREFIX = 'tf_';

/** A new API token: 32 random bytes, shown once; only its hash is kept. */
export function newApiToken(): { token: string; hash: Buffer } {
  const token = API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashApiToken(token) };
}

export function hashApiToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Constant-time comparison of two hashes. */
export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
