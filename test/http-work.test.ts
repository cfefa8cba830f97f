/** The projects and tasks API over HTTP, against a real cluster: CRUD, pagination, preconditions, errors. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PROBLEMS } from '../src/errors.ts';
import { withAdminClient } from '../src/platform/postgres/connection.ts';
import { firstOwner } from './helpers/accounts.ts';
import type { Browser } from './helpers/browser.ts';
import { call, makeTenant, startHttpTest, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { assertProblem, createProject as createProjectAs, statusesOf, type Page, type Project, type Task } from './helpers/work.ts';

let h: HttpTest;
let acme: TestTenant;
/** Projects are managed by admins and owners; tasks here are made with the API token, like a program would. */
let owner: Browser;

before(async () => {
  h = await startHttpTest({ 'server.bodyLimitBytes': 4096, 'server.trustProxy': true });
  acme = await makeTenant(h.tp, 'acme');
  owner = await firstOwner(h.app, h.tp, acme);
});
after(async () => {
  await h.cleanup();
});

function createProject(key: string, name = key): Promise<Project> {
  return createProjectAs(owner, key, name);
}

async function createTask(projectId: string, body: Record<string, unknown>): Promise<Task> {
  const res = await call(h.app, acme, `/api/projects/${projectId}/tasks`, { method: 'POST', body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Task>();
}

describe('projects', () => {
  test('create answers 201 with Location, and the project reads back', async () => {
    const res = await owner.request('POST', '/api/projects', { key: 'WEB', name: 'Website', description: 'The public site' });
    assert.equal(res.statusCode, 201);
    const project = res.json<Project>();
    assert.equal(res.headers.location, `/api/projects/${project.id}`);
    assert.deepEqual({ key: project.key, name: project.name, description: project.description }, { key: 'WEB', name: 'Website', description: 'The public site' });
    const read = await call(h.app, acme, `/api/projects/${project.id}`);
    assert.equal(read.statusCode, 200);
    assert.deepEqual(read.json(), res.json());
  });

  test('a taken key is a 409 conflict', async () => {
    await createProject('DUP');
    const res = await owner.request('POST', '/api/projects', { key: 'DUP', name: 'Again' });
    assertProblem(res, 'conflict', '/api/projects');
  });

  test('keys must be short upper-case codes', async () => {
    for (const key of ['web', 'W', 'TOOLONGKEY11', '1AB', 'A-B']) {
      const res = await owner.request('POST', '/api/projects', { key, name: 'x' });
      const body = assertProblem(res, 'validation-failed');
      assert.deepEqual(body.errors?.map((e) => [e.in, e.pointer]), [['body', '/key']], key);
    }
  });

  test('PATCH changes name and description; the key cannot be changed', async () => {
    const project = await createProject('PAT');
    const res = await owner.request('PATCH', `/api/projects/${project.id}`, { name: 'Renamed' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json<Project>().name, 'Renamed');
    assert.equal(res.json<Project>().key, 'PAT');
    assertProblem(await owner.request('PATCH', `/api/projects/${project.id}`, { key: 'NEW' }), 'validation-failed');
    assertProblem(await owner.request('PATCH', `/api/projects/${project.id}`, {}), 'validation-failed');
  });

  test('If-Match on a project fails the precondition rather than being ignored: projects have no versions', async () => {
    const project = await createProject('IFP');
    for (const [method, body] of [['PATCH', { name: 'changed' }], ['DELETE', undefined]] as const) {
      for (const ifMatch of ['"1"', 'W/"1"', '"9999999999"']) {
        const res = await owner.request(method, `/api/projects/${project.id}`, body, { 'if-match': ifMatch });
        const problem = assertProblem(res, 'precondition-failed');
        assert.match(problem.detail, /projects have no versions/);
      }
    }
    assert.equal((await call(h.app, acme, `/api/projects/${project.id}`)).json<Project>().name, 'IFP', 'nothing was changed');
    const missing = '00000000-0000-4000-8000-000000000000';
    assertProblem(await owner.request('PATCH', `/api/projects/${missing}`, { name: 'x' }, { 'if-match': '"1"' }), 'not-found');
    assertProblem(await owner.request('DELETE', `/api/projects/${missing}`, undefined, { 'if-match': '"1"' }), 'not-found');
    const any = await owner.request('PATCH', `/api/projects/${project.id}`, { name: 'changed' }, { 'if-match': '*' });
    assert.equal(any.statusCode, 200, 'If-Match: * only asks that the project exists');
    assert.equal((await owner.request('DELETE', `/api/projects/${project.id}`, undefined, { 'if-match': '*' })).statusCode, 204);
  });

  test('DELETE answers 204 and takes the tasks with it', async () => {
    const project = await createProject('DEL');
    const task = await createTask(project.id, { title: 'goes too' });
    const res = await owner.request('DELETE', `/api/projects/${project.id}`);
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');
    assertProblem(await call(h.app, acme, `/api/projects/${project.id}`), 'not-found');
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}`), 'not-found');
    assertProblem(await owner.request('DELETE', `/api/projects/${project.id}`), 'not-found');
  });

  test('an id that is not a UUID is a 404, not a 500', async () => {
    for (const id of ['123', 'not-a-uuid', "1' OR '1'='1"]) {
      assertProblem(await call(h.app, acme, `/api/projects/${encodeURIComponent(id)}`), 'not-found');
      assertProblem(await call(h.app, acme, `/api/tasks/${encodeURIComponent(id)}`, { method: 'PATCH', body: { title: 'x' } }), 'not-found');
    }
  });
});

describe('tasks', () => {
  test('are numbered per project from its counter, with keys like WEB-1', async () => {
    const project = await createProject('NUM');
    const first = await createTask(project.id, { title: 'one', priority: 'high', dueDate: '2030-02-28' });
    const second = await createTask(project.id, { title: 'two' });
    assert.deepEqual([first.key, first.number, second.key, second.number], ['NUM-1', 1, 'NUM-2', 2]);
    assert.deepEqual([first.status.name, first.status.category, first.priority, first.dueDate, first.version], ['To do', 'todo', 'high', '2030-02-28', 1]);
    assert.equal(second.dueDate, null);
  });

  test('concurrent creates in one project never share a number', async () => {
    const project = await createProject('RACE');
    const tasks = await Promise.all(Array.from({ length: 12 }, (_, i) => createTask(project.id, { title: `t${i}` })));
    assert.deepEqual(tasks.map((t) => t.number).sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 1));
  });

  test('creating in a project that does not exist is a 404', async () => {
    const res = await call(h.app, acme, '/api/projects/00000000-0000-4000-8000-000000000000/tasks', { method: 'POST', body: { title: 'orphan' } });
    assertProblem(res, 'not-found');
  });

  test('bad dates and unknown statuses are refused', async () => {
    const project = await createProject('VAL');
    for (const body of [{ title: 'x', dueDate: '2030-02-30' }, { title: 'x', dueDate: '30.01.2030' }, { title: 'x', statusId: 'blocked' }, { title: 'x', status: 'todo' }, { title: '' }, { title: 5 }]) {
      assertProblem(await call(h.app, acme, `/api/projects/${project.id}/tasks`, { method: 'POST', body }), 'validation-failed');
    }
  });

  test('PATCH bumps the version and honours If-Match', async () => {
    const project = await createProject('IFM');
    const task = await createTask(project.id, { title: 'edit me', dueDate: '2030-01-01' });
    const statuses = await statusesOf(owner, project.id);
    const first = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { statusId: statuses['In progress']?.id, dueDate: null }, headers: { 'if-match': '"1"' } });
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.headers.etag, '"2"');
    assert.deepEqual([first.json<Task>().status.name, first.json<Task>().dueDate, first.json<Task>().version], ['In progress', null, 2]);

    const stale = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { statusId: statuses.Done?.id }, headers: { 'if-match': '"1"' } });
    assertProblem(stale, 'precondition-failed');
    assert.equal((await call(h.app, acme, `/api/tasks/${task.id}`)).json<Task>().status.name, 'In progress', 'a failed precondition changes nothing');

    const unconditional = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { title: 'edited' } });
    assert.equal(unconditional.json<Task>().version, 3);
    const get = await call(h.app, acme, `/api/tasks/${task.id}`);
    assert.equal(get.headers.etag, '"3"');
  });

  test('a version too large to exist never matches: 412, not a database error', async () => {
    const project = await createProject('BIGV');
    const task = await createTask(project.id, { title: 'huge version' });
    for (const [method, body] of [['PATCH', { title: 'x' }], ['DELETE', undefined]] as const) {
      const res = await call(h.app, acme, `/api/tasks/${task.id}`, { method, body, headers: { 'if-match': '"9999999999"' } });
      const problem = assertProblem(res, 'precondition-failed');
      assert.equal(problem.currentVersion, 1);
    }
    const both = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'PATCH', body: { title: 'x' }, headers: { 'if-match': '"9999999999", "1"' } });
    assert.equal(both.statusCode, 200, 'the version that can exist still counts');
  });

  test('a missing task is 404 whatever If-Match says', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const ifMatch of ['"1"', 'W/"1"', '3', '"abc"', '"9999999999"', '*']) {
      assertProblem(await call(h.app, acme, `/api/tasks/${missing}`, { method: 'PATCH', body: { title: 'x' }, headers: { 'if-match': ifMatch } }), 'not-found');
      assertProblem(await call(h.app, acme, `/api/tasks/${missing}`, { method: 'DELETE', headers: { 'if-match': ifMatch } }), 'not-found');
    }
  });

  test('an If-Match naming no version in our form is 412 on a task that exists', async () => {
    const project = await createProject('WEAK');
    const task = await createTask(project.id, { title: 'weak' });
    const res = await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'DELETE', headers: { 'if-match': 'W/"1"' } });
    const problem = assertProblem(res, 'precondition-failed');
    assert.equal(problem.currentVersion, 1);
    assert.match(problem.detail, /names no version/);
  });

  test('DELETE honours If-Match too', async () => {
    const project = await createProject('DIF');
    const task = await createTask(project.id, { title: 'delete me' });
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'DELETE', headers: { 'if-match': '"7"' } }), 'precondition-failed');
    assert.equal((await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'DELETE', headers: { 'if-match': '"1"' } })).statusCode, 204);
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}`, { method: 'DELETE' }), 'not-found');
  });
});

