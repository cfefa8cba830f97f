/** Tenant isolation from outside: one tenant's session, token and ids are worthless at another's address; ids cannot be guessed. */
import { SESSION_COOKIE as SESSION, type Check, type ScanContext } from '../types.ts';

export const crossTenant: Check = {
  id: 'cross-tenant',
  title: "Another tenant's session, token and ids get nothing here",
  severity: 'high',
  async run(ctx: ScanContext) {
    const a = ctx.target.tenant;
    const b = ctx.target.other;
    if (!b) return { skip: 'no second tenant given (--other-url and its credentials)' };
    const failures: string[] = [];
    let probes = 0;
    // A's session cookie presented on B's host.
    const sessionA = await ctx.signIn(a);
    const cookie = sessionA.jar.cookies.get(SESSION) ?? '';
    for (const path of ['/api/account', '/api/projects', '/api/users']) {
      probes++;
      const res = await ctx.client.request(`${b.url}${path}`, { headers: { cookie: `${SESSION}=${cookie}` } });
      if (res.status !== 401) failures.push(`A's session on B's host, GET ${path}: answered ${res.status}`);
    }
    if (a.token) {
      probes++;
      const res = await ctx.client.request(`${b.url}/api/projects`, { headers: { authorization: `Bearer ${a.token}` } });
      if (res.status !== 401) failures.push(`A's API token on B's host: answered ${res.status}`);
    }
    // B's ids on A's host.
    const key = `B${Date.now().toString(36).toUpperCase().slice(-6)}`;
    const made = await ctx.api(b, 'POST', '/api/projects', { key, name: 'cross-tenant probe' });
    const projectId = made.json<{ id: string }>()?.id;
    if (made.status !== 201 || !projectId) return { failures: [...failures, `could not create a probe project in B (${made.status})`], probes };
    const task = await ctx.api(b, 'POST', `/api/projects/${projectId}/tasks`, { title: 'cross-tenant probe' });
    const taskId = task.json<{ id: string }>()?.id ?? '';
    try {
      for (const [method, path, body] of [
        ['GET', `/api/projects/${projectId}`, undefined],
        ['GET', `/api/tasks/${taskId}`, undefined],
        ['GET', `/api/tasks?projectId=${projectId}`, undefined],
        ['PATCH', `/api/tasks/${taskId}`, { title: 'moved across tenants' }],
        ['DELETE', `/api/tasks/${taskId}`, undefined],
        ['POST', `/api/projects/${projectId}/tasks`, { title: 'planted across tenants' }],
      ] as const) {
        probes++;
        const res = await ctx.api(a, method, path, body);
        const leaked = res.status === 200 && res.body.includes(taskId);
        if ((res.status !== 404 && !(method === 'GET' && path.includes('?') && res.status === 200)) || leaked) {
          failures.push(`B's ids on A's host, ${method} ${path}: answered ${res.status}${leaked ? ' with B’s data' : ''}`);
        }
      }
      const after = await ctx.api(b, 'GET', `/api/tasks/${taskId}`);
      if (after.json<{ title: string }>()?.title !== 'cross-tenant probe') failures.push("B's task was changed through A's host");
    } finally {
      await ctx.api(b, 'DELETE', `/api/projects/${projectId}`);
    }
    return { failures, probes };
  },
};

export const guessedIds: Check = {
  id: 'guessed-ids',
  title: 'Made-up ids are simply not found (no 500, no hint)',
  severity: 'medium',
  async run(ctx: ScanContext) {
    const t = ctx.target.tenant;
    const failures: string[] = [];
    const ids = ['00000000-0000-0000-0000-000000000000', crypto.randomUUID(), crypto.randomUUID(), 'ffffffff-ffff-ffff-ffff-ffffffffffff'];
    let probes = 0;
    for (const id of ids) {
      for (const path of [`/api/projects/${id}`, `/api/tasks/${id}`]) {
        probes++;
        const res = await ctx.api(t, 'GET', path);
        if (res.status !== 404) failures.push(`GET ${path}: answered ${res.status}`);
      }
    }
    return { failures, probes };
  },
};
