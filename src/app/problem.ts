/**
 * Every error becomes an RFC 9457 problem with a stable code from PROBLEMS. Nothing internal (stack,
 * SQL, constraint names) reaches the client; what is not understood is a 500 `internal`.
 */
import type { FastifyError, FastifySchemaValidationError } from 'fastify';
import { AppError, PROBLEMS, problemType, type ProblemCode } from '../errors.ts';
import { isConnectionError } from '../platform/postgres/tenant-pools.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** One field that failed validation: where (`in` + JSON pointer) and why. */
export interface FieldError {
  in: string;
  pointer: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: ProblemCode;
  errors?: FieldError[];
  [extension: string]: unknown;
}

export interface ProblemResponse {
  problem: Problem;
  headers: Record<string, string>;
  /** Whether this is our fault (5xx other than the expected unavailability), worth an error log. */
  unexpected: boolean;
}

/** Fastify's own error codes that mean the request itself was wrong. */
const FASTIFY_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload-too-large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid-json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid-json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad-request',
  FST_ERR_BAD_URL: 'bad-request',
  FST_ERR_MAX_PARAM_LENGTH: 'not-found',
  FST_ERR_HANDLER_TIMEOUT: 'request-timeout',
};

/** PostgreSQL SQLSTATEs that a request can cause; everything else is our bug or an outage. */
const PG_CODES: Record<string, ProblemCode> = {
  '23505': 'conflict',
  '23503': 'conflict',
  '40001': 'conflict',
  '40P01': 'conflict',
  '23502': 'validation-failed',
  '23514': 'validation-failed',
  '22001': 'validation-failed',
  '22003': 'validation-failed',
  '22007': 'validation-failed',
  '22008': 'validation-failed',
  '22P02': 'validation-failed',
  // A NUL character (or one the database encoding cannot hold) in a text value.
  '22021': 'validation-failed',
  '22P05': 'validation-failed',
  '57014': 'request-timeout',
  '3D000': 'database-unavailable',
  '53300': 'database-unavailable',
};

const MAX_FIELD_ERRORS = 20;

function isPgError(err: unknown): err is { code: string; severity: string } {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; severity?: unknown };
  return typeof e.code === 'string' && typeof e.severity === 'string';
}

function isFastifyError(err: unknown): err is FastifyError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

type ValidationError = FastifySchemaValidationError;

function isBranchOf(error: ValidationError, union: ValidationError): boolean {
  return error !== union && error.instancePath === union.instancePath && error.schemaPath.startsWith(`${union.schemaPath}/anyOf/`);
}

/** What a union allows, from the errors of its branches: `must be one of: todo, done`, `must be string or null`. */
function allowedByBranches(branches: ValidationError[]): string | null {
  if (branches.length === 0) return null;
  if (branches.every((b) => b.keyword === 'const')) {
    const values = branches.map((b) => (b.params as { allowedValue?: unknown }).allowedValue);
    return `must be one of: ${values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}`;
  }
  if (branches.every((b) => b.keyword === 'type')) return `must be ${branches.map((b) => String((b.params as { type?: unknown }).type)).join(' or ')}`;
  return [...new Set(branches.map((b) => b.message ?? 'is not valid'))].join(', or ');
}

/**
 * A value that matched no branch of a union (an enum is a union of constants) is reported by the
 * validator once per branch and once more for the union; this makes it one error naming what is
 * allowed.
 */
function mergeUnionErrors(errors: readonly ValidationError[]): ValidationError[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  const out: ValidationError[] = [];
  for (const e of errors) {
    if (e.keyword === 'anyOf') {
      out.push({ ...e, message: allowedByBranches(errors.filter((b) => isBranchOf(b, e))) ?? e.message });
    } else if (!unions.some((union) => isBranchOf(e, union))) {
      out.push(e);
    }
  }
  return out;
}

/** Turns validator output into field errors with JSON pointers a client can act on. */
export function fieldErrors(where: string, errors: readonly FastifySchemaValidationError[]): FieldError[] {
  const out: FieldError[] = [];
  for (const e of mergeUnionErrors(errors)) {
    const params = e.params as { additionalProperties?: unknown; requiredProperties?: unknown };
    if (e.keyword === 'boolean') continue; // TypeBox repeats each additionalProperties error this way
    if (e.keyword === 'additionalProperties' && Array.isArray(params.additionalProperties)) {
      for (const name of params.additionalProperties as string[]) out.push({ in: where, pointer: `${e.instancePath}/${name}`, message: 'is not a known field' });
    } else if (e.keyword === 'required' && Array.isArray(params.requiredProperties)) {
      for (const name of params.requiredProperties as string[]) out.push({ in: where, pointer: `${e.instancePath}/${name}`, message: 'is required' });
    } else {
      out.push({ in: where, pointer: e.instancePath, message: e.message ?? 'is not valid' });
    }
  }
  return out.slice(0, MAX_FIELD_ERRORS);
}

function classify(err: unknown): { code: ProblemCode; detail?: string; errors?: FieldError[]; extra?: Record<string, unknown>; headers?: Record<string, string> } {
  if (err instanceof AppError) return { code: err.code, detail: err.detail, extra: err.extra, headers: err.headers };
  if (isFastifyError(err) && Array.isArray(err.validation)) {
    const where = err.validationContext ?? 'request';
    // A malformed id cannot name anything that exists: answer as for any unknown id.
    if (where === 'params') return { code: 'not-found' };
    const errors = fieldErrors(where, err.validation);
    const first = errors[0];
    const detail = first ? `${where}${first.pointer} ${first.message}` : `the ${where} does not match the expected shape`;
    return { code: 'validation-failed', detail, errors };
  }
  if (isConnectionError(err)) return { code: 'database-unavailable' };
  if (isPgError(err)) return { code: PG_CODES[err.code] ?? 'internal' };
  if (isFastifyError(err)) {
    const mapped = FASTIFY_CODES[err.code];
    if (mapped) return { code: mapped };
    const status = err.statusCode ?? 500;
    if (status === 404) return { code: 'not-found' };
    if (status === 405) return { code: 'method-not-allowed' };
    if (status >= 400 && status < 500) return { code: 'bad-request' };
  }
  return { code: 'internal' };
}

/** The problem (and headers) to answer `err` with; `instance` is the request path. */
export function problemFor(err: unknown, instance: string, retryAfterSeconds: number): ProblemResponse {
  const c = classify(err);
  const { status, title } = PROBLEMS[c.code];
  const problem: Problem = {
    ...c.extra,
    type: problemType(c.code),
    title,
    status,
    detail: c.detail ?? title,
    instance,
    code: c.code,
  };
  if (c.errors) problem.errors = c.errors;
  const headers: Record<string, string> = { ...c.headers };
  if (status === 503 && !('Retry-After' in headers)) headers['Retry-After'] = String(retryAfterSeconds);
  const unexpected = c.code === 'internal';
  return { problem, headers, unexpected };
}

/** The request path without its query string (which may carry secrets), for `instance` and logs. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
