import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isSpoolArchiveCommand, remoteArchiveTimeoutSeconds, spoolArchiveCommand } from './wal-spool.ts';

const root = mkdtempSync(join(tmpdir(), 'taskflow-wal-spool-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Runs an archive_command as PostgreSQL does: %p, %f and %% replaced, through sh -c, in PGDATA. */
function archive(command: string, pgData: string, file: string): { status: number | null; stderr: string } {
  const text = command.replace(/%[pf%]/g, (m) => (m === '%p' ? `pg_wal/${file}` : m === '%f' ? file : '%'));
  const r = spawnSync('/bin/sh', ['-c', text], { cwd: pgData, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

test('the spool archive_command copies a WAL file atomically, keeps its mtime, accepts an identical retry and refuses other contents', () => {
  // A path with a quote, a space and a percent sign: quoted for sh, % doubled for PostgreSQL.
  const pgData = join(root, "data it's 100%");
  mkdirSync(join(pgData, 'pg_wal'), { recursive: true });
  const spool = `${pgData}.walspool`;
  const command = spoolArchiveCommand(spool);
  assert.ok(isSpoolArchiveCommand(command));
  assert.ok(!command.includes('taskflow wal archive') && !command.includes('node'), 'no TaskFlow needed there');

  const file = '000000020000000000000003';
  const bytes = Buffer.alloc(1 << 20, 7);
  writeFileSync(join(pgData, 'pg_wal', file), bytes);
  const written = new Date('2026-11-24T05:00:00Z');
  utimesSync(join(pgData, 'pg_wal', file), written, written);

  const first = archive(command, pgData, file);
  assert.equal(first.status, 0, first.stderr);
  assert.ok(readFileSync(join(spool, file)).equals(bytes));
  assert.equal(statSync(spool).mode & 0o777, 0o700);
  assert.equal(statSync(join(spool, file)).mtime.toISOString(), written.toISOString(), 'mtime kept (the catalog data_at)');
  assert.deepEqual(readdirSync(spool), [file], 'no temporary file left');

  assert.equal(archive(command, pgData, file).status, 0, 'a retry of the same file succeeds');

  writeFileSync(join(pgData, 'pg_wal', file), Buffer.alloc(1 << 20, 8));
  const other = archive(command, pgData, file);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /exists with other contents/);
  assert.ok(readFileSync(join(spool, file)).equals(bytes), 'the spooled file is kept');

  assert.notEqual(archive(command, pgData, '000000020000000000000004').status, 0, 'a missing file fails');
  assert.deepEqual(readdirSync(spool), [file]);

  writeFileSync(join(pgData, 'pg_wal', '00000002.history'), '1\t0/3000000\tno recovery target specified\n');
  assert.equal(archive(command, pgData, '00000002.history').status, 0);
  assert.deepEqual(readdirSync(spool).sort(), ['00000002.history', file]);
});

test("a remote node's archive_timeout leaves room for the pull within walArchiveTimeoutSeconds", () => {
  assert.equal(remoteArchiveTimeoutSeconds({ walArchiveTimeoutSeconds: 60, remoteWalPullSeconds: 10 }), 50);
  assert.equal(remoteArchiveTimeoutSeconds({ walArchiveTimeoutSeconds: 5, remoteWalPullSeconds: 10 }), 1);
});
