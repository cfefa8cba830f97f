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
    // B's ids on A's host: a task made for the probe in one of B's projects (making projects is for admins).
    const projects = await ctx.api(b, 'GET', '/api/projects?limit=1');
    const projectId = projects.json<{ items?: { id: string }[] }>()?.items?.[0]?.id;
    if (projectId === undefined) return { failures: [...failures, `found no project in B to probe with (${projects.status}); create one`], probes };
    const task = await ctx.api(b, 'POST', `/api/projects/${projectId}/tasks`, { title: 'cross-tenant probe' });
    const taskId = task.json<{ id: string }>()?.id;
    if (task.status !== 201 || taskId === undefined) return { failures: [...failures, `could not create a probe task in B (${task.status})`], probes };
    const comment = await ctx.api(b, 'POST', `/api/tasks/${taskId}/comments`, { body: 'cross-tenant probe' });
    const commentId = comment.json<{ id: string }>()?.id ?? '00000000-0000-4000-8000-000000000000';
    const statusId = task.json<{ status?: { id: string } }>()?.status?.id ?? '00000000-0000-4000-8000-000000000000';
    try {
      for (const [method, path, body] of [
        ['GET', `/api/projects/${projectId}`, undefined],
        ['GET', `/api/projects/${projectId}/workflow`, undefined],
        ['GET', `/api/tasks/${taskId}`, undefined],
        ['GET', `/api/tasks/${taskId}/history`, undefined],
        ['GET', `/api/tasks/${taskId}/comments`, undefined],
        ['GET', `/api/tasks?projectId=${projectId}`, undefined],
        ['PATCH', `/api/tasks/${taskId}`, { title: 'moved across tenants' }],
        ['POST', `/api/tasks/${taskId}/move`, { toStatusId: statusId }],
        ['PATCH', `/api/tasks/${taskId}/comments/${commentId}`, { body: 'edited across tenants' }],
        ['DELETE', `/api/tasks/${taskId}/comments/${commentId}`, undefined],
        ['DELETE', `/api/tasks/${taskId}`, undefined],
        ['POST', `/api/projects/${projectId}/tasks`, { title: 'planted across tenants' }],
        ['POST', `/api/tasks/${taskId}/comments`, { body: 'planted across tenants' }],
      ] as const) {
        probes++;
        const res = await ctx.api(a, method, path, body);
        const leaked = res.status === 200 && res.body.includes(taskId);
        if ((res.status !== 404 && !(method === 'GET' && path.includes('?') && res.status === 200)) || leaked) {
          failures.push(`B's ids on A's host, ${method} ${path}: answered ${res.status}${leaked ? ' with B’s data' : ''}`);
        }
      }
      const after = await ctx.api(b, 'GET', `/api/tasks/${taskId}`);
      if (after.json<{ title: string; version: number }>()?.version !== 1) failures.push("B's task was changed through A's host");
      const comments = await ctx.api(b, 'GET', `/api/tasks/${taskId}/comments`);
      if (comments.json<{ items?: { body: string }[] }>()?.items?.map((c) => c.body).join() !== 'cross-tenant probe') failures.push("B's comments were changed through A's host");
    } finally {
      await ctx.api(b, 'DELETE', `/api/tasks/${taskId}`);
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
