/** `taskflow scan` as an operator runs it against a deployment: report, exit codes, secrets from files only. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ScanReport } from '../../src/scan/types.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/platform.ts';
import { startLiveServer, type LiveServer } from './live.ts';

let live: LiveServer;
let dir: string;

before(async () => {
  live = await startLiveServer();
  dir = tempDir('scan-cli');
  writeFileSync(join(dir, 'ca.crt'), live.ca);
  writeFileSync(join(dir, 'password'), `${live.acme.member.password}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'token'), live.acme.token, { mode: 0o600 });
});
after(async () => {
  await live.close();
});

function args(extra: string[]): string[] {
  return ['scan', '--url', live.acme.origin, '--email', live.acme.member.email, '--ca', join(dir, 'ca.crt'), '--connect-to', '127.0.0.1', '--allow-missing-hsts', ...extra];
}

test('a passing scan prints the report and exits 0', async () => {
  const r = await runCli(args(['--password-file', join(dir, 'password'), '--token-file', join(dir, 'token'), '--only', 'tls,security-headers,cookie-flags,csrf', '--json', '--out', join(dir, 'report.json')]));
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as ScanReport;
  assert.deepEqual(report.checks.map((c) => [c.id, c.status]), [['tls', 'pass'], ['security-headers', 'pass'], ['cookie-flags', 'pass'], ['csrf', 'pass']]);
  assert.ok(!(r.stdout + r.stderr).includes(live.acme.member.password), 'the password is never printed');
});

test('a failing check exits 1 and names what it found', async () => {
  // Without --allow-missing-hsts the self-signed install fails the header check.
  const r = await runCli(['scan', '--url', live.acme.origin, '--email', live.acme.member.email, '--ca', join(dir, 'ca.crt'), '--connect-to', '127.0.0.1', '--password-file', join(dir, 'password'), '--only', 'security-headers']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /no Strict-Transport-Security/);
  assert.match(r.stdout, /0 passed, 1 failed/);
});

test('no password, an unknown check or a bad URL are usage errors (exit 2)', async () => {
  assert.equal((await runCli(args([]))).code, 2);
  const unknown = await runCli(args(['--password-file', join(dir, 'password'), '--only', 'nonsense']));
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown check\(s\) nonsense/);
  const bad = await runCli(['scan', '--url', 'ftp://x', '--email', 'a@b.example', '--password-file', join(dir, 'password')]);
  assert.equal(bad.code, 2);
});

test('wrong credentials are a clear failure, not a crash', async () => {
  writeFileSync(join(dir, 'wrong'), 'not the password at all', { mode: 0o600 });
  const r = await runCli(args(['--password-file', join(dir, 'wrong'), '--only', 'cookie-flags']));
  assert.equal(r.code, 1);
  assert.match(r.stdout, /check the scan credentials/);
});
