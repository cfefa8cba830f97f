/**
 * Retention against real repositories and a real catalog: what prune deletes (from every
 * repository, manifest before object) and what it keeps (the window, its base snapshot, the WAL
 * that snapshot needs, each tenant's newest export), a dry run that changes nothing, and a prune
 * cut short by an unreachable secondary that the next prune finishes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { listAlerts } from '../src/platform/alerts/alerts.ts';
import { beginObject, completeObject, getObject, listObjects, type BackupKind, type CatalogEntry } from '../src/platform/backup/catalog.ts';
import { copyToSecondaries } from '../src/platform/backup/copies.ts';
import { exportTenants } from '../src/platform/backup/export.ts';
import { writeBackupObject, verifyBackupObject } from '../src/platform/backup/pipeline.ts';
import { pruneBackups } from '../src/platform/backup/prune.ts';
import { openBackupTarget } from '../src/platform/backup/service.ts';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { sshdUnavailable, startSshd, type TestSshd } from './backup-fixtures.ts';
import { filesUnder, fsRepository, sftpRepository, startBackupPlatform, withBackupConfig, type BackupTestPlatform } from './backup-export-fixtures.ts';
import { tempDir } from './helpers/platform.ts';

const DAY = 86_400_000;
const skipSftp = sshdUnavailable() ?? false;

describe('retention', () => {
  let root: string;
  let tp: BackupTestPlatform;
  let acme: Tenant;
  let globex: Tenant;
  const ago = (days: number) => new Date(Date.now() - days * DAY);

  /** Writes a real object (through the pipeline, to both repositories) and catalogues it as made `days` ago. */
  async function seed(kind: BackupKind, name: string, days: number, details: Record<string, unknown> = {}): Promise<CatalogEntry> {
    const target = openBackupTarget(tp.platform.config);
    try {
      const manifest = await writeBackupObject({ repository: target.primary, name, kind, source: Readable.from([randomBytes(2048)]), recipients: target.recipients });
      const id = await beginObject(tp.platform.control, { kind, name, cluster: 'c1', timeline: 1, details, startedAt: ago(days) });
      await completeObject(tp.platform.control, id, { manifest, repository: target.primary.name, dataAt: ago(days), finishedAt: ago(days) });
      const entry = (await getObject(tp.platform.control, id))!;
      const copies = await copyToSecondaries(tp.platform, entry, { target });
      assert.ok(copies.every((c) => c.ok));
      return entry;
    } finally {
      await target.close();
    }
  }

  async function exportAged(tenant: Tenant, days: number): Promise<CatalogEntry> {
    const [result] = await exportTenants(tp.platform, [tenant]);
    assert.ok(result?.ok, result?.error);
    await tp.platform.control.query(`UPDATE backup_objects SET started_at = $2, data_at = $2 WHERE id = $1`, [result.entry!.id, ago(days)]);
    return (await getObject(tp.platform.control, result.entry!.id))!;
  }

  const inRepo = (repo: string, name: string) => existsSync(join(root, repo, name)) || existsSync(join(root, repo, `${name}.manifest.json`));

  before(async () => {
    root = tempDir('retention');
    for (const dir of ['primary', 'second']) mkdirSync(join(root, dir));
    tp = await startBackupPlatform([fsRepository('primary', join(root, 'primary')), fsRepository('second', join(root, 'second'))]);
    acme = (await createTenant({ platform: tp.platform, slug: 'acme', actor: 'test' })).tenant;
    globex = (await createTenant({ platform: tp.platform, slug: 'globex', actor: 'test' })).tenant;
  });
  after(async () => {
    await tp.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  test('prune keeps the window, its base snapshot, the WAL it needs and each newest export; --dry-run changes nothing', async () => {
    const snapshots = {
      old: await seed('snapshot', 'snapshots/c1/old.tar', 12, { startLsn: '0/1000028' }),
      base: await seed('snapshot', 'snapshots/c1/base.tar', 9, { startLsn: '0/3000060' }),
      recent: await seed('snapshot', 'snapshots/c1/recent.tar', 2, { startLsn: '0/5000028' }),
    };
    const wal: CatalogEntry[] = [];
    for (let segment = 1; segment <= 6; segment++) wal.push(await seed('wal', `wal/c1/00000001000000000000000${segment}`, 13 - segment * 2));
    const exports = { acmeOld: await exportAged(acme, 40), acmeMid: await exportAged(acme, 20), acmeNew: await exportAged(acme, 1), globexOnly: await exportAged(globex, 60) };
    const doomed = [snapshots.old.name, wal[0]!.name, wal[1]!.name, exports.acmeOld.name].sort();
    const before = filesUnder(root);

    const dry = await pruneBackups(tp.platform, { dryRun: true });
    assert.deepEqual(dry.deleted.map((d) => d.name).sort(), doomed);
    assert.deepEqual(filesUnder(root), before, 'a dry run touches no repository');
    assert.equal((await listObjects(tp.platform.control, { limit: 1000 })).length, 13, 'nor the catalog');

    const report = await pruneBackups(tp.platform);
    assert.deepEqual(report.deleted.map((d) => [d.name, d.deleted]).sort(), doomed.map((n) => [n, true]));
    assert.equal(report.failed, 0);
    for (const name of doomed) {
      assert.ok(!inRepo('primary', name) && !inRepo('second', name), `${name} is gone from both repositories`);
      assert.equal(await getObject(tp.platform.control, name), null, `${name} is gone from the catalog`);
    }
    const target = openBackupTarget(tp.platform.config);
    try {
      for (const kept of [snapshots.base, snapshots.recent, wal[2]!, wal[5]!, exports.acmeMid, exports.acmeNew, exports.globexOnly]) {
        for (const repository of target.all) assert.equal((await verifyBackupObject({ repository, name: kept.name })).ok, true, `${kept.name} stays intact in ${repository.name}`);
      }
    } finally {
      await target.close();
    }
    assert.equal((await pruneBackups(tp.platform)).deleted.length, 0, 'a second prune has nothing left to do');
  });

  test('a prune cut short by an unreachable secondary leaves no manifest without its object, and the next prune finishes it', { skip: skipSftp }, async () => {
    const sshd: TestSshd = await startSshd();
    try {
      mkdirSync(join(sshd.dataDir, 'offsite'));
      const offsite = (port: number) => sftpRepository('offsite', sshd, join(sshd.dataDir, 'offsite'), port);
      const up = withBackupConfig(tp.platform, { repositories: [fsRepository('primary', join(root, 'primary')), offsite(sshd.port)] });
      const [made] = await exportTenants(up, [globex]);
      assert.ok(made?.ok && made.copies[0]?.ok, made?.error);
      await up.control.query(`UPDATE backup_objects SET started_at = $2, data_at = $2 WHERE id = $1`, [made.entry!.id, ago(45)]);
      const name = made.entry!.name;
      const [newest] = await exportTenants(up, [globex]);
      assert.ok(newest?.ok, newest?.error);
      const down = withBackupConfig(tp.platform, { repositories: [fsRepository('primary', join(root, 'primary')), offsite(await freePort())] });
      const cut = await pruneBackups(down);
      const entry = cut.deleted.find((d) => d.name === name);
      assert.equal(entry?.deleted, false);
      assert.match(entry.errors[0]?.error ?? '', /Connection refused/);
      assert.ok(cut.failed >= 1);
      assert.ok(!inRepo('primary', name), 'gone from the reachable repository, manifest and object');
      const remote = filesUnder(join(sshd.dataDir, 'offsite'));
      assert.ok(remote.includes(name) && remote.includes(`${name}.manifest.json`), 'the unreachable copy is still whole');
      const half = await getObject(tp.platform.control, name);
      assert.ok(half?.details.pruning, 'the row remembers the prune');
      assert.deepEqual(half.locations, [], 'and lists no copy that may be gone');
      assert.ok((await listAlerts(tp.platform.control)).some((a) => a.key === 'backup.repository-unreachable:offsite'));

      const finished = await pruneBackups(up);
      assert.ok(finished.deleted.some((d) => d.name === name && d.deleted && /prune began/.test(d.reason)));
      assert.equal(await getObject(tp.platform.control, name), null);
      assert.ok(!filesUnder(join(sshd.dataDir, 'offsite')).some((f) => f.startsWith(name)));
      assert.ok(!(await listAlerts(tp.platform.control)).some((a) => a.key === 'backup.repository-unreachable:offsite'), 'resolved once the prune reached it');
    } finally {
      await sshd.cleanup();
    }
  });
});
