/**
 * Every request's deadline (`server.requestTimeoutMs` after it was routed) and what it means for its
 * transactions: once the request has been answered 503 `request-timeout`, none of them can commit
 * any more (they roll back instead); while a COMMIT is on its way, or once one has been made, the
 * deadline does not answer, so a client is never told "timed out" about a change it let through.
 * Statements are also cut off at the deadline (see tenant-db.ts), so a timed-out request does not
 * keep its connection.
 *
 * Fastify's own handler timeout (the `handlerTimeout` server option) is not used: it is cleared as
 * soon as a request body has been read, because Node.js reports that as the request closing
 * (fastify/fastify#6725), so a POST or PATCH with a body was never timed out at all, and where it
 * does fire it answers even while a COMMIT is on its way. This deadline is the only one.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { App } from '../app.ts';
import type { Deadline } from '../tenant-db.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** When the request must have been answered; null when no timeout is configured. */
    deadline: RequestDeadline | null;
  }
}

function timedOut(): AppError {
  return new AppError('request-timeout', 'the request took too long and was stopped');
}

/** One request's deadline; see the module comment. */
export class RequestDeadline implements Deadline {
  readonly #expiresAt: number;
  #passed = false;
  #answered = false;
  #committing = 0;
  #committed = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(remainingMs: number, now = performance.now()) {
    this.#expiresAt = now + remainingMs;
  }

  /** Whether the request has been (or is being) answered request-timeout. */
  get passed(): boolean {
    return this.#passed;
  }

  remainingMs(now = performance.now()): number {
    return this.#answered ? Infinity : this.#expiresAt - now;
  }

  assertNotPassed(): void {
    if (this.#passed) throw timedOut();
  }

  async commit<T>(commit: () => Promise<T>): Promise<T> {
    this.assertNotPassed();
    this.#committing++;
    try {
      const result = await commit();
      this.#committed = true;
      return result;
    } finally {
      this.#committing--;
    }
  }

  /**
   * The deadline is reached: it passes, unless the answer is on its way or a COMMIT is, or one has
   * been made (the handler then answers with what happened, however late). Returns whether it passed.
   */
  reach(): boolean {
    if (this.#passed) return true;
    if (this.#answered || this.#committing > 0 || this.#committed) return false;
    this.#passed = true;
    return true;
  }

  /** Someone else answered request-timeout (Fastify's timer): nothing may commit any more. */
  pass(): void {
    this.#passed = true;
    this.stop();
  }

  /** Calls `answer` once the deadline is reached and passes. */
  watch(answer: () => void): void {
    this.stop();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.reach()) answer();
    }, Math.max(0, this.remainingMs()));
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The answer is on its way: work done after it (a mail sent later, say) is not bound any more. */
  answered(): void {
    this.stop();
    if (!this.#passed) this.#answered = true;
  }
}

function isHandlerTimeout(reason: unknown): boolean {
  return (reason as { code?: unknown } | undefined)?.code === 'FST_ERR_HANDLER_TIMEOUT';
}

/** Arms the deadline of one request; returns it, or null without a timeout. */
function arm(request: FastifyRequest, reply: FastifyReply, timeoutMs: number): RequestDeadline | null {
  if (timeoutMs <= 0) return null;
  // Counted, like Fastify's timer, from when the request was routed.
  const deadline = new RequestDeadline(timeoutMs - reply.elapsedTime);
  if (request.routeOptions.handlerTimeout > 0) {
    // Fastify's signal also aborts when a body has been read; only its timeout counts here.
    const signal = request.signal;
    const onAbort = () => {
      if (isHandlerTimeout(signal.reason)) deadline.pass();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  deadline.watch(() => {
    if (!reply.sent) void reply.send(timedOut());
  });
  // A client that went away gets no answer; its statements are still cut off at the deadline.
  reply.raw.once('close', () => {
    deadline.stop();
  });
  return deadline;
}

/**
 * Gives every request its deadline. `timeoutMs` defaults to the route's handlerTimeout (Fastify's
 * option, which server.ts sets to server.requestTimeoutMs).
 */
export function installDeadline(app: App, options: { timeoutMs?: number } = {}): void {
  app.decorateRequest('deadline', null);
  app.addHook('onRequest', async (request, reply) => {
    request.deadline = arm(request, reply, options.timeoutMs ?? request.routeOptions.handlerTimeout);
  });
  app.addHook('onSend', async (request, _reply, payload) => {
    request.deadline?.answered();
    return payload;
  });
}
