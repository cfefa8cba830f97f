/**
 * The board's cards in Chromium: their order in a column, changed by dragging (a line shows where
 * the card will land), by keyboard and with the card's menu, kept by the server and after a reload;
 * a card dropped into another column at a chosen place; and the assignee and labels edited right on
 * a card, with someone else's change met instead of overwritten, by keyboard and at phone width.
 * Screenshots: test-output/browser/.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { BROWSER_SUITE, browserSession, card, checkPage, column, dragTo, eventually, keysIn, pickUp, signIn } from './support.ts';

interface ApiTask {
  id: string;
  key: string;
  title: string;
  version: number;
  status: { id: string; name: string };
  assignee: { displayName: string } | null;
  labels: string[];
}

/**
 * Drags a card by its handle so that its middle ends up at (x, y), where the board reads its place
 * from, and waits for the line that shows where it will land before letting go.
 */
async function dropMiddleAt(page: Page, key: string, x: number, y: number, expectLine: string): Promise<void> {
  const handle = await card(page, key).locator('.card-handle').boundingBox();
  const box = await card(page, key).boundingBox();
  assert.ok(handle && box);
  const dx = box.x + box.width / 2 - (handle.x + handle.width / 2);
  const dy = box.y + box.height / 2 - (handle.y + handle.height / 2);
  await dragTo(page, key, x - dx, y - dy);
  await page.locator(expectLine).waitFor();
}

