/** Listing tasks over HTTP: filters, full-text search, sorting with cursors, labels and isolation. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from './helpers/browser.ts';
import { call, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { assertProblem, createProject, statusesOf, type Page, type Project, type Status, type Task } from './helpers/work.ts';
import { startWorkFixture, type WorkFixture } from './helpers/work-fixture.ts';

let f: WorkFixture;
let h: HttpTest;
let acme: TestTenant;
let globex: TestTenant;
let admin: Browser;
let ids: Record<string, string>;

before(async () => {
  f = await startWorkFixture();
  ({ h, acme, globex, admin, ids } = f);
});
after(async () => {
  await f.cleanup();
});

describe('filters, search and sorting', () => {
  let board: Project;
  let s: Record<string, Status>;
  const made: Task[] = [];
  interface Seed {
    title: string;
    description: string;
    status: string;
    priority: string;
    dueDate: string | null;
    labels: string[];
    assignee: string | null;
  }
  const SEED: Seed[] = [
    { title: 'Deploy the new gateway', description: 'Deployment runbook in the wiki', status: 'In progress', priority: 'urgent', dueDate: '2031-05-01', labels: ['ops', 'network'], assignee: 'member' },
    { title: 'Renew TLS certificates', description: 'Before they expire', status: 'To do', priority: 'high', dueDate: '2031-04-15', labels: ['ops', 'security'], assignee: 'other' },
    { title: 'Write the postmortem', description: 'Timeline and actions', status: 'Done', priority: 'medium', dueDate: null, labels: ['docs'], assignee: 'member' },
    { title: 'Plan capacity', description: 'Disks, memory and deploying more nodes', status: 'To do', priority: 'low', dueDate: '2031-06-30', labels: [], assignee: null },
    { title: 'Rotate database passwords', description: 'Quarterly', status: 'In progress', priority: 'high', dueDate: '2031-04-15', labels: ['security'], assignee: 'other' },
    { title: 'Update the status page', description: 'Gateway incident summary', status: 'To do', priority: 'medium', dueDate: null, labels: ['docs', 'ops'], assignee: null },
    { title: 'Archive old logs', description: 'Older than a year', status: 'Done', priority: 'low', dueDate: '2031-01-10', labels: ['ops'], assignee: 'member' },
  ];

  before(async () => {
    board = await createProject(admin, 'BOARD');
    s = await statusesOf(admin, board.id);
    for (const t of SEED) {
      const res = await call(h.app, acme, f.tasksUrl(board), {
        method: 'POST',
        body: { title: t.title, description: t.description, statusId: s[t.status]?.id, priority: t.priority, dueDate: t.dueDate, labels: t.labels, assigneeId: t.assignee ? ids[t.assignee] : null },
      });
      assert.equal(res.statusCode, 201, res.body);
      made.push(res.json<Task>());
    }
    // Updated in another order than created, for the sort by updated.
    for (const i of [4, 0, 6]) await call(h.app, acme, `/api/tasks/${made[i]?.id ?? ''}`, { method: 'PATCH', body: { description: `${SEED[i]?.description ?? ''}.` } });
  });

  async function titles(query: string): Promise<string[]> {
    const res = await call(h.app, acme, `/api/tasks?projectId=${board.id}&limit=100${query}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json<Page<Task>>().items.map((t) => t.title);
  }

  /** Every page of a listing, followed from the first cursor to the last. */
  async function walk(query: string, limit: number): Promise<string[]> {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call(h.app, acme, `/api/tasks?projectId=${board.id}&limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.statusCode, 200, res.body);
      const page: Page<Task> = res.json<Page<Task>>();
      seen.push(...page.items.map((t) => t.title));
      cursor = page.nextCursor;
    } while (cursor !== null && ++pages < 50);
    return seen;
  }

  const where = (pick: (t: Seed) => boolean) => SEED.filter(pick).map((t) => t.title);

  test('by status, category, assignee, label, priority and due dates, alone and together', async () => {
    assert.deepEqual(await titles(`&status=${s['In progress']?.id ?? ''}`), where((t) => t.status === 'In progress'));
    assert.deepEqual(await titles('&category=done'), where((t) => t.status === 'Done'));
    assert.deepEqual(await titles(`&assignee=${ids.member ?? ''}`), where((t) => t.assignee === 'member'));
    assert.deepEqual(await titles('&assignee=none'), where((t) => t.assignee === null));
    assert.deepEqual(await titles('&label=ops'), where((t) => t.labels.includes('ops')));
    assert.deepEqual(await titles('&priority=high'), where((t) => t.priority === 'high'));
    assert.deepEqual(await titles('&dueBefore=2031-04-16'), where((t) => t.dueDate !== null && t.dueDate < '2031-04-16'));
    assert.deepEqual(await titles('&dueAfter=2031-04-15'), where((t) => t.dueDate !== null && t.dueDate > '2031-04-15'));
    assert.deepEqual(await titles('&label=ops&category=todo&assignee=none'), ['Update the status page']);
    assert.deepEqual(await titles('&label=nothing'), []);
  });

  test('full-text search over title and description, with stemming, phrases and exclusions', async () => {
    assert.deepEqual(await titles('&q=deploy'), ['Deploy the new gateway', 'Plan capacity'], 'deploy finds deployment and deploying');
    assert.deepEqual(await titles('&q=gateway%20-deploy'), ['Update the status page']);
    assert.deepEqual(await titles('&q=%22status%20page%22'), ['Update the status page']);
    assert.deepEqual(await titles('&q=certificates%20or%20passwords&sort=created'), ['Renew TLS certificates', 'Rotate database passwords']);
    assert.deepEqual(await titles('&q=gateway&category=in_progress'), ['Deploy the new gateway']);
    assert.deepEqual(await titles(`&q=${encodeURIComponent("'; DROP TABLE app.tasks; --")}`), []);
    assertProblem(await call(h.app, acme, `/api/tasks?q=${'x'.repeat(201)}`), 'validation-failed');
  });

  test('sorts by created, updated, due date and priority, both ways, and pages through each exactly once', async () => {
    const rank: Record<string, number> = { low: 1, medium: 2, high: 3, urgent: 4 };
    const created = SEED.map((t) => t.title);
    const updated = [...[0, 1, 2, 3, 5].map((i) => SEED[i]?.title ?? ''), ...[4, 0, 6].map((i) => SEED[i]?.title ?? '')].filter((t, i, all) => all.lastIndexOf(t) === i);
    const byDue = (dir: 1 | -1) =>
      SEED.map((t, i) => ({ ...t, i }))
        .sort((a, b) => (a.dueDate === b.dueDate ? dir * (a.i - b.i) : a.dueDate === null ? 1 : b.dueDate === null ? -1 : dir * a.dueDate.localeCompare(b.dueDate)))
        .map((t) => t.title);
    const byPriority = (dir: 1 | -1) =>
      SEED.map((t, i) => ({ ...t, i }))
        .sort((a, b) => dir * ((rank[a.priority] ?? 0) - (rank[b.priority] ?? 0) || a.i - b.i))
        .map((t) => t.title);
    const expected: Record<string, string[]> = {
      'created asc': created,
      'created desc': [...created].reverse(),
      'updated asc': updated,
      'updated desc': [...updated].reverse(),
      'due asc': byDue(1),
      'due desc': byDue(-1),
      'priority asc': byPriority(1),
      'priority desc': byPriority(-1),
    };
    for (const [name, order] of Object.entries(expected)) {
      const [sort, direction] = name.split(' ');
      assert.deepEqual(await walk(`&sort=${sort ?? ''}&order=${direction ?? ''}`, 3), order, name);
    }
    assert.deepEqual((await walk('&sort=due', 2)).slice(-2), ['Write the postmortem', 'Update the status page'], 'no due date comes last');
  });

  test('a cursor only works with the sort it was made for', async () => {
    const first = (await call(h.app, acme, `/api/tasks?projectId=${board.id}&limit=2&sort=priority&order=desc`)).json<Page<Task>>();
    assert.ok(first.nextCursor);
    const problem = assertProblem(await call(h.app, acme, `/api/tasks?projectId=${board.id}&limit=2&sort=due&cursor=${first.nextCursor}`), 'invalid-cursor');
    assert.match(problem.detail, /sorted by priority desc/);
    for (const bad of ['sort=name', 'order=up', 'dueBefore=2031-02-30', 'assignee=me', 'priority=asap']) assertProblem(await call(h.app, acme, `/api/tasks?${bad}`), 'validation-failed');
  });

  test("the labels of a project's tasks, most used first", async () => {
    const res = await call(h.app, acme, `/api/projects/${board.id}/labels`);
    assert.deepEqual(res.json(), { items: [{ name: 'ops', count: 4 }, { name: 'docs', count: 2 }, { name: 'security', count: 2 }, { name: 'network', count: 1 }] });
    assertProblem(await call(h.app, acme, '/api/projects/00000000-0000-4000-8000-000000000000/labels'), 'not-found');
  });

  test("another tenant's token sees none of it", async () => {
    assert.deepEqual((await call(h.app, globex, `/api/tasks?projectId=${board.id}`)).json<Page<Task>>().items, []);
    assert.deepEqual((await call(h.app, globex, '/api/tasks?q=gateway')).json<Page<Task>>().items, []);
  });
});

describe('search results by relevance', () => {
  let ranked: Project;
  const search = async (query: string, limit = 100) => {
    const res = await call(h.app, acme, `/api/tasks?projectId=${ranked.id}&limit=${limit}${query}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json<Page<Task>>();
  };

  before(async () => {
    ranked = await createProject(admin, 'RANKED');
    // Created in this order, so that creation order and relevance disagree.
    for (const [title, description] of [
      ['Quarterly report', 'The invoice totals, per invoice, with every invoice of the quarter and each invoice line.'],
      ['Printer jam', 'It jammed while printing an invoice.'],
      ['Export invoices', ''],
      ['Tidy the wiki', 'Nothing about money.'],
      ['Invoice archive', 'Keep every invoice for ten years.'],
      ['Same words', 'invoice'],
      ['Same words', 'invoice'],
    ]) {
      const res = await call(h.app, acme, f.tasksUrl(ranked), { method: 'POST', body: { title, description } });
      assert.equal(res.statusCode, 201, res.body);
    }
  });

  test('a title match outranks a description-only match, however often the description says it', async () => {
    const page = await search('&q=invoice');
    assert.deepEqual(
      page.items.map((t) => t.title),
      ['Invoice archive', 'Export invoices', 'Quarterly report', 'Same words', 'Same words', 'Printer jam'],
    );
    // Equal relevance: the newer first, then by id, the same way every time.
    const [newer, older] = page.items.filter((t) => t.title === 'Same words');
    assert.ok(newer && older && newer.number > older.number);
    assert.deepEqual((await search('&q=invoice')).items.map((t) => t.id), page.items.map((t) => t.id));
  });

  test('pages through the results exactly once, each page after the last, in relevance order', async () => {
    const whole = (await search('&q=invoice')).items.map((t) => t.id);
    const walked: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Page<Task> = await search(`&q=invoice${cursor ? `&cursor=${cursor}` : ''}`, 1);
      walked.push(...page.items.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor !== null && ++pages < 20);
    assert.deepEqual(walked, whole);
    const ascending = (await search('&q=invoice&sort=relevance&order=asc')).items.map((t) => t.id);
    assert.deepEqual(ascending, [...whole].reverse());
  });

  test('another sort with a search orders by it; relevance without a search is 400; a relevance cursor fits no other sort', async () => {
    assert.deepEqual((await search('&q=invoice&sort=created')).items.map((t) => t.title), ['Quarterly report', 'Printer jam', 'Export invoices', 'Invoice archive', 'Same words', 'Same words']);
    const problem = assertProblem(await call(h.app, acme, `/api/tasks?projectId=${ranked.id}&sort=relevance`), 'validation-failed');
    assert.deepEqual(problem.errors?.map((e) => e.pointer), ['/sort']);
    const first = await search('&q=invoice', 2);
    assert.ok(first.nextCursor);
    assertProblem(await call(h.app, acme, `/api/tasks?projectId=${ranked.id}&q=invoice&sort=created&cursor=${first.nextCursor}`), 'invalid-cursor');
  });
});
