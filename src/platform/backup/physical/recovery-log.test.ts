import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRecoveryLog, pgTimeToIso } from './recovery-log.ts';

const STOPPED = `2026-11-23 23:59:01.100 UTC [812] LOG:  starting point-in-time recovery to 2026-11-23 23:58:30+00
2026-11-23 23:59:01.300 UTC [812] LOG:  restored log file "000000010000000000000005" from archive
2026-11-23 23:59:01.400 UTC [812] LOG:  consistent recovery state reached at 0/5000100
2026-11-23 23:59:01.500 UTC [812] LOG:  recovery stopping before commit of transaction 745, time 2026-11-23 23:58:31.123456+00
2026-11-23 23:59:01.500 UTC [812] LOG:  redo done at 0/5001A28 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.01 s
2026-11-23 23:59:01.500 UTC [812] LOG:  last completed transaction was at log time 2026-11-23 23:58:29.987654+00
2026-11-23 23:59:01.600 UTC [812] LOG:  selected new timeline ID: 2
2026-11-23 23:59:01.700 UTC [812] LOG:  archive recovery complete
`;

test('a recovery that found its target: where it stopped, the last transaction, the new timeline', () => {
  const r = parseRecoveryLog(STOPPED);
  assert.deepEqual(r.stoppedAt, { before: true, xid: '745', at: '2026-11-23T23:58:31.123Z' });
  assert.equal(r.lastTransactionAt, '2026-11-23T23:58:29.987Z');
  assert.equal(r.redoDoneAt, '0/5001A28');
  assert.equal(r.newTimeline, 2);
  assert.ok(r.complete);
  assert.equal(r.fatal, null);
  assert.equal(r.endedBeforeTarget, false);
});

test('a recovery that ran out of WAL before its target', () => {
  const r = parseRecoveryLog(`2026-11-23 23:59:01.500 UTC [812] FATAL:  recovery ended before configured recovery target was reached
2026-11-23 23:59:01.600 UTC [811] LOG:  startup process (PID 812) exited with exit code 1`);
  assert.ok(r.endedBeforeTarget);
  assert.equal(r.fatal, 'recovery ended before configured recovery target was reached');
  assert.equal(r.complete, false);
});

test('LSN and immediate targets', () => {
  assert.equal(parseRecoveryLog('LOG:  recovery stopping after WAL location (LSN) "0/3000060"').stoppedAtLsn, '0/3000060');
  assert.ok(parseRecoveryLog('LOG:  recovery stopping after reaching consistency').stoppedAtConsistency);
});

test('PostgreSQL times become ISO 8601', () => {
  assert.equal(pgTimeToIso('2026-11-23 14:05:07+00'), '2026-11-23T14:05:07.000Z');
  assert.equal(pgTimeToIso('2026-11-23 16:05:07.5+02'), '2026-11-23T14:05:07.500Z');
  assert.equal(pgTimeToIso('2026-11-23 14:05:07 UTC'), '2026-11-23T14:05:07.000Z');
  assert.equal(pgTimeToIso('2026-11-23 19:35:07+05:30'), '2026-11-23T14:05:07.000Z');
});
