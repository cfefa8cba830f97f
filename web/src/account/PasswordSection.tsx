/** Changing one's own password: the current one again, then the new one. Other sessions end. */
import { useState, type SubmitEvent } from 'react';
import { changePassword } from '../api/account.ts';
import type { CurrentUser } from '../api/types.ts';
import { ErrorAlert, Notice } from '../components/Alerts.tsx';
import { TextField } from '../components/Fields.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { PASSWORD_HINT, passwordMismatch } from '../pages/passwordRules.ts';
import { EMPTY_REAUTH, ReauthFields, reauthenticateWith } from './ReauthFields.tsx';

export function PasswordSection({ user }: { user: CurrentUser }) {
  const [reauth, setReauth] = useState(EMPTY_REAUTH);
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [done, setDone] = useState(false);
  const mismatch = passwordMismatch(password, repeat);
  const action = useAction(async () => {
    setDone(false);
    await reauthenticateWith(user, reauth);
    await changePassword(password);
    setReauth(EMPTY_REAUTH);
    setPassword('');
    setRepeat('');
    setDone(true);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!mismatch) void action.run();
  };
  return (
    <section aria-labelledby="password" className="section">
      <h2 id="password">Password</h2>
      {done ? <Notice>Your password is changed. Your other sessions have ended.</Notice> : null}
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        <ReauthFields user={user} values={reauth} onChange={setReauth} />
        <TextField label="New password" type="password" name="newPassword" autoComplete="new-password" required minLength={12} hint={PASSWORD_HINT} value={password} onChange={(e) => setPassword(e.target.value)} />
        <TextField label="New password again" type="password" name="repeatPassword" autoComplete="new-password" required value={repeat} error={mismatch} onChange={(e) => setRepeat(e.target.value)} />
        <div className="form-actions">
          <button type="submit" className="button" disabled={action.pending}>
            Change the password
          </button>
        </div>
      </form>
    </section>
  );
}
