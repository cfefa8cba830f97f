import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { acceptedVersions, etagOf, MAX_VERSION } from './preconditions.ts';

describe('If-Match', () => {
  test('no header or * accepts any version', () => {
    assert.equal(acceptedVersions(undefined), null);
    assert.equal(acceptedVersions('*'), null);
  });

  test('reads the versions of strong ETags', () => {
    assert.deepEqual(acceptedVersions(etagOf(3)), [3]);
    assert.deepEqual(acceptedVersions('"3", "7"'), [3, 7]);
    assert.deepEqual(acceptedVersions('W/"3", "4"'), [4]);
    assert.deepEqual(acceptedVersions(etagOf(MAX_VERSION)), [MAX_VERSION]);
  });

  test('a header naming no version of ours matches nothing, rather than throwing before the resource is looked up', () => {
    for (const header of ['W/"3"', '3', '"abc"', '"0"', '', ' , ', '"99999999999"', '"9999999999"', `"${MAX_VERSION + 1}"`]) {
      assert.deepEqual(acceptedVersions(header), [], header);
    }
  });

  test('a version too large for the database is dropped, not sent to it', () => {
    assert.deepEqual(acceptedVersions('"9999999999", "5"'), [5]);
  });
});
