/**
 * HTTPS as clients meet it, over real sockets: TLS versions, certificates per tenant host from the
 * local authority, HSTS, plain HTTP only redirecting (directly or behind a proxy), and session
 * cookies only ever over HTTPS.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { createRedirectServer } from '../src/app/https.ts';
import { buildServer } from '../src/app/server.ts';
import { loadConfig } from '../src/config.ts';
import { loadTls, makeAuthority, makeSelfSigned, type TlsMaterial } from '../src/platform/tls/certificates.ts';
import { request } from './helpers/http.ts';
import { makeTenant, type TestTenant } from './helpers/http-server.ts';
import { startTestPlatform, tempDir, type TestPlatform } from './helpers/platform.ts';

const log = pino({ level: 'silent' });
let tp: TestPlatform;
let acme: TestTenant;

before(async () => {
  tp = await startTestPlatform({ overrides: { 'server.baseDomain': 'localhost' } });
  acme = await makeTenant(tp, 'acme');
});
after(async () => {
  await tp.cleanup();
});

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

function handshake(port: number, servername: string, ca: string, options: { maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; minVersion?: 'TLSv1' | 'TLSv1.1' } = {}): Promise<{ protocol: string | null; cert: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca, ...options }, () => {
      const result = { protocol: socket.getProtocol(), cert: socket.getPeerCertificate() };
      socket.end();
      resolve(result);
    });
    socket.on('error', reject);
  });
}

describe('self-signed mode: a local authority', () => {
  let app: FastifyInstance;
  let port: number;
  let tls: TlsMaterial;
  before(async () => {
    const config = loadConfig({ env: {}, overrides: { dataDir: tp.config.dataDir, 'server.baseDomain': 'localhost' } });
    const material = await loadTls(config, log);
    assert.ok(material?.issuer);
    tls = material;
    app = await buildServer({ platform: { ...tp.platform, config }, tls });
    port = await listen(app);
  });
  after(async () => {
    await app.close();
  });

  test('each tenant host gets its own certificate, valid for its name and trusted through the authority', async () => {
    const issuer = tls.issuer?.cert ?? '';
    const { cert, protocol } = await handshake(port, 'acme.localhost', issuer);
    assert.equal(protocol, 'TLSv1.3');
    assert.match(cert.subjectaltname ?? '', /DNS:acme\.localhost/);
    const res = await request({ port, host: `acme.localhost:${port}`, path: '/api/projects', headers: { authorization: `Bearer ${acme.token}` }, ca: issuer });
    assert.equal(res.status, 200, res.text);
  });

  test('TLS 1.2 is accepted, TLS 1.1 and older are refused', async () => {
    const issuer = tls.issuer?.cert ?? '';
    assert.equal((await handshake(port, 'acme.localhost', issuer, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
    await assert.rejects(handshake(port, 'acme.localhost', issuer, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));
  });

  test('no HSTS with a certificate a browser could never pin', async () => {
    const res = await request({ port, host: `acme.localhost:${port}`, path: '/healthz', ca: tls.issuer?.cert ?? '' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['strict-transport-security'], undefined);
  });

  test('the session cookie is set over HTTPS with the __Host- prefix', async () => {
    const res = await request({ port, host: `acme.localhost:${port}`, path: '/api/auth/csrf', ca: tls.issuer?.cert ?? '' });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['set-cookie']), /__Host-tf_csrf=.*; Path=\/; HttpOnly; Secure; SameSite=Strict/);
  });
});

describe('files mode: the operator’s certificate', () => {
  let app: FastifyInstance;
  let port: number;
  let authority: { cert: string; key: string };
  before(async () => {
    const dir = tempDir('tls-files');
    authority = await makeAuthority('test');
    const leaf = await makeSelfSigned(['localhost', 'acme.localhost'], authority);
    writeFileSync(join(dir, 'server.crt'), leaf.cert);
    writeFileSync(join(dir, 'server.key'), leaf.key, { mode: 0o600 });
    const config = loadConfig({
      env: {},
      overrides: { dataDir: tp.config.dataDir, 'server.baseDomain': 'localhost', 'server.tls.mode': 'files', 'server.tls.certFile': join(dir, 'server.crt'), 'server.tls.keyFile': join(dir, 'server.key') },
    });
    app = await buildServer({ platform: { ...tp.platform, config }, tls: await loadTls(config, log) });
    port = await listen(app);
  });
  after(async () => {
    await app.close();
  });

  test('HSTS on every response over HTTPS', async () => {
    const res = await request({ port, host: `acme.localhost:${port}`, path: '/api/projects', headers: { authorization: `Bearer ${acme.token}` }, ca: authority.cert });
    assert.equal(res.status, 200);
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000');
  });
});

describe('plain HTTP only redirects', () => {
  test('the redirect listener sends our hosts to HTTPS and refuses others (no open redirect)', async () => {
    const server = createRedirectServer({ baseDomain: 'localhost', httpsPort: 8443 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const ok = await request({ port, host: `acme.localhost:${port}`, method: 'POST', path: '/api/auth/login?next=1' });
      assert.equal(ok.status, 308, 'a POST keeps its method on the way');
      assert.equal(ok.headers.location, 'https://acme.localhost:8443/api/auth/login?next=1');
      const evil = await request({ port, host: 'evil.example', path: '/' });
      assert.equal(evil.status, 400);
      assert.equal(evil.headers.location, undefined);
    } finally {
      server.close();
    }
  });

  test('behind a proxy: what it did not mark as HTTPS is redirected, health checks are answered', async () => {
    const config = loadConfig({ env: {}, overrides: { dataDir: tp.config.dataDir, 'server.baseDomain': 'localhost', 'server.tls.mode': 'proxy', 'server.trustProxy': true } });
    const app = await buildServer({ platform: { ...tp.platform, config } });
    try {
      const plain = await app.inject({ method: 'GET', url: '/api/projects', headers: { host: 'acme.localhost', 'x-forwarded-proto': 'http', authorization: `Bearer ${acme.token}` } });
      assert.equal(plain.statusCode, 308);
      assert.equal(plain.headers.location, 'https://acme.localhost/api/projects');
      const secure = await app.inject({ method: 'GET', url: '/api/projects', headers: { host: 'acme.localhost', 'x-forwarded-proto': 'https', authorization: `Bearer ${acme.token}` } });
      assert.equal(secure.statusCode, 200);
      assert.equal(secure.headers['strict-transport-security'], 'max-age=31536000');
      const health = await app.inject({ method: 'GET', url: '/healthz', headers: { host: 'acme.localhost' } });
      assert.equal(health.statusCode, 200);
    } finally {
      await app.close();
    }
  });

  test('proxy mode without trusting the proxy is a configuration error naming the key', () => {
    assert.throws(() => loadConfig({ env: {}, overrides: { 'server.tls.mode': 'proxy' } }), /server\.trustProxy.*must be true/);
    assert.throws(() => loadConfig({ env: {}, overrides: { 'server.tls.mode': 'files' } }), /server\.tls\.certFile.*required/);
  });
});
