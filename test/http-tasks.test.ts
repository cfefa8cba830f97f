/**
 * Tasks over HTTP beyond the basics of http-work.test.ts: assignee, reporter, labels, Markdown,
 * moves along the workflow by role, history, permissions, and the bad input that must be refused
 * with nothing half-saved. Comments and lists have suites of their own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from './helpers/browser.ts';
import { call, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { XSS_PAYLOADS } from './helpers/xss.ts';
import { assertProblem, createProject, statusesOf, type Page, type Project, type Status, type Task, type Workflow } from './helpers/work.ts';
import { startWorkFixture, type Comment, type HistoryEntry, type WorkFixture } from './helpers/work-fixture.ts';

let f: WorkFixture;
let h: HttpTest;
let acme: TestTenant;
let globex: TestTenant;
let owner: Browser;
let admin: Browser;
let member: Browser;
let viewer: Browser;
let ids: Record<string, string>;
let project: Project;
let statuses: Record<string, Status>;

before(async () => {
  f = await startWorkFixture();
  ({ h, acme, globex, owner, admin, member, viewer, ids, project, statuses } = f);
});
after(async () => {
  await f.cleanup();
});

/** The next number the project will give out: a refused create must not have used one. */
async function nextNumber(): Promise<number> {
  return (await f.newTask({ title: 'probe' })).number + 1;
}

describe('task fields', () => {
  test('all of them on create: Markdown description, status, priority, due date, assignee, labels; the reporter is recorded', async () => {
    const task = await f.newTask(
      { title: 'Rotate certificates', description: '# Steps\n\n- renew\n- *deploy*', statusId: statuses['In progress']?.id, priority: 'urgent', dueDate: '2031-03-01', assigneeId: ids.member, labels: ['security', 'ops'] },
      member,
    );
    assert.equal(task.key, `OPS-${task.number}`);
    assert.equal(task.description, '# Steps\n\n- renew\n- *deploy*', 'the Markdown source comes back as written');
    assert.deepEqual(task.status, statuses['In progress']);
    assert.deepEqual([task.priority, task.dueDate, task.labels], ['urgent', '2031-03-01', ['security', 'ops']]);
    assert.deepEqual(task.assignee, { id: ids.member, displayName: 'member' });
    assert.deepEqual(task.reporter, { kind: 'user', id: ids.member, displayName: 'member' });
    assert.ok(!('descriptionHtml' in task), 'no HTML: the client renders the Markdown');
  });

  test('a task made with an API token is reported by the token, with no user id', async () => {
    const task = await f.newTask({ title: 'From CI' });
    assert.deepEqual(task.reporter, { kind: 'api-token', id: null, displayName: 'API token' });
    assert.deepEqual([task.status.name, task.labels, task.assignee, task.priority], ['To do', [], null, 'medium']);
  });

  test('labels: at most 20, each 1 to 40 characters without surrounding spaces, no repeats', async () => {
    for (const labels of [['a', 'a'], Array.from({ length: 21 }, (_, i) => `l${i}`), ['x'.repeat(41)], [''], [' padded'], [5]]) {
      assertProblem(await call(h.app, acme, f.tasksUrl(), { method: 'POST', body: { title: 'labels', labels } }), 'validation-failed');
    }
    const task = await f.newTask({ title: 'labels', labels: Array.from({ length: 20 }, (_, i) => `label ${i}`) });
    assert.equal(task.labels.length, 20);
  });

  test('assigning: an active user of this tenant, or nobody; anything else is 422 invalid-assignee and saves nothing', async () => {
    const number = await nextNumber();
    for (const assigneeId of [ids.leaver, ids.globexOwner, '00000000-0000-4000-8000-000000000000']) {
      assertProblem(await call(h.app, acme, f.tasksUrl(), { method: 'POST', body: { title: 'assign', assigneeId } }), 'invalid-assignee');
    }
    const task = await f.newTask({ title: 'assign', assigneeId: ids.other });
    assert.equal(task.number, number, 'refused creates gave out no number');
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { assigneeId: ids.leaver } }), 'invalid-assignee');
    assert.deepEqual((await f.read(task.id)).assignee, { id: ids.other, displayName: 'other' });
    const cleared = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { assigneeId: null } });
    assert.equal(cleared.json<Task>().assignee, null);
  });

  test("another project's status, or another tenant's, is 422 unknown-status on create, change and move", async () => {
    const elsewhere = await createProject(admin, 'ELSE');
    const foreign = (await statusesOf(admin, elsewhere.id)).Done?.id;
    const number = await nextNumber();
    assertProblem(await call(h.app, acme, f.tasksUrl(), { method: 'POST', body: { title: 'x', statusId: foreign } }), 'unknown-status');
    const task = await f.newTask({ title: 'stays' });
    assert.equal(task.number, number);
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { statusId: foreign, title: 'changed' } }), 'unknown-status');
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}/move`, { method: 'POST', body: { toStatusId: foreign } }), 'unknown-status');
    const now = await f.read(task.id);
    assert.deepEqual([now.title, now.status.name, now.version], ['stays', 'To do', 1], 'nothing of the change was kept');
  });

  test('a description over 100,000 characters is 400 on /description; a body over the limit is 413; nothing is saved', async () => {
    const task = await f.newTask({ title: 'long' });
    const res = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { title: 'changed', description: 'x'.repeat(100_001) } });
    const problem = assertProblem(res, 'validation-failed');
    assert.deepEqual(problem.errors?.map((e) => e.pointer), ['/description']);
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { description: 'x'.repeat(2 * 1024 * 1024) } }), 'payload-too-large');
    assert.deepEqual([(await f.read(task.id)).title, (await f.read(task.id)).version], ['long', 1]);
    const longest = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { description: 'x'.repeat(100_000) } });
    assert.equal(longest.statusCode, 200);
  });
});

describe('a NUL character, which PostgreSQL text cannot hold', () => {
  test('is 400 validation-failed wherever it is sent, and saves nothing', async () => {
    const task = await f.newTask({ title: 'nul' });
    for (const query of ['q=a%00b', 'label=a%00b']) assertProblem(await call(h.app, acme, `/api/tasks?${query}`), 'validation-failed');
    assertProblem(await call(h.app, acme, f.tasksUrl(), { method: 'POST', body: { title: 'a\u0000b' } }), 'validation-failed');
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { title: 'ok', description: 'a\u0000b' } }), 'validation-failed');
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}/comments`, { method: 'POST', body: { body: 'a\u0000b' } }), 'validation-failed');
    assert.deepEqual([(await f.read(task.id)).title, (await f.read(task.id)).version], ['nul', 1]);
    assert.deepEqual((await f.historyOf(task.id)).map((e) => e.kind), ['created']);
  });
});

