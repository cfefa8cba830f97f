/**
 * `taskflow wal archive %p %f`: PostgreSQL's archive_command. Pushes one WAL file through the
 * pipeline (zstd → age → SHA-256) to the primary repository, records it in the catalog as kind
 * `wal`, and only then reports success, so PostgreSQL recycles nothing that is not safely stored.
 * Any failure exits non-zero and PostgreSQL retries the same file; a retry of a file already stored
 * with the same contents succeeds without writing it again (the archive must be idempotent), while
 * different contents under the same name are refused.
 *
 * The segment a node closes as it shuts down is archived after its server stopped accepting
 * connections, so its catalog row cannot be written then: it is stored anyway and noted in
 * `<wal-archive dir>/unrecorded/` for the wal-health watch to record (storeUnrecorded). The pull of
 * a remote node's spool (wal-pull.ts) goes through the same storeWalFile.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { ControlDbAlerts, type Alerts } from '../../alerts/alerts.ts';
import type { ConnectionTarget } from '../../postgres/connection.ts';
import { parseRecipient } from '../age-keys.ts';
import { beginObject, completeObject, deleteObject, failObject, getObject } from '../catalog.ts';
import { openRepository } from '../config.ts';
import { isBackupError } from '../errors.ts';
import { manifestName, readManifest, type BackupManifest } from '../manifest.ts';
import { keysClearedByWrite, reportFailure, resolveAlerts } from '../outcomes.ts';
import { writeBackupObject } from '../pipeline.ts';
import type { Repository } from '../repository.ts';
import { beginLockedObject, failAbandoned } from '../run-lock.ts';
import { readPostmasterPort, readSystemIdentifier } from './pg-files.ts';
import { parseWalFileName, walObjectName } from './wal-names.ts';
import type { ArchiveSettings } from './wal-settings.ts';

export interface ArchiveProps {
  settings: ArchiveSettings;
  /** PGDATA: PostgreSQL runs archive_command there, and %p is relative to it. */
  pgData: string;
  /** %p and %f. */
  path: string;
  file: string;
  log: Logger;
}

