/**
 * The age identity a restore decrypts with, as keys and as identity-file text: PostgreSQL's
 * restore_command runs as another OS user and gets its own 0600 copy for the length of the
 * restore. Found as loadIdentities finds it: an explicit file, then TASKFLOW_BACKUP_IDENTITY, then
 * TASKFLOW_BACKUP_IDENTITY_FILE.
 */
import { loadIdentities, type AgeIdentity } from '../age-keys.ts';
import { bech32Encode } from '../bech32.ts';

export interface RestoreIdentity {
  text: string;
  identities: AgeIdentity[];
}

/** An identity in age-keygen's text form (`AGE-SECRET-KEY-1…`). */
function identityText(identity: AgeIdentity): string {
  const der = identity.privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    return bech32Encode('age-secret-key-', der.subarray(der.length - 32)).toUpperCase();
  } finally {
    der.fill(0);
  }
}

export function loadRestoreIdentity(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): RestoreIdentity {
  const identities = loadIdentities(options);
  return { identities, text: `${identities.map(identityText).join('\n')}\n` };
}
