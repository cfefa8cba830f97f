/**
 * What the browser suites share: a live TaskFlow serving the built web app, Chromium trusting its
 * certificates, signing in through the page, calls to the API with a tenant's token (to set things
 * up, to make a change "someone else" made, and to check what was saved), and checks that run on
 * every page (no script error, no Content-Security-Policy violation, the accessibility basics).
 */
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { accessibilityProblems } from '../helpers/a11y.ts';
import { launchChromium, screenshot, type PageRecord, type TestBrowser } from '../helpers/chromium.ts';
import { request } from '../helpers/http.ts';
import { ensureWebBuilt } from '../helpers/web-build.ts';
import { startLiveServer, type LiveServer, type LiveTenant, type LiveUser } from '../security/live.ts';

export interface BrowserSuite {
  live: LiveServer;
  chromium: TestBrowser;
  close(): Promise<void>;
}

/** Builds the app if needed, starts a live server (tenants acme and globex) and Chromium. */
export async function startBrowserSuite(): Promise<BrowserSuite> {
  await ensureWebBuilt();
  const live = await startLiveServer();
  try {
    const hostname = (t: LiveTenant) => t.host.replace(/:\d+$/, '');
    // nope.localhost names no tenant: the server still has a certificate for it, and answers 404.
    const chromium = await launchChromium({ hosts: [hostname(live.acme), hostname(live.globex), 'nope.localhost'], port: live.port, ca: live.ca });
    return {
      live,
      chromium,
      async close() {
        await chromium.close();
        await live.close();
      },
    };
  } catch (err) {
    await live.close();
    throw err;
  }
}

/** Calls the API of `tenant` with its token; answers the status and parsed body. */
export async function api(live: LiveServer, tenant: LiveTenant, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; etag: string | undefined }> {
  const res = await request({ port: live.port, host: tenant.host, ca: live.ca, method, path, body, headers: { authorization: `Bearer ${tenant.token}`, ...headers } });
  return { status: res.status, body: res.text === '' ? null : res.json(), etag: typeof res.headers.etag === 'string' ? res.headers.etag : undefined };
}

/** Signs in through the sign-in page (opened at `path`, which needs a signed-in user). */
export async function signIn(page: Page, tenant: LiveTenant, user: LiveUser, path = '/'): Promise<void> {
  await page.goto(`${tenant.origin}${path}`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('E-mail address').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Asserts the page is clean so far (script errors, CSP violations, accessibility basics), then screenshots it. */
export async function checkPage(page: Page, record: PageRecord, name: string): Promise<string> {
  const path = await screenshot(page, name);
  assert.deepEqual(record.cspViolations, [], `Content-Security-Policy violations on ${name}`);
  assert.deepEqual(record.problems, [], `console errors on ${name}`);
  assert.deepEqual(await accessibilityProblems(page), [], `accessibility problems on ${name}`);
  return path;
}

/** The board column of a status (by its name). */
export function column(page: Page, status: string) {
  return page.locator(`section[data-column="${status}"]`);
}

/** A card on the board, by task key. */
export function card(page: Page, key: string) {
  return page.locator(`[data-task="${key}"]`);
}

/** Waits until a keyboard drag of the card has started and listens for the arrow keys. */
export async function pickedUp(page: Page, key: string): Promise<void> {
  await card(page, key).locator('.card-handle[aria-pressed="true"]').waitFor();
  // @dnd-kit's keyboard sensor starts listening in a timer of its own, set when the drag started;
  // a timer set now runs after it.
  await page.evaluate('new Promise((resolve) => setTimeout(resolve, 0))');
}

/** Waits (up to 5 s) until `read` answers `expected`; answers the last value read. */
export async function eventually<T>(read: () => Promise<T>, expected: T): Promise<T> {
  const deadline = Date.now() + 5_000;
  let value = await read();
  while (value !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }
  return value;
}
