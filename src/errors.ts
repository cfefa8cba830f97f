/** Stable error codes: one table of code, HTTP status and title; RFC 9457 problem+json on the wire. */

export const PROBLEMS = {
  'bad-request': { status: 400, title: 'The request is malformed' },
  'validation-failed': { status: 400, title: 'The request does not match the expected shape' },
  'invalid-json': { status: 400, title: 'The request body is not valid JSON' },
  'invalid-cursor': { status: 400, title: 'The pagination cursor is not valid' },
  'token-invalid': { status: 400, title: 'The link is invalid or has expired' },
  unauthenticated: { status: 401, title: 'Authentication is required' },
  'invalid-credentials': { status: 401, title: 'The e-mail address or password is incorrect' },
  'invalid-second-factor': { status: 401, title: 'The code is not valid' },
  forbidden: { status: 403, title: 'Not allowed' },
  'csrf-failed': { status: 403, title: 'The request did not come from this site' },
  'https-required': { status: 403, title: 'This request must be made over HTTPS' },
  'reauthentication-required': { status: 403, title: 'Enter your password again to do this' },
  'second-factor-required': { status: 403, title: 'This organisation requires a second factor; set one up first' },
  'tenant-not-found': { status: 404, title: 'No tenant is served at this address' },
  'not-found': { status: 404, title: 'The resource does not exist' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  'transition-not-allowed': { status: 409, title: 'The workflow does not allow this move' },
  'status-has-tasks': { status: 409, title: 'A status to be removed still has tasks' },
  'invalid-position': { status: 409, title: 'The task to place it next to is not in that column' },
  'precondition-failed': { status: 412, title: 'The resource has changed since the version given in If-Match' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'password-rejected': { status: 422, title: 'The password does not meet the password policy' },
  'unknown-status': { status: 422, title: "The status is not one of the project's statuses" },
  'invalid-assignee': { status: 422, title: 'The assignee is not an active user of this organisation' },
  'invalid-workflow': { status: 422, title: 'The workflow is not consistent' },
  'unsupported-media-type': { status: 415, title: 'The request body must be application/json' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal error' },
  'tenant-suspended': { status: 503, title: 'This tenant is suspended' },
  'tenant-unavailable': { status: 503, title: 'This tenant is temporarily unavailable' },
  'database-unavailable': { status: 503, title: 'The database is unavailable' },
  'primary-unavailable': { status: 503, title: 'No database server accepts writes right now' },
  'commit-unconfirmed': { status: 503, title: 'The change was not confirmed by a standby database' },
  'server-busy': { status: 503, title: 'The server is busy' },
  'request-timeout': { status: 503, title: 'The request took too long' },
} as const;

export type ProblemCode = keyof typeof PROBLEMS;

/** The `type` of a problem: a relative URI that the server itself answers (RFC 9457 §3.1.1); see docs/errors.md. */
export function problemType(code: ProblemCode): string {
  return `/problems/${code}`;
}

/** An error that reaches the user as problem+json with a stable code. */
export class AppError extends Error {
  override name = 'AppError';
  readonly code: ProblemCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    code: ProblemCode,
    detail?: string,
    options: { extra?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(detail ?? PROBLEMS[code].title, { cause: options.cause });
    this.code = code;
    this.status = PROBLEMS[code].status;
    this.detail = detail;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }
}

/** A problem the CLI reports as a one-line message and a non-zero exit, without a stack. */
export class UserError extends Error {
  override name = 'UserError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}
