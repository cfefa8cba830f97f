/**
 * Names of the physical backup objects in a repository, and the WAL arithmetic behind them. The
 * layout is what a restore reads without the catalog (disaster recovery has only the repository):
 *
 *   snapshots/<system id>/<20261123T020000Z>.tar     pg_basebackup tar stream (+ .manifest.json)
 *   wal/<system id>/<timeline, 8 hex>/<WAL file>     segments, .partial and .backup files
 *   wal/<system id>/history/<00000002.history>       timeline history files
 */
import { compactTimestamp } from '../service.ts';

export const SNAPSHOT_PREFIX = 'snapshots';
export const WAL_PREFIX = 'wal';
/** PostgreSQL's default, and what every cluster TaskFlow initialises uses. */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

export type WalFileKind = 'segment' | 'partial' | 'backup' | 'history';

export interface WalFile {
  file: string;
  kind: WalFileKind;
  timeline: number;
  /** The segment's 64-bit position as "log" and "seg" fields (not for history files). */
  log?: number;
  seg?: number;
}

const HEX8 = /^[0-9A-F]{8}$/;
const HEX24 = /^[0-9A-F]{24}$/;

/** What a file name in pg_wal is, or null when it is none of the files the archive keeps. */
export function parseWalFileName(file: string): WalFile | null {
  const [base = '', ...suffix] = file.split('.');
  if (suffix.length === 1 && suffix[0] === 'history' && HEX8.test(base)) return { file, kind: 'history', timeline: Number.parseInt(base, 16) };
  if (!HEX24.test(base)) return null;
  let kind: WalFileKind;
  if (suffix.length === 0) kind = 'segment';
  else if (suffix.length === 1 && suffix[0] === 'partial') kind = 'partial';
  else if (suffix.length === 2 && HEX8.test(suffix[0] ?? '') && suffix[1] === 'backup') kind = 'backup';
  else return null;
  return { file, kind, timeline: Number.parseInt(base.slice(0, 8), 16), log: Number.parseInt(base.slice(8, 16), 16), seg: Number.parseInt(base.slice(16), 16) };
}

/** A system identifier as the catalog and object names carry it: decimal digits. */
export function checkSystemIdentifier(id: string): string {
  if (!/^[0-9]{1,20}$/.test(id)) throw new Error(`not a PostgreSQL system identifier: ${JSON.stringify(id)}`);
  return id;
}

export function timelineHex(timeline: number): string {
  return timeline.toString(16).toUpperCase().padStart(8, '0');
}

/** The repository object of one archived WAL file. */
export function walObjectName(systemIdentifier: string, file: string): string {
  const parsed = parseWalFileName(file);
  if (!parsed) throw new Error(`not a WAL file name: ${JSON.stringify(file)}`);
  const dir = parsed.kind === 'history' ? 'history' : timelineHex(parsed.timeline);
  return `${WAL_PREFIX}/${checkSystemIdentifier(systemIdentifier)}/${dir}/${file}`;
}

/** Where the archived WAL of one cluster is. */
export function walPrefix(systemIdentifier: string): string {
  return `${WAL_PREFIX}/${checkSystemIdentifier(systemIdentifier)}/`;
}

export function snapshotPrefix(systemIdentifier?: string): string {
  return systemIdentifier === undefined ? `${SNAPSHOT_PREFIX}/` : `${SNAPSHOT_PREFIX}/${checkSystemIdentifier(systemIdentifier)}/`;
}

/** The object name of a snapshot taken at `at`. */
export function snapshotObjectName(systemIdentifier: string, at: Date): string {
  // Milliseconds: two snapshots in one second (a run by hand right after the scheduled one) get two names.
  return `${snapshotPrefix(systemIdentifier)}${compactTimestamp(at, { millis: true })}.tar`;
}

/** Segments per 4 GiB "log" file: how the two halves of a segment name combine. */
function segmentsPerLog(segmentSize: number): bigint {
  return 0x1_0000_0000n / BigInt(segmentSize);
}

/** The segment number (a count from 0) holding byte `lsn` of the WAL. */
export function segmentNumber(lsn: bigint, segmentSize: number): bigint {
  return lsn / BigInt(segmentSize);
}

/** The segment number of a segment file's name. */
export function segmentNumberOf(file: WalFile, segmentSize: number): bigint {
  if (file.log === undefined || file.seg === undefined) throw new Error(`${file.file} is not a segment`);
  return BigInt(file.log) * segmentsPerLog(segmentSize) + BigInt(file.seg);
}

/** The file name of segment `segno` on `timeline`. */
export function segmentFileName(timeline: number, segno: bigint, segmentSize: number): string {
  const perLog = segmentsPerLog(segmentSize);
  const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${timelineHex(timeline)}${hex(segno / perLog)}${hex(segno % perLog)}`;
}
