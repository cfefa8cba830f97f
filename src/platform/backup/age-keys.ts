/**
 * age X25519 keys: recipients (`age1…`, public, what the server holds) and identities
 * (`AGE-SECRET-KEY-1…`, secret, kept offline and given only to a restore), in the Bech32 text
 * forms of age-keygen, mapped onto Node's native X25519 key objects.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bech32Decode, bech32Encode } from './bech32.ts';
import { BackupError } from './errors.ts';

const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'age-secret-key-';
/** DER prefixes that wrap a raw 32-byte X25519 key as SPKI (public) and PKCS #8 (private). */
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The environment variable a restore reads the identity from (the key text, not a path). */
export const IDENTITY_ENV = 'TASKFLOW_BACKUP_IDENTITY';
/** The environment variable naming an identity file (as written by age-keygen). */
export const IDENTITY_FILE_ENV = 'TASKFLOW_BACKUP_IDENTITY_FILE';

/** A public key files are encrypted to. */
export interface AgeRecipient {
  /** The `age1…` text. */
  text: string;
  publicKey: KeyObject;
  /** The raw 32-byte point, as it goes into the stanza's HKDF salt. */
  raw: Buffer;
}

/** A secret key files are decrypted with. */
export interface AgeIdentity {
  privateKey: KeyObject;
  /** The matching recipient, for messages and fingerprints; never the secret. */
  recipient: AgeRecipient;
}

export function publicKeyFromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

function recipientFromRaw(raw: Buffer): AgeRecipient {
  return { text: bech32Encode(RECIPIENT_HRP, raw), publicKey: publicKeyFromRaw(raw), raw: Buffer.from(raw) };
}

/** Parses an `age1…` recipient; throws a BackupError (age-key) naming what is wrong. */
export function parseRecipient(text: string): AgeRecipient {
  const trimmed = text.trim();
  if (trimmed.toUpperCase().startsWith('AGE-SECRET-KEY-')) {
    throw new BackupError('age-key', 'an age identity (AGE-SECRET-KEY-…) was given where a recipient (age1…) belongs; the server holds only recipients');
  }
  let decoded: { hrp: string; bytes: Buffer };
  try {
    decoded = bech32Decode(trimmed);
  } catch (err) {
    throw new BackupError('age-key', `not an age recipient (${(err as Error).message}); expected age1… as printed by age-keygen`);
  }
  if (decoded.hrp !== RECIPIENT_HRP || trimmed !== trimmed.toLowerCase()) {
    throw new BackupError('age-key', `not an age X25519 recipient (prefix '${decoded.hrp}'); expected age1…`);
  }
  if (decoded.bytes.length !== 32) throw new BackupError('age-key', 'not an age X25519 recipient (wrong length)');
  return recipientFromRaw(decoded.bytes);
}

/** Parses one `AGE-SECRET-KEY-1…` line; the message never contains the key. */
export function parseIdentity(text: string): AgeIdentity {
  const trimmed = text.trim();
  let decoded: { hrp: string; bytes: Buffer };
  try {
    decoded = bech32Decode(trimmed);
  } catch (err) {
    throw new BackupError('age-key', `not an age identity (${(err as Error).message}); expected AGE-SECRET-KEY-1… as written by age-keygen`);
  }
  if (decoded.hrp !== IDENTITY_HRP || trimmed !== trimmed.toUpperCase() || decoded.bytes.length !== 32) {
    throw new BackupError('age-key', 'not an age X25519 identity; expected AGE-SECRET-KEY-1… as written by age-keygen');
  }
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, decoded.bytes]), format: 'der', type: 'pkcs8' });
  decoded.bytes.fill(0);
  return { privateKey, recipient: recipientFromRaw(rawPublicKey(createPublicKey(privateKey))) };
}

/**
 * Parses identity text in age's identity-file format: one key per line, `#` comments and blank
 * lines ignored. `origin` names where it came from, for messages.
 */
export function identitiesFromText(text: string, origin: string): AgeIdentity[] {
  const identities: AgeIdentity[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    try {
      identities.push(parseIdentity(trimmed));
    } catch (err) {
      throw new BackupError('age-key', `${origin}, line ${index + 1}: ${(err as Error).message}`);
    }
  }
  if (identities.length === 0) throw new BackupError('age-key', `${origin} holds no age identity (AGE-SECRET-KEY-1…)`);
  return identities;
}

/**
 * The identities a restore decrypts with: an explicit file wins, then TASKFLOW_BACKUP_IDENTITY
 * (the key itself), then TASKFLOW_BACKUP_IDENTITY_FILE.
 */
export function loadIdentities(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): AgeIdentity[] {
  const env = options.env ?? process.env;
  const file = options.file ?? (env[IDENTITY_ENV] ? undefined : env[IDENTITY_FILE_ENV]);
  if (file !== undefined && file !== '') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new BackupError('age-key', `cannot read the age identity file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return identitiesFromText(text, `identity file ${file}`);
  }
  const fromEnv = env[IDENTITY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return identitiesFromText(fromEnv, `environment variable ${IDENTITY_ENV}`);
  throw new BackupError('age-key', `no age identity given: pass an identity file, or set ${IDENTITY_ENV} (the key) or ${IDENTITY_FILE_ENV} (its file)`);
}

/** A new identity and its recipient, as age-keygen would print them. */
export function generateIdentity(): { identity: string; recipient: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const secret = pkcs8.subarray(pkcs8.length - 32);
  const identity = bech32Encode(IDENTITY_HRP, secret).toUpperCase();
  pkcs8.fill(0);
  return { identity, recipient: bech32Encode(RECIPIENT_HRP, rawPublicKey(publicKey)) };
}

/** A short, stable name for a recipient in manifests and logs: `sha256:` and 16 hex digits of its text. */
export function recipientFingerprint(recipient: string): string {
  return `sha256:${createHash('sha256').update(recipient.trim()).digest('hex').slice(0, 16)}`;
}
