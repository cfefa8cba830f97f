import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_WAL_SEGMENT_SIZE as SEG, parseWalFileName, segmentFileName, segmentNumber, segmentNumberOf, snapshotObjectName, walObjectName } from './wal-names.ts';

test('WAL file names: segments, partial and backup files, history files, and nothing else', () => {
  assert.deepEqual(parseWalFileName('000000010000000A000000FF'), { file: '000000010000000A000000FF', kind: 'segment', timeline: 1, log: 10, seg: 255 });
  assert.equal(parseWalFileName('000000020000000000000003.partial')?.kind, 'partial');
  assert.equal(parseWalFileName('000000010000000000000002.00000028.backup')?.kind, 'backup');
  assert.deepEqual(parseWalFileName('0000000A.history'), { file: '0000000A.history', kind: 'history', timeline: 10 });
  for (const bad of ['', 'RECOVERYXLOG', '00000001000000000000000', '000000010000000000000002.tmp', '../000000010000000000000002', '0000000a0000000000000002']) {
    assert.equal(parseWalFileName(bad), null, bad);
  }
});

test('object names: per system identifier, timeline directory, history apart', () => {
  assert.equal(walObjectName('7312345678901234567', '000000010000000000000002'), 'wal/7312345678901234567/00000001/000000010000000000000002');
  assert.equal(walObjectName('7312345678901234567', '00000002.history'), 'wal/7312345678901234567/history/00000002.history');
  assert.throws(() => walObjectName('7312', 'pg_wal/x'), /not a WAL file name/);
  assert.throws(() => walObjectName('../x', '00000002.history'), /system identifier/);
  assert.equal(snapshotObjectName('7312', new Date('2026-11-23T02:00:00.123Z')), 'snapshots/7312/20261123T020000.123Z.tar');
});

test('segment numbers and names round-trip, across the 4 GiB boundary', () => {
  for (const lsn of [0n, 0x2000028n, 0xffff_ffffn, 0x1_0000_0000n, 0x16_b374_d848n]) {
    const segno = segmentNumber(lsn, SEG);
    const name = segmentFileName(3, segno, SEG);
    const parsed = parseWalFileName(name);
    assert.ok(parsed);
    assert.equal(segmentNumberOf(parsed, SEG), segno);
  }
  assert.equal(segmentFileName(1, segmentNumber(0x1_0100_0000n, SEG), SEG), '000000010000000100000001');
  assert.equal(segmentFileName(1, segmentNumber(0x2000028n, SEG), SEG), '000000010000000000000002');
});
