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
  // Problem descriptions are static; everything else is tenant data or live status.
  if (!url.startsWith('/problems/')) void reply.header('cache-control', 'no-store');
}

export function installSecurityHeaders(app: App): void {
  app.addHook('onSend', async (request, reply, payload) => {
    applySecurityHeaders(reply, request.url);
    return payload;
  });
}
