/**
 * Retention: which catalog objects a prune deletes, decided from the catalog alone (pure, so the
 * rules are unit-tested and `prune --dry-run` shows exactly what a prune would do).
 *
 * - Snapshots (per cluster): every snapshot whose data is inside the window is kept, and so is the
 *   newest one before the window: it is the base that makes the window's first second restorable.
 *   The newest complete snapshot is never deleted, however old.
 * - WAL (per cluster): kept from the segment the oldest kept snapshot starts in; timeline history
 *   files always. A cluster without any complete snapshot keeps its WAL for the snapshot window.
 *   WAL whose position cannot be read is kept.
 * - Exports (per tenant): kept inside the window; each tenant's newest complete export always.
 * - Failed objects go once older than their kind's window (what they left in repositories too);
 *   running objects are never touched; objects a prune began deleting are finished.
 */
import type { CatalogEntry } from './catalog.ts';

export interface RetentionPolicy {
  snapshotDays: number;
  exportDays: number;
}

export interface PruneDecision {
  entry: CatalogEntry;
  delete: boolean;
  reason: string;
}

const DAY_MS = 86_400_000;
const DEFAULT_WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

/** The moment an object's data is from (its data_at), else when it was started. */
export function dataTime(entry: CatalogEntry): number {
  return Date.parse(entry.dataAt ?? entry.startedAt);
}

