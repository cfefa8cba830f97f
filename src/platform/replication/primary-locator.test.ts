import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { AlertInput, Alerts } from '../alerts/alerts.ts';
import { PrimaryLocator, type LookupResult, type PrimaryLookup } from './primary-locator.ts';

/** A lookup that answers what the test says, counting the questions. */
class ScriptedLookup implements PrimaryLookup {
  readonly source = 'managed';
  answer: LookupResult = { primary: null, reason: 'nothing yet' };
  asked = 0;
  find(): Promise<LookupResult> {
    this.asked++;
    return Promise.resolve(this.answer);
  }
}

class RecordedAlerts implements Alerts {
  readonly raised: AlertInput[] = [];
  readonly resolved: { key: string; resolution: string }[] = [];
  raise(alert: AlertInput): Promise<void> {
    this.raised.push(alert);
    return Promise.resolve();
  }
  resolve(key: string, resolution: string): Promise<boolean> {
    this.resolved.push({ key, resolution });
    return Promise.resolve(true);
  }
}

function locatorWith(lookup: PrimaryLookup): PrimaryLocator {
  return new PrimaryLocator({
    lookup,
    credentials: { host: '127.0.0.1', port: 5000, user: 'admin', password: 'secret' },
    log: pino({ level: 'silent' }),
    checkIntervalMs: 60_000,
    retryAfterSeconds: 2,
    connectTimeoutMs: 3000,
  });
}

describe('PrimaryLocator', () => {
  test('follows the primary: a new epoch and a listener call for each change, the target reads the current node', async () => {
    const lookup = new ScriptedLookup();
    lookup.answer = { primary: { name: 'main', host: '127.0.0.1', port: 5001 } };
    const locator = locatorWith(lookup);
    const changes: (string | null)[] = [];
    locator.onChange((state) => changes.push(state.primary?.name ?? null));
    await locator.start();
    const target = locator.target;
    assert.equal(target.port, 5001);
    assert.equal(locator.epoch, 1);

    await locator.refresh('test');
    assert.equal(locator.epoch, 1, 'the same node is no change');

    lookup.answer = { primary: null, reason: 'a failover from main to b is under way' };
    await locator.refresh('test');
    assert.equal(locator.available(), false);
    assert.equal(target.port, 5001, 'while there is none, the last one known');
    const refusal = locator.unavailable();
    assert.equal(refusal.code, 'primary-unavailable');
    assert.equal(refusal.headers['Retry-After'], '2');

    lookup.answer = { primary: { name: 'b', host: '127.0.0.1', port: 5002 } };
    await locator.refresh('test');
    assert.equal(target.port, 5002);
    assert.equal(locator.epoch, 3);
    assert.deepEqual(changes, ['main', null, 'b']);
    assert.deepEqual({ ...target, password: '' }, { host: '127.0.0.1', port: 5002, user: 'admin', password: '', connectTimeoutMs: 3000 });
    locator.close();
  });

  test('refreshes asked for during a lookup share one more lookup after it, which sees what changed meanwhile', async () => {
    const lookup = new ScriptedLookup();
    const locator = locatorWith(lookup);
    const first = locator.refresh('a');
    lookup.answer = { primary: { name: 'b', host: '127.0.0.1', port: 5002 } };
    const [, second, third] = await Promise.all([first, locator.refresh('b'), locator.refresh('c')]);
    assert.equal(lookup.asked, 2);
    assert.equal(second.primary?.name, 'b');
    assert.equal(third, second);
    locator.close();
  });

  test('a split brain raises one alert while it lasts, and is recorded and resolved when it ends', async () => {
    const lookup = new ScriptedLookup();
    const alerts = new RecordedAlerts();
    const locator = locatorWith(lookup);
    locator.attachAlerts(alerts);
    const splitBrain = { summary: 'b and main both accept writes', nodes: ['b', 'main'] };
    lookup.answer = { primary: null, reason: splitBrain.summary, splitBrain };
    await locator.refresh('test');
    await locator.refresh('test');
    assert.deepEqual(
      alerts.raised.map((a) => [a.code, a.key, a.severity]),
      [['replication.split-brain', 'replication.split-brain:managed', 'critical']],
    );

    lookup.answer = { primary: { name: 'b', host: '127.0.0.1', port: 5002 } };
    await locator.refresh('test');
    await new Promise((r) => setImmediate(r));
    assert.equal(alerts.raised.length, 2, 'raised again in case the first could not be stored');
    assert.deepEqual(alerts.resolved, [{ key: 'replication.split-brain:managed', resolution: 'only b accepts writes now' }]);
    locator.close();
  });
});
