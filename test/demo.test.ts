/** The Quickstart's demo tenant opens on a populated board, made through the product's own commands. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ensureDemoTenant } from '../src/platform/tenants/demo.ts';
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
  assert.ok(tasks.every((t) => t.reporter.kind === 'system' && t.assignee === null));

  const done = tasks.find((t) => t.title === 'Invite the team');
  assert.equal(done?.status.name, 'Done');
  const history = (await call(h.app, demo, `/api/tasks/${done.id}/history`)).json<Page<{ kind: string; field: string | null; after: { name?: string } }>>().items;
  assert.deepEqual(
    history.map((e) => (e.kind === 'changed' ? `${e.field ?? ''} → ${e.after.name ?? ''}` : e.kind)),
    ['created', 'status → In progress', 'status → In review', 'status → Done', 'commented'],
  );
  const comments = (await call(h.app, demo, `/api/tasks/${done.id}/comments`)).json<Page<{ body: string }>>().items;
  assert.equal(comments.length, 1);
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
