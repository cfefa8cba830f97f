/**
 * The age v1 header (c2sp.org/age): version line, one X25519 stanza per recipient wrapping the
 * file key, and an HMAC over it all. Parsing is strict: canonical base64, exact lengths, a
 * bounded size, and the MAC checked before any payload is read.
 */
import { createCipheriv, createDecipheriv, createHmac, diffieHellman, generateKeyPairSync, hkdfSync, timingSafeEqual } from 'node:crypto';
import { publicKeyFromRaw, rawPublicKey, type AgeIdentity, type AgeRecipient } from './age-keys.ts';
import { BackupError } from './errors.ts';

export const VERSION_LINE = 'age-encryption.org/v1';
const X25519_INFO = 'age-encryption.org/v1/X25519';
const FILE_KEY_BYTES = 16;
const ZERO_NONCE = Buffer.alloc(12);
/** Our headers are a few hundred bytes; anything this large is not a file we wrote or can trust. */
export const MAX_HEADER_BYTES = 64 * 1024;
const COLUMNS = 64;

export interface Stanza {
  args: string[];
  body: Buffer;
}

export interface ParsedHeader {
  stanzas: Stanza[];
  /** The header bytes up to and including `---`, which the MAC covers. */
  macInput: Buffer;
  mac: Buffer;
}

/** HKDF-SHA-256 with a 32-byte output, as everywhere in age. */
export function hkdf(ikm: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
}

/** Unpadded standard base64. */
function encodeBase64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

/** Decodes unpadded base64, refusing padding and non-canonical encodings as the spec requires. */
function decodeBase64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*$/.test(text)) throw new BackupError('age-format', `age header: ${what} is not unpadded base64`);
  const bytes = Buffer.from(text, 'base64');
  if (encodeBase64(bytes) !== text) throw new BackupError('age-format', `age header: ${what} is not canonical base64`);
  return bytes;
}

function sealFileKey(wrapKey: Buffer, fileKey: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', wrapKey, ZERO_NONCE, { authTagLength: 16 });
  return Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()]);
}

function openFileKey(wrapKey: Buffer, body: Buffer): Buffer | null {
  const decipher = createDecipheriv('chacha20-poly1305', wrapKey, ZERO_NONCE, { authTagLength: 16 });
  decipher.setAuthTag(body.subarray(FILE_KEY_BYTES));
  try {
    return Buffer.concat([decipher.update(body.subarray(0, FILE_KEY_BYTES)), decipher.final()]);
  } catch {
    return null;
  }
}

function sharedSecret(privateKey: AgeIdentity['privateKey'], publicKey: AgeRecipient['publicKey']): Buffer {
  const secret = diffieHellman({ privateKey, publicKey });
  // A low-order point gives an all-zero secret; the spec requires aborting rather than using it.
  if (secret.every((b) => b === 0)) throw new BackupError('age-format', 'age header: X25519 share is a low-order point');
  return secret;
}

/** Wraps the file key for one X25519 recipient, with a fresh ephemeral key. */
export function wrapForRecipient(fileKey: Buffer, recipient: AgeRecipient): Stanza {
  const ephemeral = generateKeyPairSync('x25519');
  const share = rawPublicKey(ephemeral.publicKey);
  const shared = sharedSecret(ephemeral.privateKey, recipient.publicKey);
  const wrapKey = hkdf(shared, Buffer.concat([share, recipient.raw]), X25519_INFO);
  return { args: ['X25519', encodeBase64(share)], body: sealFileKey(wrapKey, fileKey) };
}

function encodeStanza(stanza: Stanza): string {
  const body = encodeBase64(stanza.body);
  const lines: string[] = [];
  for (let i = 0; i <= body.length; i += COLUMNS) lines.push(body.slice(i, i + COLUMNS));
  // A body of a whole number of full lines ends with an empty line, so the end stays unambiguous.
  return `-> ${stanza.args.join(' ')}\n${lines.join('\n')}\n`;
}

/** The complete header for a file key and its recipients, MAC line included. */
export function encodeHeader(fileKey: Buffer, recipients: AgeRecipient[]): Buffer {
  const stanzas = recipients.map((r) => encodeStanza(wrapForRecipient(fileKey, r))).join('');
  const macInput = Buffer.from(`${VERSION_LINE}\n${stanzas}---`, 'latin1');
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(macInput).digest();
  return Buffer.concat([macInput, Buffer.from(` ${encodeBase64(mac)}\n`, 'latin1')]);
}

/**
 * Where the header in `data` ends (the index just past the MAC line's newline), or -1 when more
 * bytes are needed. Throws once the header would be larger than MAX_HEADER_BYTES.
 */
export function headerEnd(data: Buffer): number {
  const mark = data.indexOf('\n--- ', 0, 'latin1');
  const end = mark < 0 ? -1 : data.indexOf('\n', mark + 1);
  if (end >= 0 && end < MAX_HEADER_BYTES) return end + 1;
  if ((end < 0 ? data.length : end) >= MAX_HEADER_BYTES) {
    throw new BackupError('age-format', `not an age file we can read: no header end within ${MAX_HEADER_BYTES} bytes`);
  }
  return -1;
}

