/** What a pg_basebackup archive says about itself: its backup_label and its backup_manifest. */

export interface BaseBackupFacts {
  timeline: number;
  startLsn: string;
  stopLsn: string;
  checkpointLsn: string | null;
  /** START TIME of the label, as PostgreSQL wrote it. */
  labelStartTime: string | null;
  manifest: {
    /** The manifest's own SHA-256 (its Manifest-Checksum). */
    checksum: string;
    files: number;
    bytes: number;
  };
}

interface ManifestJson {
  Files?: { Size?: number }[];
  'WAL-Ranges'?: { Timeline?: number; 'Start-LSN'?: string; 'End-LSN'?: string }[];
  'Manifest-Checksum'?: string;
}

/** Reads the facts from the two files; throws naming what is missing. */
export function baseBackupFacts(label: Buffer | undefined, manifest: Buffer | undefined): BaseBackupFacts {
  if (!manifest) throw new Error('the pg_basebackup archive has no backup_manifest');
  let parsed: ManifestJson;
  try {
    parsed = JSON.parse(manifest.toString('utf8')) as ManifestJson;
  } catch (err) {
    throw new Error(`the backup_manifest is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const ranges = parsed['WAL-Ranges'] ?? [];
  const first = ranges[0];
  const last = ranges[ranges.length - 1];
  if (!first?.['Start-LSN'] || !last?.['End-LSN'] || last.Timeline === undefined) throw new Error('the backup_manifest has no WAL range');
  const labelLines = (label?.toString('utf8') ?? '').split('\n');
  const field = (name: string) => labelLines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2).trim() ?? null;
  const files = parsed.Files ?? [];
  return {
    timeline: last.Timeline,
    startLsn: first['Start-LSN'],
    stopLsn: last['End-LSN'],
    checkpointLsn: field('CHECKPOINT LOCATION'),
    labelStartTime: field('START TIME'),
    manifest: {
      checksum: parsed['Manifest-Checksum'] ?? '',
      files: files.length,
      bytes: files.reduce((sum, f) => sum + (f.Size ?? 0), 0),
    },
  };
}
