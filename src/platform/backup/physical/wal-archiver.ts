/**
 * `taskflow wal archive %p %f`: PostgreSQL's archive_command. Pushes one WAL file through the
 * pipeline (zstd → age → SHA-256) to the primary repository, records it in the catalog as kind
 * `wal`, and only then reports success, so PostgreSQL recycles nothing that is not safely stored.
 * Any failure exits non-zero and PostgreSQL retries the same file; a retry of a file already stored
 * with the same contents succeeds without writing it again (the archive must be idempotent), while
 * different contents under the same name are refused.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { ControlDbAlerts } from '../../alerts/alerts.ts';
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
  const walFile = parseWalFileName(props.file);
  if (!walFile) throw new Error(`${props.file} is not a WAL file name; refusing to archive it`);
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
  const alerts = new ControlDbAlerts(control, log);
  const repository = openRepository(settings.repository);
  const name = walObjectName(systemIdentifier, props.file);
  try {
    const [info, rawSha256] = await Promise.all([stat(absolute), sha256File(absolute)]);
    const walEndAt = info.mtime;
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
      const manifest = await writeBackupObject({
        repository,
        name,
        kind: 'wal',
        source: createReadStream(absolute, { highWaterMark: 1024 * 1024 }),
        recipients: settings.recipients.map(parseRecipient),
        compressionLevel: settings.compressionLevel,
        sourceDetails: { systemIdentifier, timeline: walFile.timeline, file: props.file, walEndAt: walEndAt.toISOString(), rawSha256 },
      });
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
  } finally {
    await repository.close().catch(() => undefined);
    await control.end().catch(() => undefined);
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
