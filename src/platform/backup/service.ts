/**
 * What backup work needs from the platform, and the configured repositories opened for one run:
 * the primary (where objects are written), the secondaries (which get verified copies) and the
 * recipients every object is encrypted to.
 */
import type { Config } from '../../config.ts';
import { UserError } from '../../errors.ts';
import type { Platform } from '../platform.ts';
import { parseRecipient, type AgeRecipient } from './age-keys.ts';
import { backupsConfigured, openRepositories } from './config.ts';
import type { Repository } from './repository.ts';

/** The parts of the platform backup work uses (tests and the scheduler pass the platform itself). */
export type BackupPlatform = Pick<Platform, 'config' | 'control' | 'target' | 'tools' | 'dir' | 'alerts' | 'log'>;

export interface BackupTarget {
  primary: Repository;
  secondaries: Repository[];
  recipients: AgeRecipient[];
  compressionLevel: number;
  /** zstd level the server compresses snapshots at. */
  snapshotCompressionLevel: number;
  /** Every repository, the primary first. */
  all: Repository[];
  close(): Promise<void>;
}

export const NOT_CONFIGURED =
  'backups are not configured: add at least one repository, an age recipient and the allowed jurisdictions to the backup section of the configuration (docs/backups.md)';

/** Throws a usage-class UserError (exit 2) when no repository is configured. */
export function requireBackups(config: Pick<Config, 'backup'>): void {
  if (!backupsConfigured(config.backup)) throw new UserError(NOT_CONFIGURED, 2);
}

/** Opens the configured repositories; close() releases their connections. */
export function openBackupTarget(config: Pick<Config, 'backup'>): BackupTarget {
  requireBackups(config);
  const { primary, secondaries } = openRepositories(config.backup);
  if (!primary) throw new UserError(`backup.primary names no repository`, 2);
  const all = [primary, ...secondaries];
  return {
    primary,
    secondaries,
    all,
    recipients: config.backup.recipients.map(parseRecipient),
    compressionLevel: config.backup.compressionLevel,
    snapshotCompressionLevel: config.backup.snapshotCompressionLevel,
    async close() {
      await Promise.all(all.map((r) => r.close().catch(() => undefined)));
    },
  };
}

/** Runs `fn` with the repositories opened, closing them after; or with the ones given. */
export async function withBackupTarget<T>(config: Pick<Config, 'backup'>, given: BackupTarget | undefined, fn: (target: BackupTarget) => Promise<T>): Promise<T> {
  if (given) return fn(given);
  const target = openBackupTarget(config);
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}

/** The cluster's system identifier: what the catalog's `cluster` column names. */
export async function clusterIdentifier(platform: Pick<Platform, 'control'>): Promise<string> {
  const res = await platform.control.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
  return res.rows[0]?.id ?? 'unknown';
}

/** A UTC time as object names carry it (ISO 8601 basic): `20261123T020000Z`, or `20261123T020000.123Z`. */
export function compactTimestamp(at: Date, options: { millis?: boolean } = {}): string {
  const iso = at.toISOString().replaceAll('-', '').replaceAll(':', '');
  return options.millis ? iso : iso.replace(/\.\d{3}Z$/, 'Z');
}
