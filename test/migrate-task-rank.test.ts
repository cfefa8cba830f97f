/**
 * Migration 0004 on a tenant with tasks: every task gets a rank in its column, in the order the
 * board showed them before (oldest first), a gap apart; the board then lists them so, and new cards
 * and moves work on the migrated data.
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
import { BASE_DOMAIN, call, type TestTenant } from './helpers/http-server.ts';
import { startPlatformBefore } from './helpers/older-template.ts';
import type { TestPlatform } from './helpers/platform.ts';
import type { Page, Task } from './helpers/work.ts';

const ALL = tenantMigrations();
const RANK = ALL.find((m) => m.name === 'task_rank')?.version ?? 0;

let tp: TestPlatform;
let app: FastifyInstance | null = null;
let tenant: TestTenant;
let projectId = '';
const statusIds: Record<string, string> = {};

before(async () => {
  assert.ok(RANK > 0, 'migration 0004_task_rank exists');
  // New tenants of this platform start one schema version before the ranks.
  tp = await startPlatformBefore(ALL, RANK);
  const { target } = tp.platform;
  const created = await createTenant({ platform: tp.platform, slug: 'ranked', actor: 'test' });
  tenant = { tenant: created.tenant, token: created.apiToken, host: `ranked.${BASE_DOMAIN}` };
  await withAdminClient(target, created.tenant.databaseName, async (db) => {
    assert.equal(await currentVersion(db), RANK - 1);
    const project = await db.query<{ id: string }>("INSERT INTO app.projects (key, name, next_task_number) VALUES ('OLD', 'Old', 6) RETURNING id");
    projectId = project.rows[0]?.id ?? '';
    const statuses = await db.query<{ id: string; name: string }>(
      `INSERT INTO app.statuses (project_id, name, category, position) VALUES ($1, 'To do', 'todo', 0), ($1, 'Doing', 'in_progress', 1), ($1, 'Done', 'done', 2) RETURNING id, name`,
      [projectId],
    );
    for (const s of statuses.rows) statusIds[s.name] = s.id;
    await db.query(
      `INSERT INTO app.transitions (project_id, from_status_id, to_status_id)
       SELECT a.project_id, a.id, b.id FROM app.statuses a JOIN app.statuses b ON b.project_id = a.project_id AND b.id <> a.id`,
    );
    // Created out of number order, so that the ranks must follow created_at.
    await db.query(
      `INSERT INTO app.tasks (project_id, number, title, status_id, reporter_kind, created_at) VALUES
         ($1, 1, 'todo second', $2, 'system', timestamptz '2030-01-01 10:00'), ($1, 2, 'todo first', $2, 'system', timestamptz '2030-01-01 09:00'),
         ($1, 3, 'doing only', $3, 'system', timestamptz '2030-01-01 08:00'), ($1, 4, 'todo third', $2, 'system', timestamptz '2030-01-01 11:00'),
         ($1, 5, 'done only', $4, 'system', timestamptz '2030-01-01 07:00')`,
      [projectId, statusIds['To do'], statusIds.Doing, statusIds.Done],
    );
  });
});
after(async () => {
  await app?.close();
  await tp.cleanup();
});

test('the rollout ranks every task in its column, oldest first, a gap apart', async () => {
  const report = await migrateTenants({ platform: tp.platform, migrations: ALL });
  assert.equal(report.failed, 0, JSON.stringify(report.results));
  await withAdminClient(tp.platform.target, tenant.tenant.databaseName, async (db) => {
    const rows = await db.query<{ title: string; rank: string }>('SELECT title, rank FROM app.tasks ORDER BY title');
    assert.deepEqual(
      rows.rows.map((r) => [r.title, r.rank]),
      [
        ['doing only', '65536'],
        ['done only', '65536'],
        ['todo first', '65536'],
        ['todo second', '131072'],
        ['todo third', '196608'],
      ],
    );
    const column = await db.query<{ is_nullable: string }>("SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'tasks' AND column_name = 'rank'");
    assert.equal(column.rows[0]?.is_nullable, 'NO');
  });
});

test('the board lists the migrated tasks in that order; new and moved cards find their places', async () => {
  app = await buildServer({ platform: tp.platform });
  const board = async () => (await call(app as FastifyInstance, tenant, `/api/tasks?projectId=${projectId}&sort=rank`)).json<Page<Task>>().items.map((t) => t.title);
  assert.deepEqual(await board(), ['todo first', 'todo second', 'todo third', 'doing only', 'done only']);
  const added = await call(app, tenant, `/api/projects/${projectId}/tasks`, { method: 'POST', body: { title: 'todo new' } });
  assert.equal(added.statusCode, 201, added.body);
  const tasks = (await call(app, tenant, `/api/tasks?projectId=${projectId}`)).json<Page<Task>>().items;
  const id = (title: string) => tasks.find((t) => t.title === title)?.id;
  const moved = await call(app, tenant, `/api/tasks/${id('todo third') ?? ''}/move`, { method: 'POST', body: { beforeTaskId: id('todo first') } });
  assert.equal(moved.statusCode, 200, moved.body);
  assert.deepEqual(await board(), ['todo third', 'todo first', 'todo second', 'todo new', 'doing only', 'done only']);
});
