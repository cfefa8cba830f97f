/**
 * Injection: SQL (error-based, boolean and time-based) in every parameter of every route the scan
 * knows, reflected and stored XSS, and path traversal. A JSON API is safe from XSS when it never
 * answers attacker input as HTML and forbids sniffing; the web app escapes on rendering.
 */
import { headerOf, type ScanResponse } from '../client.ts';
import type { Check, ScanContext } from '../types.ts';

const SQL_ERRORS = /syntax error at or near|unterminated quoted string|SQLSTATE|invalid input syntax for|pg_catalog|relation "[^"]+" does not exist|column "[^"]+" does not exist/i;
/** Each would sleep 3 s if it reached SQL; an answer slower than SLEEP_MS means it did. */
const SLEEP_PAYLOADS = ["'; SELECT pg_sleep(3)--", "' || pg_sleep(3) || '", '1); SELECT pg_sleep(3)--', "'||(SELECT pg_sleep(3))||'"];
const SLEEP_MS = 2500;
const PAYLOADS = ["'", "' OR '1'='1", '" OR "1"="1', "1' OR 1=1--", "'; DROP TABLE app.tasks;--", '\\', '%27', "' UNION SELECT NULL,NULL--", ...SLEEP_PAYLOADS];
const RANDOM_ID = '00000000-0000-4000-8000-000000000000';

interface Route {
  method: string;
  /** `:id` is replaced by the payload in the path probes. */
  path: string;
  query?: string[];
  body?: string[];
}

/**
 * The routes of the TaskFlow API a member (the scan user) or an API token may call, with their
 * parameters: reads, and writes against ids that do not exist.
 */
const ROUTES: Route[] = [
  { method: 'GET', path: '/api/projects', query: ['cursor', 'limit'] },
  { method: 'GET', path: '/api/projects/:id' },
  { method: 'GET', path: '/api/projects/:id/workflow' },
  { method: 'GET', path: '/api/projects/:id/labels' },
  {
    method: 'GET',
    path: '/api/tasks',
    query: ['projectId', 'status', 'category', 'assignee', 'label', 'priority', 'dueBefore', 'dueAfter', 'q', 'sort', 'order', 'cursor', 'limit'],
  },
  { method: 'GET', path: '/api/tasks/:id' },
  { method: 'PATCH', path: '/api/tasks/:id', body: ['title', 'description', 'statusId', 'priority', 'dueDate', 'assigneeId'] },
  { method: 'POST', path: '/api/tasks/:id/move', body: ['toStatusId'] },
  { method: 'DELETE', path: '/api/tasks/:id' },
  { method: 'GET', path: '/api/tasks/:id/history', query: ['cursor', 'limit'] },
  { method: 'GET', path: '/api/tasks/:id/comments', query: ['cursor', 'limit'] },
  { method: 'POST', path: '/api/tasks/:id/comments', body: ['body'] },
  { method: 'POST', path: '/api/projects/:id/tasks', body: ['title', 'description', 'statusId', 'priority', 'dueDate', 'assigneeId'] },
  { method: 'POST', path: '/api/auth/login', body: ['email', 'password'] },
  { method: 'POST', path: '/api/auth/password-reset/complete', body: ['token', 'password'] },
  { method: 'POST', path: '/api/auth/invitations/accept', body: ['token', 'displayName', 'password'] },
];

function verdict(label: string, res: ScanResponse, payload: string): string | null {
  if (res.status >= 500) return `${label}: answered ${res.status}`;
  if (SQL_ERRORS.test(res.body)) return `${label}: a database error shows through: ${res.body.slice(0, 160)}`;
  if (SLEEP_PAYLOADS.includes(payload) && res.ms > SLEEP_MS) return `${label}: answered after ${res.ms.toFixed(0)} ms — the sleep ran`;
  if (res.status === 200 && /OR|UNION/.test(payload) && res.body.includes('"items"') && label.includes('path')) return `${label}: a boolean payload in an id returned data`;
  return null;
}

export const sqlInjection: Check = {
  id: 'sql-injection',
  title: 'SQL injection in every path, query and body parameter of every route',
  severity: 'high',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const failures: string[] = [];
    let probes = 0;
    for (const route of ROUTES) {
      // Sign-in routes are attacked as a browser before sign-in (with a CSRF token, or the probe tests only CSRF).
      const anonymous = route.path.startsWith('/api/auth/') ? await ctx.anonymous(t) : null;
      const send = (method: string, path: string, body?: unknown) => (anonymous ? ctx.browser(t, anonymous, method, path, body) : ctx.api(t, method, path, body));
      for (const payload of PAYLOADS) {
        const enc = encodeURIComponent(payload);
        if (route.path.includes(':id')) {
          probes++;
          const res = await send(route.method, route.path.replace(':id', enc), route.body ? Object.fromEntries(route.body.map((f) => [f, 'x'])) : undefined);
          const v = verdict(`${route.method} ${route.path} path id=${JSON.stringify(payload)}`, res, payload);
          if (v) failures.push(v);
        }
        for (const q of route.query ?? []) {
          probes++;
          const res = await send(route.method, `${route.path}?${q}=${enc}`);
          const v = verdict(`${route.method} ${route.path} query ${q}=${JSON.stringify(payload)}`, res, payload);
          if (v) failures.push(v);
        }
        for (const field of route.body ?? []) {
          probes++;
          const body = Object.fromEntries((route.body ?? []).map((f) => [f, f === field ? payload : 'x']));
          const res = await send(route.method, route.path.replace(':id', RANDOM_ID), body);
          const v = verdict(`${route.method} ${route.path} body ${field}=${JSON.stringify(payload)}`, res, payload);
          if (v) failures.push(v);
        }
      }
    }
    return { failures, probes };
  },
};