describe('Markdown with script or event-handler payloads', () => {
  test('is stored and returned as the source, inside JSON that no browser executes', async () => {
    for (const payload of XSS_PAYLOADS) {
      const created = await call(h.app, acme, f.tasksUrl(), { method: 'POST', body: { title: payload.slice(0, 500).trim() || 'x', description: payload, labels: ['<b>x</b>'] } });
      assert.equal(created.statusCode, 201, created.body);
      const task = created.json<Task>();
      const comment = await call(h.app, acme, `/api/tasks/${task.id}/comments`, { method: 'POST', body: { body: payload } });
      assert.equal(comment.statusCode, 201, comment.body);
      for (const res of [await call(h.app, acme, `/api/tasks/${task.id}`), await call(h.app, acme, `/api/tasks/${task.id}/comments`)]) {
        assert.match(String(res.headers['content-type']), /^application\/json/);
        assert.equal(res.headers['x-content-type-options'], 'nosniff');
        assert.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
      }
      assert.equal((await f.read(task.id)).description, payload);
      const comments = (await call(h.app, acme, `/api/tasks/${task.id}/comments`)).json<Page<Comment>>().items;
      assert.equal(comments[0]?.body, payload);
    }
  });
});

describe('moves along the workflow', () => {
  let flow: Project;
  let s: Record<string, Status>;

  before(async () => {
    flow = await createProject(admin, 'FLOW');
    const wf = (await admin.request('GET', `/api/projects/${flow.id}/workflow`)).json<Workflow>();
    const res = await admin.request('PUT', `/api/projects/${flow.id}/workflow`, {
      statuses: [
        { id: wf.statuses[0]?.id, name: 'Open', category: 'todo' },
        { id: wf.statuses[1]?.id, name: 'Doing', category: 'in_progress' },
        { name: 'Review', category: 'in_progress' },
        { id: wf.statuses[2]?.id, name: 'Done', category: 'done' },
      ],
      transitions: [
        { from: 'Open', to: 'Doing' },
        { from: 'Doing', to: 'Review' },
        { from: 'Review', to: 'Doing' },
        { from: 'Review', to: 'Done', roles: ['admin', 'owner'] },
        { from: 'Done', to: 'Doing', roles: ['member'] },
      ],
    });
    assert.equal(res.statusCode, 200, res.body);
    s = await statusesOf(admin, flow.id);
  });

  async function taskIn(status: string): Promise<Task> {
    const res = await call(h.app, acme, f.tasksUrl(flow), { method: 'POST', body: { title: `in ${status}`, statusId: s[status]?.id } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json<Task>();
  }

  function move(as: Browser | null, task: Task, to: string, ifMatch?: string) {
    const headers: Record<string, string> = ifMatch === undefined ? {} : { 'if-match': ifMatch };
    const body = { toStatusId: s[to]?.id };
    return as ? as.request('POST', `/api/tasks/${task.id}/move`, body, headers) : call(h.app, acme, `/api/tasks/${task.id}/move`, { method: 'POST', body, headers });
  }

  test('along a transition, with If-Match: 200, the new version and ETag, and a history entry', async () => {
    const task = await taskIn('Open');
    const res = await move(member, task, 'Doing', '"1"');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers.etag, '"2"');
    assert.deepEqual([res.json<Task>().status.name, res.json<Task>().version], ['Doing', 2]);
    const last = (await f.historyOf(task.id)).at(-1);
    assert.deepEqual([last?.kind, last?.field, last?.before, last?.after, last?.actor.id], ['changed', 'status', s.Open, s.Doing, ids.member]);
  });

  test('a stale version is 412 and moves nothing', async () => {
    const task = await taskIn('Open');
    assert.equal((await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { title: 'edited elsewhere' } })).statusCode, 200);
    const problem = assertProblem(await move(member, task, 'Doing', '"1"'), 'precondition-failed');
    assert.equal(problem.currentVersion, 2);
    assert.equal((await f.read(task.id)).status.name, 'Open');
  });

  test('a move the workflow does not have is 409 transition-not-allowed, by move or by PATCH, and changes nothing', async () => {
    const task = await taskIn('Open');
    const before = await f.historyOf(task.id);
    const problem = assertProblem(await move(owner, task, 'Done'), 'transition-not-allowed');
    assert.match(problem.detail, /no move from 'Open' to 'Done'/);
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { statusId: s.Review?.id, title: 'and a title' } }), 'transition-not-allowed');
    const now = await f.read(task.id);
    assert.deepEqual([now.status.name, now.title, now.version], ['Open', 'in Open', 1]);
    assert.deepEqual(await f.historyOf(task.id), before, 'and no history');
  });

  test('a move limited to roles: refused to members and API tokens, allowed to admins and owners', async () => {
    const task = await taskIn('Review');
    const problem = assertProblem(await move(member, task, 'Done'), 'transition-not-allowed');
    assert.match(problem.detail, /only admin, owner may move tasks from 'Review' to 'Done'/);
    assertProblem(await move(null, task, 'Done'), 'transition-not-allowed');
    assertProblem(await member.request('PATCH', `/api/tasks/${task.id}`, { statusId: s.Done?.id }), 'transition-not-allowed');
    assert.equal((await move(admin, task, 'Done', '"1"')).statusCode, 200);
    // And back: a move limited to members is not an admin's, but an API token counts as a member.
    assertProblem(await move(admin, task, 'Doing'), 'transition-not-allowed');
    assert.equal((await move(null, task, 'Doing')).statusCode, 200);
    const owners = await taskIn('Review');
    assert.equal((await move(owner, owners, 'Done')).statusCode, 200);
  });

  test('viewers move nothing: 403 before anything is looked at', async () => {
    const task = await taskIn('Open');
    assertProblem(await move(viewer, task, 'Doing'), 'forbidden');
  });

  test('moving to the status it is in is allowed and needs no transition', async () => {
    const task = await taskIn('Open');
    const res = await move(member, task, 'Open');
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<Task>().status.name, 'Open');
  });

  test("a task of another tenant is not found; another tenant's token finds nothing here", async () => {
    const task = await taskIn('Open');
    assertProblem(await call(h.app, globex, `/api/tasks/${task.id}/move`, { method: 'POST', body: { toStatusId: s.Doing?.id } }), 'not-found');
    assertProblem(await call(h.app, globex, `/api/tasks/${task.id}`, { method: 'PATCH', body: { title: 'x' } }), 'not-found');
    assertProblem(await call(h.app, globex, `/api/tasks/${task.id}/history`), 'not-found');
    assert.equal((await f.read(task.id)).version, 1);
  });
});

