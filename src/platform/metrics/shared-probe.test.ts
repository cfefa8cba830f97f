import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SharedProbe } from './shared-probe.ts';

/** A probe whose every run waits until the test lets it finish, counting its runs. */
function gatedProbe() {
  let runs = 0;
  const releases: (() => void)[] = [];
  return {
    get runs() {
      return runs;
    },
    probe: () => {
      runs++;
      const run = runs;
      return new Promise<number>((resolve) => {
        releases.push(() => {
          resolve(run);
        });
      });
    },
    releaseAll() {
      for (const release of releases.splice(0)) release();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SharedProbe', () => {
  test('callers while a probe runs share it: one run, one value for all', async () => {
    const gate = gatedProbe();
    const shared = new SharedProbe({ probe: gate.probe, maxAgeMs: 0, waitMs: 5_000 });
    const answers = Array.from({ length: 10 }, () => shared.get());
    await sleep(10);
    assert.equal(gate.runs, 1);
    gate.releaseAll();
    const values = (await Promise.all(answers)).map((a) => a?.value);
    assert.deepEqual(values, Array(10).fill(1));
    assert.equal(shared.started, 1);
  });

  test('a result younger than maxAgeMs is reused; an older one starts the next probe', async () => {
    const gate = gatedProbe();
    const shared = new SharedProbe({ probe: gate.probe, maxAgeMs: 100, waitMs: 5_000 });
    const first = shared.get();
    gate.releaseAll();
    assert.equal((await first)?.value, 1);
    assert.equal((await shared.get())?.value, 1, 'fresh: no new probe');
    assert.equal(gate.runs, 1);
    await sleep(120);
    const second = shared.get();
    gate.releaseAll();
    assert.equal((await second)?.value, 2);
    assert.equal(gate.runs, 2);
  });

  test('a probe slower than waitMs: callers get the last result (null at first), and no second probe starts', async () => {
    const gate = gatedProbe();
    const shared = new SharedProbe({ probe: gate.probe, maxAgeMs: 0, waitMs: 30 });
    assert.equal(await shared.get(), null, 'nothing to fall back on yet');
    assert.equal(await shared.get(), null);
    assert.equal(gate.runs, 1, 'the hung probe is joined, not repeated');
    gate.releaseAll();
    await shared.settled();
    const next = shared.get();
    await sleep(5);
    assert.equal(gate.runs, 2);
    const stale = await next;
    assert.equal(stale?.value, 1, 'the second probe hangs: the first result is served');
    gate.releaseAll();
    await shared.settled();
  });

  test('a probe that throws is an error for its callers; the next call probes again', async () => {
    let runs = 0;
    const shared = new SharedProbe({
      probe: () => (++runs === 1 ? Promise.reject(new Error('bug')) : Promise.resolve(runs)),
      maxAgeMs: 60_000,
      waitMs: 1_000,
    });
    await assert.rejects(shared.get(), /bug/);
    assert.equal((await shared.get())?.value, 2);
  });
});