/** The WAL position of a segment file name (`000000010000000A000000FF`, also `.partial`/`.backup`), as comparable text. */
export function walPosition(fileName: string): string | null {
  const segment = fileName.replace(/\.partial$|\.[0-9A-F]{8}\.backup$/i, '');
  return /^[0-9A-F]{24}$/i.test(segment) ? segment.slice(8).toUpperCase() : null;
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** The segment a WAL object holds: from its details, else the last part of its name. */
export function walObjectPosition(entry: CatalogEntry): { position: string | null; history: boolean } {
  const file = str(entry.details.segment) ?? str(entry.details.walFile) ?? str(entry.details.file) ?? entry.name.split('/').pop() ?? '';
  const base = file.replace(/\.(zst|gz|lz4)$/i, '');
  if (/^[0-9A-F]{8}\.history$/i.test(base)) return { position: null, history: true };
  return { position: walPosition(base), history: false };
}

/** The WAL position a snapshot needs replay from: a start segment in its details, or its start LSN. */
export function snapshotWalStart(entry: CatalogEntry): string | null {
  const d = entry.details;
  for (const key of ['startWal', 'startWalFile', 'startSegment', 'walStart']) {
    const file = str(d[key]);
    const position = file ? walPosition(file) : null;
    if (position) return position;
  }
  const lsn = str(d.startLsn) ?? str(d.startLSN);
  const match = lsn ? /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(lsn) : null;
  if (!match?.[1] || !match[2]) return null;
  const segmentBytes = typeof d.walSegmentSize === 'number' && d.walSegmentSize > 0 ? BigInt(d.walSegmentSize) : BigInt(DEFAULT_WAL_SEGMENT_BYTES);
  const bytes = (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
  const segment = bytes / segmentBytes;
  const perLog = 0x1_0000_0000n / segmentBytes;
  const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(segment / perLog)}${hex(segment % perLog)}`;
}

function groupBy(entries: CatalogEntry[], key: (e: CatalogEntry) => string): Map<string, CatalogEntry[]> {
  const groups = new Map<string, CatalogEntry[]>();
  for (const e of entries) {
    const k = key(e);
    const list = groups.get(k) ?? [];
    list.push(e);
    groups.set(k, list);
  }
  return groups;
}

const newestFirst = (a: CatalogEntry, b: CatalogEntry) => dataTime(b) - dataTime(a) || Number(b.id) - Number(a.id);

/** Decides, for every object in the catalog, whether a prune at `now` deletes it and why. */
export function planPrune(entries: CatalogEntry[], policy: RetentionPolicy, now: Date): PruneDecision[] {
  const decisions = new Map<string, PruneDecision>();
  const decide = (entry: CatalogEntry, del: boolean, reason: string) => decisions.set(entry.id, { entry, delete: del, reason });
  const snapshotCutoff = now.getTime() - policy.snapshotDays * DAY_MS;
  const exportCutoff = now.getTime() - policy.exportDays * DAY_MS;
  const cutoffOf = (e: CatalogEntry) => (e.kind === 'export' ? exportCutoff : snapshotCutoff);
  const days = (e: CatalogEntry) => (e.kind === 'export' ? policy.exportDays : policy.snapshotDays);

  const complete: CatalogEntry[] = [];
  for (const e of entries) {
    if (e.state === 'running') decide(e, false, 'still being written');
    else if (e.details.pruning !== undefined) decide(e, true, 'a prune began deleting it');
    else if (e.state === 'failed') {
      if (Date.parse(e.startedAt) < cutoffOf(e)) decide(e, true, `failed, and older than ${days(e)} days`);
      else decide(e, false, `failed, kept for ${days(e)} days as a record`);
    } else complete.push(e);
  }

  // Snapshots, and from them the WAL each cluster must keep.
  const walFrom = new Map<string, string | null>();
  for (const [cluster, snapshots] of groupBy(complete.filter((e) => e.kind === 'snapshot'), (e) => e.cluster)) {
    snapshots.sort(newestFirst);
    let baseKept = false;
    const kept: CatalogEntry[] = [];
    for (const [i, s] of snapshots.entries()) {
      if (i === 0) decide(s, false, 'the newest complete snapshot');
      else if (dataTime(s) >= snapshotCutoff) decide(s, false, `inside the ${policy.snapshotDays}-day window`);
      else if (!baseKept) decide(s, false, `the base of the ${policy.snapshotDays}-day window`);
      else {
        decide(s, true, `older than the ${policy.snapshotDays}-day window`);
        continue;
      }
      if (dataTime(s) < snapshotCutoff) baseKept = true;
      kept.push(s);
    }
    const oldest = kept[kept.length - 1];
    walFrom.set(cluster, oldest ? snapshotWalStart(oldest) : null);
  }

  for (const w of complete.filter((e) => e.kind === 'wal')) {
    const { position, history } = walObjectPosition(w);
    const hasSnapshot = walFrom.has(w.cluster);
    const from = walFrom.get(w.cluster) ?? null;
    if (history) decide(w, false, 'timeline history is always kept');
    else if (!hasSnapshot) {
      if (dataTime(w) < snapshotCutoff) decide(w, true, `no snapshot to replay it onto, and older than ${policy.snapshotDays} days`);
      else decide(w, false, `inside the ${policy.snapshotDays}-day window (no snapshot yet)`);
    } else if (position === null) decide(w, false, 'its WAL position cannot be read');
    else if (from === null) decide(w, false, 'the oldest kept snapshot does not say where its WAL starts');
    else if (position < from) decide(w, true, 'before the WAL the oldest kept snapshot needs');
    else decide(w, false, 'needed by a kept snapshot');
  }

  for (const exports of groupBy(complete.filter((e) => e.kind === 'export'), (e) => e.tenantId ?? `slug:${e.tenantSlug ?? ''}`).values()) {
    exports.sort(newestFirst);
    for (const [i, x] of exports.entries()) {
      if (i === 0) decide(x, false, "the tenant's newest complete export");
      else if (dataTime(x) >= exportCutoff) decide(x, false, `inside the ${policy.exportDays}-day window`);
      else decide(x, true, `older than the ${policy.exportDays}-day window`);
    }
  }

  for (const e of complete) if (!decisions.has(e.id)) decide(e, false, `kind ${e.kind} has no retention rule`);
  return entries.map((e) => decisions.get(e.id)).filter((d): d is PruneDecision => d !== undefined);
}
