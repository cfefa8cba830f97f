/**
 * Switchover on real PostgreSQL: a writer runs throughout and no acknowledged row is lost, the old
 * primary follows the new one, and a standby that lags or cannot catch up is refused with nothing
 * changed.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

interface Writer {
  /** How many INSERTs were acknowledged so far. */
  count(): number;
  /** Stops writing and returns the ids whose INSERT was acknowledged. */
  stop(): Promise<number[]>;
}

/** Inserts rows one by one into whichever node is the primary, reconnecting on errors, recording each acknowledged id. */
function startWriter(rc: ReplicatedCluster, firstId: number): Writer {
  const acknowledged: number[] = [];
  const state = { running: true, next: firstId };
  const running = () => state.running;
  const loop = (async () => {
    while (running()) {
      try {
        const client = await rc.connect(rc.topology().primary);
        try {
          while (running()) {
            const id = state.next++;
            await client.query('INSERT INTO ha_rows VALUES ($1, $2)', [id, 'written during a switchover']);
            acknowledged.push(id);
          }
        } finally {
          await client.end().catch(() => undefined);
        }
      } catch {
        // The primary is stopping or read-only: try again, wherever the primary is now.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  return {
    count: () => acknowledged.length,
    async stop() {
      state.running = false;
      await loop;
      return acknowledged;
    },
  };
}

async function missingOn(rc: ReplicatedCluster, node: string, ids: number[]): Promise<number[]> {
  const rows = await rc.sql<{ id: number }>(node, 'SELECT id FROM ha_rows WHERE id = ANY($1::int[])', [ids]);
  const present = new Set(rows.map((r) => r.id));
  return ids.filter((id) => !present.has(id));
}

describe('switchover', { timeout: 480_000 }, () => {
  let rc: ReplicatedCluster;
  before(async () => {
    rc = await startReplicatedCluster();
    await rc.sql('main', 'CREATE TABLE ha_rows (id int PRIMARY KEY, note text)');
    const r = await rc.cli('cluster', 'standby', 'add', 'b');
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await rc.cleanup();
  });

  test('under a steady writer, no acknowledged row is lost and the old primary follows the new one', async (t) => {
    const writer = startWriter(rc, 1);
    await eventually('some writes', async () => ((await rc.sql<{ n: string }>('main', 'SELECT count(*) AS n FROM ha_rows'))[0]?.n !== '0' ? true : undefined));
    const r = await rc.cli('cluster', 'switchover', '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { from: string; to: string; timeline: number; rejoined: boolean; writeStopMs: number; tookMs: number; finalLsn: string };
    assert.deepEqual([result.from, result.to, result.timeline, result.rejoined], ['main', 'b', 2, true]);
    // Let the writer find the new primary (the old one is read-only now) and write there too.
    const atSwitch = writer.count();
    await eventually('writes on the new primary', () => Promise.resolve(writer.count() > atSwitch + 10 ? true : undefined));
    const acknowledged = await writer.stop();
    t.diagnostic(`switchover: writes refused for ${result.writeStopMs} ms, command ${result.tookMs} ms; ${acknowledged.length} rows acknowledged during the run`);
    assert.ok(acknowledged.length > 10);
    assert.deepEqual(await missingOn(rc, 'b', acknowledged), [], 'every acknowledged row is on the new primary');
    await eventually('every acknowledged row on the old primary, now a standby', async () => ((await missingOn(rc, 'main', acknowledged)).length === 0 ? true : undefined));

    const status = await eventually('main streams from b', async () => {
      const s = await rc.status();
      return nodeIn(s, 'main').receiver === 'streaming' && nodeIn(s, 'main').lagBytes === 0 ? s : undefined;
    });
    assert.equal(status.primary, 'b');
    assert.deepEqual(
      status.nodes.map((n) => [n.name, n.role, n.actual, n.upstream, n.timeline]),
      [
        ['b', 'primary', 'primary', null, 2],
        ['main', 'standby', 'standby', 'b', 2],
      ],
    );
    assert.deepEqual(status.problems, []);
    const [recovery] = await rc.sql<{ r: boolean }>('main', 'SELECT pg_is_in_recovery() AS r');
    assert.equal(recovery?.r, true);
  });

  test('in sync mode, switching back loses nothing either', async () => {
    assert.equal((await rc.cli('cluster', 'mode', 'sync')).code, 0);
    const writer = startWriter(rc, 100_000);
    await eventually('some writes', () => Promise.resolve(writer.count() > 10 ? true : undefined));
    const r = await rc.cli('cluster', 'switchover', '--to', 'main', '--json');
    assert.equal(r.code, 0, r.stderr);
    const atSwitch = writer.count();
    await eventually('writes on the new primary', () => Promise.resolve(writer.count() > atSwitch + 10 ? true : undefined));
    const acknowledged = await writer.stop();
    assert.ok(acknowledged.length > 0);
    assert.deepEqual(await missingOn(rc, 'main', acknowledged), []);
    const status = await eventually('b counted for synchronous commit', async () => {
      const s = await rc.status();
      return nodeIn(s, 'b').syncState === 'quorum' ? s : undefined;
    });
    assert.equal(status.primary, 'main');
    assert.equal(status.synchronousStandbyNames, 'ANY 1 ("b")');
    assert.equal((await rc.cli('cluster', 'mode', 'async')).code, 0);
  });

  test('a standby that lags beyond the threshold, or cannot catch up in time, is refused and nothing changes', async () => {
    const config = join(rc.dataDir, '..', 'strict.json');
    writeFileSync(config, JSON.stringify({ replication: { switchoverMaxLagBytes: 1024, catchUpTimeoutSeconds: 2 } }));
    await rc.sql('b', 'SELECT pg_wal_replay_pause()');
    await rc.sql('main', "INSERT INTO ha_rows SELECT g, repeat('x', 100) FROM generate_series(200000, 200200) g");
    await eventually('lag beyond 1024 bytes', async () => ((nodeIn(await rc.status(), 'b').lagBytes ?? 0) > 1024 ? true : undefined));
    const lagging = await rc.cli('cluster', 'switchover', '--config', config);
    assert.equal(lagging.code, 4);
    assert.match(lagging.stderr, /node b is .* \(\d+ bytes\) behind main, more than replication\.switchoverMaxLagBytes \(1024\); wait until it catches up/);

    // Within the threshold, but replay stays paused: the old primary comes back and nothing changes.
    const lenient = join(rc.dataDir, '..', 'lenient.json');
    writeFileSync(lenient, JSON.stringify({ replication: { catchUpTimeoutSeconds: 2 } }));
    const stuck = await rc.cli('cluster', 'switchover', '--config', lenient);
    assert.equal(stuck.code, 4);
    assert.match(stuck.stderr, /node b did not replay main's final WAL .* within 2 s .*; main is the primary again and nothing changed/);
    assert.equal(rc.topology().primary, 'main');
    await rc.sql('main', "INSERT INTO ha_rows VALUES (300000, 'main takes writes again')");
    await rc.sql('b', 'SELECT pg_wal_replay_resume()');
    await eventually('b caught up again', async () => {
      const s = await rc.status();
      return nodeIn(s, 'b').lagBytes === 0 && nodeIn(s, 'b').receiver === 'streaming' ? true : undefined;
    });

    const toPrimary = await rc.cli('cluster', 'switchover', '--to', 'main');
    assert.equal(toPrimary.code, 4);
    assert.match(toPrimary.stderr, /node main is already the primary/);
    const unknown = await rc.cli('cluster', 'switchover', '--to', 'nowhere');
    assert.equal(unknown.code, 3);
    assert.equal((await rc.cli('cluster', 'stop', 'main')).code, 0);
    const primaryDown = await rc.cli('cluster', 'switchover');
    assert.equal(primaryDown.code, 4);
    assert.match(primaryDown.stderr, /A switchover needs a running primary; when it is lost, use 'taskflow cluster failover --to b'/);
    assert.equal((await rc.cli('cluster', 'start')).code, 0);
  });
});