const ARMOR_START = '-----BEGIN AGE ENCRYPTED FILE-----';
const VERSION_PREFIX = 'age-encryption.org/';

/** Refuses input whose first bytes already show it is no binary age file, before buffering more. */
export function checkHeaderStart(data: Buffer): void {
  const start = data.subarray(0, ARMOR_START.length).toString('latin1');
  if (start.length < 5 && ARMOR_START.startsWith(start)) return; // too short to tell yet
  if (start.startsWith('-----')) {
    throw new BackupError('age-format', 'armored (PEM) age files are not supported; use the binary format (age without -a)');
  }
  const prefix = start.slice(0, VERSION_PREFIX.length);
  if (!VERSION_PREFIX.startsWith(prefix)) throw new BackupError('age-format', 'not an age-encrypted file (no age-encryption.org/v1 line)');
}

/** Parses a complete header (as delimited by headerEnd). */
export function parseHeader(header: Buffer): ParsedHeader {
  checkHeaderStart(header);
  const text = header.toString('latin1');
  const lines = text.split('\n');
  lines.pop(); // the empty string after the final newline
  if (lines[0] !== VERSION_LINE) {
    throw new BackupError('age-format', `unsupported age version '${(lines[0] ?? '').slice(0, 60)}'`);
  }
  const stanzas: Stanza[] = [];
  let i = 1;
  while (i < lines.length && (lines[i] as string).startsWith('-> ')) {
    const args = (lines[i] as string).slice(3).split(' ');
    if (args.some((a) => a === '' || !/^[\x21-\x7e]+$/.test(a))) throw new BackupError('age-format', 'age header: malformed stanza arguments');
    i++;
    const bodyLines: string[] = [];
    for (;;) {
      const line = lines[i];
      if (line === undefined) throw new BackupError('age-format', 'age header: stanza body does not end');
      if (line.length > COLUMNS) throw new BackupError('age-format', 'age header: stanza line longer than 64 columns');
      bodyLines.push(line);
      i++;
      if (line.length < COLUMNS) break;
    }
    stanzas.push({ args, body: decodeBase64(bodyLines.join(''), 'stanza body') });
  }
  if (stanzas.length === 0) throw new BackupError('age-format', 'age header: no recipient stanza');
  const macLine = lines[i];
  if (i !== lines.length - 1 || macLine === undefined || !macLine.startsWith('--- ')) {
    throw new BackupError('age-format', 'age header: malformed MAC line');
  }
  const mac = decodeBase64(macLine.slice(4), 'header MAC');
  if (mac.length !== 32) throw new BackupError('age-format', 'age header: MAC has the wrong length');
  const macInputLength = header.length - macLine.length - 1 + 3;
  return { stanzas, macInput: header.subarray(0, macInputLength), mac };
}

/** Finds the file key with one of the identities; throws age-no-identity when none fits. */
export function unwrapFileKey(header: ParsedHeader, identities: AgeIdentity[]): Buffer {
  let x25519Stanzas = 0;
  for (const stanza of header.stanzas) {
    if (stanza.args[0] !== 'X25519') continue;
    x25519Stanzas++;
    if (stanza.args.length !== 2) throw new BackupError('age-format', 'age header: X25519 stanza must have exactly two arguments');
    const share = decodeBase64(stanza.args[1] as string, 'X25519 share');
    if (share.length !== 32) throw new BackupError('age-format', 'age header: X25519 share is not 32 bytes');
    if (stanza.body.length !== FILE_KEY_BYTES + 16) throw new BackupError('age-format', 'age header: X25519 stanza body is not 32 bytes');
    for (const identity of identities) {
      const shared = sharedSecret(identity.privateKey, publicKeyFromRaw(share));
      const wrapKey = hkdf(shared, Buffer.concat([share, identity.recipient.raw]), X25519_INFO);
      const fileKey = openFileKey(wrapKey, stanza.body);
      if (fileKey) return fileKey;
    }
  }
  const tried = identities.map((id) => id.recipient.text).join(', ');
  throw new BackupError(
    'age-no-identity',
    x25519Stanzas === 0
      ? 'the file has no X25519 recipient stanza (encrypted with a passphrase or another recipient type?)'
      : `none of the identities given (for ${tried}) can decrypt this file; it was encrypted to ${x25519Stanzas} other X25519 recipient(s)`,
  );
}

/** Checks the header MAC with the file key; a mismatch means the header was altered. */
export function verifyHeaderMac(header: ParsedHeader, fileKey: Buffer): void {
  const expected = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(header.macInput).digest();
  if (!timingSafeEqual(expected, header.mac)) throw new BackupError('age-integrity', 'age header MAC does not match: the header was altered');
}
