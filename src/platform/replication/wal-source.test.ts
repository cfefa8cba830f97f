import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { measureGap } from './wal-gap.ts';
import { configListingScript, KEEP_COMMITS_AND_LAST, parseConfigListing } from './wal-source.ts';

/** Runs a script as the remote shell does (`sh -s`, the script on stdin). */
function sh(script: string): string {
  const r = spawnSync('sh', ['-s'], { input: `{\n${script}\n}\n`, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('the configuration listing sent over SSH brings back each file with its modification time, and says which are missing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskflow-config-listing-'));
  try {
    writeFileSync(join(dir, 'postgresql.conf'), "include_if_exists = 'taskflow.conf'\n");
    writeFileSync(join(dir, 'postgresql.auto.conf'), `synchronous_standby_names = 'ANY 1 ("b")'\n`);
    utimesSync(join(dir, 'postgresql.auto.conf'), new Date('2026-11-24T03:00:07Z'), new Date('2026-11-24T03:00:07Z'));
    const files = parseConfigListing(sh(configListingScript(dir)));
    assert.deepEqual(
      files.map((f) => [f.name, f.content?.trim() ?? null]),
      [
        ['postgresql.conf', "include_if_exists = 'taskflow.conf'"],
        ['taskflow.conf', null],
        ['postgresql.auto.conf', `synchronous_standby_names = 'ANY 1 ("b")'`],
      ],
    );
    assert.equal(files[2]?.modifiedAt?.toISOString(), '2026-11-24T03:00:07.000Z');
    assert.equal(files[1]?.modifiedAt, null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the remote filter keeps the commits and the last record, and measureGap reads the same gap from it as from the full dump', () => {
  const dump = [
    'rmgr: Heap        len (rec/tot):     59/    59, tx:        724, lsn: 0/03017E68, prev 0/03017E20, desc: INSERT+INIT off 1 flags 0x00, blkref #0: rel 1663/5/16384 blk 0',
    'rmgr: Transaction len (rec/tot):     34/    34, tx:        724, lsn: 0/03017EA8, prev 0/03017E68, desc: COMMIT 2026-11-23 22:07:31.156471 UTC',
    'rmgr: Heap        len (rec/tot):     59/    59, tx:        725, lsn: 0/03017ED0, prev 0/03017EA8, desc: INSERT off 2 flags 0x00, blkref #0: rel 1663/5/16384 blk 0',
    'rmgr: Transaction len (rec/tot):     34/    34, tx:        725, lsn: 0/03017F10, prev 0/03017ED0, desc: COMMIT 2026-11-23 22:07:31.200000 UTC',
    'rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/03017F38, prev 0/03017F10, desc: RUNNING_XACTS nextXid 726 latestCompletedXid 725 oldestRunningXid 726',
    '',
  ].join('\n');
  const r = spawnSync('awk', [KEEP_COMMITS_AND_LAST], { input: dump, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.split('\n').filter((l) => l !== '').length, 3);
  assert.deepEqual(measureGap(r.stdout, '0/03017E68'), measureGap(dump, '0/03017E68'));
});
