/** Accepts an invitation (or the first owner's setup link): a display name and a password, then signed in. */
import { useState, type SubmitEvent } from 'react';
import { acceptInvitation } from '../api/auth.ts';
import { ErrorAlert } from '../components/Alerts.tsx';
import { TextField } from '../components/Fields.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { Link, navigate } from '../router.tsx';
import { useSession } from '../session.tsx';
import { takeLinkToken } from './linkToken.ts';
import { PASSWORD_HINT, passwordMismatch } from './passwordRules.ts';

export function InvitationPage() {
  const session = useSession();
  const [linkToken] = useState(takeLinkToken);
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const mismatch = passwordMismatch(password, repeat);
  const action = useAction(async () => {
    if (linkToken === null) return;
    await acceptInvitation(linkToken, displayName.trim(), password);
    const state = await session.refresh();
    navigate(state.mustEnrolSecondFactor ? '/account' : '/projects', { replace: true });
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!mismatch) void action.run();
  };
  return (
    <>
      <PageHeading title="Join TaskFlow" />
      {linkToken === null ? (
        <div className="alert alert-error" role="alert">
          <p>This page needs the link from your invitation mail. Open the link again, or ask whoever invited you for a new invitation.</p>
        </div>
      ) : (
        <>
          <p>Choose the name others will see and your password.</p>
          <ErrorAlert error={action.error} />
          <form onSubmit={submit} className="form">
            <TextField label="Your name" name="displayName" autoComplete="name" required maxLength={200} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
            <TextField label="Password" type="password" name="password" autoComplete="new-password" required minLength={12} hint={PASSWORD_HINT} value={password} onChange={(e) => setPassword(e.target.value)} />
            <TextField label="Password again" type="password" name="repeat" autoComplete="new-password" required value={repeat} error={mismatch} onChange={(e) => setRepeat(e.target.value)} />
            <div className="form-actions">
              <button type="submit" className="button button-primary" disabled={action.pending}>
                {action.pending ? 'Joining…' : 'Join'}
              </button>
            </div>
          </form>
        </>
      )}
      <p>
        Already have an account? <Link to="/sign-in">Sign in</Link>
      </p>
    </>
  );
}
