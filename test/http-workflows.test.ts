/**
 * Workflows over HTTP: the default of a new project, replacing one (rename, reorder, add, limit to
 * roles), its version and If-Match, and every way a change could strand tasks or half-save.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { withAdminClient } from '../src/platform/postgres/connection.ts';
import { firstOwner, invitedUser } from './helpers/accounts.ts';
import type { Browser } from './helpers/browser.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { assertProblem, createProject, type Page, type Project, type Task, type Workflow } from './helpers/work.ts';

let h: HttpTest;
let acme: TestTenant;
let globex: TestTenant;
let owner: Browser;
let admin: Browser;
let member: Browser;
let viewer: Browser;

before(async () => {
  h = await startHttpTest({ 'server.trustProxy': true });
  acme = await makeTenant(h.tp, 'acme');
  globex = await makeTenant(h.tp, 'globex');
  owner = await firstOwner(h.app, h.tp, acme);
  admin = await invitedUser(h.app, h.tp, owner, 'admin@acme.example', 'admin');
  member = await invitedUser(h.app, h.tp, owner, 'member@acme.example', 'member');
  viewer = await invitedUser(h.app, h.tp, owner, 'viewer@acme.example', 'viewer');
});
after(async () => {
  await h.cleanup();
});

async function workflowOf(projectId: string): Promise<Workflow> {
  const res = await viewer.request('GET', `/api/projects/${projectId}/workflow`);
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.headers.etag, `"${res.json<Workflow>().version}"`);
  return res.json<Workflow>();
}

function idOf(workflow: Workflow, name: string): string {
  const id = workflow.statuses.find((s) => s.name === name)?.id;
  assert.ok(id, `status ${name}`);
  return id;
}

async function addTask(projectId: string, title: string, statusId?: string): Promise<Task> {
  const res = await call(h.app, acme, `/api/projects/${projectId}/tasks`, { method: 'POST', body: { title, ...(statusId ? { statusId } : {}) } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Task>();
}

/** The whole workflow as plain data: what no failed change may alter. */
async function snapshot(projectId: string): Promise<unknown> {
  const tasks = (await call(h.app, acme, `/api/tasks?projectId=${projectId}&limit=100`)).json<Page<Task>>().items;
  return { workflow: await workflowOf(projectId), tasks: tasks.map((t) => [t.id, t.status.id, t.version]) };
}

describe('the default workflow', () => {
  test('a new project starts with To do, In progress and Done, every move open to everybody', async () => {
    const project = await createProject(admin, 'DEF');
    const workflow = await workflowOf(project.id);
    assert.equal(workflow.version, 1);
    assert.deepEqual(workflow.statuses.map((s) => [s.name, s.category, s.position, s.taskCount]), [
      ['To do', 'todo', 0, 0],
      ['In progress', 'in_progress', 1, 0],
      ['Done', 'done', 2, 0],
    ]);
    assert.equal(workflow.transitions.length, 6);
    assert.ok(workflow.transitions.every((t) => t.roles === null && t.fromStatusId !== t.toStatusId));
  });

  test('tasks start in the first status', async () => {
    const project = await createProject(admin, 'FIRST');
    assert.equal((await addTask(project.id, 'new')).status.name, 'To do');
  });
});

