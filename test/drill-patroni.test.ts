/**
 * `taskflow drill failover --engine patroni` through the real CLI on real components: etcd and two
 * Patroni nodes with PostgreSQL 15 on loopback (synchronous_mode on, primary_start_timeout 0). The
 * drill kills the leader's postmaster under a writer load, TaskFlow does not fail over, Patroni
 * elects the other node; the evidence says so, RTO is measured and, in synchronous mode, no
 * acknowledged write is lost. Then the refusals: Patroni not configured, bad options, production
 * without the flag, and a cluster left with no healthy replica.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LoadFigures } from '../src/platform/drill/measure.ts';
import type { DrillReport } from '../src/platform/drill/session.ts';
import { runCli } from './helpers/cli.ts';
import { startPatroniDrillSetup, type PatroniDrillSetup } from './helpers/patroni-drill.ts';
import { tempDir } from './helpers/platform.ts';

interface PatroniFigures {
  engine: string;
  mode: string;
  from: string;
  to: string;
  load: LoadFigures;
  patroni: { electedSeconds: number | null; settings: { primaryStartTimeout: number; synchronousMode: boolean } };
  restore: { node: string; method: string; role: string; rowsReplayed: number | null } | null;
  failover?: unknown;
}

describe('failover drill through Patroni', { timeout: 240_000 }, () => {
  let s: PatroniDrillSetup;
  before(async () => {
    s = await startPatroniDrillSetup();
  });
  after(async () => {
    await s.cleanup();
  });

  test('refused without Patroni configured, and for bad options', async () => {
    const bare = await runCli(['drill', 'failover', '--engine', 'patroni', '--data-dir', tempDir('no-patroni')]);
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /refusing the drill: --engine patroni drills a cluster that Patroni runs, and none is configured: set postgres\.patroni\.endpoints/);
    for (const [args, pattern] of [
      [['--engine', 'cnpg'], /--engine must be manual or patroni, not 'cnpg'/],
      [['--engine', 'patroni', '--mode', 'async'], /--mode goes with the manual engine: Patroni's synchronous_mode decides/],
    ] as const) {
      const r = await s.cli('drill', 'failover', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
  });

  test('Patroni elects the new leader; RTO is measured and synchronous mode loses no acknowledged write', async (t) => {
    const old = await s.patroni.waitForLeader(10_000);
    const r = await s.cli('drill', 'failover', '--engine', 'patroni', '--json', '--duration', '2', '--writers', '2');
    assert.equal(r.code, 0, `${r.stderr}\n${s.patroni.logs(old)}`);
    const report = JSON.parse(r.stdout) as DrillReport & { figures: PatroniFigures };
    const f = report.figures;
    t.diagnostic(`Patroni drill: ${f.from} -> ${f.to}, elected ${String(f.patroni.electedSeconds)} s, RTO ${String(f.load.rtoSeconds)} s, ${f.load.acknowledged} acknowledged, ${f.load.lostAcknowledged} lost`);
    assert.equal(report.outcome, 'passed');
    assert.equal(f.engine, 'patroni');
    assert.equal(f.failover, undefined, "TaskFlow's failover command was not used");
    assert.equal(f.from, old);
    assert.notEqual(f.to, old);
    assert.equal(await s.patroni.waitForLeader(10_000), f.to, 'Patroni leads with the node the drill reports');
    assert.equal(f.mode, 'sync');
    assert.equal(f.patroni.settings.synchronousMode, true);
    assert.equal(f.patroni.settings.primaryStartTimeout, 0);
    assert.ok(f.load.rtoSeconds !== null && f.load.rtoSeconds > 0, `RTO measured: ${String(f.load.rtoSeconds)}`);
    assert.ok(f.load.acknowledgedByOldPrimary > 0 && f.load.acknowledgedByNewPrimary > 0, 'writes acknowledged by both leaders');
    assert.equal(f.load.lostAcknowledged, 0, `lost: ${JSON.stringify(f.load.lostSample)}`);
    assert.equal(f.load.rpoSeconds, 0);
    assert.ok(f.restore, 'Patroni rejoined the old leader');
    assert.equal(f.restore.node, old);
    assert.equal(f.restore.role, 'sync_standby');
    assert.equal(f.restore.rowsReplayed, f.load.survivingRows);
    assert.match(report.reportMarkdown, /^# Failover drill through Patroni, sync mode, .* UTC: passed/);
    assert.match(report.reportMarkdown, /\| engine \| patroni \|/);
    assert.ok(report.reportMarkdown.includes(`| promoted | ${f.to} by Patroni`), 'the report names the member Patroni promoted');

    const listed = JSON.parse((await s.cli('drill', 'list', '--json')).stdout) as { id: string; parameters: { engine: string } }[];
    assert.deepEqual([listed[0]?.id, listed[0]?.parameters.engine], [report.id, 'patroni']);
    const table = await s.cli('drill', 'list');
    assert.match(table.stdout.split('\n')[0] ?? '', /\bENGINE\b/);
    assert.match(table.stdout.split('\n').find((l) => l.startsWith(report.id)) ?? '', /\bsync\s+patroni\b/);
  });

  test('refused on production without the flag, and with no healthy replica', async () => {
    const created = await s.cli('tenant', 'create', 'acme');
    assert.equal(created.code, 0, created.stderr);
    const prod = await s.cli('drill', 'failover', '--engine', 'patroni');
    assert.equal(prod.code, 2, prod.stderr);
    assert.match(prod.stderr, /refusing the drill: this cluster serves tenants \(acme\): it is production.* --yes-this-is-production/);

    const leader = await s.patroni.waitForLeader(10_000);
    const replica = s.patroni.nodes.find((n) => n.name !== leader);
    assert.ok(replica);
    s.patroni.kill(replica.name);
    // Its member key expires after ttl; until then Patroni still lists it as running, and a drill
    // asked for then would really run (and fail to elect). Wait until the leader no longer lists it so.
    const endpoint = s.patroni.node(leader).endpoint;
    const deadline = Date.now() + 60_000;
    const listedHealthy = async (): Promise<boolean> => {
      const view = (await (await fetch(`${endpoint}/cluster`)).json()) as { members?: { name: string; state?: string }[] };
      return (view.members ?? []).some((m) => m.name === replica.name && (m.state === 'running' || m.state === 'streaming'));
    };
    while ((await listedHealthy()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500));
    const r = await s.cli('drill', 'failover', '--engine', 'patroni', '--yes-this-is-production');
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /refusing the drill: the Patroni cluster has no healthy replica to elect in place of /);
  });
});