export interface ArchiveResult {
  outcome: 'archived' | 'already-archived';
  object: string;
  bytes: number;
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Writes one WAL file as object `name` of kind `wal` through the backup pipeline. */
function writeWalObject(
  props: Pick<StoreWalProps, 'repository' | 'recipients' | 'compressionLevel' | 'systemIdentifier' | 'file' | 'source' | 'walEndAt'>,
  name: string,
  timeline: number,
  rawSha256: string,
): Promise<BackupManifest> {
  return writeBackupObject({
    repository: props.repository,
    name,
    kind: 'wal',
    source: createReadStream(props.source, { highWaterMark: 1024 * 1024 }),
    recipients: props.recipients.map(parseRecipient),
    compressionLevel: props.compressionLevel,
    sourceDetails: { systemIdentifier: props.systemIdentifier, timeline, file: props.file, walEndAt: props.walEndAt.toISOString(), rawSha256 },
  });
}

async function storedManifest(repository: Repository, name: string): Promise<BackupManifest | null> {
  try {
    return await readManifest(repository, name);
  } catch (err) {
    if (isBackupError(err, 'object-not-found')) return null;
    throw err;
  }
}

/** Archives one WAL file; throws (so the command exits non-zero and PostgreSQL retries) on any failure. */
export async function archiveWalFile(props: ArchiveProps): Promise<ArchiveResult> {
  const { settings, log } = props;
  if (!parseWalFileName(props.file)) throw new Error(`${props.file} is not a WAL file name; refusing to archive it`);
  const absolute = resolve(props.pgData, props.path);
  const systemIdentifier = readSystemIdentifier(props.pgData);
  const target: ConnectionTarget = {
    host: settings.catalog.host,
    port: readPostmasterPort(props.pgData),
    user: settings.catalog.user,
    password: (await readFile(settings.catalog.passwordFile, 'utf8')).trim(),
  };
  const control = new pg.Pool({ host: target.host, port: target.port, user: target.user, password: target.password, database: settings.catalog.database, max: 2, application_name: 'taskflow-wal-archive' });
  control.on('error', () => undefined);
  const repository = openRepository(settings.repository);
  try {
    const walEndAt = (await stat(absolute)).mtime;
    if (await catalogShuttingDown(control)) {
      return await storeUnrecorded({ repository, recipients: settings.recipients, compressionLevel: settings.compressionLevel, systemIdentifier, file: props.file, source: absolute, walEndAt, pendingDir: unrecordedDir(dirname(settings.catalog.passwordFile)) });
    }
    return await storeWalFile({
      target,
      control,
      alerts: new ControlDbAlerts(control, log),
      log,
      repository,
      recipients: settings.recipients,
      compressionLevel: settings.compressionLevel,
      systemIdentifier,
      file: props.file,
      source: absolute,
      walEndAt,
    });
  } finally {
    await repository.close().catch(() => undefined);
    await control.end().catch(() => undefined);
  }
}

export interface StoreWalProps {
  /** The catalog: a connection target for the writer's lock, and a pool for the rest. */
  target: ConnectionTarget;
  control: pg.Pool;
  alerts: Alerts;
  log: Logger;
  repository: Repository;
  recipients: string[];
  compressionLevel: number;
  systemIdentifier: string;
  /** The WAL file's name (%f) and where its bytes are now. */
  file: string;
  source: string;
  /** When PostgreSQL last wrote it (the catalog's data_at). */
  walEndAt: Date;
}

/**
 * The archive's pipeline for one WAL file, wherever it was read from (pg_wal here, or a remote
 * node's spool, wal-pull.ts): stored and recorded as kind `wal`, or found stored already with the
 * same contents (recorded if it was not); different contents under its name are refused. Failures
 * raise the backup alerts and are thrown.
 */
export async function storeWalFile(props: StoreWalProps): Promise<ArchiveResult> {
  const { control, target, repository, log, alerts, systemIdentifier } = props;
  const walFile = parseWalFileName(props.file);
  if (!walFile) throw new Error(`${props.file} is not a WAL file name; refusing to archive it`);
  const name = walObjectName(systemIdentifier, props.file);
  const walEndAt = props.walEndAt;
  try {
    const rawSha256 = await sha256File(props.source);
    const existing = await storedManifest(repository, name);
    if (existing) {
      if (existing.source.rawSha256 !== rawSha256) {
        throw new Error(`${name} is already archived in repository ${repository.name} with different contents; refusing to overwrite it (is another cluster with system identifier ${systemIdentifier} archiving there?)`);
      }
      await recordArchived(control, { name, systemIdentifier, timeline: walFile.timeline, manifest: existing, repository: repository.name, walEndAt, rawSha256 });
      return { outcome: 'already-archived', object: name, bytes: existing.sizes.raw ?? 0 };
    }
    await clearEarlierAttempt(control, target, name);
    const running = await beginLockedObject({ target }, { kind: 'wal', name, cluster: systemIdentifier, timeline: walFile.timeline, details: { file: props.file, repository: repository.name } });
    try {
      const manifest = await writeWalObject(props, name, walFile.timeline, rawSha256);
      try {
        await completeObject(control, running.id, { manifest, repository: repository.name, dataAt: walEndAt, details: { walEndAt: walEndAt.toISOString(), rawSha256, sizes: manifest.sizes } });
      } catch (err) {
        // Unrecorded, the object would be invisible to retention: remove it (manifest first) and let PostgreSQL retry.
        await repository.delete(manifestName(name)).catch(() => undefined);
        await repository.delete(name).catch(() => undefined);
        throw err;
      }
      await resolveAlerts({ alerts, log }, keysClearedByWrite({ kind: 'wal', repository: repository.name }), `WAL file ${props.file} archived`);
      return { outcome: 'archived', object: name, bytes: manifest.sizes.raw ?? 0 };
    } catch (err) {
      await failObject(control, running.id, err instanceof Error ? err.message : String(err)).catch(() => undefined);
      throw err;
    } finally {
      await running.release();
    }
  } catch (err) {
    await reportFailure({ alerts }, err, { what: `archiving WAL file ${props.file}`, kind: 'wal', repository: repository.name, details: { object: name } });
    throw err;
  }
}

/**
 * A row of an earlier attempt at this file that did not complete (its archiver died or failed)
 * is removed, so the name is free again; a row whose writer still runs is left alone, and the
 * insert that follows fails, which PostgreSQL retries.
 */
async function clearEarlierAttempt(control: pg.Pool, target: ConnectionTarget, name: string): Promise<void> {
  const earlier = await getObject(control, name);
  if (!earlier || earlier.state === 'complete') return;
  if (earlier.state === 'running') await failAbandoned({ target, control }, ['wal']);
  const now = await getObject(control, name);
  if (now?.state === 'failed') await deleteObject(control, now.id);
}

/** Makes sure a file found already stored is in the catalog as complete (an earlier attempt may have stopped between the two). */
async function recordArchived(
  control: pg.Pool,
  props: { name: string; systemIdentifier: string; timeline: number; manifest: BackupManifest; repository: string; walEndAt: Date; rawSha256: string },
): Promise<void> {
  const row = await getObject(control, props.name);
  if (row?.state === 'complete') return;
  if (row) await deleteObject(control, row.id);
  const id = await beginObject(control, { kind: 'wal', name: props.name, cluster: props.systemIdentifier, timeline: props.timeline, details: { file: props.name.split('/').pop(), repository: props.repository } });
  await completeObject(control, id, { manifest: props.manifest, repository: props.repository, dataAt: props.walEndAt, details: { walEndAt: props.walEndAt.toISOString(), rawSha256: props.rawSha256, sizes: props.manifest.sizes } });
}

/**
 * Whether the catalog's server (the node this archiver runs beside) refuses connections because it
 * shuts down: it closes its last segment as it stops (a switchover, `taskflow stop`) and archives it
 * after it stopped accepting connections, so that segment cannot be recorded now.
 */
async function catalogShuttingDown(control: pg.Pool): Promise<boolean> {
  try {
    await control.query('SELECT 1');
    return false;
  } catch (err) {
    if ((err as { code?: string }).code === '57P03') return true;
    throw err;
  }
}

/** `<wal-archive dir>/unrecorded`: notes of files archived while the catalog could not be written, for the TaskFlow host to record. */
export function unrecordedDir(archiveDir: string): string {
  return join(archiveDir, 'unrecorded');
}

interface UnrecordedArchive {
  name: string;
  systemIdentifier: string;
  timeline: number;
  repository: string;
  walEndAt: string;
  rawSha256: string;
}

/**
 * Stores a WAL file while its catalog is shutting down: to the repository as ever (or found there
 * with the same contents), and a note in `pendingDir` that recordUnrecorded turns into its catalog
 * row later. Without it, the segment an old primary closes as it stops for a switchover would stay
 * there unarchived for good (it becomes a standby, which archives nothing), breaking the archive.
 */
async function storeUnrecorded(props: Omit<StoreWalProps, 'target' | 'control' | 'alerts' | 'log'> & { pendingDir: string }): Promise<ArchiveResult> {
  const walFile = parseWalFileName(props.file);
  if (!walFile) throw new Error(`${props.file} is not a WAL file name; refusing to archive it`);
  const { repository, systemIdentifier } = props;
  const name = walObjectName(systemIdentifier, props.file);
  const rawSha256 = await sha256File(props.source);
  const existing = await storedManifest(repository, name);
  if (existing && existing.source.rawSha256 !== rawSha256) {
    throw new Error(`${name} is already archived in repository ${repository.name} with different contents; refusing to overwrite it`);
  }
  const manifest =
    existing ??
    (await writeWalObject(props, name, walFile.timeline, rawSha256));
  const note: UnrecordedArchive = { name, systemIdentifier, timeline: walFile.timeline, repository: repository.name, walEndAt: props.walEndAt.toISOString(), rawSha256 };
  await mkdir(props.pendingDir, { recursive: true, mode: 0o700 });
  const path = join(props.pendingDir, `${props.file}.json`);
  await writeFile(`${path}.tmp`, JSON.stringify(note), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  return { outcome: existing ? 'already-archived' : 'archived', object: name, bytes: manifest.sizes.raw ?? 0 };
}

/**
 * Records in the catalog the WAL files archived while it was shutting down (storeUnrecorded), each
 * checked against its manifest in the repository, and removes their notes. For the wal-health watch
 * on the TaskFlow host; returns how many it recorded.
 */
export async function recordUnrecorded(props: { control: pg.Pool; archiveDir: string; openRepository: (name: string) => Repository | null; log: Logger }): Promise<number> {
  const dir = unrecordedDir(props.archiveDir);
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  } catch {
    return 0;
  }
  let recorded = 0;
  for (const file of files) {
    try {
      const note = JSON.parse(await readFile(join(dir, file), 'utf8')) as UnrecordedArchive;
      const repository = props.openRepository(note.repository);
      if (!repository) continue;
      try {
        const manifest = await readManifest(repository, note.name);
        if (manifest.source.rawSha256 !== note.rawSha256) throw new Error(`${note.name}: its manifest does not match the archiver's note`);
        await recordArchived(props.control, { name: note.name, systemIdentifier: note.systemIdentifier, timeline: note.timeline, manifest, repository: note.repository, walEndAt: new Date(note.walEndAt), rawSha256: note.rawSha256 });
      } finally {
        await repository.close().catch(() => undefined);
      }
      await rm(join(dir, file), { force: true });
      recorded++;
    } catch (err) {
      props.log.warn({ file, err: (err as Error).message }, 'a WAL file archived during a shutdown could not be recorded yet');
    }
  }
  return recorded;
}
