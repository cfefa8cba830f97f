/**
 * The web app in Chromium, for the work itself: an owner signs in, creates a project (and is told
 * clearly when the key is taken), adds a task, moves it across the board with the mouse and with
 * the keyboard, edits it (and meets someone else's change instead of overwriting it), comments,
 * reads the history, changes the workflow (and the board follows it: only allowed moves), uses the
 * board at phone width, and signs out. Screenshots: test-output/browser/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type { PageRecord } from '../helpers/chromium.ts';
import { chromiumMissing } from '../helpers/chromium.ts';
import { api, card, checkPage, column, eventually, pickedUp, signIn, startBrowserSuite, type BrowserSuite } from './support.ts';

const skip = chromiumMissing();

describe('the board and the work, in Chromium', { skip: skip ?? false, timeout: 120_000 }, () => {
  let suite: BrowserSuite;
  let context: BrowserContext;
  let page: Page;
  let record: PageRecord;
  let projectId = '';
  let taskId = '';

  before(async () => {
    suite = await startBrowserSuite();
    ({ context, page, record } = await suite.chromium.newPage());
  });
  after(async () => {
    await context.close().catch(() => undefined);
    await suite.close();
  });

  const readTask = async (): Promise<{ status: { name: string }; version: number }> => {
    const res = await api(suite.live, suite.live.acme, 'GET', `/api/tasks/${taskId}`);
    assert.equal(res.status, 200);
    return res.body as { status: { name: string }; version: number };
  };
  const taskStatus = async () => (await readTask()).status.name;
  const taskVersion = async () => (await readTask()).version;

  test('signs in and lands on the projects', async () => {
    await signIn(page, suite.live.acme, suite.live.acme.owner);
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    assert.match(page.url(), /\/projects$/);
    await checkPage(page, record, 'work-01-projects');
  });

  test('creates a project, and says so readably when its key is taken', async () => {
    await page.getByLabel('Key').fill('SHOP');
    await page.getByLabel('Name', { exact: true }).fill('Shop');
    await page.getByRole('button', { name: 'Create the project' }).click();
    await page.getByRole('heading', { name: /Shop/, level: 1 }).waitFor();
    projectId = /\/projects\/([0-9a-f-]{36})$/.exec(page.url())?.[1] ?? '';
    assert.notEqual(projectId, '');

    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByLabel('Key').fill('SHOP');
    await page.getByLabel('Name', { exact: true }).fill('Another shop');
    await page.getByRole('button', { name: 'Create the project' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.equal(await alert.innerText(), "A project with key 'SHOP' already exists.");
    await checkPage(page, record, 'work-02-key-taken');
    // Nothing half-saved: still the one project with that key.
    const projects = await api(suite.live, suite.live.acme, 'GET', '/api/projects');
    assert.deepEqual((projects.body as { items: { key: string; name: string }[] }).items.filter((p) => p.key === 'SHOP').map((p) => p.name), ['Shop']);
    await page.getByRole('link', { name: /^SHOP Shop/ }).click();
    await page.getByRole('heading', { name: /Shop/, level: 1 }).waitFor();
  });

  test('adds a task to the first column', async () => {
    await page.getByRole('textbox', { name: 'Title of a new task' }).fill('Draft the homepage');
    await page.getByLabel('Priority').selectOption('high');
    await page.getByRole('button', { name: 'Add the task' }).click();
    await column(page, 'To do').locator(card(page, 'SHOP-1')).waitFor();
    const tasks = await api(suite.live, suite.live.acme, 'GET', `/api/tasks?projectId=${projectId}`);
    taskId = (tasks.body as { items: { id: string }[] }).items[0]?.id ?? '';
    assert.equal(await eventually(taskStatus, 'To do'), 'To do');
    await checkPage(page, record, 'work-03-board');
  });

  test('moves the task with the mouse', async () => {
    const handle = card(page, 'SHOP-1').getByRole('button', { name: 'Move SHOP-1' });
    const from = await handle.boundingBox();
    const to = await column(page, 'In progress').boundingBox();
    assert.ok(from && to);
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(from.x + from.width / 2 + 10, from.y + from.height / 2 + 10, { steps: 4 });
    await page.mouse.move(to.x + to.width / 2, to.y + 90, { steps: 12 });
    await page.screenshot({ path: 'test-output/browser/work-04-dragging.png' });
    await page.mouse.up();
    await column(page, 'In progress').locator(card(page, 'SHOP-1')).waitFor();
    await page.getByRole('status').filter({ hasText: 'SHOP-1 moved to In progress.' }).waitFor({ state: 'attached' });
    assert.equal(await eventually(taskStatus, 'In progress'), 'In progress');
  });

  test('moves the task with the keyboard', async () => {
    await card(page, 'SHOP-1').getByRole('button', { name: 'Move SHOP-1' }).focus();
    await page.keyboard.press('Space');
    await pickedUp(page, 'SHOP-1');
    await page.keyboard.press('ArrowRight');
    await page.getByText('SHOP-1 Draft the homepage is over Done.').waitFor({ state: 'attached' });
    await page.keyboard.press('Space');
    await column(page, 'Done').locator(card(page, 'SHOP-1')).waitFor();
    assert.equal(await eventually(taskStatus, 'Done'), 'Done');
    // The focus follows the card to its new column.
    assert.equal(await page.evaluate<string>('document.activeElement?.getAttribute("aria-label") ?? ""'), 'Move SHOP-1');
    await checkPage(page, record, 'work-05-moved');
  });

  test('edits the task, and keeps the edits when someone else changed it meanwhile', async () => {
    await card(page, 'SHOP-1').getByRole('link', { name: /Draft the homepage/ }).click();
    await page.getByRole('heading', { name: /SHOP-1/, level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Edit the task' }).click();
    await page.getByLabel('Title').fill('Draft the new homepage');
    await page.getByRole('textbox', { name: 'Description' }).fill('Use the **new** colours.');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'The task is saved.' }).waitFor();
    await page.getByRole('heading', { name: 'SHOP-1 Draft the new homepage', level: 1 }).waitFor();
    assert.equal(await page.locator('.markdown strong').innerText(), 'new');

    await page.getByRole('button', { name: 'Edit the task' }).click();
    await page.getByLabel('Title').fill('My title');
    // Someone else (a script with the API token) changes the task first.
    const theirs = await api(suite.live, suite.live.acme, 'PATCH', `/api/tasks/${taskId}`, { title: 'Their title' });
    assert.equal(theirs.status, 200);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /Not saved: someone else changed this task since you opened it \(it is now at version \d+\)/);
    assert.equal(await page.getByLabel('Title').inputValue(), 'My title');
    await checkPage(page, record, 'work-06-conflict');
    const saved = await api(suite.live, suite.live.acme, 'GET', `/api/tasks/${taskId}`);
    assert.equal((saved.body as { title: string }).title, 'Their title');
    await page.getByRole('button', { name: 'Load the latest version' }).click();
    await page.getByRole('heading', { name: 'SHOP-1 Their title', level: 1 }).waitFor();
  });

  test('comments, and the history tells what happened', async () => {
    await page.getByLabel('Add a comment').fill('Looks **good** to me.');
    await page.getByRole('button', { name: 'Comment', exact: true }).click();
    const comments = page.getByRole('region', { name: 'Comments' });
    await comments.locator('.comment strong', { hasText: 'good' }).waitFor();
    const history = page.getByRole('region', { name: 'History' });
    await history.getByText('commented').waitFor();
    const lines = await history.locator('li').allInnerTexts();
    const said = lines.join('\n');
    for (const expected of ['Owner created the task', 'Owner moved it from To do to In progress', 'Owner moved it from In progress to Done', 'changed the title from “Draft the homepage” to “Draft the new homepage”', 'API token changed the title', 'Owner commented']) {
      assert.ok(said.includes(expected), `history lacks "${expected}":\n${said}`);
    }
    await checkPage(page, record, 'work-07-task');
  });

  test('changes the workflow, and the board allows only its moves', async () => {
    await page.goto(`${suite.live.acme.origin}/projects/${projectId}/workflow`);
    await page.getByRole('heading', { name: /workflow/, level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Add a status' }).click();
    await page.getByLabel('Name of status 4').fill('Review');
    await page.getByRole('button', { name: 'Move Review up' }).click();
    await page.getByLabel('From In progress to Review').selectOption('everyone');
    await page.getByLabel('From Review to Done').selectOption('admins');
    await page.getByLabel('From Done to To do').selectOption('');
    await checkPage(page, record, 'work-08-workflow-editor');
    await page.getByRole('button', { name: 'Save the workflow' }).click();
    await page.getByRole('status').filter({ hasText: 'The workflow is saved' }).waitFor();
    const workflow = await api(suite.live, suite.live.acme, 'GET', `/api/projects/${projectId}/workflow`);
    const saved = workflow.body as { statuses: { id: string; name: string }[]; transitions: { fromStatusId: string; toStatusId: string; roles: string[] | null }[] };
    assert.deepEqual(saved.statuses.map((s) => s.name), ['To do', 'In progress', 'Review', 'Done']);
    const idOf = (name: string) => saved.statuses.find((s) => s.name === name)?.id;
    const rule = (from: string, to: string) => saved.transitions.find((t) => t.fromStatusId === idOf(from) && t.toStatusId === idOf(to));
    assert.deepEqual(rule('Review', 'Done')?.roles, ['admin', 'owner']);
    assert.equal(rule('Done', 'To do'), undefined);

    await page.getByRole('link', { name: 'Board' }).click();
    await column(page, 'Review').waitFor();
    const headings = await page.locator('.column-heading').allInnerTexts();
    assert.deepEqual(headings.map((h) => h.replace(/\s+\d+\s*tasks?$/, '').trim()), ['To do', 'In progress', 'Review', 'Done']);
    // From Done only In progress is allowed now: the menu offers nothing else.
    await card(page, 'SHOP-1').getByText('Move').click();
    assert.deepEqual(await card(page, 'SHOP-1').locator('.card-move-menu button').allInnerTexts(), ['To In progress']);
    await card(page, 'SHOP-1').getByText('Move').click();
    // Dropped on a column it may not enter, the card stays where it is.
    const handle = card(page, 'SHOP-1').getByRole('button', { name: 'Move SHOP-1' });
    const from = await handle.boundingBox();
    const to = await column(page, 'To do').boundingBox();
    assert.ok(from && to);
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(from.x - 10, from.y + 10, { steps: 4 });
    await page.mouse.move(to.x + to.width / 2, to.y + 90, { steps: 12 });
    assert.match((await column(page, 'To do').getAttribute('class')) ?? '', /column-forbidden/);
    await page.screenshot({ path: 'test-output/browser/work-09-forbidden-drop.png' });
    const versionBefore = await taskVersion();
    await page.mouse.up();
    await column(page, 'Done').locator(card(page, 'SHOP-1')).waitFor();
    // Give a wrong move the time to reach the server: none may.
    await page.waitForTimeout(300);
    assert.equal(await taskVersion(), versionBefore);
    assert.equal(await taskStatus(), 'Done');
    // The keyboard skips the columns it may not enter: left goes to In progress, over Review.
    await handle.focus();
    await page.keyboard.press('Space');
    await pickedUp(page, 'SHOP-1');
    await page.keyboard.press('ArrowLeft');
    await page.getByText(/is over In progress\./).waitFor({ state: 'attached' });
    await page.keyboard.press('Enter');
    await column(page, 'In progress').locator(card(page, 'SHOP-1')).waitFor();
    assert.equal(await eventually(taskStatus, 'In progress'), 'In progress');
    await checkPage(page, record, 'work-10-new-workflow');
  });

  test('lists and filters tasks', async () => {
    await api(suite.live, suite.live.acme, 'POST', `/api/projects/${projectId}/tasks`, { title: 'Write the imprint', priority: 'low', labels: ['legal'] });
    await page.getByRole('link', { name: 'List' }).click();
    await page.getByRole('table', { name: 'Tasks' }).waitFor();
    assert.equal(await page.getByRole('table', { name: 'Tasks' }).locator('tbody tr').count(), 2);
    await page.getByLabel('Priority').selectOption('low');
    await page.getByRole('button', { name: 'Show tasks' }).click();
    await page.waitForURL(/priority=low/);
    await page.getByRole('table', { name: 'Tasks' }).locator('tbody tr').first().waitFor();
    assert.deepEqual(await page.getByRole('table', { name: 'Tasks' }).locator('tbody tr td:first-child a').allInnerTexts(), ['SHOP-2 Write the imprint']);
    // Full-text search reaches the description too.
    await page.getByLabel('Words').fill('colours');
    await page.getByLabel('Priority').selectOption('');
    await page.getByRole('button', { name: 'Show tasks' }).click();
    await page.waitForURL(/q=colours/);
    await page.getByRole('table', { name: 'Tasks' }).getByRole('link', { name: 'SHOP-1 Their title' }).waitFor();
    assert.equal(await page.getByRole('table', { name: 'Tasks' }).locator('tbody tr').count(), 1);
    await checkPage(page, record, 'work-11-list');
  });

  test('the board is usable at phone width', async () => {
    const phone = await suite.chromium.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await signIn(phone.page, suite.live.acme, suite.live.acme.owner, `/projects/${projectId}`);
      await column(phone.page, 'Done').waitFor();
      // Nothing wider than the screen; the columns stand one above the other.
      assert.ok((await phone.page.evaluate<number>('document.documentElement.scrollWidth')) <= 390);
      const boxes = await Promise.all(['To do', 'In progress', 'Review', 'Done'].map((s) => column(phone.page, s).boundingBox()));
      for (let i = 1; i < boxes.length; i++) assert.ok((boxes[i]?.y ?? 0) > (boxes[i - 1]?.y ?? 0), 'columns stacked');
      await card(phone.page, 'SHOP-1').getByText('Move').click();
      await card(phone.page, 'SHOP-1').getByRole('button', { name: 'To Review' }).click();
      await column(phone.page, 'Review').locator(card(phone.page, 'SHOP-1')).waitFor();
      assert.equal(await eventually(taskStatus, 'Review'), 'Review');
      await checkPage(phone.page, phone.record, 'work-12-phone-board');
    } finally {
      await phone.context.close();
    }
  });

  test('signs out; the pages then ask to sign in', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByText('You have signed out.').waitFor();
    await page.goto(`${suite.live.acme.origin}/projects/${projectId}`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.match(page.url(), /\/sign-in\?next=%2Fprojects%2F/);
    await checkPage(page, record, 'work-13-signed-out');
  });
});
