import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../errors.ts';
import { acceptedVersions, etagOf } from './preconditions.ts';

describe('If-Match', () => {
  test('no header or * accepts any version', () => {
    assert.equal(acceptedVersions(undefined), null);
    assert.equal(acceptedVersions('*'), null);
  });

  test('reads the versions of strong ETags', () => {
    assert.deepEqual(acceptedVersions(etagOf(3)), [3]);
    assert.deepEqual(acceptedVersions('"3", "7"'), [3, 7]);
    assert.deepEqual(acceptedVersions('W/"3", "4"'), [4]);
  });

  test('a header naming no version of ours fails the precondition', () => {
    for (const header of ['W/"3"', '3', '"abc"', '"0"', '', '"99999999999"']) {
      assert.throws(() => acceptedVersions(header), (err: unknown) => err instanceof AppError && err.code === 'precondition-failed', header);
    }
  });
});
