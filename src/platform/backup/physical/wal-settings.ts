/**
 * What PostgreSQL's own processes read when they run `taskflow wal archive` (archive_command) and
 * `taskflow wal fetch` (restore_command). They run as the PostgreSQL OS user, without TaskFlow's
 * configuration or secrets, so TaskFlow writes them a settings file of their own, owned by that
 * user and readable by nobody else. Secrets never go on the command line: the catalog password and
 * the age identity are files named in the settings.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OsIdentity } from '../../postgres/tools.ts';
import type { RepositoryConfig } from '../config.ts';
import { BackupError } from '../errors.ts';
import { credentialsFileText, repositoryCredentials, SESSION_TOKEN_ENV } from '../s3-credentials.ts';

export const ARCHIVE_SETTINGS_FORMAT = 'taskflow-wal-archive/v1';
export const FETCH_SETTINGS_FORMAT = 'taskflow-wal-fetch/v1';

/**
 * What PostgreSQL runs: `taskflow wal archive|fetch` through its lean entry point, which loads only
 * those commands (PostgreSQL starts one process per WAL segment).
 */
export const WAL_ENTRY = fileURLToPath(new URL('../../../cli/wal-entry.ts', import.meta.url));

export interface ArchiveSettings {
  format: typeof ARCHIVE_SETTINGS_FORMAT;
  /** The primary repository: WAL goes there first; copies to secondaries follow later. */
  repository: RepositoryConfig;
  recipients: string[];
  compressionLevel: number;
  /** How the archiver records each file in the catalog (its port is read from postmaster.pid). */
  catalog: { host: string; database: string; user: string; passwordFile: string };
}

export interface FetchSettings {
  format: typeof FETCH_SETTINGS_FORMAT;
  systemIdentifier: string;
  repository: RepositoryConfig;
  /**
   * An age identity file, readable only by the PostgreSQL OS user, removed after the restore;
   * without it, TASKFLOW_BACKUP_IDENTITY or TASKFLOW_BACKUP_IDENTITY_FILE in the environment.
   */
  identityFile?: string;
}

/** Reads a settings file written by TaskFlow; a clear error when it is missing or not ours. */
export function readSettings<T extends { format: string }>(file: string, format: T['format']): T {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read the WAL settings file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || (value as { format?: unknown }).format !== format) {
    throw new Error(`${file} is not a ${format} settings file`);
  }
  return value as T;
}

