/**
 * The physical backups with an SFTP repository as the primary (Debian's sshd on a loopback port,
 * key authentication, SFTP only): PostgreSQL's archiver, running as the postgres OS user, pushes
 * WAL over SFTP with its own copy of the key; a snapshot goes there too; and verify --restore
 * restores it from there, restore_command fetching the WAL over SFTP.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { listObjects } from '../src/platform/backup/catalog.ts';
import { loadRestoreIdentity } from '../src/platform/backup/physical/identity.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { verifyRestore } from '../src/platform/backup/physical/verify-restore.ts';
import { walObjectName } from '../src/platform/backup/physical/wal-names.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { sshdUnavailable, startSshd, type TestSshd } from './backup-fixtures.ts';
import { sftpRepository } from './backup-export-fixtures.ts';
import { startPhysicalPlatform, switchAndWaitArchived, tenantWithTasks, type PhysicalTestPlatform } from './backup-physical-fixtures.ts';

const skip = sshdUnavailable();
let sshd: TestSshd | undefined;
let tp: PhysicalTestPlatform | undefined;
let root = '';

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  root = join(sshd.dataDir, 'offsite');
  mkdirSync(root);
  tp = await startPhysicalPlatform({ primary: sftpRepository('offsite', sshd, root, sshd.port) });
  await tenantWithTasks(tp.platform, 'acme', 7, 'Acme');
});

after(async () => {
  await tp?.cleanup();
  await sshd?.cleanup();
});

test('WAL archived over SFTP by PostgreSQL\'s archiver; a snapshot there restores and verifies, its WAL fetched over SFTP', { skip: skip ?? false }, async () => {
  if (!tp) throw new Error('no platform');
  const sysid = await clusterIdentifier(tp.platform);
  const file = await switchAndWaitArchived(tp.platform);
  assert.ok(existsSync(join(root, walObjectName(sysid, file))), 'the segment is on the SFTP server');
  assert.ok(existsSync(join(root, `${walObjectName(sysid, file)}.manifest.json`)));
  const [wal] = await listObjects(tp.platform.control, { kind: 'wal', state: 'complete', limit: 1 });
  assert.deepEqual(wal?.locations.map((l) => l.repository), ['offsite']);

  const entry = await takeSnapshot(tp.platform);
  assert.deepEqual(entry.locations.map((l) => l.repository), ['offsite']);
  const report = await verifyRestore(tp.platform, { identity: loadRestoreIdentity({ file: tp.identityFile }) });
  assert.equal(report.ok, true, report.problem ?? '');
  assert.equal(report.snapshot.repository, 'offsite');
  assert.ok((report.rowCounts?.tables ?? 0) > 0);
});
