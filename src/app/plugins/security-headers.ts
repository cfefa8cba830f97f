/** Headers on every response that keep browsers from misusing what the API sends. */
import type { FastifyReply } from 'fastify';
import type { App } from '../app.ts';

const ALWAYS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** The API sends data, never documents: nothing in a response may load or be framed. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * The web app's pages (plugins/web.ts) load their own scripts, styles and API answers and nothing
 * else: no inline script or style, no plugins, no framing, no <base>, forms only to this origin.
 */
export const HTML_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/** Paths whose successful answers may keep the Cache-Control their route set. */
const CACHEABLE_PREFIXES = [
  // A problem description (its route says for how long).
  '/problems/',
  // The web app's content-hashed files: a changed file gets a new name.
  '/assets/',
];

/** Sets the headers on one reply; also used for errors answered before routing, which skip hooks. */
export function applySecurityHeaders(reply: FastifyReply, url: string): void {
  void reply.headers(ALWAYS);
  const type = String(reply.getHeader('content-type') ?? '');
  // Only HTML needs a policy that lets it load its own files: the web app's, unless the page's
  // route set a narrower one of its own (the API reference).
  if (!type.startsWith('text/html')) void reply.header('content-security-policy', API_CSP);
  else if (!reply.hasHeader('content-security-policy')) void reply.header('content-security-policy', HTML_CSP);
  // Only problem descriptions and the web app's hashed files may be cached; everything else is
  // tenant data, live status or the app's index.html (which names the current files), and no error
  // is worth keeping: a 404 for an unknown code or file included.
  const cacheable = CACHEABLE_PREFIXES.some((prefix) => url.startsWith(prefix)) && reply.statusCode < 400 && reply.hasHeader('cache-control');
  if (!cacheable) void reply.header('cache-control', 'no-store');
}

/** Installs the headers; `hsts` (a Strict-Transport-Security value) goes on responses sent over HTTPS. */
export function installSecurityHeaders(app: App, options: { hsts: string | null }): void {
  app.addHook('onSend', async (request, reply, payload) => {
    applySecurityHeaders(reply, request.url);
    if (options.hsts && request.protocol === 'https') void reply.header('strict-transport-security', options.hsts);
    return payload;
  });
}
