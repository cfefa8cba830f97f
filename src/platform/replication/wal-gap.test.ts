import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureGap, parseCommitTime, walFiles } from './wal-gap.ts';

const DUMP = `rmgr: Heap        len (rec/tot):     59/    59, tx:        724, lsn: 0/03017E68, prev 0/03017E20, desc: INSERT+INIT off 1 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
rmgr: Transaction len (rec/tot):     34/    34, tx:        724, lsn: 0/03017EA8, prev 0/03017E68, desc: COMMIT 2026-11-23 22:07:31.156471 UTC
rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/03017ED0, prev 0/03017EA8, desc: RUNNING_XACTS nextXid 725 latestCompletedXid 724 oldestRunningXid 725
`;

test('records ending after the received position are missing; commits among them are counted', () => {
  const gap = measureGap(DUMP, '0/03017E68');
  assert.deepEqual(gap, {
    known: true,
    endLsn: '0/3017F02',
    missingBytes: 0x3017f02 - 0x3017e68,
    missingCommits: 1,
    firstMissingCommitAt: '2026-11-23 22:07:31.156471 UTC',
    lastMissingCommitAt: '2026-11-23 22:07:31.156471 UTC',
  });
});

test('WAL past the last commit holds nothing committed', () => {
  const gap = measureGap(DUMP, '0/03017ECA');
  assert.equal(gap.known && gap.missingCommits, 0);
  assert.equal(gap.known && gap.missingBytes, 0x3017f02 - 0x3017eca);
});

test('a standby that has everything misses nothing', () => {
  assert.deepEqual(measureGap('', '0/3018000'), { known: true, endLsn: '0/3018000', missingBytes: 0, missingCommits: 0, firstMissingCommitAt: null, lastMissingCommitAt: null });
});

test('commit times are read in UTC only (pg_waldump runs with TZ=UTC); anything else is not guessed', () => {
  assert.equal(parseCommitTime('2026-11-23 22:07:31.156471 UTC')?.toISOString(), '2026-11-23T22:07:31.156Z');
  assert.equal(parseCommitTime('2026-11-23 23:07:31 CET'), null);
  assert.equal(parseCommitTime(null), null);
});

test('walFiles: the newest timeline and its segments; no segment or no size is nothing to read', () => {
  const files = walFiles({ names: ['000000010000000000000002', '000000020000000000000003', '000000020000000100000000', '00000002.history', 'archive_status'], segmentSize: 16 * 1024 * 1024 });
  assert.ok(files);
  assert.equal(files.timeline, 2);
  assert.deepEqual([...files.segments].sort((a, b) => Number(a - b)), [3n, 256n]);
  assert.equal(walFiles({ names: ['archive_status'], segmentSize: null }), null);
});
