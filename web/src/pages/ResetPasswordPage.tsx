/** Sets a new password with the link from a reset mail. */
import { useState, type SubmitEvent } from 'react';
import { completePasswordReset } from '../api/auth.ts';
import { ErrorAlert, Notice } from '../components/Alerts.tsx';
import { TextField } from '../components/Fields.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { Link } from '../router.tsx';
import { PASSWORD_HINT, passwordMismatch } from './passwordRules.ts';
import { takeLinkToken } from './linkToken.ts';

export function ResetPasswordPage() {
  const [linkToken] = useState(takeLinkToken);
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [done, setDone] = useState(false);
  const mismatch = passwordMismatch(password, repeat);
  const action = useAction(async () => {
    if (linkToken === null) return;
    await completePasswordReset(linkToken, password);
    setDone(true);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!mismatch) void action.run();
  };
  if (done) {
    return (
      <>
        <PageHeading title="Password changed" />
        <Notice>Your password is changed and you have been signed out everywhere.</Notice>
        <p>
          <Link to="/sign-in">Sign in with your new password</Link>
        </p>
      </>
    );
  }
  return (
    <>
      <PageHeading title="Choose a new password" />
      {linkToken === null ? (
        <div className="alert alert-error" role="alert">
          <p>This page needs the link from your reset mail. Open the link again, or ask for a new one.</p>
          <p>
            <Link to="/forgot-password">Ask for a new link</Link>
          </p>
        </div>
      ) : (
        <>
          <ErrorAlert error={action.error}>
            <p>
              <Link to="/forgot-password">Ask for a new link</Link>
            </p>
          </ErrorAlert>
          <form onSubmit={submit} className="form">
            <TextField label="New password" type="password" name="password" autoComplete="new-password" required minLength={12} hint={PASSWORD_HINT} value={password} onChange={(e) => setPassword(e.target.value)} />
            <TextField label="New password again" type="password" name="repeat" autoComplete="new-password" required value={repeat} error={mismatch} onChange={(e) => setRepeat(e.target.value)} />
            <div className="form-actions">
              <button type="submit" className="button button-primary" disabled={action.pending}>
                Set the password
              </button>
            </div>
          </form>
        </>
      )}
    </>
  );
}
