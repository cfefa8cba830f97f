/** Comments over HTTP: who may add, edit and delete them, where they are found, and their history. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from './helpers/browser.ts';
import { call, type HttpTest, type TestTenant } from './helpers/http-server.ts';
import { assertProblem, type Page } from './helpers/work.ts';
import { startWorkFixture, type Comment, type WorkFixture } from './helpers/work-fixture.ts';

let f: WorkFixture;
let h: HttpTest;
let acme: TestTenant;
let globex: TestTenant;
let admin: Browser;
let member: Browser;
let other: Browser;
let viewer: Browser;
let ids: Record<string, string>;

before(async () => {
  f = await startWorkFixture();
  ({ h, acme, globex, admin, member, other, viewer, ids } = f);
});
after(async () => {
  await f.cleanup();
});

describe('comments', () => {
  test('members comment; the author edits; the author or an admin deletes; every step is in the history', async () => {
    const task = await f.newTask({ title: 'Discuss' });
    const added = await member.request('POST', `/api/tasks/${task.id}/comments`, { body: 'Looks **good**' });
    assert.equal(added.statusCode, 201, added.body);
    const comment = added.json<Comment>();
    assert.equal(added.headers.location, `/api/tasks/${task.id}/comments/${comment.id}`);
    assert.deepEqual([comment.body, comment.author.id, comment.edited], ['Looks **good**', ids.member, false]);
    const url = `/api/tasks/${task.id}/comments/${comment.id}`;
    assertProblem(await other.request('PATCH', url, { body: 'hijacked' }), 'forbidden');
    assertProblem(await admin.request('PATCH', url, { body: 'moderated' }), 'forbidden');
    assertProblem(await other.request('DELETE', url), 'forbidden');
    const edited = await member.request('PATCH', url, { body: 'Looks good' });
    assert.deepEqual([edited.statusCode, edited.json<Comment>().edited], [200, true]);
    const second = (await other.request('POST', `/api/tasks/${task.id}/comments`, { body: 'Agreed' })).json<Comment>();
    assert.equal((await admin.request('DELETE', `/api/tasks/${task.id}/comments/${second.id}`)).statusCode, 204);
    assert.equal((await member.request('DELETE', url)).statusCode, 204);
    assert.deepEqual((await call(h.app, acme, `/api/tasks/${task.id}/comments`)).json<Page<Comment>>().items, []);
    const history = (await f.historyOf(task.id)).filter((e) => e.kind !== 'created');
    assert.deepEqual(
      history.map((e) => [e.kind, e.actor.displayName]),
      [['commented', 'member'], ['comment-edited', 'member'], ['commented', 'other'], ['comment-deleted', 'admin'], ['comment-deleted', 'member']],
    );
    assert.deepEqual(history[1]?.before, { commentId: comment.id, body: 'Looks **good**' });
    assert.deepEqual(history[1].after, { commentId: comment.id, body: 'Looks good' });
  });

  test('an API token edits its own comments, not a user’s; viewers read but do not comment', async () => {
    const task = await f.newTask({ title: 'Token talk' });
    const mine = (await call(h.app, acme, `/api/tasks/${task.id}/comments`, { method: 'POST', body: { body: 'from CI' } })).json<Comment>();
    assert.deepEqual(mine.author, { kind: 'api-token', id: null, displayName: 'API token' });
    assert.equal((await call(h.app, acme, `/api/tasks/${task.id}/comments/${mine.id}`, { method: 'PATCH', body: { body: 'from CI, edited' } })).statusCode, 200);
    const theirs = (await member.request('POST', `/api/tasks/${task.id}/comments`, { body: 'by hand' })).json<Comment>();
    assertProblem(await call(h.app, acme, `/api/tasks/${task.id}/comments/${theirs.id}`, { method: 'PATCH', body: { body: 'x' } }), 'forbidden');
    assertProblem(await member.request('PATCH', `/api/tasks/${task.id}/comments/${mine.id}`, { body: 'x' }), 'forbidden');
    assertProblem(await viewer.request('POST', `/api/tasks/${task.id}/comments`, { body: 'may I?' }), 'forbidden');
    assert.equal((await viewer.request('GET', `/api/tasks/${task.id}/comments`)).json<Page<Comment>>().items.length, 2);
  });

  test("a comment is only found under its own task, and only in its tenant", async () => {
    const a = await f.newTask({ title: 'A' });
    const b = await f.newTask({ title: 'B' });
    const comment = (await member.request('POST', `/api/tasks/${a.id}/comments`, { body: 'on A' })).json<Comment>();
    assertProblem(await member.request('PATCH', `/api/tasks/${b.id}/comments/${comment.id}`, { body: 'moved?' }), 'not-found');
    assertProblem(await member.request('DELETE', `/api/tasks/${b.id}/comments/${comment.id}`), 'not-found');
    assertProblem(await call(h.app, globex, `/api/tasks/${a.id}/comments`), 'not-found');
    assertProblem(await call(h.app, globex, `/api/tasks/${a.id}/comments`, { method: 'POST', body: { body: 'planted' } }), 'not-found');
    assertProblem(await call(h.app, acme, '/api/tasks/00000000-0000-4000-8000-000000000000/comments', { method: 'POST', body: { body: 'orphan' } }), 'not-found');
    assert.equal((await call(h.app, acme, `/api/tasks/${a.id}/comments`)).json<Page<Comment>>().items[0]?.body, 'on A');
  });

  test('bodies: 1 to 20,000 characters, not only spaces', async () => {
    const task = await f.newTask({ title: 'Bodies' });
    for (const body of ['', '   ', 'x'.repeat(20_001)]) assertProblem(await call(h.app, acme, `/api/tasks/${task.id}/comments`, { method: 'POST', body: { body } }), 'validation-failed');
    assert.deepEqual((await f.historyOf(task.id)).map((e) => e.kind), ['created']);
  });
});

