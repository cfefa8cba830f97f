/**
 * The web app in Chromium, for people and their accounts: readable refusals (a wrong password, a
 * common password), a second factor set up from the otpauth URI shown as text and used at the next
 * sign-in, an invitation sent from the user admin and accepted through its mail link, roles, a
 * forgotten password reset through its mail link, what a member is not offered, and tenant
 * isolation: another tenant's user cannot see this tenant's board, and an unknown host is 404.
 * Screenshots: test-output/browser/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { URI } from 'otpauth';
import type { BrowserContext, Page } from 'playwright-core';
import { lastMailTo } from '../helpers/browser.ts';
import { chromiumMissing, type PageRecord } from '../helpers/chromium.ts';
import { GOOD_PASSWORD } from '../helpers/accounts.ts';
import { checkPage, signIn, startBrowserSuite, type BrowserSuite } from './support.ts';

const skip = chromiumMissing();

/** The link in the newest mail to `to` (`https://…#token=…`). */
async function mailedLink(suite: BrowserSuite, to: string): Promise<string> {
  const mail = await lastMailTo(suite.live.tp.platform.control, to);
  const link = /https:\/\/\S+#token=[A-Za-z0-9_-]+/.exec(mail?.text ?? '')?.[0];
  assert.ok(link, `no link in the mail to ${to}: ${mail?.text ?? '(no mail)'}`);
  return link;
}

