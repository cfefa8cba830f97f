/**
 * Request rate limits: one flooded tenant gets 429s while another tenant on the same server keeps
 * being served; one address flooding gets 429s while other addresses do not.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';

let h: HttpTest;
let flooded: TestTenant;
let quiet: TestTenant;
let third: TestTenant;

before(async () => {
  h = await startHttpTest({ 'rateLimits.perTenantPerMinute': 40, 'rateLimits.perIpPerMinute': 30 });
  flooded = await makeTenant(h.tp, 'flooded');
  quiet = await makeTenant(h.tp, 'quiet');
  third = await makeTenant(h.tp, 'third');
});
after(async () => {
  await h.cleanup();
});

function get(t: TestTenant, remoteAddress: string) {
  return h.app.inject({ method: 'GET', url: '/api/projects', remoteAddress, headers: { host: t.host, authorization: `Bearer ${t.token}` } });
}

test('a flooded tenant is limited; the other tenant is served all along', async () => {
  // 120 requests for one tenant from 40 addresses (so the per-address limit is not what bites) ...
  const flood = Array.from({ length: 120 }, (_, i) => get(flooded, `10.0.0.${(i % 40) + 1}`));
  // ... and, in the middle of it, the other tenant's requests from its own addresses.
  const others = Array.from({ length: 20 }, (_, i) => get(quiet, `10.1.0.${i + 1}`));
  const [floodAnswers, otherAnswers] = await Promise.all([Promise.all(flood), Promise.all(others)]);
  const limited = floodAnswers.filter((r) => r.statusCode === 429);
  assert.equal(floodAnswers.filter((r) => r.statusCode === 200).length, 40, 'the tenant gets its budget');
  assert.equal(limited.length, 80, 'and no more');
  assert.ok(limited.every((r) => Number(r.headers['retry-after']) >= 1), 'with Retry-After');
  assert.equal(limited[0]?.json<{ code: string }>().code, 'rate-limited');
  assert.deepEqual([...new Set(otherAnswers.map((r) => r.statusCode))], [200], 'the other tenant is not starved');
});

test('one address flooding is limited; other addresses are not', async () => {
  const answers = await Promise.all(Array.from({ length: 35 }, () => get(third, '10.2.0.1')));
  assert.equal(answers.filter((r) => r.statusCode === 200).length, 30);
  assert.equal(answers.filter((r) => r.statusCode === 429).length, 5);
  assert.equal((await get(third, '10.2.0.2')).statusCode, 200);
});

test('health checks are never limited', async () => {
  const answers = await Promise.all(Array.from({ length: 80 }, () => h.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '10.3.0.1', headers: { host: quiet.host } })));
  assert.deepEqual([...new Set(answers.map((r) => r.statusCode))], [200]);
});
