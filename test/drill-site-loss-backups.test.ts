/**
 * `taskflow drill site-loss --assume-standby-lost` on real PostgreSQL through the real CLI: site-a
 * holds the primary and a filesystem repository, site-b a standby and the off-site repository the
 * backups and the WAL archive go to. Every node is lost; the cluster is restored from the off-site
 * repository onto site-b's node, the tenant comes back with its rows, and the lost node is rebuilt
 * from the restored primary. Refused without the backup identity and without a snapshot.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { generateIdentity } from '../src/platform/backup/age-keys.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import type { LoadFigures } from '../src/platform/drill/measure.ts';
import type { DrillReport } from '../src/platform/drill/session.ts';
import type { TenantRecovery } from '../src/platform/drill/tenant-check.ts';
import { createLogger } from '../src/platform/log.ts';
import { openPlatform } from '../src/platform/platform.ts';
import { queryDatabase } from './helpers/drill.ts';
import { eventually, startReplicatedCluster, type ReplicatedCluster } from './helpers/replication.ts';

interface BackupsFigures {
  to: string;
  load: LoadFigures;
  tenants: TenantRecovery[];
  restoredFromBackups: { repository: string; snapshot: string; reached: { timeline: number | null } };
  removed: { nodes: { name: string }[]; repositories: { name: string; note: string }[] };
  rebuilt: string[];
}

describe('site-loss drill, the standby lost too: recovered from the off-site backups', { timeout: 300_000 }, () => {
  let rc: ReplicatedCluster;
  let identityFile: string;
  let localRepository: string;
  before(async () => {
    rc = await startReplicatedCluster();
    const root = join(rc.dataDir, '..');
    localRepository = join(root, 'repo-site-a');
    const offsite = join(root, 'repo-site-b');
    for (const dir of [localRepository, offsite]) {
      mkdirSync(dir);
      chmodSync(dir, 0o711);
    }
    writeFileSync(join(localRepository, 'marker'), 'site-a\n');
    const keys = generateIdentity();
    identityFile = join(root, 'identity.txt');
    writeFileSync(identityFile, `${keys.identity}\n`, { mode: 0o600 });
    writeFileSync(
      join(rc.dataDir, 'config.json'),
      JSON.stringify({
        replication: { nodes: { main: { site: 'site-a' }, b: { site: 'site-b' } } },
        backup: {
          allowedJurisdictions: ['DE'],
          recipients: [keys.recipient],
          repositories: [
            { name: 'offsite', kind: 'filesystem', region: 'site-b', jurisdiction: 'DE', path: offsite },
            { name: 'local', kind: 'filesystem', region: 'site-a', jurisdiction: 'DE', path: localRepository },
          ],
          primary: 'offsite',
          walArchiveTimeoutSeconds: 1,
        },
      }),
    );
    const added = await rc.cli('cluster', 'standby', 'add', 'b');
    assert.equal(added.code, 0, added.stderr);
    assert.equal((await rc.cli('tenant', 'create', 'acme')).code, 0);
    await queryDatabase(rc, 'main', 'tenant_acme', "INSERT INTO app.projects (key, name) VALUES ('OPS', 'Operations')");
  });
  after(async () => {
    await rc.cleanup();
  });

  test('refused without the backup identity, and while the off-site repository holds no snapshot', async () => {
    const noIdentity = await rc.cli('drill', 'site-loss', '--assume-standby-lost', '--yes-this-is-production');
    assert.equal(noIdentity.code, 2, noIdentity.stderr);
    assert.match(noIdentity.stderr, /refusing the drill: no age identity given/);
    const noSnapshot = await rc.cli('drill', 'site-loss', '--assume-standby-lost', '--yes-this-is-production', '--identity-file', identityFile);
    assert.equal(noSnapshot.code, 4, noSnapshot.stderr);
    assert.match(noSnapshot.stderr, /refusing the drill: repository offsite holds no snapshot of this cluster \(\d+\); take a snapshot first/);
  });

  test('every node lost: the cluster is restored onto b from the off-site repository, the tenant with its rows, then main is rebuilt', async () => {
    const platform = await openPlatform(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), { log: createLogger({ level: 'silent' }) });
    try {
      await takeSnapshot(platform);
    } finally {
      await platform.close({ stopCluster: false });
    }
    // A project written after the snapshot reaches the restore through the WAL archive.
    await queryDatabase(rc, 'main', 'tenant_acme', "INSERT INTO app.projects (key, name) VALUES ('WEB', 'Website')");
    const [segment] = await rc.sql<{ file: string }>('main', 'SELECT pg_walfile_name(pg_switch_wal()) AS file');
    await eventually('the segment with the WEB project archived', async () => {
      const [row] = await rc.sql<{ last: string | null }>('main', 'SELECT last_archived_wal AS last FROM pg_stat_archiver');
      return (row?.last ?? '') >= (segment?.file ?? 'x') ? true : undefined;
    });

    const r = await rc.cli('drill', 'site-loss', '--assume-standby-lost', '--yes-this-is-production', '--identity-file', identityFile, '--writers', '2', '--duration', '2', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as DrillReport & { figures: BackupsFigures };
    const f = report.figures;
    assert.equal(report.outcome, 'passed', report.reportMarkdown);
    assert.equal(f.to, 'b');
    assert.deepEqual(f.removed.nodes.map((n) => n.name).sort(), ['b', 'main'], 'the standby was lost too');
    assert.deepEqual(f.removed.repositories.map((x) => [x.name, x.note]), [['local', 'moved aside']]);
    assert.equal(f.restoredFromBackups.repository, 'offsite');
    assert.ok(f.load.acknowledgedByNewPrimary > 0, 'writes resumed on the restored primary');
    const [acme] = f.tenants;
    assert.equal(acme?.slug, 'acme');
    assert.ok(acme.recoverySeconds !== null && acme.recoverySeconds > 0);
    assert.equal(acme.rowsLost, 0, JSON.stringify(acme));
    assert.match(report.reportMarkdown, /site loss, recovered from the off-site backups \(the standby assumed lost too\)/);
    assert.match(report.reportMarkdown, /## Recovered from backups/);

    const projects = await queryDatabase<{ key: string }>(rc, 'b', 'tenant_acme', 'SELECT key FROM app.projects ORDER BY key');
    assert.deepEqual(projects.map((p) => p.key), ['OPS', 'WEB']);
    assert.deepEqual(f.rebuilt, ['main']);
    const status = await rc.status();
    assert.equal(status.splitBrain, false);
    assert.deepEqual(status.nodes.map((n) => [n.name, n.role, n.actual]), [['b', 'primary', 'primary'], ['main', 'standby', 'standby']]);
    const [archive] = await rc.sql<{ command: string }>('b', "SELECT current_setting('archive_command') AS command");
    assert.match(archive?.command ?? '', /wal/, 'the restored primary archives its WAL again');
    assert.equal(readFileSync(join(localRepository, 'marker'), 'utf8'), 'site-a\n');
  });
});
