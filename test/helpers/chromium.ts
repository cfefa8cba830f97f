/**
 * Debian's Chromium, driven by playwright-core, for the browser suites. It trusts the live server's
 * certificates without turning certificate checks off: Node first verifies each tenant host's
 * certificate against the server's own authority, then Chromium is told to accept exactly those
 * keys (--ignore-certificate-errors-spki-list, which Chromium honours only with a user data
 * directory of its own, as Playwright gives every launch). `*.localhost` is mapped to 127.0.0.1.
 * Every page records what it logs, its script errors and any Content-Security-Policy violation.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.TASKFLOW_CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots go: test-output/browser/ (git-ignored). */
export const SCREENSHOTS = fileURLToPath(new URL('../../test-output/browser/', import.meta.url));

/** Why the browser suites cannot run here, or null when they can. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM) ? null : `Chromium is not installed at ${CHROMIUM}: apt-get install chromium (scripts/test.sh does it as root), or set TASKFLOW_CHROMIUM`;
}

/** The base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as Chromium's SPKI list wants it. */
function spkiHash(cert: X509Certificate): string {
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}

/** Connects to `host` (SNI) at 127.0.0.1:port, verifies its certificate against `ca`, and answers its key's hash. */
function verifiedKey(host: string, port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: host, ca, rejectUnauthorized: true }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (!cert?.checkHost(host)) reject(new Error(`the certificate of ${host} does not name it`));
      else resolve(spkiHash(cert));
    });
    socket.on('error', reject);
  });
}

export interface PageRecord {
  /** Console errors and warnings (but the browser's own line for each 4xx answer), and page errors. */
  problems: string[];
  /** Content-Security-Policy violations the browser reported. */
  cspViolations: string[];
}

export interface TestBrowser {
  browser: Browser;
  /** A fresh context (own cookies: one user) with one page; `viewport` defaults to 1280×800. */
  newPage(options?: { viewport?: { width: number; height: number } }): Promise<{ context: BrowserContext; page: Page; record: PageRecord }>;
  close(): Promise<void>;
}

/** Launches Chromium trusting the certificates of these tenant hosts (`acme.localhost`) on `port`. */
export async function launchChromium(options: { hosts: string[]; port: number; ca: string }): Promise<TestBrowser> {
  const keys = await Promise.all(options.hosts.map((host) => verifiedKey(host, options.port, options.ca)));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP *.localhost 127.0.0.1',
      `--ignore-certificate-errors-spki-list=${[...new Set(keys)].join(',')}`,
    ],
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    browser,
    async newPage(pageOptions = {}) {
      const context = await browser.newContext({ ignoreHTTPSErrors: false, viewport: pageOptions.viewport ?? { width: 1280, height: 800 }, locale: 'en-GB', timezoneId: 'UTC' });
      context.setDefaultTimeout(10_000);
      const page = await context.newPage();
      const record: PageRecord = { problems: [], cspViolations: [] };
      page.on('console', (message) => {
        const text = message.text();
        if (/Content Security Policy/i.test(text)) record.cspViolations.push(text);
        // Chromium logs every 4xx answer; the app shows those to the user, which the suites check.
        else if (/^Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
        else if (message.type() === 'error' || message.type() === 'warning') record.problems.push(`${message.type()}: ${text}`);
      });
      page.on('pageerror', (error) => record.problems.push(`page error: ${error.message}`));
      return { context, page, record };
    },
    async close() {
      await browser.close();
    },
  };
}

/** A full-page screenshot in test-output/browser/<name>.png; answers its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