describe('replacing a workflow', () => {
  test('renames, reorders, adds and limits moves to roles; the version goes up', async () => {
    const project = await createProject(admin, 'REP');
    const before = await workflowOf(project.id);
    const res = await admin.request(
      'PUT',
      `/api/projects/${project.id}/workflow`,
      {
        statuses: [
          { name: 'Backlog', category: 'todo' },
          { id: idOf(before, 'To do'), name: 'Ready', category: 'todo' },
          { id: idOf(before, 'In progress'), name: 'Doing', category: 'in_progress' },
          { name: 'Review', category: 'in_progress' },
          { id: idOf(before, 'Done'), name: 'Done', category: 'done' },
        ],
        transitions: [
          { from: 'Backlog', to: 'Ready' },
          { from: 'ready', to: 'DOING' },
          { from: 'Doing', to: 'Review' },
          { from: 'Review', to: 'Done', roles: ['admin', 'owner'] },
          { from: 'Review', to: 'Doing', roles: null },
        ],
      },
      { 'if-match': '"1"' },
    );
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers.etag, '"2"');
    const after = res.json<Workflow>();
    assert.deepEqual(after, await workflowOf(project.id));
    assert.equal(after.version, 2);
    assert.deepEqual(after.statuses.map((s) => [s.name, s.position]), [['Backlog', 0], ['Ready', 1], ['Doing', 2], ['Review', 3], ['Done', 4]]);
    assert.equal(idOf(after, 'Ready'), idOf(before, 'To do'), 'a kept status keeps its id');
    const name = (id: string) => after.statuses.find((s) => s.id === id)?.name;
    assert.deepEqual(after.transitions.map((t) => [name(t.fromStatusId), name(t.toStatusId), t.roles]), [
      ['Backlog', 'Ready', null],
      ['Ready', 'Doing', null],
      ['Doing', 'Review', null],
      ['Review', 'Doing', null],
      ['Review', 'Done', ['admin', 'owner']],
    ]);
    assert.equal((await addTask(project.id, 'now in Backlog')).status.name, 'Backlog', 'new tasks go to the new first status');
  });

  test('two statuses may swap names and places in one change', async () => {
    const project = await createProject(admin, 'SWAP');
    const before = await workflowOf(project.id);
    const res = await admin.request('PUT', `/api/projects/${project.id}/workflow`, {
      statuses: [
        { id: idOf(before, 'In progress'), name: 'To do', category: 'in_progress' },
        { id: idOf(before, 'To do'), name: 'In progress', category: 'todo' },
        { id: idOf(before, 'Done'), name: 'Done', category: 'done' },
      ],
      transitions: [],
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json<Workflow>().statuses.map((s) => [s.id, s.name]), [[idOf(before, 'In progress'), 'To do'], [idOf(before, 'To do'), 'In progress'], [idOf(before, 'Done'), 'Done']]);
  });

  test('a stale If-Match is 412 with the current version, and changes nothing', async () => {
    const project = await createProject(admin, 'STALE');
    const change = { statuses: [{ name: 'Only', category: 'todo' }], transitions: [] };
    assert.equal((await admin.request('PUT', `/api/projects/${project.id}/workflow`, { ...change, statuses: [...(await workflowOf(project.id)).statuses.map(({ id, name, category }) => ({ id, name, category }))] })).statusCode, 200);
    const before = await snapshot(project.id);
    const problem = assertProblem(await admin.request('PUT', `/api/projects/${project.id}/workflow`, change, { 'if-match': '"1"' }), 'precondition-failed');
    assert.equal(problem.currentVersion, 2);
    assertProblem(await admin.request('PUT', `/api/projects/${project.id}/workflow`, change, { 'if-match': 'W/"2"' }), 'precondition-failed');
    assert.deepEqual(await snapshot(project.id), before);
  });

  test('a missing project is 404 whatever If-Match says', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    assertProblem(await admin.request('PUT', `/api/projects/${missing}/workflow`, { statuses: [{ name: 'x', category: 'todo' }], transitions: [] }, { 'if-match': '"1"' }), 'not-found');
    assertProblem(await viewer.request('GET', `/api/projects/${missing}/workflow`), 'not-found');
  });
});

