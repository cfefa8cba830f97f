/**
 * The order of the cards on a board over HTTP: new tasks at the end of their column, moves within a
 * column and into another one at a position, the gap between ranks used up and the column
 * renumbered, concurrent moves into one column, and the refusals that change nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { withAdminClient } from '../src/platform/postgres/connection.ts';
import type { Browser } from './helpers/browser.ts';
import { call, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { assertProblem, createProject, seedProject, statusesOf, type Page, type Project, type Status, type Task, type Workflow } from './helpers/work.ts';
import { startWorkFixture, type WorkFixture } from './helpers/work-fixture.ts';

let f: WorkFixture;
let h: HttpTest;
let acme: TestTenant;
let globex: TestTenant;
let admin: Browser;
let viewer: Browser;

before(async () => {
  f = await startWorkFixture();
  ({ h, acme, globex, admin, viewer } = f);
});
after(async () => {
  await f.cleanup();
});

/** A project of its own for each test, and its statuses by name. */
async function board(key: string): Promise<{ project: Project; s: Record<string, Status> }> {
  const project = await createProject(admin, key);
  return { project, s: await statusesOf(admin, project.id) };
}

async function add(project: Project, title: string, status?: Status): Promise<Task> {
  const res = await call(h.app, acme, `/api/projects/${project.id}/tasks`, { method: 'POST', body: { title, statusId: status?.id } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Task>();
}

function move(task: Task, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return call(h.app, acme, `/api/tasks/${task.id}/move`, { method: 'POST', body, headers });
}

/** The board as the API lists it: each column's titles, in board order. */
async function columns(project: Project, limit = 100): Promise<Record<string, string[]>> {
  const seen: Record<string, string[]> = {};
  let cursor: string | null = null;
  do {
    const res = await call(h.app, acme, `/api/tasks?projectId=${project.id}&sort=rank&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(res.statusCode, 200, res.body);
    const page: Page<Task> = res.json<Page<Task>>();
    for (const t of page.items) (seen[t.status.name] ??= []).push(t.title);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return seen;
}

/** The ranks of a project's tasks as stored, by title. */
async function ranks(project: Project): Promise<Map<string, { status: string; rank: bigint }>> {
  const rows = await withAdminClient(h.tp.platform.target, acme.tenant.databaseName, (db) =>
    db.query<{ title: string; status_id: string; rank: string }>('SELECT title, status_id, rank FROM app.tasks WHERE project_id = $1', [project.id]),
  );
  return new Map(rows.rows.map((r) => [r.title, { status: r.status_id, rank: BigInt(r.rank) }]));
}

/** Asserts no two tasks of a column share a rank. */
async function assertDistinctRanks(project: Project): Promise<void> {
  const all = [...(await ranks(project)).values()].map((r) => `${r.status}:${r.rank}`);
  assert.equal(new Set(all).size, all.length, 'every card of a column has a rank of its own');
}

describe('board order', () => {
  test('new tasks go to the end of their column; the board lists the columns in workflow order, each by rank', async () => {
    const { project, s } = await board('ORDER');
    await add(project, 'done 1', s.Done);
    await add(project, 'todo 1');
    await add(project, 'doing 1', s['In progress']);
    await add(project, 'todo 2', s['To do']);
    await add(project, 'todo 3');
    assert.deepEqual(await columns(project), { 'To do': ['todo 1', 'todo 2', 'todo 3'], 'In progress': ['doing 1'], Done: ['done 1'] });
    // Page by page, each card exactly once, in the same order.
    assert.deepEqual(await columns(project, 2), await columns(project));
  });

  test('within its column a card goes before or after another, to the top or the bottom, and nothing else changes', async () => {
    const { project } = await board('WITHIN');
    const [a, b, c, d] = [await add(project, 'a'), await add(project, 'b'), await add(project, 'c'), await add(project, 'd')];
    const res = await move(d, { beforeTaskId: b.id }, { 'if-match': '"1"' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers.etag, '"1"', 'a new place is no new version');
    assert.deepEqual((await columns(project))['To do'], ['a', 'd', 'b', 'c']);
    assert.equal((await move(a, { afterTaskId: c.id })).statusCode, 200);
    assert.deepEqual((await columns(project))['To do'], ['d', 'b', 'c', 'a']);
    assert.equal((await move(a, { beforeTaskId: d.id })).statusCode, 200);
    assert.deepEqual((await columns(project))['To do'], ['a', 'd', 'b', 'c']);
    // The same status and no neighbour: nothing to do.
    assert.equal((await move(b, { toStatusId: b.status.id })).statusCode, 200);
    assert.deepEqual((await columns(project))['To do'], ['a', 'd', 'b', 'c']);
    for (const task of [a, b, c, d]) {
      assert.equal((await f.read(task.id)).version, 1);
      assert.deepEqual((await f.historyOf(task.id)).map((e) => e.kind), ['created']);
    }
  });

  test('a move to another column lands where asked, at its end by default, or in an empty column', async () => {
    const { project, s } = await board('ACROSS');
    const x = await add(project, 'x', s['In progress']);
    await add(project, 'y', s['In progress']);
    const [a, b, c] = [await add(project, 'a'), await add(project, 'b'), await add(project, 'c')];
    const res = await move(a, { toStatusId: s['In progress']?.id, afterTaskId: x.id }, { 'if-match': '"1"' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual([res.json<Task>().status.name, res.json<Task>().version], ['In progress', 2]);
    assert.equal((await move(b, { toStatusId: s['In progress']?.id, beforeTaskId: x.id })).statusCode, 200);
    assert.equal((await move(c, { toStatusId: s['In progress']?.id })).statusCode, 200);
    assert.deepEqual(await columns(project), { 'In progress': ['b', 'x', 'a', 'y', 'c'] });
    assert.equal((await move(x, { toStatusId: s.Done?.id })).statusCode, 200);
    // PATCH moves too: to the end of the new column.
    assert.equal((await call(h.app, acme, `/api/tasks/${a.id}`, { method: 'PATCH', body: { statusId: s.Done?.id, title: 'a2' } })).statusCode, 200);
    assert.deepEqual(await columns(project), { 'In progress': ['b', 'y', 'c'], Done: ['x', 'a2'] });
    const history = await f.historyOf(b.id);
    assert.deepEqual(history.map((e) => e.field), [null, 'status'], 'a move across columns is in the history, its place is not');
  });

  test('placing cards at one spot again and again uses up the gap; the column is renumbered and keeps its order', async () => {
    const { project } = await board('GAP');
    const first = await add(project, 'first');
    await add(project, 'last');
    const expected = ['first'];
    for (let i = 1; i <= 24; i++) {
      const task = await add(project, `n${i}`);
      const res = await move(task, { afterTaskId: first.id });
      assert.equal(res.statusCode, 200, res.body);
      expected.splice(1, 0, `n${i}`);
    }
    expected.push('last');
    assert.deepEqual((await columns(project))['To do'], expected);
    await assertDistinctRanks(project);
    const stored = await ranks(project);
    assert.equal(stored.get('first')?.rank, 65_536n, 'renumbered from the top, a gap apart');
  });

  test('a workflow change that merges columns puts the moved cards at the end of their new column, in their order', async () => {
    const { project, s } = await board('MERGE');
    const [p1, p2] = [await add(project, 'p1', s['In progress']), await add(project, 'p2', s['In progress'])];
    await add(project, 't1');
    assert.equal((await move(p2, { beforeTaskId: p1.id })).statusCode, 200);
    const wf = (await admin.request('GET', `/api/projects/${project.id}/workflow`)).json<Workflow>();
    const keep = (name: string) => wf.statuses.find((x) => x.name === name)?.id;
    const res = await admin.request('PUT', `/api/projects/${project.id}/workflow`, {
      statuses: [
        { id: keep('To do'), name: 'To do', category: 'todo' },
        { id: keep('Done'), name: 'Done', category: 'done' },
      ],
      transitions: [{ from: 'To do', to: 'Done' }],
      moves: [{ fromStatusId: keep('In progress'), to: 'To do' }],
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual((await columns(project))['To do'], ['t1', 'p2', 'p1']);
    await assertDistinctRanks(project);
  });
});

describe('concurrent moves into one column', () => {
  test('all succeed, each card once, in an order every placement agrees with', async () => {
    const { project, s } = await board('RACE');
    const anchor = await add(project, 'anchor', s['In progress']);
    const tail = await add(project, 'tail', s['In progress']);
    const movers = await Promise.all(Array.from({ length: 12 }, (_, i) => add(project, `m${i}`)));
    const results = await Promise.all(
      movers.map((task, i) => move(task, i % 2 === 0 ? { toStatusId: s['In progress']?.id, beforeTaskId: anchor.id } : { toStatusId: s['In progress']?.id, afterTaskId: anchor.id }, { 'if-match': '"1"' })),
    );
    assert.deepEqual(results.map((r) => r.statusCode), movers.map(() => 200), results.map((r) => r.body).join('\n'));
    const column = (await columns(project))['In progress'] ?? [];
    assert.equal(column.length, 14);
    assert.equal(new Set(column).size, 14);
    const at = (title: string) => column.indexOf(title);
    movers.forEach((task, i) => {
      if (i % 2 === 0) assert.ok(at(task.title) < at('anchor'), `${task.title} before the anchor: ${column.join(', ')}`);
      else assert.ok(at(task.title) > at('anchor') && at(task.title) < at(tail.title), `${task.title} after the anchor: ${column.join(', ')}`);
    });
    await assertDistinctRanks(project);
  });

  test('crossing moves, creates and status changes in one project neither deadlock nor share a rank', async () => {
    const { project, s } = await board('CROSS');
    const cards = [];
    for (let i = 0; i < 8; i++) cards.push(await add(project, `c${i}`));
    const [c0, c1, c2, c3, c4, c5, c6, c7] = cards;
    assert.ok(c0 && c1 && c2 && c3 && c4 && c5 && c6 && c7);
    const results = await Promise.all([
      move(c0, { afterTaskId: c1.id }),
      move(c1, { afterTaskId: c0.id }),
      move(c2, { beforeTaskId: c3.id }),
      move(c3, { beforeTaskId: c2.id }),
      move(c4, { toStatusId: s['In progress']?.id }),
      call(h.app, acme, `/api/tasks/${c5.id}`, { method: 'PATCH', body: { statusId: s['In progress']?.id } }),
      move(c6, { afterTaskId: c7.id }),
      call(h.app, acme, `/api/tasks/${c7.id}`, { method: 'PATCH', body: { title: 'c7 renamed' } }),
      call(h.app, acme, `/api/projects/${project.id}/tasks`, { method: 'POST', body: { title: 'new' } }),
    ]);
    assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200, 200, 200, 200, 200, 200, 201], results.map((r) => r.body).join('\n'));
    const board2 = await columns(project);
    assert.deepEqual([...(board2['To do'] ?? [])].sort(), ['c0', 'c1', 'c2', 'c3', 'c6', 'c7 renamed', 'new']);
    assert.deepEqual([...(board2['In progress'] ?? [])].sort(), ['c4', 'c5']);
    const todo = board2['To do'] ?? [];
    assert.equal(Math.abs(todo.indexOf('c0') - todo.indexOf('c1')), 1, 'c0 and c1 end up side by side');
    assert.equal(Math.abs(todo.indexOf('c2') - todo.indexOf('c3')), 1, 'c2 and c3 end up side by side');
    assert.equal(todo.indexOf('c6'), todo.indexOf('c7 renamed') + 1);
    await assertDistinctRanks(project);
  });
});

describe('a placement that cannot be made', () => {
  test('a neighbour in another column, project or tenant, made up, or the card itself, is 409 invalid-position and changes nothing', async () => {
    const { project, s } = await board('WRONG');
    const elsewhere = await board('ELSEWHERE');
    const [a, b] = [await add(project, 'a'), await add(project, 'b')];
    const doing = await add(project, 'doing', s['In progress']);
    const foreign = await add(elsewhere.project, 'foreign');
    const theirs = (await call(h.app, globex, `/api/projects/${(await seedProject(h.tp, globex, 'THEIRS')).id}/tasks`, { method: 'POST', body: { title: 'theirs' } })).json<Task>();
    const cases: Record<string, unknown>[] = [
      { beforeTaskId: doing.id },
      { afterTaskId: foreign.id },
      { afterTaskId: theirs.id },
      { beforeTaskId: '00000000-0000-4000-8000-000000000000' },
      { afterTaskId: a.id },
      // Moving across and naming a card of the column it leaves: neither the move nor the place is kept.
      { toStatusId: s['In progress']?.id, afterTaskId: b.id },
    ];
    for (const body of cases) {
      const problem = assertProblem(await move(a, body), 'invalid-position');
      assert.equal(typeof problem.anchorTaskId, 'string');
    }
    const now = await f.read(a.id);
    assert.deepEqual([now.status.name, now.version], ['To do', 1]);
    assert.deepEqual(await columns(project), { 'To do': ['a', 'b'], 'In progress': ['doing'] });
  });

  test('both neighbours, none and no status, or an unknown field are 400; a stale version is 412; viewers get 403', async () => {
    const { project } = await board('SHAPES');
    const [a, b] = [await add(project, 'a'), await add(project, 'b')];
    const problem = assertProblem(await move(a, { beforeTaskId: b.id, afterTaskId: b.id }), 'validation-failed');
    assert.deepEqual(problem.errors?.map((e) => e.pointer), ['/afterTaskId']);
    assertProblem(await move(a, {}), 'validation-failed');
    assertProblem(await move(a, { position: 0 }), 'validation-failed');
    assertProblem(await move(a, { afterTaskId: 'b' }), 'validation-failed');
    assert.equal((await call(h.app, acme, `/api/tasks/${b.id}`, { method: 'PATCH', body: { title: 'b2' } })).statusCode, 200);
    assert.equal(assertProblem(await move(b, { beforeTaskId: a.id }, { 'if-match': '"1"' }), 'precondition-failed').currentVersion, 2);
    assertProblem(await viewer.request('POST', `/api/tasks/${a.id}/move`, { afterTaskId: b.id }), 'forbidden');
    assert.deepEqual((await columns(project))['To do'], ['a', 'b2']);
  });
});
