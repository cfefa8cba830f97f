import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBackupError } from './errors.ts';
import { checkListPrefix, checkObjectName } from './object-names.ts';

test('ordinary object names pass and split into segments', () => {
  assert.deepEqual(checkObjectName('exports/acme/2026-11-23T02-00-00Z.dump.zst.age'), ['exports', 'acme', '2026-11-23T02-00-00Z.dump.zst.age']);
  assert.deepEqual(checkObjectName('wal/000000010000000000000001'), ['wal', '000000010000000000000001']);
  assert.doesNotThrow(() => checkObjectName('a/b+c=d@e_f-g.h'));
});

test('names that could leave the repository or collide with temporary files are refused', () => {
  for (const name of [
    '',
    '/etc/passwd',
    '../outside',
    'a/../../b',
    'a/./b',
    'a//b',
    'a/',
    '.hidden',
    'a/.tmp-123',
    '-rf',
    'a\\..\\b',
    'a/b\0c',
    'spaces are not allowed',
    'x'.repeat(201),
    `${'a/'.repeat(600)}b`,
    'ünïcode',
  ]) {
    assert.throws(() => checkObjectName(name), (err: unknown) => isBackupError(err, 'object-name'), JSON.stringify(name));
  }
});

test('a listing prefix may be empty or end in a slash', () => {
  assert.equal(checkListPrefix(''), '');
  assert.equal(checkListPrefix('exports/'), 'exports/');
  assert.equal(checkListPrefix('exports/ac'), 'exports/ac');
  assert.throws(() => checkListPrefix('../'), /not allowed/);
});
