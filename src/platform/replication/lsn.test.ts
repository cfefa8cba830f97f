import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatLsn, laterLsn, lsnGap, parseLsn } from './lsn.ts';

test('LSNs parse to byte offsets and print back as PostgreSQL prints them', () => {
  assert.equal(parseLsn('0/3000148'), 0x3000148n);
  assert.equal(parseLsn('16/B374D848'), (0x16n << 32n) + 0xb374d848n);
  assert.equal(formatLsn(parseLsn('16/B374D848')), '16/B374D848');
  assert.throws(() => parseLsn('16-B374D848'), /not a WAL position/);
});

test('gaps are in bytes, never negative, unknown when a side is unknown', () => {
  assert.equal(lsnGap('0/3000200', '0/3000100'), 256);
  assert.equal(lsnGap('1/0', '0/FFFFFFFF'), 1);
  assert.equal(lsnGap('0/3000100', '0/3000200'), 0);
  assert.equal(lsnGap(null, '0/1'), null);
  assert.equal(laterLsn('0/5', '0/7'), '0/7');
  assert.equal(laterLsn(null, '0/7'), '0/7');
});

test('byte counts read well', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(16_777_216), '16.8 MB');
});
