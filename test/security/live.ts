/**
 * A live TaskFlow for the security suites: real PostgreSQL, the real server listening on HTTPS
 * (certificates from its own local authority) on a free loopback port, and two tenants each with
 * an owner, a member, an API token and a project (`WEB`, made by the owner: members and tokens
 * cannot make projects). Clients reach `<slug>.localhost:<port>` at 127.0.0.1.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildServer } from '../../src/app/server.ts';
import { loadConfig } from '../../src/config.ts';
import { loadTls } from '../../src/platform/tls/certificates.ts';
import { firstOwner, GOOD_PASSWORD, invitedUser } from '../helpers/accounts.ts';
import { makeTenant, type TestTenant } from '../helpers/http-server.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.ts';

export interface LiveUser {
  email: string;
  password: string;
}

export interface LiveTenant {
  slug: string;
  tenant: TestTenant['tenant'];
  /** API token of the tenant. */
  token: string;
  /** `acme.localhost:<port>` */
  host: string;
  /** `https://acme.localhost:<port>` */
  origin: string;
  owner: LiveUser;
  member: LiveUser;
}

export interface LiveServer {
  tp: TestPlatform;
  app: FastifyInstance;
  port: number;
  /** PEM of the local authority the server's certificates chain to. */
  ca: string;
  acme: LiveTenant;
  globex: LiveTenant;
  close(): Promise<void>;
}

/** Starts it all; `overrides` are configuration keys (dotted) on top of the suite's defaults. */
export async function startLiveServer(overrides: Record<string, unknown> = {}): Promise<LiveServer> {
  // trustProxy only so the harness can create users over inject (no TLS there); real clients connect over HTTPS.
  overrides = { 'server.trustProxy': true, ...overrides };
  const tp = await startTestPlatform({ overrides: { 'server.baseDomain': 'localhost', ...overrides } });
  let app: FastifyInstance | null = null;
  try {
    const config = loadConfig({ env: {}, overrides: { dataDir: tp.config.dataDir, 'server.baseDomain': 'localhost', ...overrides } });
    const tls = await loadTls(config, pino({ level: 'silent' }));
    if (!tls?.issuer) throw new Error('self-signed TLS expected');
    app = await buildServer({ platform: { ...tp.platform, config }, tls });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as AddressInfo).port;
    const live = async (slug: string): Promise<LiveTenant> => {
      const t = await makeTenant(tp, slug);
      const host = `${slug}.localhost:${port}`;
      const owner = { email: `owner@${slug}.example`, password: GOOD_PASSWORD };
      const member = { email: `member@${slug}.example`, password: GOOD_PASSWORD };
      // Users are made through the real flows (setup link, invitation), over inject on the same server.
      const ownerBrowser = await firstOwner(app as FastifyInstance, tp, { ...t, host }, owner.email);
      await invitedUser(app as FastifyInstance, tp, ownerBrowser, member.email, 'member');
      const project = await ownerBrowser.request('POST', '/api/projects', { key: 'WEB', name: 'Website' });
      if (project.statusCode !== 201) throw new Error(`project: ${project.statusCode} ${project.body}`);
      return { slug, tenant: t.tenant, token: t.token, host, origin: `https://${host}`, owner, member };
    };
    const acme = await live('acme');
    const globex = await live('globex');
    const started = app;
    return {
      tp,
      app: started,
      port,
      ca: tls.issuer.cert,
      acme,
      globex,
      async close() {
        await started.close();
        await tp.cleanup();
      },
    };
  } catch (err) {
    await app?.close().catch(() => undefined);
    await tp.cleanup();
    throw err;
  }
}