describe('no task is ever stranded', () => {
  test('removing a status that has tasks, without saying where they go, is 409 status-has-tasks and changes nothing', async () => {
    const project = await createProject(admin, 'STRAND');
    const wf = await workflowOf(project.id);
    await addTask(project.id, 'in progress 1', idOf(wf, 'In progress'));
    await addTask(project.id, 'in progress 2', idOf(wf, 'In progress'));
    const before = await snapshot(project.id);
    const res = await admin.request('PUT', `/api/projects/${project.id}/workflow`, {
      statuses: [{ id: idOf(wf, 'To do'), name: 'To do', category: 'todo' }, { id: idOf(wf, 'Done'), name: 'Done', category: 'done' }],
      transitions: [],
    });
    const problem = assertProblem(res, 'status-has-tasks');
    assert.deepEqual(problem.statuses, [{ id: idOf(wf, 'In progress'), name: 'In progress', taskCount: 2 }]);
    assert.deepEqual(await snapshot(project.id), before);
  });

  test('with a move, the tasks go to the status named, each with a new version and a history entry, in the same transaction', async () => {
    const project = await createProject(admin, 'MOVE');
    const wf = await workflowOf(project.id);
    const a = await addTask(project.id, 'a', idOf(wf, 'In progress'));
    const b = await addTask(project.id, 'b', idOf(wf, 'In progress'));
    const untouched = await addTask(project.id, 'c');
    const res = await admin.request('PUT', `/api/projects/${project.id}/workflow`, {
      statuses: [{ id: idOf(wf, 'To do'), name: 'To do', category: 'todo' }, { name: 'Blocked', category: 'in_progress' }, { id: idOf(wf, 'Done'), name: 'Done', category: 'done' }],
      transitions: [{ from: 'To do', to: 'Blocked' }],
      moves: [{ fromStatusId: idOf(wf, 'In progress'), to: 'Blocked' }],
    });
    assert.equal(res.statusCode, 200, res.body);
    const after = res.json<Workflow>();
    assert.deepEqual(after.statuses.map((s) => [s.name, s.taskCount]), [['To do', 1], ['Blocked', 2], ['Done', 0]]);
    for (const task of [a, b]) {
      const now = (await call(h.app, acme, `/api/tasks/${task.id}`)).json<Task>();
      assert.deepEqual([now.status.name, now.version], ['Blocked', 2]);
      const history = (await call(h.app, acme, `/api/tasks/${task.id}/history`)).json<Page<{ kind: string; field: string; before: unknown; after: unknown; actor: { kind: string; displayName: string } }>>().items;
      const move = history.at(-1);
      assert.deepEqual([move?.kind, move?.field, move?.actor.kind, move?.actor.displayName], ['changed', 'status', 'user', 'admin']);
      assert.deepEqual(move?.before, { id: idOf(wf, 'In progress'), name: 'In progress', category: 'in_progress' });
      assert.deepEqual(move.after, { id: idOf(after, 'Blocked'), name: 'Blocked', category: 'in_progress' });
    }
    assert.equal((await call(h.app, acme, `/api/tasks/${untouched.id}`)).json<Task>().version, 1);
    assertProblem(await call(h.app, acme, `/api/projects/${project.id}/tasks`, { method: 'POST', body: { title: 'late', statusId: idOf(wf, 'In progress') } }), 'unknown-status');
  });

  test('when a move fails half-way, nothing of the change is kept', async () => {
    const project = await createProject(admin, 'HALF');
    const wf = await workflowOf(project.id);
    await addTask(project.id, 'fine', idOf(wf, 'In progress'));
    const doomed = await addTask(project.id, 'at the last version', idOf(wf, 'Done'));
    // A task whose version cannot go up once more: moving it fails after the first move is made.
    await withAdminClient(h.tp.platform.target, acme.tenant.databaseName, (db) => db.query('UPDATE app.tasks SET version = 2147483647 WHERE id = $1', [doomed.id]));
    const before = await snapshot(project.id);
    const res = await admin.request('PUT', `/api/projects/${project.id}/workflow`, {
      statuses: [{ id: idOf(wf, 'To do'), name: 'Open', category: 'todo' }],
      transitions: [],
      moves: [{ fromStatusId: idOf(wf, 'In progress'), to: 'Open' }, { fromStatusId: idOf(wf, 'Done'), to: 'Open' }],
    });
    assert.ok(res.statusCode >= 400, res.body);
    assert.deepEqual(await snapshot(project.id), before);
  });
});

