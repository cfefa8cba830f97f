/**
 * Every error, unknown route and wrong method is answered as application/problem+json. Routes are
 * recorded as they are added so an unknown method on a known path is a 405 with Allow, not a 404.
 *
 * A database connection that failed or broke, or a server that turned out read-only, means the
 * primary is gone or moved (every connection goes to the primary): such an error is answered 503
 * `primary-unavailable` with the short Retry-After of a failover, and the locator looks again at once.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { isPrimaryLoss, type PrimaryGate } from '../../platform/postgres/primary-session.ts';
import type { App } from '../app.ts';
import { pathOf, problemFor, PROBLEM_CONTENT_TYPE, type ProblemResponse } from '../problem.ts';

/** Writes a problem response. */
export function sendProblem(reply: FastifyReply, response: ProblemResponse): void {
  void reply.code(response.problem.status).headers(response.headers).type(PROBLEM_CONTENT_TYPE).send(response.problem);
}

/** Answers `err` as a problem, logging what deserves it; usable before routing too (frameworkErrors). */
export function answerWithProblem(err: unknown, request: FastifyRequest, reply: FastifyReply, retryAfterSeconds: number): void {
  const response = problemFor(err, pathOf(request.url), retryAfterSeconds);
  if (response.unexpected) {
    request.log.error({ err }, 'request failed');
  } else if (response.problem.status >= 500) {
    request.log.warn({ code: response.problem.code, err: (err as Error).message }, 'request not served');
  }
  sendProblem(reply, response);
}

/** Route paths by method, to tell "no such path" from "not with this method". */
class RouteTable {
  readonly #routes: { method: string; segments: string[] }[] = [];

  add(methods: string | string[], url: string): void {
    for (const method of Array.isArray(methods) ? methods : [methods]) this.#routes.push({ method, segments: url.split('/') });
  }

  /** Methods some route accepts for this concrete path. */
  allowed(path: string): string[] {
    const parts = path.split('/');
    const methods = new Set<string>();
    for (const route of this.#routes) {
      if (route.segments.length !== parts.length) continue;
      if (route.segments.every((seg, i) => seg.startsWith(':') ? parts[i] !== '' : seg === parts[i])) methods.add(route.method);
    }
    return [...methods].sort();
  }
}

/** Connection failures that happen before a session exists: nothing can have been changed. */
const NEVER_OPENED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', '57P03', 'TASKFLOW_NOT_PRIMARY']);

/** node-postgres' pool gave up waiting for a free connection (all in use for connectionTimeoutMillis). */
const POOL_WAIT_TIMEOUT = 'timeout exceeded when trying to connect';

/** The error as the client should hear it: losing the primary, or waiting too long for a pooled connection. */
export function translateDatabaseError(err: unknown, primary: Pick<PrimaryGate, 'unavailable' | 'refresh'> | undefined, retryAfterSeconds: number): unknown {
  if (err instanceof AppError) return err;
  if (primary && isPrimaryLoss(err)) {
    primary.refresh('a request lost its database connection');
    // A connection that never opened changed nothing; one that broke may have been mid-change.
    const { code, message } = err as { code?: unknown; message?: unknown };
    const neverOpened = (typeof code === 'string' && NEVER_OPENED.has(code)) || (typeof message === 'string' && message.includes('connection timeout'));
    return primary.unavailable(err, !neverOpened);
  }
  if ((err as { message?: unknown } | null)?.message === POOL_WAIT_TIMEOUT) {
    return new AppError('server-busy', 'no database connection became free in time', { headers: { 'Retry-After': String(retryAfterSeconds) }, cause: err });
  }
  return err;
}

export interface ErrorsOptions {
  retryAfterSeconds: number;
  /** The platform's primary locator: database connection failures become `primary-unavailable`. */
  primary?: Pick<PrimaryGate, 'unavailable' | 'refresh'>;
}

export function installErrors(app: App, options: ErrorsOptions): void {
  const routes = new RouteTable();
  app.addHook('onRoute', (route) => {
    routes.add(route.method, route.url);
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    answerWithProblem(translateDatabaseError(error, options.primary, options.retryAfterSeconds), request, reply, options.retryAfterSeconds);
  });

  app.setNotFoundHandler((request, reply) => {
    const allowed = routes.allowed(pathOf(request.url));
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      const response = problemFor(new AppError('method-not-allowed', `${request.method} is not allowed here; use ${allowed.join(', ')}`), pathOf(request.url), options.retryAfterSeconds);
      response.headers.Allow = allowed.join(', ');
      sendProblem(reply, response);
      return;
    }
    sendProblem(reply, problemFor(new AppError('not-found', 'no such resource'), pathOf(request.url), options.retryAfterSeconds));
  });
}
