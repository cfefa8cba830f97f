/**
 * Errors as the web app shows them. Every API error is an RFC 9457 problem (application/problem+json)
 * with a stable `code` and a human `detail`; ApiError carries both, and readableMessage() turns any
 * failure into one sentence for the page.
 */

/** One field the server refused: where (JSON pointer into the body) and why. */
export interface FieldError {
  in: string;
  pointer: string;
  message: string;
}

/** An error answer of the API, or a request that never got one (`code` 'network'). */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly fieldErrors: readonly FieldError[];
  /** Extension members of the problem (`currentVersion`, `reason`, …). */
  readonly extra: Readonly<Record<string, unknown>>;
  /** Seconds from Retry-After, when the server sent one. */
  readonly retryAfter: number | null;

  constructor(props: { status: number; code: string; detail: string; fieldErrors?: FieldError[]; extra?: Record<string, unknown>; retryAfter?: number | null }) {
    super(props.detail);
    this.status = props.status;
    this.code = props.code;
    this.detail = props.detail;
    this.fieldErrors = props.fieldErrors ?? [];
    this.extra = props.extra ?? {};
    this.retryAfter = props.retryAfter ?? null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asFieldErrors(value: unknown): FieldError[] {
  if (!Array.isArray(value)) return [];
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  return value.filter(isRecord).map((e) => ({ in: text(e.in), pointer: text(e.pointer), message: text(e.message) }));
}

/** The ApiError for an answer that is not 2xx; `body` is its parsed JSON, or null. */
export function apiErrorOf(response: Response, body: unknown): ApiError {
  const retryHeader = response.headers.get('retry-after');
  const retryAfter = retryHeader !== null && /^\d+$/.test(retryHeader) ? Number(retryHeader) : null;
  if (isRecord(body) && typeof body.code === 'string') {
    const { type: _type, title, status: _status, detail, instance: _instance, code, errors, ...extra } = body;
    const text = typeof detail === 'string' && detail !== '' ? detail : typeof title === 'string' ? title : code;
    return new ApiError({ status: response.status, code, detail: text, fieldErrors: asFieldErrors(errors), extra, retryAfter });
  }
  // Not one of ours: a proxy's error page, or a server that is not TaskFlow.
  return new ApiError({ status: response.status, code: 'unexpected-response', detail: `The server answered ${response.status} ${response.statusText}`.trim(), retryAfter });
}

/** The ApiError for a request that got no answer at all. */
export function networkError(cause: unknown): ApiError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ApiError({ status: 0, code: 'network', detail: `TaskFlow could not be reached (${why}). Check your connection and try again.` });
}

const PASSWORD_REASONS: Record<string, string> = {
  'too-short': 'Use at least 12 characters.',
  'too-long': 'Use at most 1024 characters.',
  common: 'This password is too common; pick one that others would not guess.',
  repetitive: 'This password repeats too few characters.',
  'contains-personal-data': 'The password must not contain your e-mail name or the organisation’s name.',
};

/** One readable sentence for any failure: the problem's `detail`, with a hint where the code calls for one. */
export function readableMessage(error: unknown): string {
  // A sentence the app wrote itself.
  if (typeof error === 'string') return error;
  if (!(error instanceof ApiError)) return `Something went wrong: ${error instanceof Error ? error.message : String(error)}`;
  const detail = error.detail.endsWith('.') ? error.detail : `${error.detail}.`;
  const capitalised = detail.charAt(0).toUpperCase() + detail.slice(1);
  switch (error.code) {
    case 'password-rejected': {
      const reason = typeof error.extra.reason === 'string' ? PASSWORD_REASONS[error.extra.reason] : undefined;
      return reason ? `${capitalised} ${reason}` : capitalised;
    }
    case 'rate-limited':
      return error.retryAfter === null ? capitalised : `${capitalised} Try again in ${waitText(error.retryAfter)}.`;
    case 'reauthentication-required':
      return `${capitalised} Enter your password again below.`;
    default:
      return capitalised;
  }
}

function waitText(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

/** The server's message for one body field (`/key`), if it refused that field. */
export function fieldMessage(error: unknown, pointer: string): string | null {
  if (!(error instanceof ApiError)) return null;
  return error.fieldErrors.find((e) => e.in === 'body' && e.pointer === pointer)?.message ?? null;
}
