/**
 * The web app in Chromium, for people and their accounts: readable refusals (a wrong password, a
 * common password), a second factor set up from the otpauth URI shown as text and used at the next
 * sign-in, an invitation sent from the user admin and accepted through its mail link, roles, a
 * forgotten password reset through its mail link, what a member is not offered, ending one's
 * other sessions ("sign out everywhere"), a deactivated user's session refused and their sign-in
 * too, and tenant isolation: another tenant's user cannot see this tenant's board, and an unknown
 * host is 404. Screenshots: test-output/browser/.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { URI } from 'otpauth';
import type { LiveServer } from '../security/live.ts';
import { lastMailTo } from '../helpers/browser.ts';
import { GOOD_PASSWORD } from '../helpers/accounts.ts';
import { BROWSER_SUITE, browserSession, checkPage, eventually, signIn } from './support.ts';

/** The link in the newest mail to `to` (`https://…#token=…`). */
async function mailedLink(live: LiveServer, to: string): Promise<string> {
  const mail = await lastMailTo(live.tp.platform.control, to);
  const link = /https:\/\/\S+#token=[A-Za-z0-9_-]+/.exec(mail?.text ?? '')?.[0];
  assert.ok(link, `no link in the mail to ${to}: ${mail?.text ?? '(no mail)'}`);
  return link;
}

