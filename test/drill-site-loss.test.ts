/**
 * `taskflow drill site-loss` on real PostgreSQL through the real CLI: site-a holds the primary, a
 * second node and a filesystem backup repository; site-b holds one standby. The drill kills both
 * site-a nodes, moves their directories and the repository away, recovers both tenants at site-b,
 * reports each tenant's recovery time and rows, and puts site-a back.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateIdentity } from '../src/platform/backup/age-keys.ts';
import type { DrillReport } from '../src/platform/drill/session.ts';
import type { LoadFigures } from '../src/platform/drill/measure.ts';
import type { TenantRecovery } from '../src/platform/drill/tenant-check.ts';
import { queryDatabase } from './helpers/drill.ts';
import { startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

interface SiteLossFigures {
  lostSite: string;
  to: string;
  load: LoadFigures;
  tenants: TenantRecovery[];
  tenantRowsLost: number;
  removed: { nodes: { name: string; aside: string | null }[]; repositories: { name: string; note: string }[] };
  rebuilt: string[];
}

describe('site-loss drill', { timeout: 300_000 }, () => {
  let rc: ReplicatedCluster;
  let repository: string;
  before(async () => {
    rc = await startReplicatedCluster();
    for (const name of ['b', 'c']) {
      const r = await rc.cli('cluster', 'standby', 'add', name);
      assert.equal(r.code, 0, r.stderr);
    }
    for (const slug of ['acme', 'globex']) assert.equal((await rc.cli('tenant', 'create', slug)).code, 0);
    await queryDatabase(rc, 'main', 'tenant_acme', "INSERT INTO app.projects (key, name) VALUES ('OPS', 'Operations'), ('WEB', 'Website')");
    repository = join(rc.dataDir, '..', 'repository-site-a');
    mkdirSync(repository);
    writeFileSync(join(repository, 'marker'), 'site-a backups\n');
  });
  after(async () => {
    await rc.cleanup();
  });

  test('refused while every node is at the primary\'s site', async () => {
    const sameSite = await rc.cli('drill', 'site-loss', '--yes-this-is-production');
    assert.equal(sameSite.code, 4, sameSite.stderr);
    assert.match(sameSite.stderr, /refusing the drill: every standby is at local, the primary's site, so losing the site loses them too/);
    const fromBackups = await rc.cli('drill', 'site-loss', '--assume-standby-lost', '--yes-this-is-production');
    assert.equal(fromBackups.code, 4, fromBackups.stderr);
    assert.match(fromBackups.stderr, /refusing the drill: there is no node at a site other than local to restore the cluster onto/);
    const stray = await rc.cli('drill', 'site-loss', '--identity-file', '/nonexistent');
    assert.equal(stray.code, 2);
    assert.match(stray.stderr, /--identity-file goes with --assume-standby-lost/);
  });

  test('site-a is lost: every tenant is back at site-b with all its rows, then site-a is put back', async () => {
    const { recipient } = generateIdentity();
    writeFileSync(
      join(rc.dataDir, 'config.json'),
      JSON.stringify({
        replication: { nodes: { main: { site: 'site-a' }, c: { site: 'site-a' }, b: { site: 'site-b' } } },
        backup: {
          allowedJurisdictions: ['DE'],
          recipients: [recipient],
          repositories: [{ name: 'site-a-disk', kind: 'filesystem', region: 'site-a', jurisdiction: 'DE', path: repository }],
        },
      }),
    );
    const production = await rc.cli('drill', 'site-loss');
    assert.equal(production.code, 2);
    assert.match(production.stderr, /this cluster serves tenants \(acme, globex\): it is production/);

    const r = await rc.cli('drill', 'site-loss', '--yes-this-is-production', '--writers', '2', '--duration', '2', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as DrillReport & { figures: SiteLossFigures };
    const f = report.figures;
    assert.equal(report.outcome, 'passed', report.reportMarkdown);
    assert.deepEqual([f.lostSite, f.to], ['site-a', 'b']);
    assert.deepEqual(f.removed.nodes.map((n) => n.name).sort(), ['c', 'main']);
    assert.deepEqual(f.removed.repositories, [{ name: 'site-a-disk', path: repository, aside: null, note: 'moved aside' }]);
    assert.deepEqual(f.tenants.map((t) => t.slug), ['acme', 'globex']);
    for (const t of f.tenants) {
      assert.ok(t.recoverySeconds !== null && t.recoverySeconds > 0, `${t.slug} recovered: ${JSON.stringify(t)}`);
      assert.equal(t.rowsLost, 0);
      assert.equal(t.rowsAfter, t.rowsBefore);
    }
    assert.ok((f.tenants[0]?.rowsBefore ?? 0) >= 2, 'acme had its two projects (and more) before');
    assert.ok(f.load.acknowledgedByNewPrimary > 0);
    assert.match(report.reportMarkdown, /^# Site-loss drill, site site-a, .* UTC: passed/);
    assert.match(report.reportMarkdown, /\| acme \| \d+\.\d{3} s \| [\d,]+ \| [\d,]+ \| 0 \| none \|/);
    assert.match(report.reportMarkdown, /repository site-a-disk \(.*\): moved aside/);

    // Site-a is back: both nodes stream from b, the repository is where it was, nothing left aside.
    assert.deepEqual(f.rebuilt.sort(), ['c', 'main']);
    const status = await rc.status();
    assert.equal(status.primary, 'b');
    assert.deepEqual(status.nodes.map((n) => [n.name, n.role, n.actual, n.site]), [
      ['b', 'primary', 'primary', 'site-b'],
      ['c', 'standby', 'standby', 'site-a'],
      ['main', 'standby', 'standby', 'site-a'],
    ]);
    assert.equal(readFileSync(join(repository, 'marker'), 'utf8'), 'site-a backups\n');
    assert.deepEqual(readdirSync(join(rc.dataDir, 'postgres')).filter((e) => e.includes('site-loss')), []);
    assert.ok(!existsSync(`${repository}.site-loss`));

    // The tenants are served from site-b with their data.
    const projects = await queryDatabase<{ key: string }>(rc, 'b', 'tenant_acme', 'SELECT key FROM app.projects ORDER BY key');
    assert.deepEqual(projects.map((p) => p.key), ['OPS', 'WEB']);
    assert.equal((await rc.cli('tenant', 'list')).code, 0);
    const listed = JSON.parse((await rc.cli('drill', 'list', '--kind', 'site-loss', '--json')).stdout) as { id: string; outcome: string }[];
    assert.deepEqual(listed.map((d) => [d.id, d.outcome]), [[report.id, 'passed']]);
  });
});
