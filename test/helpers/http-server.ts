/** An HTTP server built on a real test platform, tenants for it, and calls through Fastify's inject. */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildServer } from '../../src/app/server.ts';
import { createTenant } from '../../src/platform/tenants/provision.ts';
import type { Tenant } from '../../src/platform/tenants/registry.ts';
import { startTestPlatform, type TestPlatform } from './platform.ts';

export const BASE_DOMAIN = 'taskflow.test';

export interface HttpTest {
  tp: TestPlatform;
  app: FastifyInstance;
  /** Closes the server, then stops the cluster. */
  cleanup(): Promise<void>;
}

export async function startHttpTest(overrides: Record<string, unknown> = {}): Promise<HttpTest> {
  const tp = await startTestPlatform({ overrides: { 'server.baseDomain': BASE_DOMAIN, ...overrides } });
  let app: FastifyInstance;
  try {
    app = await buildServer({ platform: tp.platform });
  } catch (err) {
    await tp.cleanup();
    throw err;
  }
  return {
    tp,
    app,
    async cleanup() {
      await app.close();
      await tp.cleanup();
    },
  };
}

export interface TestTenant {
  tenant: Tenant;
  token: string;
  host: string;
}

export async function makeTenant(tp: TestPlatform, slug: string): Promise<TestTenant> {
  const { tenant, apiToken } = await createTenant({ platform: tp.platform, slug, actor: 'test' });
  return { tenant, token: apiToken, host: `${slug}.${BASE_DOMAIN}` };
}

export interface CallOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT' | 'HEAD';
  host?: string;
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Calls the server as tenant `as` (its host and token unless overridden). */
export function call(app: FastifyInstance, as: TestTenant, url: string, options: CallOptions = {}): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { host: options.host ?? as.host, ...options.headers };
  const bearer = options.token === undefined ? as.token : options.token;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  if (payload !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  return app.inject({ method: options.method ?? 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
}
