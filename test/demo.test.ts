/** The Quickstart's demo tenant opens on a populated board, made through the product's own commands, with staff who have the work. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { withTenantDb } from '../src/app/accounts/setup.ts';
import { DEMO_STAFF, ensureDemoTenant } from '../src/platform/tenants/demo.ts';
import { BASE_DOMAIN, call, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import type { Page, Project, Task, Workflow } from './helpers/work.ts';

let h: HttpTest;
let demo: TestTenant;

before(async () => {
  h = await startHttpTest();
  const { tenant, apiToken } = await ensureDemoTenant(h.tp.platform);
  assert.ok(apiToken);
  demo = { tenant, token: apiToken, host: `demo.${BASE_DOMAIN}` };
});
after(async () => {
  await h.cleanup();
});

test('a project with a five-column workflow, one sign-off limited to admins and owners', async () => {
  const projects = (await call(h.app, demo, '/api/projects')).json<Page<Project>>().items;
  assert.deepEqual(projects.map((p) => p.key), ['DEMO']);
  const workflow = (await call(h.app, demo, `/api/projects/${projects[0]?.id ?? ''}/workflow`)).json<Workflow>();
  assert.deepEqual(workflow.statuses.map((s) => [s.name, s.category]), [
    ['Backlog', 'todo'],
    ['To do', 'todo'],
    ['In progress', 'in_progress'],
    ['In review', 'in_progress'],
    ['Done', 'done'],
  ]);
  const limited = workflow.transitions.filter((t) => t.roles !== null);
  assert.equal(limited.length, 1);
  assert.deepEqual(limited[0]?.roles, ['admin', 'owner']);
});

test('a dozen tasks and more across every column, with labels, priorities, due dates, comments and history', async () => {
  const tasks = (await call(h.app, demo, '/api/tasks?limit=100')).json<Page<Task>>().items;
  assert.ok(tasks.length >= 12, `${tasks.length} tasks`);
  assert.equal(new Set(tasks.map((t) => t.status.name)).size, 5, 'every column has cards');
  assert.ok(tasks.every((t) => t.labels.length > 0));
  assert.equal(new Set(tasks.map((t) => t.priority)).size, 4);
  assert.ok(tasks.some((t) => t.dueDate !== null) && tasks.some((t) => t.dueDate === null));
  assert.ok(tasks.every((t) => t.reporter.kind === 'system'));

  const done = tasks.find((t) => t.title === 'Invite the team');
  assert.equal(done?.status.name, 'Done');
  const history = (await call(h.app, demo, `/api/tasks/${done.id}/history`)).json<Page<{ kind: string; field: string | null; after: { name?: string } }>>().items;
  assert.deepEqual(
    history.map((e) => (e.kind === 'changed' ? `${e.field ?? ''} → ${e.after.name ?? ''}` : e.kind)),
    ['created', 'status → In progress', 'status → In review', 'status → Done', 'commented'],
  );
  const comments = (await call(h.app, demo, `/api/tasks/${done.id}/comments`)).json<Page<{ body: string; author: { kind: string; displayName: string } }>>().items;
  assert.deepEqual(comments.map((c) => [c.author.kind, c.author.displayName]), [['user', 'Maya Okafor']]);
});

test('staff accounts have most of the tasks, in every column but the backlog', async () => {
  const people = (await call(h.app, demo, '/api/people')).json<{ items: { id: string; displayName: string }[] }>().items;
  assert.deepEqual(people.map((p) => p.displayName).sort(), Object.values(DEMO_STAFF).map((s) => s.displayName).sort(), 'the staff, active; the owner comes later');
  const tasks = (await call(h.app, demo, '/api/tasks?limit=100')).json<Page<Task>>().items;
  const assigned = tasks.filter((t) => t.assignee !== null);
  assert.ok(assigned.length >= 10, `${assigned.length} of ${tasks.length} tasks assigned`);
  assert.equal(new Set(assigned.map((t) => t.assignee?.id)).size, people.length, 'everybody has work');
  assert.ok(assigned.every((t) => people.some((p) => p.id === t.assignee?.id && p.displayName === t.assignee.displayName)));
  for (const column of ['To do', 'In progress', 'In review', 'Done']) {
    assert.ok(tasks.filter((t) => t.status.name === column).every((t) => t.assignee !== null || t.title === 'Translate the help centre'), column);
  }
  // Real accounts, made as an invitation makes them, with a password nobody knows.
  const users = await withTenantDb(h.tp.platform, demo.tenant, (db) =>
    db.read((c) => c.query<{ email: string; role: string; status: string; password_hash: string }>('SELECT email, role, status, password_hash FROM app.users ORDER BY email')),
  );
  assert.deepEqual(
    users.rows.map((u) => [u.email, u.role, u.status]),
    [['jonas@demo.localhost', 'member', 'active'], ['maya@demo.localhost', 'admin', 'active'], ['priya@demo.localhost', 'member', 'active'], ['sam@demo.localhost', 'member', 'active']],
  );
  assert.ok(users.rows.every((u) => u.password_hash.startsWith('$argon2id$')));
});

test('the board lists each column in the order the tasks were added to it', async () => {
  const project = (await call(h.app, demo, '/api/projects')).json<Page<Project>>().items[0];
  const board = (await call(h.app, demo, `/api/tasks?projectId=${project?.id ?? ''}&sort=rank&limit=100`)).json<Page<Task>>().items;
  assert.deepEqual(
    board.filter((t) => t.status.name === 'Backlog').map((t) => t.title),
    ['Record the demo video', 'Plan the launch-day on-call rota', 'Collect beta feedback', 'Retire the old status page'],
  );
  assert.deepEqual([...new Set(board.map((t) => t.status.name))], ['Backlog', 'To do', 'In progress', 'In review', 'Done']);
});

test('the API token may not make the sign-off move, as the workflow says', async () => {
  const tasks = (await call(h.app, demo, '/api/tasks?limit=100')).json<Page<Task>>().items;
  const inReview = tasks.find((t) => t.status.name === 'In review');
  const done = tasks.find((t) => t.status.name === 'Done');
  const res = await call(h.app, demo, `/api/tasks/${inReview?.id ?? ''}/move`, { method: 'POST', body: { toStatusId: done?.status.id } });
  assert.equal(res.statusCode, 409);
  assert.equal(res.json<{ code: string }>().code, 'transition-not-allowed');
});

test('a second start finds the demo tenant and seeds nothing again', async () => {
  const again = await ensureDemoTenant(h.tp.platform);
  assert.equal(again.apiToken, null);
  assert.equal((await call(h.app, demo, '/api/projects')).json<Page<Project>>().items.length, 1);
});
