import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isConnectionError } from './tenant-pools.ts';

describe('isConnectionError', () => {
  test('tells a lost connection from a failed statement', () => {
    assert.equal(isConnectionError({ code: 'ECONNREFUSED' }), true);
    assert.equal(isConnectionError({ code: '57P01' }), true);
    assert.equal(isConnectionError({ code: '08006' }), true);
    assert.equal(isConnectionError(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isConnectionError(new Error('Client has encountered a connection error and is not queryable')), true);
    assert.equal(isConnectionError(new Error('Client was closed and is not queryable')), true);
    assert.equal(isConnectionError({ code: '23505' }), false);
    assert.equal(isConnectionError(null), false);
  });
});
