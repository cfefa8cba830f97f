/**
 * Failover away from a remote primary: its WAL and configuration are read on its machine over SSH
 * (pg_waldump there, the script on the channel's stdin), so the crash of a synchronous remote
 * primary fails over without --force like a local one; when its machine cannot be reached, the
 * failover is refused as before. The "other machine" is this one through a real sshd on a loopback
 * port (test/helpers/replication.ts), as in replication-remote.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import type { FailoverResult } from '../src/platform/replication/failover.ts';
import type { Topology } from '../src/platform/replication/topology.ts';
import { sshdUnavailable } from './backup-fixtures.ts';
import { addRemoteStandby, eventually, killPostmasterIn, nodeIn, startPostgresSshd, switchoverTo, startReplicatedCluster, type PostgresSshd, type ReplicatedCluster } from './helpers/replication.ts';
import { freezeWalSender, rowsOn, startWriters, syncSettled } from './helpers/sync-writers.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (sshd logs in as the postgres OS user)' : sshdUnavailable();

describe('failover from a remote primary', { timeout: 240_000, skip: skip ?? false }, () => {
  let rc: ReplicatedCluster;
  let sshd: PostgresSshd;
  const remoteDir = () => join(sshd.workDir, 'c');

  before(async () => {
    rc = await startReplicatedCluster();
    sshd = await startPostgresSshd();
    await rc.sql('main', 'CREATE TABLE sync_rows (writer int, seq int, at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (writer, seq))');
    await addRemoteStandby(rc, sshd, remoteDir());
    await switchoverTo(rc, 'c');
    const mode = await rc.cli('cluster', 'mode', 'sync');
    assert.equal(mode.code, 0, mode.stderr);
  });
  after(async () => {
    killPostmasterIn(remoteDir());
    await rc.cleanup();
    await sshd.cleanup();
  });

  test('the remote sync primary crashes: unreachable over SSH it is refused as before; reachable, its WAL is read there and the failover needs no --force', async (t) => {
    const writers = startWriters(rc, 'c', 3);
    await eventually('acknowledged writes on c', () => Promise.resolve(writers.acked.size >= 100 ? true : undefined));
    await syncSettled(remoteDir());
    await freezeWalSender(rc, 'c', 'main');
    const late = startWriters(rc, 'c', 2, 1_000_000);
    await new Promise((r) => setTimeout(r, 300));
    killPostmasterIn(remoteDir());
    await Promise.all([writers.done(), late.done()]);

    // c's machine cannot be reached (its recorded SSH port is one nobody listens on): nothing can be measured.
    const path = join(rc.dataDir, 'replication.json');
    const saved = readFileSync(path, 'utf8');
    const topology = JSON.parse(saved) as Topology;
    const c = topology.nodes.c;
    assert.ok(c?.remote);
    writeFileSync(path, JSON.stringify({ ...topology, nodes: { ...topology.nodes, c: { ...c, remote: { ...c.remote, sshPort: await freePort() } } } }));
    const unreachable = await rc.cli('cluster', 'failover', '--to', 'main');
    writeFileSync(path, saved);
    assert.equal(unreachable.code, 4, unreachable.stderr);
    assert.match(unreachable.stderr, /cannot tell how far behind node main is \(cannot read postgres@127\.0\.0\.1:\d+:.*\/pg_wal: ssh postgres@127\.0\.0\.1:\d+: cannot reach the server.*add --force/);
    assert.equal(rc.topology().primary, 'c', 'nothing changed');

    const started = performance.now();
    const r = await rc.cli('cluster', 'failover', '--to', 'main', '--json');
    assert.equal(r.code, 0, r.stderr);
    t.diagnostic(`failover from the remote primary, measured over SSH: ${Math.round(performance.now() - started)} ms (CLI included)`);
    const result = JSON.parse(r.stdout) as FailoverResult;
    assert.equal(result.forced, false);
    assert.ok(result.gap?.known, 'the gap was measured on c');
    assert.equal(result.discarded?.acknowledged, 'no');
    assert.ok(result.discarded.commits >= 2, `the late writers' commits (${result.discarded.commits})`);
    assert.equal(result.discarded.commits, result.gap.missingCommits);
    assert.match(result.discarded.why, /c ran in synchronous mode \(synchronous_standby_names 'ANY 1 \("main"\)'/);
    const onMain = await rowsOn(rc, 'main');
    assert.deepEqual([...writers.acked].filter((k) => !onMain.has(k)), [], 'every acknowledged write is on main');
    const status = await rc.status();
    assert.deepEqual([status.primary, nodeIn(status, 'c').role], ['main', 'fenced']);
  });
});
