import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionSlots } from './connection-slots.ts';

const timeoutError = () => new Error('timed out');

describe('ConnectionSlots', () => {
  test('gives out at most its capacity', () => {
    const slots = new ConnectionSlots(2);
    const a = slots.tryAcquire();
    const b = slots.tryAcquire();
    assert.ok(a && b);
    assert.equal(slots.tryAcquire(), null);
    assert.equal(slots.used, 2);
    a();
    assert.equal(slots.used, 1);
  });

  test('a release function counts only once', () => {
    const slots = new ConnectionSlots(1);
    const release = slots.tryAcquire();
    assert.ok(release);
    release();
    release();
    assert.equal(slots.used, 0);
    assert.ok(slots.tryAcquire());
    assert.equal(slots.used, 1);
  });

  test('hands a released slot to the first waiter, in order', async () => {
    const slots = new ConnectionSlots(1);
    const first = slots.tryAcquire();
    assert.ok(first);
    const order: string[] = [];
    const w1 = slots.acquire(1_000, timeoutError).then((release) => {
      order.push('w1');
      return release;
    });
    const w2 = slots.acquire(1_000, timeoutError).then((release) => {
      order.push('w2');
      return release;
    });
    assert.equal(slots.waiting, 2);
    first();
    const r1 = await w1;
    assert.equal(slots.used, 1, 'the slot moved to the waiter without being freed in between');
    r1();
    const r2 = await w2;
    r2();
    assert.deepEqual(order, ['w1', 'w2']);
    assert.equal(slots.used, 0);
  });

  test('a waiter gives up after its timeout and leaves the queue', async () => {
    const slots = new ConnectionSlots(1);
    const held = slots.tryAcquire();
    assert.ok(held);
    await assert.rejects(slots.acquire(20, timeoutError), /timed out/);
    assert.equal(slots.waiting, 0);
    held();
    assert.equal(slots.used, 0, 'nobody is handed a slot after giving up');
  });
});

describe('ConnectionSlots.drained', () => {
  test('resolves when the last slot comes back, or false after the timeout', async () => {
    const slots = new ConnectionSlots(2);
    assert.equal(await slots.drained(10), true);
    const a = slots.tryAcquire();
    assert.ok(a);
    assert.equal(await slots.drained(10), false);
    const drained = slots.drained(1_000);
    a();
    assert.equal(await drained, true);
  });
});
