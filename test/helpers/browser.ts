/**
 * A browser as the server sees one, over Fastify's inject: a cookie jar per host, the Origin header
 * a browser sends, the CSRF token from GET /api/auth/csrf, and HTTPS as a trusted proxy reports it
 * (the test server trusts 127.0.0.1, inject's address).
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type pg from 'pg';

export class Browser {
  readonly host: string;
  readonly #app: FastifyInstance;
  readonly jar = new Map<string, string>();
  csrf: string | null = null;

  constructor(app: FastifyInstance, host: string) {
    this.#app = app;
    this.host = host;
  }

  get origin(): string {
    return `https://${this.host}`;
  }

  /** Fetches a CSRF token (and its cookie), as the web app does on load. */
  async start(): Promise<this> {
    const res = await this.request('GET', '/api/auth/csrf');
    if (res.statusCode !== 200) throw new Error(`csrf: ${res.statusCode} ${res.body}`);
    const { csrfToken } = res.json<{ csrfToken: string }>();
    this.csrf = csrfToken;
    return this;
  }

  async request(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const h: Record<string, string> = { host: this.host, 'x-forwarded-proto': 'https', 'user-agent': 'TestBrowser/1.0' };
    if (method !== 'GET') h.origin = this.origin;
    if (this.csrf && method !== 'GET') h['x-csrf-token'] = this.csrf;
    if (this.jar.size > 0) h.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) h['content-type'] = 'application/json';
    Object.assign(h, headers);
    for (const [k, v] of Object.entries(h)) if (v === '') Reflect.deleteProperty(h, k);
    const res = await this.#app.inject({ method, url, headers: h, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) });
    for (const cookie of res.cookies as { name: string; value: string; expires?: Date; maxAge?: number }[]) {
      const gone = cookie.value === '' || cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now());
      if (gone) this.jar.delete(cookie.name);
      else this.jar.set(cookie.name, cookie.value);
    }
    return res;
  }

  async signIn(email: string, password: string): Promise<LightMyRequestResponse> {
    return this.request('POST', '/api/auth/login', { email, password });
  }
}

/** The newest mail to `to` still in the outbox (no worker runs in these tests), and the token in its link. */
export async function lastMailTo(control: pg.Pool, to: string): Promise<{ subject: string; text: string; token: string | null; kind: string } | null> {
  const res = await control.query<{ subject: string; body_text: string; kind: string }>(
    'SELECT subject, body_text, kind FROM mail_outbox WHERE recipient = $1 ORDER BY id DESC LIMIT 1',
    [to],
  );
  const row = res.rows[0];
  if (!row) return null;
  return { subject: row.subject, text: row.body_text, kind: row.kind, token: /#token=([A-Za-z0-9_-]{43})/.exec(row.body_text)?.[1] ?? null };
}
