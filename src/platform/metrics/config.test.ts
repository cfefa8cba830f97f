import assert from 'node:assert/strict';
import { test } from 'node:test';
import Value from 'typebox/value';
import { isLoopbackHost, MetricsConfigSchema, metricsConfigProblems } from './config.ts';

const server = { port: 8080, tls: { mode: 'self-signed', port: 8443 } };
const metrics = (overrides: Record<string, unknown> = {}) => Value.Default(MetricsConfigSchema, { enabled: true, ...overrides }) as Parameters<typeof metricsConfigProblems>[0];

test('loopback is 127.0.0.0/8, ::1 and localhost; a name that merely starts with 127 is not', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.equal(isLoopbackHost(host), true, host);
  for (const host of ['0.0.0.0', '::', '10.0.0.5', '127.example.com', 'metrics.internal']) assert.equal(isLoopbackHost(host), false, host);
});

test('defaults: off, loopback, port 9469, probes reused for 5 s', () => {
  const defaults = Value.Default(MetricsConfigSchema, {}) as Record<string, unknown>;
  assert.deepEqual(defaults, { enabled: false, host: '127.0.0.1', port: 9469, probeCacheMs: 5000, probeWaitMs: 5000 });
});

test("beyond loopback needs a token; the app's ports are refused; nothing is checked while off", () => {
  assert.deepEqual(metricsConfigProblems(metrics(), server), []);
  assert.match(metricsConfigProblems(metrics({ host: '0.0.0.0' }), server).join('\n'), /^metrics\.tokenFile: required when metrics\.host \(0\.0\.0\.0\)/);
  assert.deepEqual(metricsConfigProblems(metrics({ host: '0.0.0.0', tokenFile: '/etc/taskflow/metrics.token' }), server), []);
  for (const port of [8080, 8443]) assert.ok(metricsConfigProblems(metrics({ port }), server).join('\n').startsWith(`metrics.port: ${port} is a port of the app's own listener`), String(port));
  assert.deepEqual(metricsConfigProblems(metrics({ port: 8443 }), { port: 8080, tls: { mode: 'off', port: 8443 } }), [], 'no HTTPS listener with tls off');
  assert.deepEqual(metricsConfigProblems(metrics({ enabled: false, host: '0.0.0.0', port: 8080 }), server), []);
});