describe('an inconsistent workflow', () => {
  test('is one 422 invalid-workflow with a field error for each fault, and changes nothing', async () => {
    const project = await createProject(admin, 'BAD');
    const other = await createProject(admin, 'OTHER');
    const wf = await workflowOf(project.id);
    const before = await snapshot(project.id);
    const res = await admin.request('PUT', `/api/projects/${project.id}/workflow`, {
      statuses: [
        { id: idOf(wf, 'To do'), name: 'Open', category: 'todo' },
        { name: 'open', category: 'done' },
        { id: idOf(await workflowOf(other.id), 'Done'), name: 'Theirs', category: 'done' },
      ],
      transitions: [{ from: 'Open', to: 'Nowhere' }, { from: 'Open', to: 'Open' }],
      moves: [{ fromStatusId: idOf(wf, 'To do'), to: 'Open' }],
    });
    const problem = assertProblem(res, 'invalid-workflow');
    assert.deepEqual(problem.errors?.map((e) => e.pointer), ['/statuses/1/name', '/statuses/2/id', '/transitions/0/to', '/transitions/1', '/moves/0/fromStatusId']);
    assert.deepEqual(await snapshot(project.id), before);
  });

  test('shapes the schema refuses are 400 validation-failed', async () => {
    const project = await createProject(admin, 'SHAPE');
    const url = `/api/projects/${project.id}/workflow`;
    const many = Array.from({ length: 31 }, (_, i) => ({ name: `S${i}`, category: 'todo' }));
    for (const body of [
      { statuses: [], transitions: [] },
      { statuses: many, transitions: [] },
      { statuses: [{ name: 'x', category: 'blocked' }], transitions: [] },
      { statuses: [{ name: ' padded', category: 'todo' }], transitions: [] },
      { statuses: [{ name: 'x'.repeat(51), category: 'todo' }], transitions: [] },
      { statuses: [{ name: 'a', category: 'todo' }, { name: 'b', category: 'todo' }], transitions: [{ from: 'a', to: 'b', roles: ['viewer'] }] },
      { statuses: [{ name: 'a', category: 'todo' }, { name: 'b', category: 'todo' }], transitions: [{ from: 'a', to: 'b', roles: [] }] },
      { statuses: [{ name: 'a', category: 'todo' }], transitions: [], extra: true },
      { statuses: [{ name: 'a', category: 'todo' }] },
    ]) {
      assertProblem(await admin.request('PUT', url, body), 'validation-failed');
    }
    assert.equal((await workflowOf(project.id)).version, 1);
  });
});

describe('who may change a workflow', () => {
  test('admins and owners; members, viewers and API tokens read it only', async () => {
    const project: Project = await createProject(admin, 'WHO');
    const wf = await workflowOf(project.id);
    const body = { statuses: wf.statuses.map(({ id, name, category }) => ({ id, name, category })), transitions: [] };
    const url = `/api/projects/${project.id}/workflow`;
    assertProblem(await member.request('PUT', url, body), 'forbidden');
    assertProblem(await viewer.request('PUT', url, body), 'forbidden');
    assertProblem(await call(h.app, acme, url, { method: 'PUT', body }), 'forbidden');
    assert.equal((await call(h.app, acme, url)).statusCode, 200, 'a token reads it');
    assert.equal((await member.request('GET', url)).statusCode, 200);
    assert.equal((await owner.request('PUT', url, body)).statusCode, 200);
  });

  test("another tenant's token does not find the project", async () => {
    const project = await createProject(admin, 'ISO');
    assertProblem(await call(h.app, globex, `/api/projects/${project.id}/workflow`), 'not-found');
  });
});
