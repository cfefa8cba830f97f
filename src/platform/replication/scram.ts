/** SCRAM-SHA-256 verifiers in PostgreSQL's format: made by the tenant credentials module, checked here. */
import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';

export { scramVerifier } from '../tenants/credentials.ts';

/** Whether `verifier` (`SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`) was made from `password`. */
export function scramVerifierMatches(verifier: string, password: string): boolean {
  const match = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(verifier);
  if (!match?.[1] || !match[2] || !match[3]) return false;
  const salted = pbkdf2Sync(password.normalize('NFKC'), Buffer.from(match[2], 'base64'), Number(match[1]), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const expected = Buffer.from(match[3], 'base64');
  return expected.length === storedKey.length && timingSafeEqual(expected, storedKey);
}