/** Writes a file atomically with `mode`, owned by `owner` (the PostgreSQL OS user) when given. */
export function writeOwnedFile(path: string, content: string, owner: OsIdentity | null, mode = 0o600): void {
  // A temp file of this writer alone, created new ('wx'), so it has `mode` from the first byte (an
  // existing file would keep its own) and two installs at once cannot write into each other's.
  const temp = join(dirname(path), `.${path.slice(dirname(path).length + 1)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, content, { mode, flag: 'wx' });
    if (owner) chownSync(temp, owner.uid, owner.gid);
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** Makes a directory (0700 unless told) owned by `owner`. */
export function makeOwnedDir(path: string, owner: OsIdentity | null, mode = 0o700): void {
  mkdirSync(path, { recursive: true, mode });
  if (owner) chownSync(path, owner.uid, owner.gid);
}

/** The suffixes of the copies repositoryForOsUser writes (secrets, and the CA certificate beside them). */
const SECRET_COPY_SUFFIXES = ['.sftp_identity', '.known_hosts', '.s3_credentials', '.s3_ca.pem'];

/**
 * A repository's configuration as a process of the PostgreSQL OS user can use it, which has neither
 * TaskFlow's environment nor (necessarily) the right to read its files. An SFTP key must be readable
 * by that user and by nobody else, so a copy owned by it goes into `dir` (with the known_hosts file);
 * an S3 repository's credentials (from its credentialsFile or the AWS_* environment of this process)
 * are copied the same way into `dir/<name>.s3_credentials` and the copy is named as its
 * credentialsFile, so no secret is ever in a settings file or on a command line; its caFile (a
 * private CA of the endpoint) is copied beside it, since the archiver has no NODE_EXTRA_CA_CERTS
 * of TaskFlow's environment. A filesystem repository is used as configured.
 *
 * `unattended` (the archive, which signs for as long as it runs): temporary credentials with an
 * AWS session token are refused, because the copy would stop working when they expire.
 */
export function repositoryForOsUser(repository: RepositoryConfig, dir: string, owner: OsIdentity | null, options: { unattended?: boolean; env?: NodeJS.ProcessEnv } = {}): RepositoryConfig {
  if (repository.kind === 's3') {
    const credentials = repositoryCredentials(repository, options.env);
    if (options.unattended && credentials.sessionToken !== undefined) {
      throw new BackupError(
        'repository-denied',
        `repository ${repository.name}: its credentials are temporary (they have a session token${repository.credentialsFile ? '' : ` from ${SESSION_TOKEN_ENV}`}); ` +
          'the WAL archive signs with a copy of them for as long as it runs and would fail once they expire: give the repository long-lived access keys',
      );
    }
    const credentialsFile = join(dir, `${repository.name}.s3_credentials`);
    writeOwnedFile(credentialsFile, credentialsFileText(credentials, repository.name), owner);
    if (!repository.caFile) return { ...repository, credentialsFile };
    const caFile = join(dir, `${repository.name}.s3_ca.pem`);
    writeOwnedFile(caFile, readFileSync(repository.caFile, 'utf8'), owner);
    return { ...repository, credentialsFile, caFile };
  }
  if (repository.kind !== 'sftp' || !repository.identityFile || !repository.knownHostsFile) return repository;
  const identityFile = join(dir, `${repository.name}.sftp_identity`);
  const knownHostsFile = join(dir, `${repository.name}.known_hosts`);
  writeOwnedFile(identityFile, readFileSync(repository.identityFile, 'utf8'), owner);
  writeOwnedFile(knownHostsFile, readFileSync(repository.knownHostsFile, 'utf8'), owner);
  return { ...repository, identityFile, knownHostsFile };
}

/**
 * Removes the secret copies in `dir` that `repository` (as returned by repositoryForOsUser) does not
 * use, so the PostgreSQL OS user keeps no credentials of a repository that is no longer the primary.
 */
export function removeUnusedSecretCopies(dir: string, repository: RepositoryConfig): void {
  const used = new Set([repository.identityFile, repository.knownHostsFile, repository.credentialsFile, repository.caFile].filter((f) => f !== undefined));
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (SECRET_COPY_SUFFIXES.some((suffix) => name.endsWith(suffix)) && !used.has(path)) rmSync(path, { force: true });
  }
}

/** One shell word, single-quoted; `%` doubled, because PostgreSQL expands %p/%f/%% in these commands first. */
function commandWord(word: string): string {
  return `'${word.replaceAll("'", `'\\''`).replaceAll('%', '%%')}'`;
}

/**
 * The archive_command or restore_command that runs `taskflow wal <verb> --settings <file> <args>`
 * (through WAL_ENTRY, with this Node.js); `args` are passed unquoted (PostgreSQL's %p and %f).
 */
export function walShellCommand(verb: 'archive' | 'fetch', settingsFile: string, args: string[]): string {
  return [commandWord(process.execPath), commandWord(WAL_ENTRY), verb, '--settings', commandWord(settingsFile), ...args].join(' ');
}

/**
 * restore_command during a restore: a file the restoring process prefetched into `spoolDir` is
 * moved into place by the shell alone; anything else is fetched by `taskflow wal fetch`.
 */
export function restoreShellCommand(spoolDir: string, settingsFile: string): string {
  return `f=${commandWord(spoolDir)}/'%f'; if [ -f "$f" ]; then exec mv -f "$f" '%p'; fi; exec ${walShellCommand('fetch', settingsFile, ["'%f'", "'%p'"])}`;
}
