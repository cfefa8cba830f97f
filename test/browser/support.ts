/**
 * What the browser suites share: a live TaskFlow serving the built web app, Chromium trusting its
 * certificates, a first page and more pages of their own (one user each), signing in through the
 * page, calls to the API with a tenant's token (to set things up, to make a change "someone else"
 * made, and to check what was saved), and checks that run on every page (no script error, no
 * Content-Security-Policy violation, the accessibility basics).
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { accessibilityProblems } from '../helpers/a11y.ts';
import { chromiumMissing, launchChromium, screenshot, type PageRecord, type TestBrowser } from '../helpers/chromium.ts';
import { request } from '../helpers/http.ts';
import { ensureWebBuilt } from '../helpers/web-build.ts';
import { startLiveServer, type LiveServer, type LiveTenant, type LiveUser } from '../security/live.ts';

/** The options of a browser suite's `describe`: skipped, saying why, where there is no Chromium. */
export const BROWSER_SUITE = { skip: chromiumMissing() ?? false, timeout: 120_000 };

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

/** A page in a browser context of its own (its own cookies: one user), with what it logged. */
export interface OpenPage {
  context: BrowserContext;
  page: Page;
  record: PageRecord;
}

/**
 * The suite of one `describe`, started before its tests (with a first page, `page`) and closed
 * after them. Use it from the tests only: before they run there is nothing yet.
 */
export class BrowserSession {
  #suite: BrowserSuite | null = null;
  #main: OpenPage | null = null;

  get suite(): BrowserSuite {
    if (!this.#suite) throw new Error('the browser suite has not started (use it inside a test)');
    return this.#suite;
  }

  get live(): LiveServer {
    return this.suite.live;
  }

  get acme(): LiveTenant {
    return this.live.acme;
  }

  get page(): Page {
    return this.#opened().page;
  }

  get record(): PageRecord {
    return this.#opened().record;
  }

  #opened(): OpenPage {
    if (!this.#main) throw new Error('the browser suite has not started (use it inside a test)');
    return this.#main;
  }

  async start(): Promise<void> {
    this.#suite = await startBrowserSuite();
    this.#main = await this.#suite.chromium.newPage();
  }

  async stop(): Promise<void> {
    await this.#main?.context.close().catch(() => undefined);
    await this.#suite?.close();
  }

  /** Runs `work` with a page in a new browser context (another user, or another browser of the same one), closed after. */
  async withPage<T>(work: (opened: OpenPage) => Promise<T>, options: { viewport?: { width: number; height: number } } = {}): Promise<T> {
    const opened = await this.suite.chromium.newPage(options);
    try {
      return await work(opened);
    } finally {
      await opened.context.close();
    }
  }

  /** Calls acme's API (or `tenant`'s) with its token. */
  api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, tenant: LiveTenant = this.acme): Promise<ApiAnswer> {
    return api(this.live, tenant, method, path, body, headers);
  }
}

/** A BrowserSession for the enclosing `describe`: started before its tests, stopped after them. */
export function browserSession(): BrowserSession {
  const session = new BrowserSession();
  before(() => session.start());
  after(() => session.stop());
  return session;
}

export interface ApiAnswer {
  status: number;
  body: unknown;
  etag: string | undefined;
}

/** Calls the API of `tenant` with its token; answers the status and parsed body. */
export async function api(live: LiveServer, tenant: LiveTenant, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> {
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

/** The task keys of a column, top to bottom. */
export async function keysIn(page: Page, status: string): Promise<string[]> {
  const cards = await column(page, status).locator('[data-task]').all();
  return Promise.all(cards.map(async (c) => (await c.getAttribute('data-task')) ?? ''));
}

/** Picks a card up with the keyboard (space on its handle); answers once the arrow keys move it. */
export async function pickUp(page: Page, key: string): Promise<void> {
  await card(page, key).getByRole('button', { name: `Move ${key}` }).focus();
  await page.keyboard.press('Space');
  await card(page, key).locator('.card-handle[aria-pressed="true"]').waitFor();
  // @dnd-kit's keyboard sensor starts listening in a timer of its own, set when the drag started;
  // a timer set now runs after it.
  await page.evaluate('new Promise((resolve) => setTimeout(resolve, 0))');
}

/** Drags a card by its handle with the mouse to the point (x, y), in small steps as a hand would. */
export async function dragTo(page: Page, key: string, x: number, y: number): Promise<void> {
  const from = await card(page, key).locator('.card-handle').boundingBox();
  assert.ok(from, `${key} has a handle on screen`);
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(from.x + from.width / 2 + 10, from.y + from.height / 2 + 10, { steps: 4 });
  await page.mouse.move(x, y, { steps: 12 });
}

/** Waits (up to 5 s) until `read` answers `expected` (compared as JSON); answers the last value read. */
export async function eventually<T>(read: () => Promise<T>, expected: T): Promise<T> {
  const deadline = Date.now() + 5_000;
  const same = (value: T) => JSON.stringify(value) === JSON.stringify(expected);
  let value = await read();
  while (!same(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }
  return value;
}