const XSS = '<script>alert(document.domain)</script><img src=x onerror=alert(1)>';

function htmlProblem(label: string, res: ScanResponse): string | null {
  const type = headerOf(res, 'content-type');
  if (res.body.includes('<script>alert(document.domain)</script>') && !/^application\/(problem\+)?json/.test(type)) return `${label}: the payload comes back as ${type || 'no content type'}`;
  if (headerOf(res, 'x-content-type-options') !== 'nosniff') return `${label}: no nosniff, a browser may sniff the answer as HTML`;
  return null;
}

export const xss: Check = {
  id: 'xss',
  title: 'Reflected and stored XSS: attacker input never comes back as HTML',
  severity: 'high',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const enc = encodeURIComponent(XSS);
    const failures: string[] = [];
    const reflected: [string, () => Promise<ScanResponse>][] = [
      ['reflected in a query', () => ctx.api(t, 'GET', `/api/tasks?status=${enc}`)],
      ['reflected in a search', () => ctx.api(t, 'GET', `/api/tasks?q=${enc}`)],
      ['reflected in a path', () => ctx.api(t, 'GET', `/api/${enc}`)],
      ['reflected in a problem path', () => ctx.client.request(`${t.url}/problems/${enc}`)],
      ['reflected in a body field', () => ctx.api(t, 'POST', `/api/projects/${RANDOM_ID}/tasks`, { title: XSS, statusId: XSS })],
    ];
    for (const [label, probe] of reflected) {
      const v = htmlProblem(label, await probe());
      if (v) failures.push(v);
    }
    // Stored: a task (title, Markdown description, label) and a comment that are the payload, read
    // back, then removed. Tasks need a project, and projects are for admins to make: use one that exists.
    const projects = await ctx.api(t, 'GET', '/api/projects?limit=1');
    const projectId = projects.json<{ items?: { id: string }[] }>()?.items?.[0]?.id;
    if (projectId === undefined) {
      failures.push(`found no project to store the XSS probe in (GET /api/projects answered ${projects.status}); create one for the scan user`);
      return { failures, probes: reflected.length };
    }
    const made = await ctx.api(t, 'POST', `/api/projects/${projectId}/tasks`, { title: XSS, description: XSS, labels: [XSS.slice(0, 40)] });
    const taskId = made.json<{ id: string }>()?.id;
    if (made.status !== 201 || taskId === undefined) {
      failures.push(`could not create the stored-XSS probe task (${made.status}); give the scan user member rights`);
      return { failures, probes: reflected.length + 1 };
    }
    try {
      await ctx.api(t, 'POST', `/api/tasks/${taskId}/comments`, { body: XSS });
      for (const [label, path] of [['stored in a task', `/api/tasks/${taskId}`], ['stored in a comment', `/api/tasks/${taskId}/comments`], ['stored in a list', `/api/tasks?projectId=${projectId}`]] as const) {
        const v = htmlProblem(label, await ctx.api(t, 'GET', path));
        if (v) failures.push(v);
      }
    } finally {
      await ctx.api(t, 'DELETE', `/api/tasks/${taskId}`);
    }
    return { failures, probes: reflected.length + 3 };
  },
};

const TRAVERSALS = ['/..%2f..%2f..%2fetc%2fpasswd', '/api/..%2f..%2f..%2fetc%2fpasswd', '/problems/..%2f..%2f..%2fetc%2fpasswd', '/%2e%2e/%2e%2e/etc/passwd', '/api/tasks/..%252f..%252fetc%252fpasswd', '/problems/....//....//etc/passwd', '/api/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd'];

export const pathTraversal: Check = {
  id: 'path-traversal',
  title: 'Path traversal never reaches files',
  severity: 'high',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const failures: string[] = [];
    for (const path of TRAVERSALS) {
      const res = await ctx.client.request(`${t.url}${path}`);
      if (/root:x?:0:0|\[boot loader\]/.test(res.body)) failures.push(`${path}: returned a system file`);
      else if (res.status >= 500) failures.push(`${path}: answered ${res.status}`);
      else if (res.status === 200) failures.push(`${path}: answered 200`);
    }
    return { failures, probes: TRAVERSALS.length };
  },
};
