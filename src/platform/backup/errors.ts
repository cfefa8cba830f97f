/** The errors of the backup building blocks: one class, a stable code per kind of failure. */

export const BACKUP_ERROR_CODES = [
  /** A key or identity that is not a valid age X25519 key. */
  'age-key',
  /** Input that is not an age v1 file we can read (bad header, armored, unsupported). */
  'age-format',
  /** The ciphertext does not authenticate: tampered, truncated, reordered or extended. */
  'age-integrity',
  /** The cipher TASKFLOW_AGE_CIPHER asks for is not available (age-cipher.ts). */
  'age-cipher',
  /** None of the identities given can open the file. */
  'age-no-identity',
  /** An object name that could escape the repository or collide with internal files. */
  'object-name',
  'object-not-found',
  /** Stored bytes whose SHA-256 or size differ from the manifest's. */
  'checksum-mismatch',
  'manifest-invalid',
  /** The repository cannot be reached (host down, connection refused, timeout, missing root). */
  'repository-unreachable',
  /** Authentication or host-key verification failed, or the repository refuses access. */
  'repository-denied',
  'repository-full',
  /** Any other failure of the repository. */
  'repository-failed',
] as const;

export type BackupErrorCode = (typeof BACKUP_ERROR_CODES)[number];

export class BackupError extends Error {
  override name = 'BackupError';
  readonly code: BackupErrorCode;
  constructor(code: BackupErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** Whether `err` is a BackupError, optionally of one code. */
export function isBackupError(err: unknown, code?: BackupErrorCode): err is BackupError {
  return err instanceof BackupError && (code === undefined || err.code === code);
}