describe('pagination', () => {
  /** Follows nextCursor from the first page to the last, returning every id seen, in order. */
  async function walk(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/api/tasks?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await call(h.app, acme, url);
      assert.equal(res.statusCode, 200, res.body);
      const page = res.json<Page<Task>>();
      assert.ok(page.items.length <= limit);
      ids.push(...page.items.map((t) => t.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 100);
    return { ids, pages };
  }

  test('walks every task of a project exactly once, also when timestamps tie to the microsecond', async () => {
    const project = await createProject('PAGE');
    const statuses = await statusesOf(owner, project.id);
    const created: Task[] = [];
    for (let i = 0; i < 23; i++) created.push(await createTask(project.id, { title: `task ${i}`, statusId: (i % 3 === 0 ? statuses.Done : statuses['To do'])?.id }));
    const expected = created.map((t) => t.id);

    const byTime = await walk(`&projectId=${project.id}`, 5);
    assert.deepEqual(byTime.ids, expected, 'oldest first, nothing repeated or skipped');
    assert.equal(byTime.pages, 5);

    // Rows that share created_at (and rows a millisecond-precision cursor could not tell apart)
    // are still ordered and paged exactly, by id within the same instant.
    await withAdminClient(h.tp.platform.target, acme.tenant.databaseName, async (admin) => {
      await admin.query(
        `UPDATE app.tasks SET created_at = timestamptz '2030-01-01 00:00:00.123' + (number % 4) * interval '1 microsecond' WHERE project_id = $1`,
        [project.id],
      );
    });
    const tied = await walk(`&projectId=${project.id}`, 4);
    assert.equal(tied.ids.length, 23);
    assert.deepEqual([...tied.ids].sort(), [...expected].sort());

    const done = await walk(`&projectId=${project.id}&category=done`, 2);
    assert.deepEqual([...done.ids].sort(), created.filter((t) => t.status.category === 'done').map((t) => t.id).sort());
  });

  test('the default page size is 50 and at most 100 can be asked for', async () => {
    const res = await call(h.app, acme, '/api/tasks');
    assert.ok(res.json<Page<Task>>().items.length <= 50);
    assertProblem(await call(h.app, acme, '/api/tasks?limit=101'), 'validation-failed');
    assertProblem(await call(h.app, acme, '/api/tasks?limit=0'), 'validation-failed');
    assertProblem(await call(h.app, acme, '/api/tasks?limit=ten'), 'validation-failed');
    assertProblem(await call(h.app, acme, '/api/tasks?status=blocked'), 'validation-failed');
    assertProblem(await call(h.app, acme, '/api/tasks?category=blocked'), 'validation-failed');
    assertProblem(await call(h.app, acme, '/api/tasks?colour=red'), 'validation-failed');
  });

  test('limit must be written as plain decimal digits: fractions, exponents and hex are refused, not rounded', async () => {
    for (const limit of ['2.5', '1e1', '0x2', '100.5', '%2B5', '']) {
      const body = assertProblem(await call(h.app, acme, `/api/tasks?limit=${limit}`), 'validation-failed');
      assert.deepEqual(body.errors, [{ in: 'querystring', pointer: '/limit', message: 'must be a whole number written in decimal digits' }], limit);
    }
    assert.equal((await call(h.app, acme, '/api/tasks?limit=2')).statusCode, 200);
  });

  test('a value outside an enum is one error that names the allowed values', async () => {
    const query = assertProblem(await call(h.app, acme, '/api/tasks?category=blocked'), 'validation-failed');
    assert.deepEqual(query.errors, [{ in: 'querystring', pointer: '/category', message: 'must be one of: todo, in_progress, done' }]);
    assert.equal(query.detail, 'querystring/category must be one of: todo, in_progress, done');
    const project = await createProject('ENUM');
    const body = assertProblem(await call(h.app, acme, `/api/projects/${project.id}/tasks`, { method: 'POST', body: { title: 'x', priority: 'asap' } }), 'validation-failed');
    assert.deepEqual(body.errors, [{ in: 'body', pointer: '/priority', message: 'must be one of: low, medium, high, urgent' }]);
  });

  test('a cursor we did not make is a 400 invalid-cursor', async () => {
    for (const cursor of ['abc', 'eyJ4IjoxfQ', Buffer.from('["1", "x"]').toString('base64url')]) {
      assertProblem(await call(h.app, acme, `/api/tasks?cursor=${cursor}`), 'invalid-cursor', '/api/tasks');
    }
  });
});

describe('request errors', () => {
  // Tasks are what an API token writes; these send it bad bodies.
  let tasksUrl = '';
  before(async () => {
    tasksUrl = `/api/projects/${(await createProject('ERR')).id}/tasks`;
  });

  test('malformed JSON is a 400 invalid-json', async () => {
    assertProblem(await call(h.app, acme, tasksUrl, { method: 'POST', body: '{"title": "ABC",' }), 'invalid-json', tasksUrl);
    assertProblem(await call(h.app, acme, tasksUrl, { method: 'POST', body: '{"__proto__": {"x": 1}, "title": "x"}' }), 'invalid-json');
  });

  test('an unknown field is a 400 naming it', async () => {
    const res = await call(h.app, acme, tasksUrl, { method: 'POST', body: { title: 'x', owner: 'mallory' } });
    const body = assertProblem(res, 'validation-failed');
    assert.deepEqual(body.errors, [{ in: 'body', pointer: '/owner', message: 'is not a known field' }]);
  });

  test('types are not coerced in bodies', async () => {
    assertProblem(await call(h.app, acme, tasksUrl, { method: 'POST', body: { title: 12 } }), 'validation-failed');
    assertProblem(await call(h.app, acme, tasksUrl, { method: 'POST', body: '[]' }), 'validation-failed');
  });

  test('a body over the limit is a 413', async () => {
    const res = await call(h.app, acme, tasksUrl, { method: 'POST', body: { title: 'x', description: 'y'.repeat(5000) } });
    assertProblem(res, 'payload-too-large');
  });

  test('a body that is not JSON is a 415', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await call(h.app, acme, tasksUrl, { method: 'POST', body: 'title=ABC', headers: { 'content-type': type } });
      assertProblem(res, 'unsupported-media-type');
    }
  });

  test('an unknown route is a 404 problem; a known path with the wrong method is a 405 with Allow', async () => {
    assertProblem(await call(h.app, acme, '/api/nothing-here'), 'not-found', '/api/nothing-here');
    const res = await call(h.app, acme, '/api/projects', { method: 'PUT', body: {} });
    assertProblem(res, 'method-not-allowed');
    assert.equal(res.headers.allow, 'GET, HEAD, POST');
  });

  test('a malformed URL is a 400 problem, answered before routing', async () => {
    assertProblem(await call(h.app, acme, '/api/projects/%E0%A4%A'), 'bad-request');
  });

  test('the query string never appears in instance', async () => {
    const res = await call(h.app, acme, '/api/tasks?cursor=secret-looking&limit=2');
    const body = assertProblem(res, 'invalid-cursor');
    assert.equal(body.instance, '/api/tasks');
  });
});

