/**
 * `taskflow wal fetch %f %p`: PostgreSQL's restore_command during a restore. Reads one archived WAL
 * file from the repository (checking its SHA-256, the age authentication and zstd's checksum) into
 * a temporary file beside %p and renames it into place, so PostgreSQL never reads a partial file.
 *
 * PostgreSQL takes a non-zero exit as "this file is not in the archive" and, at the end of the
 * archive, ends recovery there. So only a file that is truly absent may say so; any other failure
 * (repository unreachable, corrupted object, wrong key) exits with FETCH_BROKEN_EXIT_CODE, which
 * PostgreSQL treats like a crashed command and aborts the recovery instead of ending it early.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { loadIdentities } from '../age-keys.ts';
import { openRepository } from '../config.ts';
import { isBackupError } from '../errors.ts';
import { readManifest } from '../manifest.ts';
import { readBackupObject } from '../pipeline.ts';
import { parseWalFileName, walObjectName } from './wal-names.ts';
import type { FetchSettings } from './wal-settings.ts';

/** Above 125: PostgreSQL's "command not found / killed" class, which aborts recovery. */
export const FETCH_BROKEN_EXIT_CODE = 126;

export type FetchOutcome = 'fetched' | 'not-found';

/** Fetches `file` to `destination` (relative to `cwd`, PostgreSQL's data directory). */
export async function fetchWalFile(props: { settings: FetchSettings; file: string; destination: string; cwd: string }): Promise<FetchOutcome> {
  const { settings } = props;
  if (!parseWalFileName(props.file)) return 'not-found';
  const name = walObjectName(settings.systemIdentifier, props.file);
  const repository = openRepository(settings.repository);
  try {
    try {
      await readManifest(repository, name);
    } catch (err) {
      if (isBackupError(err, 'object-not-found')) return 'not-found';
      throw err;
    }
    const destination = resolve(props.cwd, props.destination);
    const temp = join(dirname(destination), `.${basename(destination)}.taskflow-${randomBytes(4).toString('hex')}`);
    try {
      await readBackupObject({ repository, name, identities: loadIdentities(settings.identityFile ? { file: settings.identityFile } : {}), destination: createWriteStream(temp, { mode: 0o600 }) });
      await rename(temp, destination);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return 'fetched';
  } finally {
    await repository.close().catch(() => undefined);
  }
}
