/**
 * `taskflow drill failover` on real PostgreSQL through the real CLI: refused without a standby,
 * a synchronous drill that loses no acknowledged write and puts the cluster back, its evidence in
 * the control database (`drill list`, `drill show`), the refusals (production, a standby that is
 * down or behind, two primaries, bad options), and an asynchronous drill run straight after.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { DrillReport } from '../src/platform/drill/session.ts';
import type { LoadFigures } from '../src/platform/drill/measure.ts';
import { drillRows } from './helpers/drill.ts';
import { eventually, nodeIn, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

interface FailoverFigures {
  mode: string;
  from: string;
  to: string;
  load: LoadFigures;
  failover: { tookMs: number; gap: { known: boolean; missingCommits: number }; discarded: { commits: number; acknowledged: string } | null };
  restore: { node: string; method: string; rowsReplayed: number | null; modeRestored: boolean };
  ackFile: string;
}

async function drill(rc: ReplicatedCluster, ...args: string[]): Promise<DrillReport & { figures: FailoverFigures }> {
  const r = await rc.cli('drill', 'failover', '--json', '--duration', '2', ...args);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as DrillReport & { figures: FailoverFigures };
}

describe('failover drill', { timeout: 300_000 }, () => {
  let rc: ReplicatedCluster;
  let first: DrillReport & { figures: FailoverFigures };
  before(async () => {
    rc = await startReplicatedCluster();
  });
  after(async () => {
    await rc.cleanup();
  });

  test('refused without a standby, and for bad options', async () => {
    const none = await rc.cli('drill', 'failover');
    assert.equal(none.code, 4, none.stderr);
    assert.match(none.stderr, /refusing the drill: main has no standby to fail over to; add one first \('taskflow cluster standby add NAME'\)/);
    for (const [args, pattern] of [
      [['--mode', 'semi'], /--mode must be sync or async/],
      [['--writers', '-1'], /--writers must be an integer from 0 to 64/],
      [['--duration', '0'], /--duration must be a number of seconds/],
    ] as const) {
      const r = await rc.cli('drill', 'failover', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
    const added = await rc.cli('cluster', 'standby', 'add', 'b');
    assert.equal(added.code, 0, added.stderr);
  });

  test('a synchronous drill loses no acknowledged write, measures RTO and RPO, and puts the cluster back', async () => {
    first = await drill(rc, '--mode', 'sync', '--writers', '4');
    const f = first.figures;
    assert.equal(first.outcome, 'passed', first.reportMarkdown);
    assert.equal(first.storeError, null);
    assert.deepEqual([f.mode, f.from, f.to], ['sync', 'main', 'b']);
    assert.ok(f.load.acknowledgedByOldPrimary > 0, 'the load wrote before the kill');
    assert.ok(f.load.acknowledgedByNewPrimary > 0, 'and wrote again on the new primary');
    assert.equal(f.load.lostAcknowledged, 0, 'sync mode: no acknowledged write lost');
    assert.equal(f.load.rpoSeconds, 0);
    assert.ok(f.load.rtoSeconds !== null && f.load.rtoSeconds > 0);
    assert.equal(f.failover.gap.known, true, 'what the standby lacked was read from the dead primary\'s WAL');
    // The failover's own account of the commits it discarded, in the JSON and the Markdown evidence.
    assert.ok('discarded' in f.failover);
    assert.equal(f.failover.discarded?.commits ?? 0, f.failover.gap.missingCommits);
    if (f.failover.discarded) assert.match(first.reportMarkdown, /\| committed transactions discarded \| [\d,]+ \([^)]+\)[^|]*: (never acknowledged to a client|may have been acknowledged \(lost by --force\));/);
    else assert.match(first.reportMarkdown, /\| committed transactions discarded \| none \|/);
    assert.doesNotMatch(first.reportMarkdown, /acknowledged or not/);
    assert.equal(f.restore.method, 'rewind');
    assert.equal(f.restore.rowsReplayed, f.load.survivingRows, 'the rebuilt old primary has every row');
    assert.equal(f.restore.modeRestored, true);

    // What the client recorded: a header and one line per acknowledged write.
    const lines = readFileSync(f.ackFile, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'writer,seq,acked_at,node');
    assert.equal(lines.length - 1, f.load.acknowledged);

    // Every write the client recorded as acknowledged is on the new primary: checked here too, not only by the drill.
    const onB = await drillRows(rc, 'b', first.id);
    const missing = lines.slice(1).filter((line) => !onB.has(line.split(',').slice(0, 2).join(':')));
    assert.deepEqual(missing, []);
    const status = await rc.status();
    assert.equal(status.primary, 'b');
    assert.equal(status.mode, 'async', 'the mode the cluster had before the drill');
    assert.deepEqual(status.nodes.map((n) => [n.name, n.role, n.actual]), [['b', 'primary', 'primary'], ['main', 'standby', 'standby']]);
    await eventually('no problems after the drill', async () => ((await rc.status()).problems.length === 0 ? true : undefined));
  });

  test('the evidence is in the control database: drill list and drill show', async () => {
    const list = await rc.cli('drill', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as { id: string; kind: string; outcome: string; operator: string; finishedAt: string; figures: FailoverFigures }[];
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]?.id, rows[0]?.kind, rows[0]?.outcome], [first.id, 'failover', 'passed']);
    assert.match(rows[0]?.operator ?? '', /^cli:/);
    assert.equal(rows[0]?.figures.load.lostAcknowledged, 0);

    const table = await rc.cli('drill', 'list');
    assert.equal(table.code, 0);
    const line = table.stdout.split('\n').find((l) => l.startsWith(first.id));
    assert.deepEqual(line?.split(/\s+/).slice(1, 5).filter((_, i) => i !== 1), ['failover', 'passed', 'sync']);

    const show = await rc.cli('drill', 'show', first.id);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(show.stdout, first.reportMarkdown);
    assert.match(show.stdout, /^# Failover drill, sync mode, .* UTC: passed/);
    assert.match(show.stdout, /\| RPO: acknowledged writes lost \| 0 of [\d,]+ acknowledged by the old primary \|/);
    assert.match(show.stdout, /SIGKILL to the postmaster of main/);
    assert.match(show.stdout, /Synchronous mode lost no acknowledged write/);

    const missing = await rc.cli('drill', 'show', '00000000-0000-4000-8000-000000000000');
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /there is no drill/);
  });

  test('refusals: production without the flag, a standby down or behind, two primaries', async () => {
    assert.equal((await rc.cli('tenant', 'create', 'acme')).code, 0);
    const production = await rc.cli('drill', 'failover');
    assert.equal(production.code, 2, production.stderr);
    assert.match(production.stderr, /refusing the drill: this cluster serves tenants \(acme\): it is production\..* add --yes-this-is-production/i);

    assert.equal((await rc.cli('cluster', 'stop', 'main')).code, 0);
    const down = await rc.cli('drill', 'failover', '--yes-this-is-production');
    assert.equal(down.code, 4, down.stderr);
    assert.match(down.stderr, /refusing the drill: no standby is ready to take over \(main is unreachable \(not running\)\)/);
    assert.equal((await rc.cli('cluster', 'start', 'main')).code, 0);

    await rc.sql('main', 'SELECT pg_wal_replay_pause()');
    await rc.sql('b', 'CREATE TABLE filler AS SELECT generate_series(1, 1000) AS n');
    const behind = await rc.cli('drill', 'failover', '--yes-this-is-production');
    assert.equal(behind.code, 4, behind.stderr);
    assert.match(behind.stderr, /refusing the drill: no standby is ready to take over \(main has its replay paused\)/);
    await rc.sql('main', 'SELECT pg_wal_replay_resume()');

    // main promoted behind TaskFlow's back: two nodes accept writes.
    await rc.pgCtl('main', 'promote', '--wait');
    const split = await rc.cli('drill', 'failover', '--yes-this-is-production');
    assert.equal(split.code, 4, split.stderr);
    assert.match(split.stderr, /refusing the drill: two nodes claim to be primary\. b \(timeline \d+\) and main \(timeline \d+\) both accept writes/);
    const rebuilt = await rc.cli('cluster', 'rebuild', 'main');
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    const list = JSON.parse((await rc.cli('drill', 'list', '--json')).stdout) as unknown[];
    assert.equal(list.length, 1, 'a refused drill leaves no record: it changed nothing');
  });

  test('an asynchronous drill runs straight after, the other way round, on a production cluster with the flag', async () => {
    await eventually('main streams again', async () => (nodeIn(await rc.status(), 'main').receiver === 'streaming' ? true : undefined));
    const second = await drill(rc, '--mode', 'async', '--writers', '2', '--yes-this-is-production');
    const f = second.figures;
    assert.equal(second.outcome, 'passed', second.reportMarkdown);
    assert.deepEqual([f.mode, f.from, f.to], ['async', 'b', 'main']);
    assert.ok(f.load.acknowledgedByNewPrimary > 0);
    // Async mode may lose what the standby had not received; whatever it lost is counted.
    assert.ok(f.load.lostAcknowledged >= 0 && f.load.rpoSeconds >= 0);
    assert.match(second.reportMarkdown, /Asynchronous mode lost \d+ acknowledged write\(s\)/);
    const status = await rc.status();
    assert.deepEqual(status.nodes.map((n) => [n.name, n.role, n.actual]), [['main', 'primary', 'primary'], ['b', 'standby', 'standby']]);
    assert.equal((await rc.cli('tenant', 'list')).code, 0, 'the tenant is served from the new primary');
  });
});