describe('every response', () => {
  test('carries the security headers, and API responses are not cached', async () => {
    const responses = [
      await call(h.app, acme, '/api/projects'),
      await call(h.app, acme, '/api/nothing'),
      await call(h.app, acme, '/api/projects', { token: null }),
      await call(h.app, acme, '/api/projects/%E0%A4%A'),
      await h.app.inject({ url: '/healthz' }),
    ];
    for (const res of responses) {
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
      assert.equal(res.headers['cache-control'], 'no-store');
    }
  });
});

describe('routes on any host', () => {
  test('/healthz answers without a tenant', async () => {
    for (const host of ['localhost', 'nope.taskflow.test', acme.host]) {
      const res = await h.app.inject({ url: '/healthz', headers: { host } });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { status: 'ok' });
    }
  });

  test('/readyz answers 200 while the control database does', async () => {
    const res = await h.app.inject({ url: '/readyz', headers: { host: 'localhost' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });

  test('/problems/:code describes each code; unknown codes are 404', async () => {
    for (const code of Object.keys(PROBLEMS) as (keyof typeof PROBLEMS)[]) {
      const res = await h.app.inject({ url: `/problems/${code}`, headers: { host: 'localhost' } });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { type: `/problems/${code}`, code, status: PROBLEMS[code].status, title: PROBLEMS[code].title });
    }
    assertProblem(await h.app.inject({ url: '/problems/no-such-code', headers: { host: 'localhost' } }), 'not-found');
    assertProblem(await h.app.inject({ url: '/problems/__proto__', headers: { host: 'localhost' } }), 'not-found');
  });

  test('a problem description may be cached; a 404 for an unknown code may not', async () => {
    const known = await h.app.inject({ url: '/problems/not-found', headers: { host: 'localhost' } });
    assert.equal(known.headers['cache-control'], 'public, max-age=86400');
    for (const url of ['/problems/no-such-code', '/problems/Not-A-Code', '/problems/%E0%A4%A']) {
      const res = await h.app.inject({ url, headers: { host: 'localhost' } });
      assert.ok(res.statusCode >= 400, url);
      assert.equal(res.headers['cache-control'], 'no-store', url);
    }
  });
});
