import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CatalogEntry } from './catalog.ts';
import { planPrune, snapshotWalStart, walPosition, type PruneDecision } from './retention.ts';

const NOW = new Date('2026-11-24T12:00:00Z');
const policy = { snapshotDays: 7, exportDays: 30 };
let nextId = 1;

function daysAgo(days: number): string {
  return new Date(NOW.getTime() - days * 86_400_000).toISOString();
}

function entry(props: Partial<CatalogEntry> & Pick<CatalogEntry, 'kind' | 'name'>): CatalogEntry {
  const at = props.dataAt ?? props.startedAt ?? daysAgo(0);
  return {
    id: String(nextId++),
    cluster: 'c1',
    timeline: 1,
    tenantId: null,
    tenantSlug: null,
    state: 'complete',
    startedAt: at,
    finishedAt: at,
    dataAt: at,
    rawBytes: 1,
    storedBytes: 1,
    sha256: '0'.repeat(64),
    details: {},
    error: null,
    provenAt: null,
    proof: null,
    locations: [],
    ...props,
  };
}

function verdicts(decisions: PruneDecision[]): Record<string, boolean> {
  return Object.fromEntries(decisions.map((d) => [d.entry.name, d.delete]));
}

test('snapshots: the window, its base, and never the newest', () => {
  const snaps = [1, 3, 6, 8, 9, 12].map((d) => entry({ kind: 'snapshot', name: `snapshots/s${d}`, dataAt: daysAgo(d), details: { startWal: `00000001000000000000000${d % 10}` } }));
  const v = verdicts(planPrune(snaps, policy, NOW));
  assert.deepEqual(v, { 'snapshots/s1': false, 'snapshots/s3': false, 'snapshots/s6': false, 'snapshots/s8': false, 'snapshots/s9': true, 'snapshots/s12': true });

  const onlyOld = [20, 30].map((d) => entry({ kind: 'snapshot', name: `snapshots/old${d}`, dataAt: daysAgo(d) }));
  assert.deepEqual(verdicts(planPrune(onlyOld, policy, NOW)), { 'snapshots/old20': false, 'snapshots/old30': true }, 'the newest stays however old');
});

test('WAL is kept from the segment the oldest kept snapshot starts in', () => {
  const entries = [
    entry({ kind: 'snapshot', name: 'snapshots/new', dataAt: daysAgo(2), details: { startLsn: '0/5000028' } }),
    entry({ kind: 'snapshot', name: 'snapshots/base', dataAt: daysAgo(8), details: { startLsn: '0/3000060' } }),
    entry({ kind: 'snapshot', name: 'snapshots/gone', dataAt: daysAgo(10), details: { startLsn: '0/1000028' } }),
    ...['000000010000000000000001', '000000010000000000000002', '000000010000000000000003', '000000020000000000000004'].map((s) =>
      entry({ kind: 'wal', name: `wal/c1/${s}`, dataAt: daysAgo(9) }),
    ),
    entry({ kind: 'wal', name: 'wal/c1/00000002.history', dataAt: daysAgo(30) }),
    entry({ kind: 'wal', name: 'wal/c1/garbage', dataAt: daysAgo(30) }),
  ];
  assert.deepEqual(verdicts(planPrune(entries, policy, NOW)), {
    'snapshots/new': false,
    'snapshots/base': false,
    'snapshots/gone': true,
    'wal/c1/000000010000000000000001': true,
    'wal/c1/000000010000000000000002': true,
    'wal/c1/000000010000000000000003': false,
    'wal/c1/000000020000000000000004': false,
    'wal/c1/00000002.history': false,
    'wal/c1/garbage': false,
  });
});

test('WAL is kept when the oldest kept snapshot does not say where it starts; without snapshots, for the window', () => {
  const unknown = [entry({ kind: 'snapshot', name: 's', dataAt: daysAgo(1) }), entry({ kind: 'wal', name: 'wal/000000010000000000000001', dataAt: daysAgo(40) })];
  assert.equal(verdicts(planPrune(unknown, policy, NOW))['wal/000000010000000000000001'], false);
  const none = [entry({ kind: 'wal', name: 'wal/a/000000010000000000000001', dataAt: daysAgo(8) }), entry({ kind: 'wal', name: 'wal/a/000000010000000000000002', dataAt: daysAgo(1) })];
  assert.deepEqual(verdicts(planPrune(none, policy, NOW)), { 'wal/a/000000010000000000000001': true, 'wal/a/000000010000000000000002': false });
});

test("exports: 30 days per tenant, each tenant's newest always", () => {
  const a = (d: number) => entry({ kind: 'export', name: `exports/a/${d}`, tenantId: 'A', tenantSlug: 'a', dataAt: daysAgo(d) });
  const b = (d: number) => entry({ kind: 'export', name: `exports/b/${d}`, tenantId: 'B', tenantSlug: 'b', dataAt: daysAgo(d) });
  assert.deepEqual(verdicts(planPrune([a(1), a(29), a(31), b(45), b(60)], policy, NOW)), {
    'exports/a/1': false,
    'exports/a/29': false,
    'exports/a/31': true,
    'exports/b/45': false,
    'exports/b/60': true,
  });
});

test('running rows are never touched; failed ones go after their window; a begun prune is finished', () => {
  const entries = [
    entry({ kind: 'export', name: 'running', state: 'running', startedAt: daysAgo(90), dataAt: null }),
    entry({ kind: 'export', name: 'failed-old', state: 'failed', startedAt: daysAgo(31), dataAt: null }),
    entry({ kind: 'export', name: 'failed-new', state: 'failed', startedAt: daysAgo(2), dataAt: null }),
    entry({ kind: 'export', name: 'half-pruned', tenantId: 'A', dataAt: daysAgo(1), details: { pruning: daysAgo(0) } }),
    entry({ kind: 'export', name: 'newest-a', tenantId: 'A', dataAt: daysAgo(0.5) }),
  ];
  const decisions = planPrune(entries, policy, NOW);
  assert.deepEqual(verdicts(decisions), { running: false, 'failed-old': true, 'failed-new': false, 'half-pruned': true, 'newest-a': false });
  assert.match(decisions.find((d) => d.entry.name === 'half-pruned')?.reason ?? '', /prune began/);
});

test('WAL positions from file names and LSNs', () => {
  assert.equal(walPosition('000000010000000A000000FF'), '0000000A000000FF');
  assert.equal(walPosition('000000010000000A000000FF.partial'), '0000000A000000FF');
  assert.equal(walPosition('000000010000000000000002.00000028.backup'), '0000000000000002');
  assert.equal(walPosition('00000001.history'), null);
  const snap = (details: Record<string, unknown>) => entry({ kind: 'snapshot', name: 'x', details });
  assert.equal(snapshotWalStart(snap({ startLsn: '16/B374D848' })), '00000016000000B3');
  assert.equal(snapshotWalStart(snap({ startLsn: '0/2000028', walSegmentSize: 64 * 1024 * 1024 })), '0000000000000000');
  assert.equal(snapshotWalStart(snap({ startWal: '000000030000000100000004' })), '0000000100000004');
  assert.equal(snapshotWalStart(snap({})), null);
});
