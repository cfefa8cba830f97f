/**
 * The web app in Chromium, for the work itself: an owner signs in, creates a project (and is told
 * clearly when the key is taken), adds a task, moves it across the board with the mouse and with
 * the keyboard, edits it (and meets someone else's change instead of overwriting it), comments,
 * reads the history, edits and deletes a comment, changes the workflow (and the board follows it:
 * only allowed moves), uses the board at phone width, and signs out. Screenshots:
 * test-output/browser/.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BROWSER_SUITE, browserSession, card, checkPage, column, dragTo, eventually, pickUp, signIn } from './support.ts';

describe('the board and the work, in Chromium', BROWSER_SUITE, () => {
  const ui = browserSession();
  let projectId = '';
  let taskId = '';

  const readTask = async (): Promise<{ status: { name: string }; version: number }> => {
    const res = await ui.api('GET', `/api/tasks/${taskId}`);
    assert.equal(res.status, 200);
    return res.body as { status: { name: string }; version: number };
  };
  const taskStatus = async () => (await readTask()).status.name;
  const taskVersion = async () => (await readTask()).version;

  test('signs in and lands on the projects', async () => {
    await signIn(ui.page, ui.acme, ui.acme.owner);
    await ui.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    assert.match(ui.page.url(), /\/projects$/);
    await checkPage(ui.page, ui.record, 'work-01-projects');
  });

  test('creates a project, and says so readably when its key is taken', async () => {
    await ui.page.getByLabel('Key').fill('SHOP');
    await ui.page.getByLabel('Name', { exact: true }).fill('Shop');
    await ui.page.getByRole('button', { name: 'Create the project' }).click();
    await ui.page.getByRole('heading', { name: /Shop/, level: 1 }).waitFor();
    projectId = /\/projects\/([0-9a-f-]{36})$/.exec(ui.page.url())?.[1] ?? '';
    assert.notEqual(projectId, '');

    await ui.page.getByRole('link', { name: 'Projects' }).click();
    await ui.page.getByLabel('Key').fill('SHOP');
    await ui.page.getByLabel('Name', { exact: true }).fill('Another shop');
    await ui.page.getByRole('button', { name: 'Create the project' }).click();
    const alert = ui.page.getByRole('alert');
    await alert.waitFor();
    assert.equal(await alert.innerText(), "A project with key 'SHOP' already exists.");
    await checkPage(ui.page, ui.record, 'work-02-key-taken');
    // Nothing half-saved: still the one project with that key.
    const projects = await ui.api('GET', '/api/projects');
    assert.deepEqual((projects.body as { items: { key: string; name: string }[] }).items.filter((p) => p.key === 'SHOP').map((p) => p.name), ['Shop']);
    await ui.page.getByRole('link', { name: /^SHOP Shop/ }).click();
    await ui.page.getByRole('heading', { name: /Shop/, level: 1 }).waitFor();
  });

  test('adds a task to the first column', async () => {
    await ui.page.getByRole('textbox', { name: 'Title of a new task' }).fill('Draft the homepage');
    await ui.page.getByLabel('Priority').selectOption('high');
    await ui.page.getByRole('button', { name: 'Add the task' }).click();
    await column(ui.page, 'To do').locator(card(ui.page, 'SHOP-1')).waitFor();
    const tasks = await ui.api('GET', `/api/tasks?projectId=${projectId}`);
    taskId = (tasks.body as { items: { id: string }[] }).items[0]?.id ?? '';
    assert.equal(await eventually(taskStatus, 'To do'), 'To do');
    await checkPage(ui.page, ui.record, 'work-03-board');
  });

  test('moves the task with the mouse', async () => {
    const to = await column(ui.page, 'In progress').boundingBox();
    assert.ok(to);
    await dragTo(ui.page, 'SHOP-1', to.x + to.width / 2, to.y + 90);
    await ui.page.screenshot({ path: 'test-output/browser/work-04-dragging.png' });
    await ui.page.mouse.up();
    await column(ui.page, 'In progress').locator(card(ui.page, 'SHOP-1')).waitFor();
    await ui.page.getByRole('status').filter({ hasText: 'SHOP-1 moved to In progress.' }).waitFor({ state: 'attached' });
    assert.equal(await eventually(taskStatus, 'In progress'), 'In progress');
  });

  test('moves the task with the keyboard', async () => {
    await pickUp(ui.page, 'SHOP-1');
    await ui.page.keyboard.press('ArrowRight');
    await ui.page.getByText('SHOP-1 Draft the homepage is over Done, at place 1 of 1.').waitFor({ state: 'attached' });
    await ui.page.keyboard.press('Space');
    await column(ui.page, 'Done').locator(card(ui.page, 'SHOP-1')).waitFor();
    assert.equal(await eventually(taskStatus, 'Done'), 'Done');
    // The focus follows the card to its new column.
    assert.equal(await ui.page.evaluate<string>('document.activeElement?.getAttribute("aria-label") ?? ""'), 'Move SHOP-1');
    await checkPage(ui.page, ui.record, 'work-05-moved');
  });

  test('edits the task, and keeps the edits when someone else changed it meanwhile', async () => {
    await card(ui.page, 'SHOP-1').getByRole('link', { name: /Draft the homepage/ }).click();
    await ui.page.getByRole('heading', { name: /SHOP-1/, level: 1 }).waitFor();
    await ui.page.getByRole('button', { name: 'Edit the task' }).click();
    await ui.page.getByLabel('Title').fill('Draft the new homepage');
    await ui.page.getByRole('textbox', { name: 'Description' }).fill('Use the **new** colours.');
    await ui.page.getByRole('button', { name: 'Save', exact: true }).click();
    await ui.page.getByRole('status').filter({ hasText: 'The task is saved.' }).waitFor();
    await ui.page.getByRole('heading', { name: 'SHOP-1 Draft the new homepage', level: 1 }).waitFor();
    assert.equal(await ui.page.locator('.markdown strong').innerText(), 'new');

    await ui.page.getByRole('button', { name: 'Edit the task' }).click();
    await ui.page.getByLabel('Title').fill('My title');
    // Someone else (a script with the API token) changes the task first.
    const theirs = await ui.api('PATCH', `/api/tasks/${taskId}`, { title: 'Their title' });
    assert.equal(theirs.status, 200);
    await ui.page.getByRole('button', { name: 'Save', exact: true }).click();
    const alert = ui.page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /Not saved: someone else changed this task since you opened it \(it is now at version \d+\)/);
    assert.equal(await ui.page.getByLabel('Title').inputValue(), 'My title');
    await checkPage(ui.page, ui.record, 'work-06-conflict');
    const saved = await ui.api('GET', `/api/tasks/${taskId}`);
    assert.equal((saved.body as { title: string }).title, 'Their title');
    await ui.page.getByRole('button', { name: 'Load the latest version' }).click();
    await ui.page.getByRole('heading', { name: 'SHOP-1 Their title', level: 1 }).waitFor();
  });

  test('comments, and the history tells what happened', async () => {
    await ui.page.getByLabel('Add a comment').fill('Looks **good** to me.');
    await ui.page.getByRole('button', { name: 'Comment', exact: true }).click();
    const comments = ui.page.getByRole('region', { name: 'Comments' });
    await comments.locator('.comment strong', { hasText: 'good' }).waitFor();
    const history = ui.page.getByRole('region', { name: 'History' });
    await history.getByText('commented').waitFor();
    const lines = await history.locator('li').allInnerTexts();
    const said = lines.join('\n');
    for (const expected of ['Owner created the task', 'Owner moved it from To do to In progress', 'Owner moved it from In progress to Done', 'changed the title from “Draft the homepage” to “Draft the new homepage”', 'API token changed the title', 'Owner commented']) {
      assert.ok(said.includes(expected), `history lacks "${expected}":\n${said}`);
    }
    await checkPage(ui.page, ui.record, 'work-07-task');
  });

  test('edits and deletes a comment; the history keeps both', async () => {
    const comments = ui.page.getByRole('region', { name: 'Comments' });
    await comments.getByRole('button', { name: /^Edit your comment of/ }).click();
    const body = comments.getByLabel('Your comment');
    assert.equal(await body.inputValue(), 'Looks **good** to me.');
    await body.fill('Looks *great* to me.');
    await comments.getByRole('button', { name: 'Save the comment' }).click();
    await comments.locator('.comment em', { hasText: 'great' }).waitFor();
    await comments.getByText(/\(edited /).waitFor();
    await checkPage(ui.page, ui.record, 'work-08-comment-edited');
    const saved = await ui.api('GET', `/api/tasks/${taskId}/comments`);
    const [comment] = (saved.body as { items: { body: string; edited: boolean }[] }).items;
    assert.deepEqual([comment?.body, comment?.edited], ['Looks *great* to me.', true]);

    // Cancelling an edit keeps the comment as it was, and the next edit starts from it.
    await comments.getByRole('button', { name: /^Edit your comment of/ }).click();
    await comments.getByLabel('Your comment').fill('Never mind');
    await comments.getByRole('button', { name: 'Cancel' }).click();
    await comments.getByRole('button', { name: /^Edit your comment of/ }).click();
    assert.equal(await comments.getByLabel('Your comment').inputValue(), 'Looks *great* to me.');
    await comments.getByRole('button', { name: 'Cancel' }).click();

    await comments.getByRole('button', { name: /^Delete the comment of/ }).click();
    await comments.getByText('Delete this comment?').waitFor();
    await comments.getByRole('button', { name: 'Keep it' }).click();
    assert.equal(await comments.locator('.comment').count(), 1);
    await comments.getByRole('button', { name: /^Delete the comment of/ }).click();
    await comments.getByRole('button', { name: 'Delete the comment' }).click();
    await comments.getByText('No comments yet.').waitFor();
    const history = ui.page.getByRole('region', { name: 'History' });
    await history.getByText('deleted a comment').waitFor();
    assert.ok((await history.locator('li').allInnerTexts()).some((line) => line.includes('Owner edited a comment')));
    await checkPage(ui.page, ui.record, 'work-09-comment-deleted');
    const left = await ui.api('GET', `/api/tasks/${taskId}/comments`);
    assert.deepEqual((left.body as { items: unknown[] }).items, []);
  });

  test('changes the workflow, and the board allows only its moves', async () => {
    await ui.page.goto(`${ui.acme.origin}/projects/${projectId}/workflow`);
    await ui.page.getByRole('heading', { name: /workflow/, level: 1 }).waitFor();
    await ui.page.getByRole('button', { name: 'Add a status' }).click();
    await ui.page.getByLabel('Name of status 4').fill('Review');
    await ui.page.getByRole('button', { name: 'Move Review up' }).click();
    await ui.page.getByLabel('From In progress to Review').selectOption('everyone');
    await ui.page.getByLabel('From Review to Done').selectOption('admins');
    await ui.page.getByLabel('From Done to To do').selectOption('');
    await checkPage(ui.page, ui.record, 'work-10-workflow-editor');
    await ui.page.getByRole('button', { name: 'Save the workflow' }).click();
    await ui.page.getByRole('status').filter({ hasText: 'The workflow is saved' }).waitFor();
    const workflow = await ui.api('GET', `/api/projects/${projectId}/workflow`);
    const saved = workflow.body as { statuses: { id: string; name: string }[]; transitions: { fromStatusId: string; toStatusId: string; roles: string[] | null }[] };
    assert.deepEqual(saved.statuses.map((s) => s.name), ['To do', 'In progress', 'Review', 'Done']);
    const idOf = (name: string) => saved.statuses.find((s) => s.name === name)?.id;
    const rule = (from: string, to: string) => saved.transitions.find((t) => t.fromStatusId === idOf(from) && t.toStatusId === idOf(to));
    assert.deepEqual(rule('Review', 'Done')?.roles, ['admin', 'owner']);
    assert.equal(rule('Done', 'To do'), undefined);

    await ui.page.getByRole('link', { name: 'Board' }).click();
    await column(ui.page, 'Review').waitFor();
    const headings = await ui.page.locator('.column-heading').allInnerTexts();
    assert.deepEqual(headings.map((h) => h.replace(/\s+\d+\s*tasks?$/, '').trim()), ['To do', 'In progress', 'Review', 'Done']);
    // From Done only In progress is allowed now: the menu offers nothing else.
    await card(ui.page, 'SHOP-1').getByText('Move').click();
    assert.deepEqual(await card(ui.page, 'SHOP-1').locator('.card-move-menu button').allInnerTexts(), ['To In progress']);
    await card(ui.page, 'SHOP-1').getByText('Move').click();
    // Dropped on a column it may not enter, the card stays where it is.
    const to = await column(ui.page, 'To do').boundingBox();
    assert.ok(to);
    await dragTo(ui.page, 'SHOP-1', to.x + to.width / 2, to.y + 90);
    assert.match((await column(ui.page, 'To do').getAttribute('class')) ?? '', /column-forbidden/);
    await ui.page.screenshot({ path: 'test-output/browser/work-11-forbidden-drop.png' });
    const versionBefore = await taskVersion();
    await ui.page.mouse.up();
    await column(ui.page, 'Done').locator(card(ui.page, 'SHOP-1')).waitFor();
    // Give a wrong move the time to reach the server: none may.
    await ui.page.waitForTimeout(300);
    assert.equal(await taskVersion(), versionBefore);
    assert.equal(await taskStatus(), 'Done');
    // The keyboard skips the columns it may not enter: left goes to In progress, over Review.
    await pickUp(ui.page, 'SHOP-1');
    await ui.page.keyboard.press('ArrowLeft');
    await ui.page.getByText(/is over In progress, at place 1 of 1\./).waitFor({ state: 'attached' });
    await ui.page.keyboard.press('Enter');
    await column(ui.page, 'In progress').locator(card(ui.page, 'SHOP-1')).waitFor();
    assert.equal(await eventually(taskStatus, 'In progress'), 'In progress');
    await checkPage(ui.page, ui.record, 'work-12-new-workflow');
  });

  test('lists and filters tasks', async () => {
    await ui.api('POST', `/api/projects/${projectId}/tasks`, { title: 'Write the imprint', priority: 'low', labels: ['legal'] });
    await ui.page.getByRole('link', { name: 'List' }).click();
    await ui.page.getByRole('table', { name: 'Tasks' }).waitFor();
    assert.equal(await ui.page.getByRole('table', { name: 'Tasks' }).locator('tbody tr').count(), 2);
    await ui.page.getByLabel('Priority').selectOption('low');
    await ui.page.getByRole('button', { name: 'Show tasks' }).click();
    await ui.page.waitForURL(/priority=low/);
    await ui.page.getByRole('table', { name: 'Tasks' }).locator('tbody tr').first().waitFor();
    assert.deepEqual(await ui.page.getByRole('table', { name: 'Tasks' }).locator('tbody tr td:first-child a').allInnerTexts(), ['SHOP-2 Write the imprint']);
    // Full-text search reaches the description too.
    await ui.page.getByLabel('Words').fill('colours');
    await ui.page.getByLabel('Priority').selectOption('');
    await ui.page.getByRole('button', { name: 'Show tasks' }).click();
    await ui.page.waitForURL(/q=colours/);
    await ui.page.getByRole('table', { name: 'Tasks' }).getByRole('link', { name: 'SHOP-1 Their title' }).waitFor();
    assert.equal(await ui.page.getByRole('table', { name: 'Tasks' }).locator('tbody tr').count(), 1);
    await checkPage(ui.page, ui.record, 'work-13-list');
  });

  test('the board is usable at phone width', async () => {
    await ui.withPage(async (phone) => {
      await signIn(phone.page, ui.acme, ui.acme.owner, `/projects/${projectId}`);
      await column(phone.page, 'Done').waitFor();
      // Nothing wider than the screen; the columns stand one above the other.
      assert.ok((await phone.page.evaluate<number>('document.documentElement.scrollWidth')) <= 390);
      const boxes = await Promise.all(['To do', 'In progress', 'Review', 'Done'].map((s) => column(phone.page, s).boundingBox()));
      for (let i = 1; i < boxes.length; i++) assert.ok((boxes[i]?.y ?? 0) > (boxes[i - 1]?.y ?? 0), 'columns stacked');
      await card(phone.page, 'SHOP-1').getByText('Move').click();
      await card(phone.page, 'SHOP-1').getByRole('button', { name: 'To Review' }).click();
      await column(phone.page, 'Review').locator(card(phone.page, 'SHOP-1')).waitFor();
      assert.equal(await eventually(taskStatus, 'Review'), 'Review');
      await checkPage(phone.page, phone.record, 'work-14-phone-board');
    }, { viewport: { width: 390, height: 844 } });
  });

  test('signs out; the pages then ask to sign in', async () => {
    await ui.page.getByRole('button', { name: 'Sign out' }).click();
    await ui.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await ui.page.getByText('You have signed out.').waitFor();
    await ui.page.goto(`${ui.acme.origin}/projects/${projectId}`);
    await ui.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.match(ui.page.url(), /\/sign-in\?next=%2Fprojects%2F/);
    await checkPage(ui.page, ui.record, 'work-15-signed-out');
  });
});
