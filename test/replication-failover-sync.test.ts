/**
 * Failover after a crash in synchronous mode: the commits the synchronous standby never received
 * were never acknowledged, so `cluster failover` promotes it without --force, discards them and says
 * so, and every write a client saw succeed is on the new primary. Where that cannot be established
 * (here: a role whose commits do not wait for a standby) it is refused, saying why, and --force
 * loses them knowingly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FailoverResult } from '../src/platform/replication/failover.ts';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';
import { freezeWalSender, rowsOn, startWriters, syncSettled } from './helpers/sync-writers.ts';

describe('failover in synchronous mode', { timeout: 180_000 }, () => {
  let rc: ReplicatedCluster;
  before(async () => {
    rc = await startReplicatedCluster();
    await rc.sql('main', 'CREATE TABLE sync_rows (writer int, seq int, at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (writer, seq))');
    const added = await rc.cli('cluster', 'standby', 'add', 'b');
    assert.equal(added.code, 0, added.stderr);
    const mode = await rc.cli('cluster', 'mode', 'sync');
    assert.equal(mode.code, 0, mode.stderr);
  });
  after(async () => {
    await rc.cleanup();
  });

  test('the primary crashes with commits b never flushed: failover without --force discards them as unacknowledged; every acknowledged write is on b', async (t) => {
    const writers = startWriters(rc, 'main', 4);
    await eventually('acknowledged writes', () => Promise.resolve(writers.acked.size >= 200 ? true : undefined));
    await syncSettled(rc.pgData('main'));
    // main stops sending to b: the writers' next commits are written on main and wait for b, unacknowledged.
    await freezeWalSender(rc, 'main', 'b');
    // Confirmations already on their way still arrive; after that, none.
    await new Promise((r) => setTimeout(r, 200));
    const ackedBefore = writers.acked.size;
    // Writes that start now are written on main after the last WAL b got, and wait.
    const late = startWriters(rc, 'main', 3, 1_000_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(writers.acked.size + late.acked.size, ackedBefore, 'nothing is acknowledged while b receives nothing');
    await rc.kill('main');
    await Promise.all([writers.done(), late.done()]);
    t.diagnostic(`${writers.acked.size} writes acknowledged of ${writers.attempted()} attempted`);

    const r = await rc.cli('cluster', 'failover', '--to', 'b', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as FailoverResult;
    assert.equal(result.forced, false);
    assert.ok(result.discarded, 'the commits b lacks are reported');
    assert.equal(result.discarded.acknowledged, 'no');
    assert.ok(result.discarded.commits >= 3, `the late writers' waiting commits are among them (${result.discarded.commits})`);
    assert.ok(result.discarded.bytes > 0);
    assert.match(result.discarded.lastCommitAt ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ UTC$/);
    assert.match(result.discarded.why, /main ran in synchronous mode \(synchronous_standby_names 'ANY 1 \("b"\)' since .*, synchronous_commit on\)/);

    const onB = await rowsOn(rc, 'b');
    const lost = [...writers.acked].filter((k) => !onB.has(k));
    assert.deepEqual(lost, [], 'every acknowledged write is on the new primary');
    t.diagnostic(`${onB.size} rows on b; ${result.discarded.commits} unacknowledged commits discarded`);

    const record = rc.topology().history.at(-1);
    assert.deepEqual([record?.action, record?.to, record?.lostCommits, record?.lostCommitsAcknowledged, record?.forced], ['failover', 'b', result.discarded.commits, 'no', undefined]);
    const alerts = await rc.cli('alerts', 'list', '--json', '--code', 'replication.failover');
    assert.equal(alerts.code, 0, alerts.stderr);
    const [alert] = JSON.parse(alerts.stdout) as { severity: string; summary: string }[];
    assert.equal(alert?.severity, 'warning');
    assert.ok(alert.summary.startsWith(`failover from main to b (timeline 2); discarded ${result.discarded.commits} unacknowledged commit(s)`), alert.summary);
  });

  test('a role whose commits do not wait for a standby: refused, saying so and what --force loses; --force then reports them as possibly acknowledged', async () => {
    const rebuilt = await rc.cli('cluster', 'rebuild', 'main');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    await eventually('main streaming from b', async () => (nodeIn(await rc.status(), 'main').receiver === 'streaming' ? true : undefined));
    await rc.sql('b', 'CREATE ROLE batch_loader LOGIN');
    await rc.sql('b', "ALTER ROLE batch_loader SET synchronous_commit = 'local'");
    const writers = startWriters(rc, 'b', 2, 1_000_000);
    await eventually('acknowledged writes on b', () => Promise.resolve(writers.acked.size >= 50 ? true : undefined));
    // The rebuild named main in b's synchronous_standby_names.
    await syncSettled(rc.pgData('b'));
    await freezeWalSender(rc, 'b', 'main');
    const late = startWriters(rc, 'b', 2, 2_000_000);
    await new Promise((r) => setTimeout(r, 300));
    await rc.kill('b');
    await Promise.all([writers.done(), late.done()]);

    const refused = await rc.cli('cluster', 'failover', '--to', 'main');
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /node main is .* of WAL behind b, holding \d+ committed transaction\(s\).*they may have been acknowledged to clients: synchronous_commit is set to local for role batch_loader .*add --force to accept the loss of \d+ committed transaction\(s\)/s);
    assert.equal(rc.topology().primary, 'b', 'nothing changed');

    const forced = await rc.cli('cluster', 'failover', '--to', 'main', '--force');
    assert.equal(forced.code, 0, forced.stderr);
    const lost = /lost by --force: (\d+) committed transaction\(s\), possibly acknowledged, \([\d.]+ k?B of WAL, the last made at [^)]+ UTC\)/.exec(forced.stderr);
    assert.ok(lost, forced.stderr);
    const record = rc.topology().history.at(-1);
    assert.deepEqual([record?.to, record?.forced, record?.lostCommits, record?.lostCommitsAcknowledged], ['main', true, Number(lost[1]), 'maybe']);
    const onMain = await rowsOn(rc, 'main');
    assert.deepEqual([...writers.acked].filter((k) => !onMain.has(k)), [], 'the writers (whose commits wait) lost nothing acknowledged');
  });
});
