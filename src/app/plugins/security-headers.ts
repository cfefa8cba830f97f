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

/** Sets the headers on one reply; also used for errors answered before routing, which skip hooks. */
export function applySecurityHeaders(reply: FastifyReply, url: string): void {
  void reply.headers(ALWAYS);
  const type = String(reply.getHeader('content-type') ?? '');
  // Only HTML (the web UI, later) needs a policy that lets it load its own scripts and styles.
  if (!type.startsWith('text/html')) void reply.header('content-security-policy', API_CSP);
  // Only a problem description may be cached (its route says for how long); everything else is
  // tenant data or live status, and no error is worth keeping: a 404 for an unknown code included.
  const cacheable = url.startsWith('/problems/') && reply.statusCode < 400 && reply.hasHeader('cache-control');
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
