import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { zstdDecompressSync } from 'node:zlib';
import { baseBackupCommand, manifestArchive, maxRateKb, tarMember } from './basebackup-protocol.ts';

test('the BASE_BACKUP command asks for one archive with its WAL, a manifest and server-side zstd; the label is quoted', () => {
  const command = baseBackupCommand({ label: "taskflow it's", compressionLevel: 3, workers: 2, maxRate: '32M', onProgress: () => undefined });
  assert.equal(
    command,
    "BASE_BACKUP ( LABEL 'taskflow it''s', CHECKPOINT 'fast', WAL true, WAIT false, MANIFEST 'yes', COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=3,workers=2', PROGRESS true, MAX_RATE 32768 )",
  );
  assert.doesNotMatch(baseBackupCommand({ label: 'x', compressionLevel: 1, workers: 0 }), /PROGRESS|MAX_RATE/);
});

test("max rates read like pg_basebackup's --max-rate and out-of-range ones are refused", () => {
  assert.equal(maxRateKb('500'), 500);
  assert.equal(maxRateKb('500k'), 500);
  assert.equal(maxRateKb('2M'), 2048);
  assert.throws(() => maxRateKb('10'), /out of range/);
  assert.throws(() => maxRateKb('2G'), /not a number/);
  assert.throws(() => maxRateKb('fast'), /not a number/);
});

test('the manifest archive is one zstd frame that GNU tar lists after another archive with --ignore-zeros', () => {
  const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n'.repeat(40));
  const first = Buffer.concat([tarMember('PG_VERSION', Buffer.from('15\n'), new Date('2026-11-24T00:00:00Z')), Buffer.alloc(1024)]);
  const archive = manifestArchive(manifest, 3, new Date('2026-11-24T00:00:00Z'));
  const both = Buffer.concat([first, zstdDecompressSync(archive)]);
  const listed = spawnSync('tar', ['--list', '--verbose', '--ignore-zeros', '--file', '-'], { input: both, encoding: 'utf8' });
  assert.equal(listed.status, 0, listed.stderr);
  const lines = listed.stdout.trim().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /-rw------- .* 3 2026-11-24 00:00 PG_VERSION$/);
  assert.ok(lines[1]!.endsWith(` ${manifest.length} 2026-11-24 00:00 backup_manifest`), lines[1]);
  const extracted = spawnSync('tar', ['--extract', '--to-stdout', '--ignore-zeros', '--file', '-', 'backup_manifest'], { input: both });
  assert.equal(extracted.status, 0, extracted.stderr.toString());
  assert.deepEqual(extracted.stdout, manifest);
  // Without --ignore-zeros tar stops at the first archive's end: the documented way needs -i.
  const plain = spawnSync('tar', ['--list', '--file', '-'], { input: both, encoding: 'utf8' });
  assert.equal(plain.stdout.trim(), 'PG_VERSION');
  // zstd -t accepts the frame (its content size and checksum are present).
  const checked = spawnSync('zstd', ['-t', '-q', '-'], { input: archive });
  assert.equal(checked.status, 0, checked.stderr.toString());
  assert.throws(() => tarMember('x'.repeat(100), Buffer.alloc(0), new Date()), /too long/);
});
