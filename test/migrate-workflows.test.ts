/**
 * Migration 0003 on a tenant with data: every project gets the default workflow (the same one new
 * projects get), each task's old status text becomes the status of that category, and the API
 * serves the result through the tenant's own login role.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../src/app/server.ts';
import { tenantMigrations } from '../src/platform/control-plane.ts';
import { withAdminClient } from '../src/platform/postgres/connection.ts';
import { currentVersion } from '../src/platform/postgres/migrator.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import { migrateTenants } from '../src/platform/tenants/rollout.ts';
import { firstOwner } from './helpers/accounts.ts';
import { BASE_DOMAIN, call, type TestTenant } from './helpers/http-server.ts';
import { startPlatformBefore } from './helpers/older-template.ts';
import type { TestPlatform } from './helpers/platform.ts';
import { createProject, type Page, type Task, type Workflow } from './helpers/work.ts';

const ALL = tenantMigrations();
const WORKFLOWS = ALL.find((m) => m.name === 'workflows')?.version ?? 0;

let tp: TestPlatform;
let app: FastifyInstance | null = null;
let legacy: TestTenant;
const taskIds: Record<string, string> = {};

before(async () => {
  assert.ok(WORKFLOWS > 0, 'migration 0003_workflows exists');
  // A platform whose template, and so its new tenants, is one schema version behind the workflows.
  tp = await startPlatformBefore(ALL, WORKFLOWS);
  const { tenant, apiToken } = await createTenant({ platform: tp.platform, slug: 'legacy', actor: 'test' });
  legacy = { tenant, token: apiToken, host: `legacy.${BASE_DOMAIN}` };
  await withAdminClient(tp.platform.target, tenant.databaseName, async (db) => {
    assert.equal(await currentVersion(db), WORKFLOWS - 1);
    const projects = await db.query<{ id: string; key: string }>(
      "INSERT INTO app.projects (key, name, next_task_number) VALUES ('OLD', 'Old project', 5), ('TWO', 'Second', 2), ('NONE', 'No tasks', 1) RETURNING id, key",
    );
    const id = (key: string) => projects.rows.find((p) => p.key === key)?.id;
    const tasks = await db.query<{ id: string; title: string }>(
      `INSERT INTO app.tasks (project_id, number, title, description, status, priority) VALUES
         ($1, 1, 'first', 'deploying the thing', 'todo', 'high'), ($1, 2, 'second', '', 'in_progress', 'low'),
         ($1, 3, 'third', '', 'done', 'medium'), ($1, 4, 'fourth', '', 'todo', 'urgent'), ($2, 1, 'other', '', 'done', 'medium')
       RETURNING id, title`,
      [id('OLD'), id('TWO')],
    );
    for (const row of tasks.rows) taskIds[row.title] = row.id;
  });
});
after(async () => {
  await app?.close();
  await tp.cleanup();
});

test('the rollout converts every project and task, and fails nobody', async () => {
  const report = await migrateTenants({ platform: tp.platform, migrations: ALL });
  assert.equal(report.failed, 0, JSON.stringify(report.results));
  assert.deepEqual(report.results.map((r) => [r.slug, r.outcome, r.to]), [['legacy', 'migrated', ALL.at(-1)?.version]]);

  await withAdminClient(tp.platform.target, legacy.tenant.databaseName, async (db) => {
    const statuses = await db.query<{ key: string; name: string; category: string; position: number }>(
      'SELECT p.key, s.name, s.category, s.position FROM app.statuses s JOIN app.projects p ON p.id = s.project_id ORDER BY p.key, s.position',
    );
    for (const key of ['NONE', 'OLD', 'TWO']) {
      assert.deepEqual(
        statuses.rows.filter((s) => s.key === key).map((s) => [s.name, s.category, s.position]),
        [['To do', 'todo', 0], ['In progress', 'in_progress', 1], ['Done', 'done', 2]],
        key,
      );
    }
    const transitions = await db.query<{ n: number; limited: number }>('SELECT count(*)::int AS n, count(roles)::int AS limited FROM app.transitions');
    assert.deepEqual(transitions.rows[0], { n: 18, limited: 0 }, 'every move between the three statuses, for everybody');
    const tasks = await db.query<{ title: string; status: string; reporter_kind: string; version: number }>(
      'SELECT t.title, s.name AS status, t.reporter_kind, t.version FROM app.tasks t JOIN app.statuses s ON s.id = t.status_id AND s.project_id = t.project_id ORDER BY t.title',
    );
    assert.deepEqual(tasks.rows.map((t) => [t.title, t.status, t.reporter_kind, t.version]), [
      ['first', 'To do', 'system', 1],
      ['fourth', 'To do', 'system', 1],
      ['other', 'Done', 'system', 1],
      ['second', 'In progress', 'system', 1],
      ['third', 'Done', 'system', 1],
    ]);
    const column = await db.query("SELECT 1 FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'tasks' AND column_name = 'status'");
    assert.equal(column.rowCount, 0, 'the old status text is gone');
  });
});

test('the API serves the converted data; search finds what was there before', async () => {
  app = await buildServer({ platform: tp.platform });
  const page = (await call(app, legacy, '/api/tasks?limit=100')).json<Page<Task>>();
  assert.equal(page.items.length, 5);
  assert.equal(page.items.find((t) => t.id === taskIds.second)?.status.name, 'In progress');
  const found = (await call(app, legacy, '/api/tasks?q=deploy')).json<Page<Task>>();
  assert.deepEqual(found.items.map((t) => t.title), ['first']);
  const moved = await call(app, legacy, `/api/tasks/${taskIds.first ?? ''}`, { method: 'PATCH', body: { title: 'first, edited' }, headers: { 'if-match': '"1"' } });
  assert.equal(moved.statusCode, 200, moved.body);
});

test('a migrated project has the same workflow as a project created now', async () => {
  assert.ok(app);
  const owner = await firstOwner(app, tp, legacy);
  const fresh = await createProject(owner, 'NEW');
  const projects = (await call(app, legacy, '/api/projects')).json<Page<{ id: string; key: string }>>().items;
  const migrated = projects.find((p) => p.key === 'OLD');
  const shape = async (projectId: string) => {
    const workflow = (await call(app as FastifyInstance, legacy, `/api/projects/${projectId}/workflow`)).json<Workflow>();
    const name = (id: string) => workflow.statuses.find((s) => s.id === id)?.name;
    return {
      statuses: workflow.statuses.map((s) => [s.name, s.category, s.position]),
      transitions: workflow.transitions.map((t) => [name(t.fromStatusId), name(t.toStatusId), t.roles]).sort(),
    };
  };
  assert.deepEqual(await shape(migrated?.id ?? ''), await shape(fresh.id));
});
