import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { SftpSession } from './session.ts';
import { SftpSessionPool } from './session-pool.ts';

/** Stands in for a connection: the pool only looks at `closed` and calls `end()`. */
class FakeSession {
  closed = false;
  ended = 0;
  end(): Promise<void> {
    this.ended++;
    this.closed = true;
    return Promise.resolve();
  }
}

function pool(idleMs = 20): { pool: SftpSessionPool; opened: FakeSession[]; failNext: () => void } {
  const opened: FakeSession[] = [];
  let fail = false;
  const p = new SftpSessionPool(() => {
    if (fail) {
      fail = false;
      return Promise.reject(new Error('connection refused'));
    }
    const session = new FakeSession();
    opened.push(session);
    return Promise.resolve(session as unknown as SftpSession);
  }, idleMs);
  return {
    pool: p,
    opened,
    failNext: () => {
      fail = true;
    },
  };
}

test('concurrent operations share one connection, which closes once idle', async () => {
  const { pool: p, opened } = pool();
  const a = await p.lease();
  const b = await p.lease();
  assert.equal(opened.length, 1);
  assert.equal(a.session, b.session);
  a.release();
  await sleep(40);
  assert.equal(opened[0]?.ended, 0, 'still leased by b');
  b.release();
  await sleep(40);
  assert.equal(opened[0].ended, 1);
  await p.withSession(() => Promise.resolve());
  assert.equal(opened.length, 2, 'a new connection after the idle close');
  await p.close();
});

test('a use within the idle time keeps the connection', async () => {
  const { pool: p, opened } = pool(50);
  await p.withSession(() => Promise.resolve());
  await sleep(10);
  await p.withSession(() => Promise.resolve());
  assert.equal(opened.length, 1);
  await p.close();
  assert.equal(opened[0]?.ended, 1);
});

test('a connection lost while idle is replaced; a failed connect is not remembered', async () => {
  const { pool: p, opened, failNext } = pool(1000);
  await p.withSession(() => Promise.resolve());
  opened[0]!.closed = true;
  await p.withSession(() => Promise.resolve());
  assert.equal(opened.length, 2);
  await p.close();
  failNext();
  await assert.rejects(p.withSession(() => Promise.resolve()), /connection refused/);
  await p.withSession(() => Promise.resolve());
  assert.equal(opened.length, 3);
  await p.close();
});