describe('cards on the board, in Chromium', BROWSER_SUITE, () => {
  const ui = browserSession();
  let projectId = '';
  const statusIds: Record<string, string> = {};

  const board = async (): Promise<Record<string, string[]>> => {
    const res = await ui.api('GET', `/api/tasks?projectId=${projectId}&sort=rank`);
    const columns: Record<string, string[]> = {};
    for (const t of (res.body as { items: ApiTask[] }).items) (columns[t.status.name] ??= []).push(t.key);
    return columns;
  };
  const taskByKey = async (key: string): Promise<ApiTask> => {
    const res = await ui.api('GET', `/api/tasks?projectId=${projectId}&limit=100`);
    const task = (res.body as { items: ApiTask[] }).items.find((t) => t.key === key);
    assert.ok(task, `no task ${key}`);
    return task;
  };

  before(async () => {
    const projects = await ui.api('GET', '/api/projects');
    projectId = (projects.body as { items: { id: string; key: string }[] }).items.find((p) => p.key === 'WEB')?.id ?? '';
    const workflow = await ui.api('GET', `/api/projects/${projectId}/workflow`);
    for (const s of (workflow.body as { statuses: { id: string; name: string }[] }).statuses) statusIds[s.name] = s.id;
    for (const [title, status] of [
      ['Sketch the landing page', 'To do'],
      ['Write the copy', 'To do'],
      ['Pick the photos', 'To do'],
      ['Set up analytics', 'To do'],
      ['Build the header', 'In progress'],
    ] as const) {
      const res = await ui.api('POST', `/api/projects/${projectId}/tasks`, { title, statusId: statusIds[status] });
      assert.equal(res.status, 201);
    }
  });

  test('reorders a card within its column by dragging it; a line shows where it lands; the order is kept', async () => {
    await signIn(ui.page, ui.acme, ui.acme.owner, `/projects/${projectId}`);
    await column(ui.page, 'To do').locator(card(ui.page, 'WEB-4')).waitFor();
    assert.deepEqual(await keysIn(ui.page, 'To do'), ['WEB-1', 'WEB-2', 'WEB-3', 'WEB-4']);
    await checkPage(ui.page, ui.record, 'board-01-cards');
    const first = await card(ui.page, 'WEB-1').boundingBox();
    assert.ok(first);
    await dropMiddleAt(ui.page, 'WEB-4', first.x + first.width / 2, first.y + 4, '[data-task="WEB-1"].card-drop-before');
    await ui.page.screenshot({ path: 'test-output/browser/board-02-drop-line.png' });
    await ui.page.mouse.up();
    await ui.page.getByRole('status').filter({ hasText: 'WEB-4 moved to place 1 of 4 in To do.' }).waitFor({ state: 'attached' });
    assert.deepEqual(await keysIn(ui.page, 'To do'), ['WEB-4', 'WEB-1', 'WEB-2', 'WEB-3']);
    assert.deepEqual((await eventually(board, { 'To do': ['WEB-4', 'WEB-1', 'WEB-2', 'WEB-3'], 'In progress': ['WEB-5'] }))['To do'], ['WEB-4', 'WEB-1', 'WEB-2', 'WEB-3']);
    assert.equal((await taskByKey('WEB-4')).version, 1, 'a new place is not a change of the task');
    await ui.page.reload();
    await column(ui.page, 'To do').locator(card(ui.page, 'WEB-4')).waitFor();
    assert.deepEqual(await keysIn(ui.page, 'To do'), ['WEB-4', 'WEB-1', 'WEB-2', 'WEB-3']);
  });

  test('moves a card down its column with the keyboard, place by place', async () => {
    await pickUp(ui.page, 'WEB-1');
    await ui.page.keyboard.press('ArrowDown');
    await ui.page.getByText('WEB-1 Sketch the landing page is over To do, at place 3 of 4.').waitFor({ state: 'attached' });
    await ui.page.keyboard.press('ArrowDown');
    await ui.page.getByText('WEB-1 Sketch the landing page is over To do, at place 4 of 4.').waitFor({ state: 'attached' });
    await ui.page.keyboard.press('ArrowUp');
    await ui.page.getByText('WEB-1 Sketch the landing page is over To do, at place 3 of 4.').waitFor({ state: 'attached' });
    await ui.page.keyboard.press('Space');
    await ui.page.getByRole('status').filter({ hasText: 'WEB-1 moved to place 3 of 4 in To do.' }).waitFor({ state: 'attached' });
    assert.deepEqual(await keysIn(ui.page, 'To do'), ['WEB-4', 'WEB-2', 'WEB-1', 'WEB-3']);
    assert.deepEqual((await eventually(board, { 'To do': ['WEB-4', 'WEB-2', 'WEB-1', 'WEB-3'], 'In progress': ['WEB-5'] }))['To do'], ['WEB-4', 'WEB-2', 'WEB-1', 'WEB-3']);
    // The focus stays with the card.
    assert.equal(await ui.page.evaluate<string>('document.activeElement?.getAttribute("aria-label") ?? ""'), 'Move WEB-1');
  });

  test('drops a card into another column at the place chosen', async () => {
    const header = await card(ui.page, 'WEB-5').boundingBox();
    assert.ok(header);
    await dropMiddleAt(ui.page, 'WEB-2', header.x + header.width / 2, header.y + 4, '[data-task="WEB-5"].card-drop-before');
    await ui.page.mouse.up();
    await column(ui.page, 'In progress').locator(card(ui.page, 'WEB-2')).waitFor();
    assert.deepEqual(await keysIn(ui.page, 'In progress'), ['WEB-2', 'WEB-5']);
    assert.deepEqual(await eventually(board, { 'To do': ['WEB-4', 'WEB-1', 'WEB-3'], 'In progress': ['WEB-2', 'WEB-5'] }), { 'To do': ['WEB-4', 'WEB-1', 'WEB-3'], 'In progress': ['WEB-2', 'WEB-5'] });
    // And the card's menu moves it a place at a time.
    await card(ui.page, 'WEB-2').getByText('Move').click();
    await card(ui.page, 'WEB-2').getByRole('button', { name: 'Down one place WEB-2' }).click();
    await ui.page.getByRole('status').filter({ hasText: 'WEB-2 moved to place 2 of 2 in In progress.' }).waitFor({ state: 'attached' });
    assert.deepEqual((await eventually(board, { 'To do': ['WEB-4', 'WEB-1', 'WEB-3'], 'In progress': ['WEB-5', 'WEB-2'] }))['In progress'], ['WEB-5', 'WEB-2']);
    await checkPage(ui.page, ui.record, 'board-03-moved');
  });

  test('edits the assignee and labels right on a card', async () => {
    const editor = card(ui.page, 'WEB-3');
    await editor.getByText('Edit').click();
    await editor.getByLabel('Assignee of WEB-3').selectOption({ label: 'member' });
    await editor.getByLabel('Labels of WEB-3').fill('photos, website');
    await checkPage(ui.page, ui.record, 'board-04-card-editor');
    await editor.getByRole('button', { name: 'Save WEB-3' }).click();
    await ui.page.getByRole('status').filter({ hasText: 'WEB-3 saved.' }).waitFor({ state: 'attached' });
    await editor.locator('.card-assignee', { hasText: 'member' }).waitFor();
    assert.deepEqual(await editor.locator('.card-labels .label').allInnerTexts(), ['photos', 'website']);
    await editor.getByLabel('Labels of WEB-3').waitFor({ state: 'detached' });
    const saved = await taskByKey('WEB-3');
    assert.deepEqual([saved.assignee?.displayName, saved.labels, saved.version], ['member', ['photos', 'website'], 2]);
  });

  test("meets someone else's change with a readable message instead of overwriting it", async () => {
    const editor = card(ui.page, 'WEB-3');
    // The editor works from the keyboard: Enter opens it, Escape closes it and gives the focus back.
    await editor.getByText('Edit').focus();
    await ui.page.keyboard.press('Enter');
    await editor.getByLabel('Labels of WEB-3').focus();
    await ui.page.keyboard.press('Escape');
    await editor.getByLabel('Labels of WEB-3').waitFor({ state: 'detached' });
    assert.equal(await ui.page.evaluate<string>('document.activeElement?.textContent ?? ""'), 'Edit the assignee and labels of WEB-3');
    await ui.page.keyboard.press('Enter');
    await editor.getByLabel('Labels of WEB-3').fill('photos, website, urgent');
    const theirs = await ui.api('PATCH', `/api/tasks/${(await taskByKey('WEB-3')).id}`, { title: 'Pick the photos and licences', assigneeId: null });
    assert.equal(theirs.status, 200);
    await editor.getByRole('button', { name: 'Save WEB-3' }).click();
    const alert = editor.getByRole('alert');
    await alert.waitFor();
    assert.equal(
      await alert.innerText(),
      'Not saved: someone else changed WEB-3 since the board was loaded. The card now shows their version; your choice is still here, and saving again applies it on top.',
    );
    await editor.getByRole('link', { name: /Pick the photos and licences/ }).waitFor();
    assert.equal(await editor.locator('.card-assignee').count(), 0, 'their change shows: nobody assigned');
    assert.equal(await editor.getByLabel('Labels of WEB-3').inputValue(), 'photos, website, urgent');
    await checkPage(ui.page, ui.record, 'board-05-card-conflict');
    assert.deepEqual((await taskByKey('WEB-3')).labels, ['photos', 'website'], 'nothing of the refused change was saved');
    await editor.getByRole('button', { name: 'Save WEB-3' }).click();
    await editor.getByLabel('Labels of WEB-3').waitFor({ state: 'detached' });
    assert.deepEqual(await editor.locator('.card-labels .label').allInnerTexts(), ['photos', 'website', 'urgent']);
    const saved = await taskByKey('WEB-3');
    assert.deepEqual([saved.title, saved.assignee, saved.labels], ['Pick the photos and licences', null, ['photos', 'website', 'urgent']]);
  });

  test('at phone width the editor and the menu fit the screen', async () => {
    await ui.withPage(
      async (phone) => {
        await signIn(phone.page, ui.acme, ui.acme.member, `/projects/${projectId}`);
        const editor = card(phone.page, 'WEB-1');
        await editor.waitFor();
        await editor.getByText('Edit').click();
        await editor.getByLabel('Assignee of WEB-1').selectOption({ label: 'Owner' });
        assert.ok((await phone.page.evaluate<number>('document.documentElement.scrollWidth')) <= 390, 'nothing wider than the screen');
        await checkPage(phone.page, phone.record, 'board-06-phone-card-editor');
        await editor.getByRole('button', { name: 'Save WEB-1' }).click();
        await editor.locator('.card-assignee', { hasText: 'Owner' }).waitFor();
        await editor.getByText('Move').click();
        await editor.getByRole('button', { name: 'Up one place WEB-1' }).click();
        assert.deepEqual((await eventually(board, { 'To do': ['WEB-1', 'WEB-4', 'WEB-3'], 'In progress': ['WEB-5', 'WEB-2'] }))['To do'], ['WEB-1', 'WEB-4', 'WEB-3']);
        assert.deepEqual(await keysIn(phone.page, 'To do'), ['WEB-1', 'WEB-4', 'WEB-3']);
        await checkPage(phone.page, phone.record, 'board-07-phone-board');
      },
      { viewport: { width: 390, height: 844 } },
    );
  });
});
