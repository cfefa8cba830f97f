/** What a scan is run against, and what it reports. */
import type { CookieJar, ScanClient, ScanResponse } from './client.ts';

/** The name of TaskFlow's session cookie (host-only: the __Host- prefix). */
export const SESSION_COOKIE = '__Host-tf_session';

export interface ScanCredentials {
  email: string;
  password: string;
}

export interface ScanTenant {
  /** https://acme.example.com (no trailing slash). */
  url: string;
  /** A user of a prepared test tenant; the scan signs in, and signs failed attempts with other addresses only. */
  user: ScanCredentials;
  /** The tenant's API token, if the deployment issues them. */
  token?: string | undefined;
}

export interface ScanTarget {
  tenant: ScanTenant;
  /** A second tenant of the same deployment, for the cross-tenant checks; skipped without it. */
  other?: ScanTenant | undefined;
  /** No HSTS expected (a self-signed or local certificate). */
  allowMissingHsts?: boolean;
}

export type Severity = 'low' | 'medium' | 'high';

export interface CheckOutcome {
  id: string;
  title: string;
  severity: Severity;
  status: 'pass' | 'fail' | 'skip';
  /** What was tried and what came back: every probe that failed, or why it was skipped. */
  findings: string[];
  /** How many probes ran. */
  probes: number;
  ms: number;
}

export interface ScanReport {
  target: string;
  startedAt: string;
  finishedAt: string;
  passed: number;
  failed: number;
  skipped: number;
  checks: CheckOutcome[];
}

/** A signed-in browser-like session: its cookies and CSRF token. */
export interface ScanSession {
  jar: CookieJar;
  csrf: string;
}

/** What every check gets: the client, the target and helpers bound to them. */
export interface ScanContext {
  client: ScanClient;
  target: ScanTarget;
  /** A browser that is not signed in but holds a CSRF token, as the web app has before sign-in. */
  anonymous(tenant: ScanTenant): Promise<ScanSession>;
  /** Signs a user in on a tenant and returns the session (a fresh one each call). */
  signIn(tenant: ScanTenant): Promise<ScanSession>;
  /** A browser request from the tenant's own origin: Origin and CSRF token added for unsafe methods. */
  browser(tenant: ScanTenant, session: ScanSession | null, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ScanResponse>;
  /** A request with the tenant's API token (or, without one, as a signed-in user). */
  api(tenant: ScanTenant, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ScanResponse>;
}

/** One probe's verdict: null when fine, else what went wrong. */
export type Probe = string | null;

export interface Check {
  id: string;
  title: string;
  severity: Severity;
  /** Returns the failed probes (empty: passed), or a reason to skip. */
  run(ctx: ScanContext): Promise<{ failures: string[]; probes: number } | { skip: string }>;
}
