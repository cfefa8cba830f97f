import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../config.ts';
import { UserError } from '../../errors.ts';
import { inspectTls, loadTls, makeSelfSigned } from './certificates.ts';

const dir = mkdtempSync(join(tmpdir(), 'taskflow-tls-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});
const log = pino({ level: 'silent' });

test('a local authority and a server certificate are made once; keys are private; the server certificate chains to the authority', async () => {
  const config = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'a'), 'server.baseDomain': 'taskflow.test' } });
  const first = await loadTls(config, log);
  assert.ok(first?.issuer);
  assert.deepEqual(first.names.sort(), ['*.taskflow.test', 'localhost', 'taskflow.test']);
  assert.ok(new X509Certificate(first.cert).checkIssued(new X509Certificate(first.issuer.cert)));
  assert.equal(new X509Certificate(first.issuer.cert).ca, true);
  for (const key of ['ca.key', 'server.key']) assert.equal(statSync(join(dir, 'a', 'tls', key)).mode & 0o777, 0o600);
  const second = await loadTls(config, log);
  assert.equal(second?.cert, first.cert, 'kept across starts');
  const renamed = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'a'), 'server.baseDomain': 'example.org' } });
  const remade = await loadTls(renamed, log);
  assert.notEqual(remade?.cert, first.cert, 'made again for a new base domain');
  assert.ok(remade?.names.includes('*.example.org'));
  assert.equal(remade?.issuer?.cert, first.issuer.cert, 'by the same authority');
});

test('files: a key that is not the certificate’s, and a missing file, are clear errors', async () => {
  const a = await makeSelfSigned(['a.test']);
  const b = await makeSelfSigned(['b.test']);
  assert.throws(() => inspectTls(a.cert, b.key, 'a.crt', 'files'), /does not belong/);
  writeFileSync(join(dir, 'a.crt'), a.cert);
  const config = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'b'), 'server.tls.mode': 'files', 'server.tls.certFile': join(dir, 'a.crt'), 'server.tls.keyFile': join(dir, 'missing.key') } });
  await assert.rejects(loadTls(config, log), (err: unknown) => err instanceof UserError && /cannot read the TLS key .*missing\.key: ENOENT/.test(err.message));
});

test('proxy and off serve no certificate', async () => {
  const config = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'c'), 'server.tls.mode': 'off' } });
  assert.equal(await loadTls(config, log), null);
});
