import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureLoad } from './measure.ts';
import { ackKey, type Ack } from './writers.ts';

const T0 = Date.parse('2026-11-24T10:00:00.000Z');

function ack(writer: number, seq: number, ms: number, node: string): Ack {
  return { writer, seq, at: T0 + ms, node };
}

const acks: Ack[] = [
  ack(1, 1, 100, 'main'),
  ack(2, 1, 150, 'main'),
  ack(1, 2, 900, 'main'),
  ack(2, 2, 1000, 'main'),
  ack(1, 4, 3100, 'b'),
  ack(2, 4, 3300, 'b'),
];

test('nothing lost: RPO 0, RTO from the kill to the first write the new primary acknowledged', () => {
  const survivors = new Set([...acks.map((a) => ackKey(a.writer, a.seq)), ackKey(1, 3)]);
  const f = measureLoad({ acks, survivors, killAt: T0 + 1100, loadStartedAt: T0, newPrimary: 'b', writers: 2, failures: new Map([['ECONNREFUSED', 7]]) });
  assert.equal(f.lostAcknowledged, 0);
  assert.equal(f.rpoSeconds, 0);
  assert.equal(f.rtoSeconds, 2);
  assert.equal(f.writesStoppedSeconds, 2.1);
  assert.equal(f.unacknowledgedSurvivors, 1, 'row 1:3 committed without its writer being told');
  assert.deepEqual([f.acknowledged, f.acknowledgedByOldPrimary, f.acknowledgedByNewPrimary, f.survivingRows], [6, 4, 2, 7]);
  assert.deepEqual(f.failedWrites, { ECONNREFUSED: 7 });
});

test('lost writes: counted, and the seconds from the last surviving acknowledgement to the last one', () => {
  const survivors = new Set([ackKey(1, 1), ackKey(2, 1), ackKey(1, 4), ackKey(2, 4)]);
  const f = measureLoad({ acks, survivors, killAt: T0 + 1100, loadStartedAt: T0, newPrimary: 'b', writers: 2, failures: new Map() });
  assert.equal(f.lostAcknowledged, 2);
  assert.deepEqual(f.lostSample.map((l) => [l.writer, l.seq]), [[1, 2], [2, 2]]);
  assert.equal(f.rpoSeconds, 0.85);
  assert.equal(f.lastSurvivingAckBeforeKillAt, '2026-11-24T10:00:00.150Z');
  assert.equal(f.lastAckBeforeKillAt, '2026-11-24T10:00:01.000Z');
});

test('every acknowledged write lost: the seconds count from the start of the load; no write on the new primary: no RTO', () => {
  const before = acks.filter((a) => a.node === 'main');
  const f = measureLoad({ acks: before, survivors: new Set(), killAt: T0 + 1100, loadStartedAt: T0, newPrimary: 'b', writers: 2, failures: new Map() });
  assert.equal(f.lostAcknowledged, 4);
  assert.equal(f.rpoSeconds, 1);
  assert.equal(f.rtoSeconds, null);
  assert.equal(f.firstAckOnNewPrimaryAt, null);
});
