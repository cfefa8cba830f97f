import assert from 'node:assert/strict';
import { test } from 'node:test';
import { discardedRow } from './failover-drill.ts';

const gap = { known: true as const, endLsn: '0/3000000', missingBytes: 2048, missingCommits: 3, firstMissingCommitAt: null, lastMissingCommitAt: '2026-11-24 04:00:01 UTC' };

test("the drill report shows the failover's discarded commits, acknowledged or not", () => {
  assert.deepEqual(discardedRow({ gap: { ...gap, missingBytes: 0, missingCommits: 0 }, discarded: null }), ['committed transactions discarded', 'none']);
  assert.deepEqual(discardedRow({ gap: { known: false, reason: 'pg_wal unreadable' }, discarded: null }), [
    'committed transactions discarded',
    'unknown (what the new primary lacked could not be read)',
  ]);
  const no = discardedRow({ gap, discarded: { commits: 3, bytes: 2048, lastCommitAt: gap.lastMissingCommitAt, acknowledged: 'no', why: 'sync mode and no other standby confirmed them' } });
  assert.equal(no[1], '3 (2.0 kB), the last committed at 2026-11-24 04:00:01 UTC: never acknowledged to a client; sync mode and no other standby confirmed them');
  const maybe = discardedRow({ gap, discarded: { commits: 1234, bytes: 2048, lastCommitAt: null, acknowledged: 'maybe', why: 'async mode' } });
  assert.equal(maybe[1], '1,234 (2.0 kB): may have been acknowledged (lost by --force); async mode');
});