describe('history', () => {
  test('records every change: who, which field, before and after, oldest first', async () => {
    const task = await f.newTask({ title: 'History', priority: 'low' }, member);
    const patch = await member.request('PATCH', `/api/tasks/${task.id}`, { title: 'History, renamed', priority: 'high', labels: ['a'], dueDate: '2031-01-02', assigneeId: ids.other, description: 'more' });
    assert.equal(patch.statusCode, 200, patch.body);
    assert.equal((await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { dueDate: null, statusId: statuses.Done?.id } })).statusCode, 200);
    const entries = await f.historyOf(task.id);
    assert.deepEqual(
      entries.map((e) => [e.kind, e.field, e.actor.kind]),
      [
        ['created', null, 'user'],
        ['changed', 'title', 'user'],
        ['changed', 'description', 'user'],
        ['changed', 'priority', 'user'],
        ['changed', 'dueDate', 'user'],
        ['changed', 'assignee', 'user'],
        ['changed', 'labels', 'user'],
        ['changed', 'status', 'api-token'],
        ['changed', 'dueDate', 'api-token'],
      ],
    );
    const field = (name: string) => entries.find((e) => e.field === name);
    assert.deepEqual([field('title')?.before, field('title')?.after], ['History', 'History, renamed']);
    assert.deepEqual([field('priority')?.before, field('priority')?.after], ['low', 'high']);
    assert.deepEqual([field('assignee')?.before, field('assignee')?.after], [null, { id: ids.other, displayName: 'other' }]);
    assert.deepEqual([field('labels')?.before, field('labels')?.after], [[], ['a']]);
    assert.deepEqual([field('status')?.before, field('status')?.after], [statuses['To do'], statuses.Done]);
    assert.deepEqual(entries.filter((e) => e.field === 'dueDate').map((e) => [e.before, e.after]), [[null, '2031-01-02'], ['2031-01-02', null]]);
    assert.deepEqual(entries[0]?.actor, { kind: 'user', id: ids.member, displayName: 'member' });
    assert.deepEqual(entries.at(-1)?.actor, { kind: 'api-token', id: null, displayName: 'API token' });
    const times = entries.map((e) => Date.parse(e.at));
    assert.deepEqual([...times].sort((a, b) => a - b), times);
  });

  test('a change to the same values bumps the version and records nothing', async () => {
    const task = await f.newTask({ title: 'Same' });
    const res = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { title: 'Same', labels: [] } });
    assert.equal(res.json<Task>().version, 2);
    assert.deepEqual((await f.historyOf(task.id)).map((e) => e.kind), ['created']);
  });

  test('pages like every list', async () => {
    const task = await f.newTask({ title: 'v0' });
    for (let i = 1; i <= 5; i++) await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { title: `v${i}` } });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Page<HistoryEntry> = (await call(h.app, acme, `/api/tasks/${task.id}/history?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json<Page<HistoryEntry>>();
      seen.push(...page.items.map((e) => (typeof e.after === 'string' ? e.after : e.kind)));
      cursor = page.nextCursor;
    } while (cursor !== null);
    assert.deepEqual(seen, ['created', 'v1', 'v2', 'v3', 'v4', 'v5']);
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}/history?cursor=bogus`), 'invalid-cursor');
  });
});

