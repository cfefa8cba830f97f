/**
 * Authentication and permission for every /api route: an API token (Authorization: Bearer) or the
 * session cookie, then the route's permission from policies.ts, then CSRF for browser requests.
 * Every route must name its permission; a route without one fails at start-up, not in production.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { Principal } from '../accounts/principal.ts';
import { findSession, sessionCookieOf, touchSession, type SessionTimeouts } from '../accounts/sessions.ts';
import type { App } from '../app.ts';
import { allows, type Permission } from '../policies.ts';
import { bearerAuthentication, type ApiTokenVerifier } from './auth.ts';
import { checkCsrf } from './csrf.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request acts for; null when anonymous (public routes only). */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The rule in policies.ts this route needs. */
    permission?: Permission;
    /** Also served to a session that still owes its second factor. */
    allowPendingSecondFactor?: boolean;
    /** Also served while the tenant requires a second factor the user has not set up. */
    allowDuringEnrolment?: boolean;
  }
}

export interface AuthenticateOptions {
  verifier: ApiTokenVerifier;
  timeouts: SessionTimeouts;
  csrfKey: Buffer;
}

/** The principal behind a request; throws 401 for a bad token, null for no credentials at all. */
async function principalOf(request: FastifyRequest, options: AuthenticateOptions): Promise<Principal | null> {
  if (request.headers.authorization !== undefined) {
    await bearerAuthentication(options.verifier)(request);
    return { kind: 'token' };
  }
  const cookie = sessionCookieOf(request);
  if (!cookie) return null;
  const found = await request.tenantDb.read(async (db) => {
    const s = await findSession(db, cookie, options.timeouts);
    if (s) await touchSession(db, s.session.id);
    return s;
  });
  if (!found) return null;
  return { kind: 'user', user: found.user, session: found.session, mustEnrolSecondFactor: found.mustEnrolSecondFactor };
}

/** Installs the checks on the /api plugin instance. */
export function installAuthentication(app: App, options: AuthenticateOptions): void {
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => {
    if (route.config?.permission === undefined) throw new Error(`route ${route.method.toString()} ${route.url} names no permission`);
  });
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    const permission = config.permission;
    if (permission === undefined) return; // unknown route: the 404 handler answers
    const principal = await principalOf(request, options);
    request.principal = principal;
    if (permission !== 'public') {
      if (!principal) {
        throw new AppError('unauthenticated', 'sign in, or send an API token as Authorization: Bearer <token>', { headers: { 'WWW-Authenticate': 'Bearer' } });
      }
      if (principal.kind === 'user') {
        if (principal.session.stage === 'mfa' && config.allowPendingSecondFactor !== true) {
          throw new AppError('unauthenticated', 'finish signing in with your second factor');
        }
        if (principal.mustEnrolSecondFactor && config.allowDuringEnrolment !== true) throw new AppError('second-factor-required');
      }
      const who = principal.kind === 'token' ? principal : { kind: 'user' as const, role: principal.user.role };
      if (!allows(permission, who)) {
        throw new AppError('forbidden', principal.kind === 'token' ? 'API tokens cannot do this; sign in as a user' : `your role (${principal.user.role}) does not allow this`);
      }
    }
    checkCsrf(request, options.csrfKey);
  });
}
