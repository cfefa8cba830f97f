import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors.ts';
import { RequestDeadline } from './plugins/deadline.ts';
import { inTransaction, type Db } from './tenant-db.ts';

/** A client that records the statements it is sent. */
function recordingClient(): { db: Db; sent: string[] } {
  const sent: string[] = [];
  const db = {
    query: (text: string) => {
      sent.push(text.replace(/\s+/g, ' ').trim());
      return Promise.resolve({ rows: [], rowCount: 0 });
    },
  } as unknown as Db;
  return { db, sent };
}

function isRequestTimeout(err: unknown): boolean {
  return err instanceof AppError && err.code === 'request-timeout';
}

describe('inTransaction with a deadline', () => {
  test('commits while there is time, after bounding statement_timeout by it', async () => {
    const { db, sent } = recordingClient();
    const result = await inTransaction(db, () => Promise.resolve(42), new RequestDeadline(10_000));
    assert.equal(result, 42);
    assert.equal(sent.length, 2);
    assert.match(sent[0] ?? '', /^BEGIN; SELECT set_config\('statement_timeout', .*LEAST\(setting::bigint, (9\d{3}|10000)\)/);
    assert.equal(sent[1], 'COMMIT');
  });

  test('rolls back, never commits, when the deadline passed while the work ran', async () => {
    const { db, sent } = recordingClient();
    const deadline = new RequestDeadline(10_000);
    await assert.rejects(
      inTransaction(db, () => {
        assert.equal(deadline.reach(), true);
        return Promise.resolve('done too late');
      }, deadline),
      isRequestTimeout,
    );
    assert.deepEqual(sent.map((t) => t.split(';')[0]), ['BEGIN', 'ROLLBACK']);
  });

  test('starts nothing once the deadline has passed', async () => {
    const { db, sent } = recordingClient();
    const deadline = new RequestDeadline(10_000);
    deadline.pass();
    await assert.rejects(inTransaction(db, () => Promise.resolve(1), deadline), isRequestTimeout);
    assert.deepEqual(sent, []);
  });

  test('after the answer has gone out, the time left does not bound the statements', async () => {
    const { db, sent } = recordingClient();
    const deadline = new RequestDeadline(1);
    deadline.answered();
    await inTransaction(db, () => Promise.resolve(1), deadline);
    assert.deepEqual(sent, ['BEGIN', 'COMMIT']);
  });

  test('without a deadline nothing changes: BEGIN, the work, COMMIT', async () => {
    const { db, sent } = recordingClient();
    await inTransaction(db, () => Promise.resolve(1));
    assert.deepEqual(sent, ['BEGIN', 'COMMIT']);
  });
});

describe('RequestDeadline', () => {
  test('does not pass while a COMMIT is on its way, so the answer can tell the truth', async () => {
    const deadline = new RequestDeadline(10_000);
    let reachedDuringCommit: boolean | null = null;
    await deadline.commit(() => {
      reachedDuringCommit = deadline.reach();
      return Promise.resolve();
    });
    assert.equal(reachedDuringCommit, false);
    assert.equal(deadline.passed, false);
    assert.equal(deadline.reach(), false, 'a change was made: the request is answered with it, however late');
  });

  test('a COMMIT that failed leaves the deadline free to pass', async () => {
    const deadline = new RequestDeadline(10_000);
    await assert.rejects(deadline.commit(() => Promise.reject(new Error('serialization failure'))));
    assert.equal(deadline.reach(), true);
  });

  test('once the answer is on its way, later work is not bound', () => {
    const deadline = new RequestDeadline(5);
    deadline.answered();
    assert.equal(deadline.remainingMs(), Infinity);
    assert.equal(deadline.reach(), false);
    deadline.assertNotPassed();
  });

  test('a deadline that passed stays passed when the timeout answer goes out', () => {
    const deadline = new RequestDeadline(5);
    deadline.pass();
    deadline.answered();
    assert.throws(() => {
      deadline.assertNotPassed();
    }, isRequestTimeout);
  });

  test('watch calls back once the time is up', async () => {
    const deadline = new RequestDeadline(20);
    const answered = await new Promise<boolean>((resolve) => {
      deadline.watch(() => {
        resolve(true);
      });
    });
    assert.equal(answered, true);
    assert.equal(deadline.passed, true);
  });
});