describe('permissions', () => {
  test('viewers read; members and tokens edit tasks; only admins and owners manage projects', async () => {
    const task = await f.newTask({ title: 'Perms' });
    assert.equal((await viewer.request('GET', `/api/tasks/${task.id}`)).statusCode, 200);
    assertProblem(await viewer.request('POST', f.tasksUrl(), { title: 'no' }), 'forbidden');
    assertProblem(await viewer.request('PATCH', `/api/tasks/${task.id}`, { title: 'no' }), 'forbidden');
    assertProblem(await viewer.request('DELETE', `/api/tasks/${task.id}`), 'forbidden');
    assert.equal((await member.request('PATCH', `/api/tasks/${task.id}`, { title: 'yes' })).statusCode, 200);
    for (const as of [member, viewer]) {
      assertProblem(await as.request('POST', '/api/projects', { key: 'NOPE', name: 'x' }), 'forbidden');
      assertProblem(await as.request('PATCH', `/api/projects/${project.id}`, { name: 'x' }), 'forbidden');
      assertProblem(await as.request('DELETE', `/api/projects/${project.id}`), 'forbidden');
    }
    const token = assertProblem(await call(h.app, acme, '/api/projects', { method: 'POST', body: { key: 'NOPE', name: 'x' } }), 'forbidden');
    assert.match(token.detail, /API tokens cannot do this/);
    assert.equal((await owner.request('PATCH', `/api/projects/${project.id}`, { name: 'Operations' })).statusCode, 200);
    assert.equal((await member.request('DELETE', `/api/tasks/${task.id}`)).statusCode, 204);
  });

  test('everybody who reads work sees who tasks can be assigned to: active users, names only', async () => {
    for (const as of [viewer, member]) {
      const people = (await as.request('GET', '/api/people')).json<{ items: Record<string, unknown>[] }>().items;
      assert.deepEqual(people.map((p) => p.displayName), ['admin', 'member', 'other', 'Owner', 'viewer']);
      assert.ok(people.every((p) => Object.keys(p).sort().join() === 'displayName,id'), 'no e-mail address, no role');
    }
    assert.equal((await call(h.app, acme, '/api/people')).statusCode, 200);
    assert.equal((await call(h.app, globex, '/api/people')).json<{ items: unknown[] }>().items.length, 1);
  });
});