describe('accounts and tenants, in Chromium', BROWSER_SUITE, () => {
  const ui = browserSession();
  let recoveryCodes: string[] = [];
  const invitee = 'carol@acme.example';
  const inviteePassword = 'a quiet orchard in november 7';

  test('a wrong password is refused with a readable message', async () => {
    await signIn(ui.page, ui.acme, { email: ui.acme.owner.email, password: 'not the password at all' });
    const alert = ui.page.getByRole('alert');
    await alert.waitFor();
    assert.equal(await alert.innerText(), 'The e-mail address or password is incorrect.');
    await checkPage(ui.page, ui.record, 'accounts-01-wrong-password');
  });

  test('the owner sets up a second factor from the URI shown as text', async () => {
    await ui.page.getByLabel('Password').fill(ui.acme.owner.password);
    await ui.page.getByRole('button', { name: 'Sign in' }).click();
    await ui.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
    await ui.page.getByRole('link', { name: 'Account' }).click();
    const section = ui.page.getByRole('region', { name: 'Second factor' });
    await section.getByLabel('Your current password').fill(ui.acme.owner.password);
    await section.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const uri = await section.getByTestId('otpauth-uri').innerText();
    assert.match(uri, /^otpauth:\/\/totp\/.+secret=[A-Z2-7]+/);
    await checkPage(ui.page, ui.record, 'accounts-02-second-factor-setup');
    await section.getByLabel('Code from the app').fill(URI.parse(uri).generate());
    await section.getByRole('button', { name: 'Turn on the second factor' }).click();
    const codes = section.getByRole('list', { name: 'Recovery codes' });
    await codes.waitFor();
    recoveryCodes = await codes.locator('code').allInnerTexts();
    assert.equal(recoveryCodes.length, 10);
    await section.getByRole('button', { name: 'I have stored the codes' }).click();
    await section.getByText('On: signing in asks for a code').waitFor();
    const sessions = ui.page.getByRole('region', { name: 'Where you are signed in' });
    await sessions.getByText('this browser').waitFor();
    await checkPage(ui.page, ui.record, 'accounts-03-account');
  });

  test('the next sign-in asks for the second factor', async () => {
    await ui.page.getByRole('button', { name: 'Sign out' }).click();
    await ui.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await ui.page.getByLabel('E-mail address').fill(ui.acme.owner.email);
    await ui.page.getByLabel('Password').fill(ui.acme.owner.password);
    await ui.page.getByRole('button', { name: 'Sign in' }).click();
    await ui.page.getByRole('heading', { name: 'Second factor' }).waitFor();
    await ui.page.getByLabel('Code').fill('000000');
    await ui.page.getByRole('button', { name: 'Continue' }).click();
    await ui.page.getByRole('alert').waitFor();
    assert.match(await ui.page.getByRole('alert').innerText(), /code/i);
    await checkPage(ui.page, ui.record, 'accounts-04-second-factor');
    // The code from the app was used a moment ago, and a code works once: a recovery code then.
    await ui.page.getByRole('button', { name: 'Use a recovery code' }).click();
    await ui.page.getByLabel('Recovery code').fill(recoveryCodes[0] ?? '');
    await ui.page.getByRole('button', { name: 'Continue' }).click();
    await ui.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
  });

  test('the owner invites someone, who joins through the mailed link', async () => {
    await ui.page.getByRole('link', { name: 'Users' }).click();
    await ui.page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    const invitations = ui.page.getByRole('region', { name: 'Invitations' });
    await invitations.getByLabel('E-mail address').fill(invitee);
    await invitations.getByLabel('Role').selectOption('member');
    await invitations.getByRole('button', { name: 'Invite' }).click();
    await invitations.getByText(`An invitation is on its way to ${invitee}`).waitFor();
    await invitations.getByRole('cell', { name: invitee, exact: true }).waitFor();
    await checkPage(ui.page, ui.record, 'accounts-05-users');

    const link = await mailedLink(ui.live, invitee);
    assert.ok(link.startsWith(`${ui.acme.origin}/invitation#token=`), link);
    await ui.withPage(async (guest) => {
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
    });
  });

  test("the owner changes the new member's role", async () => {
    await ui.page.reload();
    const people = ui.page.getByRole('region', { name: 'People' });
    await people.getByLabel('Role of Carol').selectOption('viewer');
    await people.getByRole('button', { name: /Change the role of Carol/ }).click();
    await people.getByText('Carol is now a viewer').waitFor();
    await ui.page.reload();
    assert.equal(await people.getByLabel('Role of Carol').inputValue(), 'viewer');
  });

  test('a forgotten password is reset through the mailed link', async () => {
    await ui.withPage(async (guest) => {
      await guest.page.goto(`${ui.acme.origin}/sign-in`);
      await guest.page.getByRole('link', { name: 'Forgot your password?' }).click();
      await guest.page.getByLabel('E-mail address').fill(invitee);
      await guest.page.getByRole('button', { name: 'Send the link' }).click();
      await guest.page.getByText('If an account uses that address').waitFor();
      // The mail goes out after the answer.
      let link = '';
      for (let i = 0; i < 50 && !link.includes('/reset-password#'); i++) {
        link = await mailedLink(ui.live, invitee).catch(() => '');
        if (!link.includes('/reset-password#')) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(link.startsWith(`${ui.acme.origin}/reset-password#token=`), link);
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
    });
  });

  test('ending all other sessions signs the user out of their other browsers', async () => {
    const member = ui.acme.member;
    await ui.withPage(async (laptop) => {
      await signIn(laptop.page, ui.acme, member);
      await laptop.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
      await ui.withPage(async (phone) => {
        await signIn(phone.page, ui.acme, member, '/account');
        const sessions = phone.page.getByRole('region', { name: 'Where you are signed in' });
        await sessions.getByText('this browser').waitFor();
        // The laptop's, this one, and the one the invitation was accepted in.
        const others = (await sessions.locator('tbody tr').count()) - 1;
        assert.ok(others >= 1);
        await sessions.getByRole('button', { name: 'End all other sessions' }).click();
        await sessions.getByText(others === 1 ? 'One other session has ended.' : `${others} other sessions have ended.`).waitFor();
        // The list is read again after the notice.
        assert.equal(await eventually(() => sessions.locator('tbody tr').count(), 1), 1);
        await checkPage(phone.page, phone.record, 'accounts-09-other-sessions-ended');
      });
      // The laptop's page is still open: its next request is refused, and it asks to sign in.
      await laptop.page.getByRole('link', { name: 'Account' }).click();
      await laptop.page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await laptop.page.getByText('Your session has ended. Sign in again to continue.').waitFor();
      await checkPage(laptop.page, laptop.record, 'accounts-10-session-ended-elsewhere');
    });
  });

  test('a deactivated user is signed out at once, and cannot sign in again', async () => {
    const member = ui.acme.member;
    await ui.withPage(async (theirs) => {
      await signIn(theirs.page, ui.acme, member);
      await theirs.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();

      await ui.page.goto(`${ui.acme.origin}/users`);
      const people = ui.page.getByRole('region', { name: 'People' });
      await people.getByRole('button', { name: 'Deactivate member' }).click();
      await people.getByRole('button', { name: 'Yes, deactivate member' }).click();
      await people.getByText('member is deactivated and signed out.').waitFor();
      await people.getByRole('button', { name: 'Reactivate member' }).waitFor();
      await checkPage(ui.page, ui.record, 'accounts-11-user-deactivated');
      const users = await ui.api('GET', '/api/people');
      assert.ok(!(users.body as { items: { displayName: string }[] }).items.some((p) => p.displayName === 'member'), 'no longer among who can be assigned');

      await theirs.page.getByRole('link', { name: 'Account' }).click();
      await theirs.page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await theirs.page.getByText('Your session has ended. Sign in again to continue.').waitFor();
      await theirs.page.getByLabel('E-mail address').fill(member.email);
      await theirs.page.getByLabel('Password').fill(member.password);
      await theirs.page.getByRole('button', { name: 'Sign in' }).click();
      const alert = theirs.page.getByRole('alert');
      await alert.waitFor();
      assert.equal(await alert.innerText(), 'The e-mail address or password is incorrect.');
      await checkPage(theirs.page, theirs.record, 'accounts-12-deactivated-sign-in');
    });
  });

  test("another tenant's user cannot see this tenant's board", async () => {
    // A project of acme's, made by its owner.
    await ui.page.goto(`${ui.acme.origin}/projects`);
    await ui.page.getByLabel('Key').fill('SECRET');
    await ui.page.getByLabel('Name', { exact: true }).fill('Acme secrets');
    await ui.page.getByRole('button', { name: 'Create the project' }).click();
    await ui.page.waitForURL(/\/projects\/[0-9a-f-]{36}$/);
    const acmeProject = { id: ui.page.url().slice(-36), name: 'Acme secrets' };

    await ui.withPage(async (other) => {
      await signIn(other.page, ui.live.globex, ui.live.globex.owner);
      await other.page.getByRole('heading', { name: 'Projects', level: 1 }).waitFor();
      // Globex's own address, acme's project id: there is no such project here.
      await other.page.goto(`${ui.live.globex.origin}/projects/${acmeProject.id}`);
      await other.page.getByRole('alert').waitFor();
      assert.equal(await other.page.getByRole('alert').locator('p').first().innerText(), 'No such project.');
      await checkPage(other.page, other.record, 'accounts-13-other-tenant');
      // Acme's address: globex's session is not sent there, and its password is not acme's.
      await other.page.goto(`${ui.acme.origin}/projects/${acmeProject.id}`);
      await other.page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await other.page.getByLabel('E-mail address').fill(ui.live.globex.owner.email);
      await other.page.getByLabel('Password').fill(ui.live.globex.owner.password);
      await other.page.getByRole('button', { name: 'Sign in' }).click();
      await other.page.getByRole('alert').waitFor();
      assert.equal(await other.page.getByRole('alert').innerText(), 'The e-mail address or password is incorrect.');
      assert.equal(await other.page.getByText(acmeProject.name).count(), 0);
    });
  });

  test('a host that names no tenant is 404, with no app', async () => {
    const res = await ui.page.goto(`https://nope.localhost:${ui.live.port}/`);
    assert.equal(res?.status(), 404);
    assert.match(await res.text(), /"code":"tenant-not-found"/);
  });
});
