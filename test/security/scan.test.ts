/**
 * The dynamic security suite: every check of `taskflow scan` against a live server this test
 * starts (real HTTPS, real PostgreSQL, two tenants). Each check must run, not skip, and pass.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runScan } from '../../src/scan/scan.ts';
import { ALL_CHECKS } from '../../src/scan/checks/index.ts';
import type { CheckOutcome, ScanReport } from '../../src/scan/types.ts';
import { startLiveServer, type LiveServer } from './live.ts';

let live: LiveServer;
let report: ScanReport;

before(async () => {
  // The scan sends a few hundred requests from one address within a minute or two.
  live = await startLiveServer({ 'rateLimits.perIpPerMinute': 100_000 });
  report = await runScan({
    target: {
      tenant: { url: live.acme.origin, user: live.acme.member, token: live.acme.token },
      other: { url: live.globex.origin, user: live.globex.member, token: live.globex.token },
      allowMissingHsts: true,
    },
    client: { ca: live.ca, connectTo: '127.0.0.1' },
  });
});
after(async () => {
  await live.close();
});

function outcome(id: string): CheckOutcome {
  const found = report.checks.find((c) => c.id === id);
  assert.ok(found, `check ${id} ran`);
  return found;
}

test('every check ran', () => {
  assert.deepEqual(report.checks.map((c) => c.id), ALL_CHECKS.map((c) => c.id));
  assert.equal(report.skipped, 0, JSON.stringify(report.checks.filter((c) => c.status === 'skip')));
});

for (const check of ALL_CHECKS) {
  test(`${check.id}: ${check.title}`, () => {
    const o = outcome(check.id);
    assert.ok(o.probes > 0, 'probes were sent');
    assert.deepEqual(o.findings, [], `${check.id} found:\n  ${o.findings.join('\n  ')}`);
    assert.equal(o.status, 'pass');
  });
}
