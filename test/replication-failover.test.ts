/**
 * Failover on real PostgreSQL: kill -9 of the primary, refusals for standbys that are behind, down
 * or not standbys, promotion of the one that has everything, fencing of the old primary, refusal
 * of two primaries, and the old primary rebuilt as a standby of the new one.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

async function has(rc: ReplicatedCluster, node: string, id: number): Promise<boolean> {
  return (await rc.sql(node, 'SELECT 1 FROM ha_rows WHERE id = $1', [id])).length === 1;
}

describe('failover', { timeout: 600_000 }, () => {
  let rc: ReplicatedCluster;
  before(async () => {
    rc = await startReplicatedCluster();
    await rc.sql('main', 'CREATE TABLE ha_rows (id int PRIMARY KEY, note text)');
    for (const name of ['b', 'c']) {
      const r = await rc.cli('cluster', 'standby', 'add', name);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await rc.cleanup();
  });

  test('a standby that lacks committed writes of the dead primary is refused, saying how far behind', async () => {
    await rc.sql('main', "INSERT INTO ha_rows VALUES (1, 'everyone has this')");
    await eventually('row 1 on both standbys', async () => ((await has(rc, 'b', 1)) && (await has(rc, 'c', 1)) ? true : undefined));
    assert.equal((await rc.cli('cluster', 'stop', 'c')).code, 0);
    await rc.sql('main', "INSERT INTO ha_rows VALUES (2, 'only b has this')");
    await eventually('row 2 on b', async () => ((await has(rc, 'b', 2)) ? true : undefined));
    await eventually('b caught up', async () => (nodeIn(await rc.status(), 'b').lagBytes === 0 ? true : undefined));

    await rc.kill('main');
    const down = await rc.status();
    assert.equal(nodeIn(down, 'main').actual, 'down');
    assert.ok(down.problems.some((p) => /the primary main is down/.test(p)), down.problems.join('\n'));
    assert.equal((await rc.cli('cluster', 'start', 'c')).code, 0);

    const behind = await rc.cli('cluster', 'failover', '--to', 'c');
    assert.equal(behind.code, 4, behind.stderr);
    assert.match(behind.stderr, /node c is .* \(\d+ bytes\) of WAL behind main, holding 1 committed transaction\(s\), the last committed at .* add --force/);
    assert.equal(rc.topology().primary, 'main', 'nothing changed');
  });

  test('a node that is not a standby, or is down, is refused', async () => {
    const self = await rc.cli('cluster', 'failover', '--to', 'main');
    assert.equal(self.code, 4);
    assert.match(self.stderr, /node main is already the primary/);
    assert.equal((await rc.cli('cluster', 'stop', 'b')).code, 0);
    const stopped = await rc.cli('cluster', 'failover', '--to', 'b');
    assert.equal(stopped.code, 4);
    assert.match(stopped.stderr, /node b is not reachable \(not running\); start it first/);
    assert.equal((await rc.cli('cluster', 'start', 'b')).code, 0);
  });

  test('failover to the standby that has everything: writes go on there, the other standby follows it', async () => {
    const r = await rc.cli('cluster', 'failover', '--to', 'b', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { from: string; to: string; timeline: number; oldPrimary: string; gap: { known: boolean; missingCommits: number }; tookMs: number };
    assert.deepEqual([result.from, result.to, result.timeline, result.oldPrimary], ['main', 'b', 2, 'was-down']);
    assert.equal(result.gap.known && result.gap.missingCommits, 0);
    await rc.sql('b', "INSERT INTO ha_rows VALUES (3, 'written on the new primary')");

    assert.equal(await has(rc, 'b', 2), true, 'the write only b had survived');
    await eventually('c follows b and gets rows 2 and 3', async () => ((await has(rc, 'c', 2)) && (await has(rc, 'c', 3)) ? true : undefined));
    const status = await rc.status();
    assert.equal(status.primary, 'b');
    assert.deepEqual(
      status.nodes.map((n) => [n.name, n.role, n.actual, n.upstream, n.timeline]),
      [
        ['b', 'primary', 'primary', null, 2],
        ['c', 'standby', 'standby', 'b', 2],
        ['main', 'fenced', 'down', null, null],
      ],
    );
    assert.equal(nodeIn(status, 'c').slot?.active, true);
    assert.equal(status.lastChange?.action, 'failover');

    // The next commands use the new primary.
    const url = await rc.cli('db', 'url', '--json');
    assert.equal(url.code, 0, url.stderr);
    assert.equal((JSON.parse(url.stdout) as { port: number }).port, rc.port('b'));
    assert.equal((await rc.cli('tenant', 'list')).code, 0);
  });

  test('the old primary is fenced: TaskFlow will not start it, and started anyway it is read-only', async () => {
    const refused = await rc.cli('cluster', 'start', 'main');
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /node main is fenced \(failover to b at .*\) and must not run as it is; make it a standby of b with 'taskflow cluster rebuild main'/);
    const again = await rc.cli('cluster', 'failover', '--to', 'main');
    assert.equal(again.code, 4);
    assert.match(again.stderr, /node main is not a standby: it was fenced/);

    await rc.pgCtl('main', 'start', '--wait');
    const [row] = await rc.sql<{ r: boolean }>('main', 'SELECT pg_is_in_recovery() AS r');
    assert.equal(row?.r, true, 'the fence makes it come up read-only');
    await assert.rejects(rc.sql('main', "INSERT INTO ha_rows VALUES (99, 'split brain')"), /read-only transaction/);
    const status = await rc.status();
    assert.equal(status.splitBrain, false);
    assert.equal(nodeIn(status, 'main').actual, 'standby');
    await rc.pgCtl('main', 'stop', '--wait', '--mode', 'fast');
  });

  test('an old primary that comes back as a primary (no fence) is refused everywhere until rebuilt', async () => {
    // As a site that was unreachable during the failover would come back: without TaskFlow's fence.
    rmSync(join(rc.pgData('main'), 'standby.signal'));
    rmSync(join(rc.pgData('main'), 'TASKFLOW_FENCED'));
    await rc.pgCtl('main', 'start', '--wait');
    const [row] = await rc.sql<{ r: boolean }>('main', 'SELECT pg_is_in_recovery() AS r');
    assert.equal(row?.r, false, 'main claims to be a primary');

    const status = await rc.cli('cluster', 'status');
    assert.equal(status.code, 4);
    assert.match(status.stderr, /b \(timeline 2\) and main \(timeline 1\) both accept writes, but the recorded primary is b\. main was fenced at .*: stop it/);
    for (const args of [['tenant', 'list'], ['cluster', 'failover', '--to', 'c'], ['cluster', 'switchover', '--to', 'c'], ['cluster', 'mode', 'sync'], ['cluster', 'standby', 'add', 'd']]) {
      const r = await rc.cli(...args);
      assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /both accept writes/, args.join(' '));
    }

    const rebuilt = await rc.cli('cluster', 'rebuild', 'main', '--json');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.equal((JSON.parse(rebuilt.stdout) as { method: string }).method, 'rewind');
    await rc.sql('b', "INSERT INTO ha_rows VALUES (4, 'after the rebuild')");
    await eventually('row 4 on the rebuilt node', async () => ((await has(rc, 'main', 4)) ? true : undefined));
    const healed = await rc.status();
    assert.equal(healed.splitBrain, false);
    assert.deepEqual(
      healed.nodes.map((n) => [n.name, n.role, n.actual, n.upstream]),
      [
        ['b', 'primary', 'primary', null],
        ['c', 'standby', 'standby', 'b'],
        ['main', 'standby', 'standby', 'b'],
      ],
    );
    await eventually('no problems', async () => ((await rc.status()).problems.length === 0 ? true : undefined));
  });

  test('kill -9 of the primary to the first write on the new one, timed', async (t) => {
    await rc.sql('b', "INSERT INTO ha_rows VALUES (5, 'just before the crash')");
    await eventually('row 5 on main', async () => ((await has(rc, 'main', 5)) ? true : undefined));
    const killedAt = performance.now();
    await rc.kill('b');
    const goneAt = performance.now();
    const r = await rc.cli('cluster', 'failover', '--to', 'main', '--json');
    const commandDoneAt = performance.now();
    assert.equal(r.code, 0, r.stderr);
    await rc.sql('main', "INSERT INTO ha_rows VALUES (6, 'first write after the failover')");
    const firstWriteAt = performance.now();
    const result = JSON.parse(r.stdout) as { timeline: number; tookMs: number };
    assert.equal(result.timeline, 3);
    t.diagnostic(
      `kill -9 to failover done: ${Math.round(commandDoneAt - killedAt)} ms (postmaster gone after ${Math.round(goneAt - killedAt)} ms; the command ${Math.round(commandDoneAt - goneAt)} ms, of which its own work ${result.tookMs} ms); kill -9 to first write on the new primary: ${Math.round(firstWriteAt - killedAt)} ms`,
    );
    assert.equal(await has(rc, 'main', 5), true, 'the acknowledged write before the crash is there');
    await eventually('c follows main', async () => ((await has(rc, 'c', 6)) ? true : undefined));
  });

  test('failover with the old primary still running stops and fences it, losing nothing', async () => {
    await rc.sql('main', "INSERT INTO ha_rows VALUES (7, 'committed on a live primary')");
    const r = await rc.cli('cluster', 'failover', '--to', 'c', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { oldPrimary: string; timeline: number; gap: { known: boolean; missingCommits: number; missingBytes: number } };
    assert.equal(result.oldPrimary, 'stopped');
    assert.equal(result.timeline, 4);
    assert.deepEqual([result.gap.known, result.gap.missingCommits, result.gap.missingBytes], [true, 0, 0]);
    assert.equal(await has(rc, 'c', 7), true);
    const status = await rc.status();
    assert.deepEqual(
      status.nodes.map((n) => [n.name, n.role, n.actual]),
      [
        ['c', 'primary', 'primary'],
        ['b', 'fenced', 'down'],
        ['main', 'fenced', 'down'],
      ],
    );
    // Both old primaries, the crashed one and the stopped one, come back as standbys of c.
    for (const node of ['b', 'main']) {
      const rebuilt = await rc.cli('cluster', 'rebuild', node);
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
    }
    await rc.sql('c', "INSERT INTO ha_rows VALUES (8, 'everyone follows c')");
    await eventually('row 8 on b and main', async () => ((await has(rc, 'b', 8)) && (await has(rc, 'main', 8)) ? true : undefined));
  });

  test('an interrupted failover is refused everywhere until the same command finishes it', async () => {
    // The state a failover leaves when it dies after fencing the old primary and before promoting.
    await rc.cli('cluster', 'stop', 'c');
    writeFileSync(join(rc.pgData('c'), 'standby.signal'), '');
    writeFileSync(join(rc.pgData('c'), 'TASKFLOW_FENCED'), 'fenced by hand for the test\n');
    const topology = rc.topology();
    const at = new Date().toISOString();
    topology.pending = { action: 'failover', from: 'c', to: 'b', startedAt: at };
    topology.nodes.c = { ...topology.nodes.c!, role: 'fenced', fence: { at, reason: 'failover to b', replacedBy: 'b' } };
    writeFileSync(join(rc.dataDir, 'replication.json'), JSON.stringify(topology));

    for (const args of [['tenant', 'list'], ['cluster', 'switchover'], ['cluster', 'failover', '--to', 'main'], ['cluster', 'rebuild', 'main']]) {
      const r = await rc.cli(...args);
      assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /a failover from c to b started at .* did not finish.*'taskflow cluster failover --to b'/, args.join(' '));
    }
    const finished = await rc.cli('cluster', 'failover', '--to', 'b', '--json');
    assert.equal(finished.code, 0, finished.stderr);
    assert.equal((JSON.parse(finished.stdout) as { resumed: boolean }).resumed, true);
    const status = await rc.status();
    assert.equal(status.primary, 'b');
    assert.equal(status.pending, null);
    assert.equal(nodeIn(status, 'main').upstream, 'b');
    await rc.sql('b', "INSERT INTO ha_rows VALUES (9, 'after the finished failover')");
    await eventually('main follows b', async () => ((await has(rc, 'main', 9)) ? true : undefined));
  });
});