describe('accounts and tenants, in Chromium', { skip: skip ?? false, timeout: 120_000 }, () => {
  let suite: BrowserSuite;
  let context: BrowserContext;
  let page: Page;
  let record: PageRecord;
  let recoveryCodes: string[] = [];
  const invitee = 'carol@acme.example';
  const inviteePassword = 'a quiet orchard in november 7';

  before(async () => {
    suite = await startBrowserSuite();
    ({ context, page, record } = await suite.chromium.newPage());
  });
  after(async () => {
    await context.close().catch(() => undefined);
    await suite.close();
  });

  test('a wrong password is refused with a readable message', async () => {
    await signIn(page, suite.live.acme, { email: suite.live.acme.owner.email, password: 'not the password at all' });
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.equal(await alert.innerText(), 'The e-mail address or password is incorrect.');
    await checkPage(page, record, 'accounts-01-wrong-password');
  });

  test('the owner sets up a second factor from the URI shown as text', async () => {
    await page.getByLabel('Password').fill(suite.live.acme.owner.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Account' }).click();
    const section = page.getByRole('region', { name: 'Second factor' });
    await section.getByLabel('Your current password').fill(suite.live.acme.owner.password);
    await section.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const uri = await section.getByTestId('otpauth-uri').innerText();
    assert.match(uri, /^otpauth:\/\/totp\/.+secret=[A-Z2-7]+/);
    await checkPage(page, record, 'accounts-02-second-factor-setup');
    await section.getByLabel('Code from the app').fill(URI.parse(uri).generate());
    await section.getByRole('button', { name: 'Turn on the second factor' }).click();
    const codes = section.getByRole('list', { name: 'Recovery codes' });
    await codes.waitFor();
    recoveryCodes = await codes.locator('code').allInnerTexts();
    assert.equal(recoveryCodes.length, 10);
    await section.getByRole('button', { name: 'I have stored the codes' }).click();
    await section.getByText('On: signing in asks for a code').waitFor();
    const sessions = page.getByRole('region', { name: 'Where you are signed in' });
    await sessions.getByText('this browser').waitFor();
    await checkPage(page, record, 'accounts-03-account');
  });

  test('the next sign-in asks for the second factor', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('E-mail address').fill(suite.live.acme.owner.email);
    await page.getByLabel('Password').fill(suite.live.acme.owner.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Second factor' }).waitFor();
    await page.getByLabel('Code').fill('000000');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /code/i);
    await checkPage(page, record, 'accounts-04-second-factor');
    // The code from the app was used a moment ago, and a code works once: a recovery code then.
    await page.getByRole('button', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').fill(recoveryCodes[0] ?? '');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
  });

  test('the owner invites someone, who joins through the mailed link', async () => {
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    const invitations = page.getByRole('region', { name: 'Invitations' });
    await invitations.getByLabel('E-mail address').fill(invitee);
    await invitations.getByLabel('Role').selectOption('member');
    await invitations.getByRole('button', { name: 'Invite' }).click();
    await invitations.getByText(`An invitation is on its way to ${invitee}`).waitFor();
    await invitations.getByRole('cell', { name: invitee, exact: true }).waitFor();
    await checkPage(page, record, 'accounts-05-users');

    const link = await mailedLink(suite, invitee);
    assert.ok(link.startsWith(`${suite.live.acme.origin}/invitation#token=`), link);
    const guest = await suite.chromium.newPage();
    try {
      await guest.page.goto(link);
      await guest.page.getByRole('heading', { name: 'Join TaskFlow' }).waitFor();
      // The token leaves the address bar once read.
      assert.equal(new URL(guest.page.url()).hash, '');
      await guest.page.getByLabel('Your name').fill('Carol');
      await guest.page.getByLabel('Password', { exact: true }).fill('password1234');
      await guest.page.getByLabel('Password again').fill('password1234');
      await guest.page.getByRole('button', { name: 'Join' }).click();
      await guest.page.getByRole('alert').waitFor();
      assert.match(await guest.page.getByRole('alert').innerText(), /too common/);
      await checkPage(guest.page, guest.record, 'accounts-06-invitation-refused');
      await guest.page.getByLabel('Password', { exact: true }).fill(inviteePassword);
      await guest.page.getByLabel('Password again').fill(inviteePassword);
      await guest.page.getByRole('button', { name: 'Join' }).click();
      await guest.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
      // A member is offered neither user admin nor new projects.
      assert.equal(await guest.page.getByRole('link', { name: 'Users' }).count(), 0);
      assert.equal(await guest.page.getByRole('button', { name: 'Create the project' }).count(), 0);
      await checkPage(guest.page, guest.record, 'accounts-07-member-projects');
    } finally {
      await guest.context.close();
    }
  });

  test("the owner changes the new member's role", async () => {
    await page.reload();
    const people = page.getByRole('region', { name: 'People' });
    await people.getByLabel('Role of Carol').selectOption('viewer');
    await people.getByRole('button', { name: /Change the role of Carol/ }).click();
    await people.getByText('Carol is now a viewer').waitFor();
    await page.reload();
    assert.equal(await people.getByLabel('Role of Carol').inputValue(), 'viewer');
  });

  test('a forgotten password is reset through the mailed link', async () => {
    const guest = await suite.chromium.newPage();
    try {
      await guest.page.goto(`${suite.live.acme.origin}/sign-in`);
      await guest.page.getByRole('link', { name: 'Forgot your password?' }).click();
      await guest.page.getByLabel('E-mail address').fill(invitee);
      await guest.page.getByRole('button', { name: 'Send the link' }).click();
      await guest.page.getByText('If an account uses that address').waitFor();
      // The mail goes out after the answer.
      let link = '';
      for (let i = 0; i < 50 && !link.includes('/reset-password#'); i++) {
        link = await mailedLink(suite, invitee).catch(() => '');
        if (!link.includes('/reset-password#')) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(link.startsWith(`${suite.live.acme.origin}/reset-password#token=`), link);
      await guest.page.goto(link);
      await guest.page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
      await guest.page.getByLabel('New password', { exact: true }).fill(GOOD_PASSWORD);
      await guest.page.getByLabel('New password again').fill(GOOD_PASSWORD);
      await guest.page.getByRole('button', { name: 'Set the password' }).click();
      await guest.page.getByRole('heading', { name: 'Password changed' }).waitFor();
      await checkPage(guest.page, guest.record, 'accounts-08-password-reset');
      await guest.page.getByRole('link', { name: 'Sign in with your new password' }).click();
      await guest.page.getByLabel('E-mail address').fill(invitee);
      await guest.page.getByLabel('Password').fill(GOOD_PASSWORD);
      await guest.page.getByRole('button', { name: 'Sign in' }).click();
      await guest.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    } finally {
      await guest.context.close();
    }
  });

  test("another tenant's user cannot see this tenant's board", async () => {
    // A project of acme's, made by its owner.
    await page.goto(`${suite.live.acme.origin}/projects`);
    await page.getByLabel('Key').fill('SECRET');
    await page.getByLabel('Name', { exact: true }).fill('Acme secrets');
    await page.getByRole('button', { name: 'Create the project' }).click();
    await page.waitForURL(/\/projects\/[0-9a-f-]{36}$/);
    const acmeProject = { id: page.url().slice(-36), name: 'Acme secrets' };

    const other = await suite.chromium.newPage();
    try {
      await signIn(other.page, suite.live.globex, suite.live.globex.owner);
      await other.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
      // Globex's own address, acme's project id: there is no such project here.
      await other.page.goto(`${suite.live.globex.origin}/projects/${acmeProject.id}`);
      await other.page.getByRole('alert').waitFor();
      assert.equal(await other.page.getByRole('alert').locator('p').first().innerText(), 'No such project.');
      await checkPage(other.page, other.record, 'accounts-09-other-tenant');
      // Acme's address: globex's session is not sent there, and its password is not acme's.
      await other.page.goto(`${suite.live.acme.origin}/projects/${acmeProject.id}`);
      await other.page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await other.page.getByLabel('E-mail address').fill(suite.live.globex.owner.email);
      await other.page.getByLabel('Password').fill(suite.live.globex.owner.password);
      await other.page.getByRole('button', { name: 'Sign in' }).click();
      await other.page.getByRole('alert').waitFor();
      assert.equal(await other.page.getByRole('alert').innerText(), 'The e-mail address or password is incorrect.');
      assert.equal(await other.page.getByText(acmeProject.name).count(), 0);
    } finally {
      await other.context.close();
    }
  });

  test('a host that names no tenant is 404, with no app', async () => {
    const res = await page.goto(`https://nope.localhost:${suite.live.port}/`);
    assert.equal(res?.status(), 404);
    assert.match(await res.text(), /"code":"tenant-not-found"/);
  });
});
