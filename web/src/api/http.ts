/**
 * The one way the web app talks to the API: same-origin JSON with the session cookie, the CSRF
 * token in X-CSRF-Token on every change (docs/api.md, CSRF), problems turned into ApiError.
 */
import { apiErrorOf, networkError } from './problem.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  body?: unknown;
  /** An ETag to send as If-Match (tasks). */
  ifMatch?: string;
  signal?: AbortSignal;
}

export interface ApiResponse<T> {
  data: T;
  status: number;
  headers: Headers;
}

let csrfToken: Promise<string> | null = null;
const unauthenticatedListeners = new Set<() => void>();

/** Called when a request that needed a signed-in user was refused as unauthenticated (the session ended). */
export function onUnauthenticated(listener: () => void): () => void {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

async function send(method: Method, path: string, options: RequestOptions, csrfValue: string | null): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (csrfValue !== null) headers['x-csrf-token'] = csrfValue;
  if (options.ifMatch !== undefined) headers['if-match'] = options.ifMatch;
  try {
    return await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? null : JSON.stringify(options.body),
      credentials: 'same-origin',
      mode: 'same-origin',
      cache: 'no-store',
      // The page's own policy is no-referrer, under which a browser sends `Origin: null` with a
      // same-origin POST; the server's CSRF check needs the real origin.
      referrerPolicy: 'same-origin',
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw networkError(err);
  }
}

async function parseBody(response: Response): Promise<unknown> {
  if (response.status === 204 || response.status === 205) return null;
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('json')) return null;
  try {
    return (await response.json()) as unknown;
  } catch {
    return null;
  }
}

/** The CSRF token of this page (fetched once; the server sets the matching cookie). */
function csrf(fresh = false): Promise<string> {
  if (fresh || csrfToken === null) {
    csrfToken = (async () => {
      const response = await send('GET', '/api/auth/csrf', {}, null);
      const body = await parseBody(response);
      if (!response.ok) throw apiErrorOf(response, body);
      return (body as { csrfToken: string }).csrfToken;
    })();
    // A failed fetch must not stick: the next change asks again.
    csrfToken.catch(() => {
      csrfToken = null;
    });
  }
  return csrfToken;
}

/**
 * Sends one request; resolves with the parsed body of a 2xx answer, rejects with an ApiError
 * otherwise. The caller names the shape of the body (the server checks its answers against the
 * same contract).
 */
export async function request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const changes = method !== 'GET';
  let response = await send(method, path, options, changes ? await csrf() : null);
  if (changes && response.status === 403 && (await peekCode(response)) === 'csrf-failed') {
    // Another tab of this site fetched a newer token (and cookie); refused requests changed nothing.
    response = await send(method, path, options, await csrf(true));
  }
  const body = await parseBody(response);
  if (!response.ok) {
    const error = apiErrorOf(response, body);
    if (error.code === 'unauthenticated' && !path.startsWith('/api/auth/')) for (const listener of unauthenticatedListeners) listener();
    throw error;
  }
  return { data: body as T, status: response.status, headers: response.headers };
}

async function peekCode(response: Response): Promise<string | null> {
  const body = await parseBody(response.clone());
  return typeof body === 'object' && body !== null && 'code' in body && typeof body.code === 'string' ? body.code : null;
}

/** GET, resolving with the body only. */
export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request<T>('GET', path, signal ? { signal } : {})).data;
}

/** A query string from the parameters that have a value. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== undefined && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

