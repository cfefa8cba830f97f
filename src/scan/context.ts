/** The scan context: signing in, browser-like and API requests against the target. */
import { CookieJar, type ScanClient, type ScanResponse } from './client.ts';
import type { ScanContext, ScanSession, ScanTarget, ScanTenant } from './types.ts';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export function createContext(client: ScanClient, target: ScanTarget): ScanContext {
  const sessions = new Map<string, ScanSession>();

  async function csrfFor(tenant: ScanTenant, jar: CookieJar): Promise<string> {
    const res = await client.request(`${tenant.url}/api/auth/csrf`, { jar });
    const token = res.json<{ csrfToken?: string }>()?.csrfToken;
    if (res.status !== 200 || !token) throw new Error(`GET ${tenant.url}/api/auth/csrf answered ${res.status}; is this a TaskFlow tenant over HTTPS?`);
    return token;
  }

  async function anonymous(tenant: ScanTenant): Promise<ScanSession> {
    const jar = new CookieJar();
    return { jar, csrf: await csrfFor(tenant, jar) };
  }

  async function signIn(tenant: ScanTenant): Promise<ScanSession> {
    const { jar, csrf } = await anonymous(tenant);
    const res = await client.request(`${tenant.url}/api/auth/login`, {
      method: 'POST',
      jar,
      headers: { origin: tenant.url, 'x-csrf-token': csrf },
      body: JSON.stringify({ email: tenant.user.email, password: tenant.user.password }),
    });
    const state = res.json<{ stage?: string }>();
    if (res.status !== 200) throw new Error(`signing in as ${tenant.user.email} on ${tenant.url} failed (${res.status}): check the scan credentials`);
    if (state?.stage !== 'active') throw new Error(`${tenant.user.email} has a second factor; give the scan a user without one`);
    return { jar, csrf };
  }

  function browser(tenant: ScanTenant, session: ScanSession | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ScanResponse> {
    const extra: Record<string, string> = {};
    if (!SAFE.has(method)) {
      extra.origin = tenant.url;
      if (session) extra['x-csrf-token'] = session.csrf;
    }
    return client.request(`${tenant.url}${path}`, {
      method,
      ...(session ? { jar: session.jar } : {}),
      headers: { ...extra, ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  }

  async function api(tenant: ScanTenant, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ScanResponse> {
    if (tenant.token) {
      return client.request(`${tenant.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${tenant.token}`, ...headers },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
    }
    let session = sessions.get(tenant.url);
    if (!session) {
      session = await signIn(tenant);
      sessions.set(tenant.url, session);
    }
    return browser(tenant, session, method, path, body, headers);
  }

  return { client, target, anonymous, signIn, browser, api };
}
