/**
 * CSRF protection for browser requests, safe across sibling subdomains: SameSite=Lax does not tell
 * `acme.example.com` from `evil.example.com` (same site), so every state-changing request that
 * does not carry an API token must
 *   1. come from this very origin (Origin, or Referer when a browser sends no Origin), and
 *   2. echo in `X-CSRF-Token` the value of the host-only `__Host-tf_csrf` cookie, which is signed
 *      for this tenant, so a token minted for another tenant is worthless here.
 * Requests with an Authorization header are not ambient-credentialed and skip the check.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';

export const CSRF_COOKIE = '__Host-tf_csrf';
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function signature(key: Buffer, tenantId: string, nonce: string): string {
  return createHmac('sha256', key).update(`${tenantId}:${nonce}`).digest('base64url');
}

/** A new token for this tenant: `nonce.signature`. */
export function newCsrfToken(key: Buffer, tenantId: string): string {
  const nonce = randomBytes(32).toString('base64url');
  return `${nonce}.${signature(key, tenantId, nonce)}`;
}

/** Whether a token was signed by this server for this tenant. */
export function csrfTokenValid(key: Buffer, tenantId: string, token: string): boolean {
  const [nonce, sig, extra] = token.split('.');
  if (!nonce || !sig || extra !== undefined || nonce.length !== 43) return false;
  const expected = Buffer.from(signature(key, tenantId, nonce));
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function setCsrfCookie(reply: FastifyReply, token: string): void {
  void reply.setCookie(CSRF_COOKIE, token, { path: '/', secure: true, httpOnly: true, sameSite: 'strict' });
}

/** The origin this request was addressed to, as a browser would write it in Origin. */
export function requestOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`.toLowerCase();
}

function originOfReferer(referer: string | undefined): string | null {
  if (!referer) return null;
  try {
    return new URL(referer).origin.toLowerCase();
  } catch {
    return null;
  }
}

/** Cookies are only ever sent and set over HTTPS (directly, or through a trusted proxy that says so). */
export function assertHttps(request: FastifyRequest): void {
  if (request.protocol !== 'https') throw new AppError('https-required', 'sign-in and browser sessions work over HTTPS only');
}

/** Throws unless a state-changing browser request passes the origin and token checks. */
export function checkCsrf(request: FastifyRequest, key: Buffer): void {
  if (SAFE_METHODS.has(request.method) || request.headers.authorization !== undefined) return;
  assertHttps(request);
  const tenant = request.tenant;
  if (!tenant) throw new Error('CSRF check needs a resolved tenant');
  const origin = request.headers.origin ?? originOfReferer(request.headers.referer);
  if (!origin || origin.toLowerCase() !== requestOrigin(request)) {
    throw new AppError('csrf-failed', 'the request must come from this site (Origin does not match)');
  }
  const header = request.headers[CSRF_HEADER];
  const cookie = request.cookies[CSRF_COOKIE];
  if (typeof header !== 'string' || !cookie || header.length !== cookie.length || !timingSafeEqual(Buffer.from(header), Buffer.from(cookie))) {
    throw new AppError('csrf-failed', `send the token from GET /api/auth/csrf in the ${CSRF_HEADER} header`);
  }
  if (!csrfTokenValid(key, tenant.id, cookie)) throw new AppError('csrf-failed', 'the CSRF token is not valid for this site');
}
