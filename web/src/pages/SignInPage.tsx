/** Sign in: e-mail and password, then, for users with a second factor, a code from the app or a recovery code. */
import { useState, type SubmitEvent } from 'react';
import { completeSecondFactor, signIn } from '../api/auth.ts';
import { ErrorAlert, Notice } from '../components/Alerts.tsx';
import { TextField } from '../components/Fields.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { Link, navigate } from '../router.tsx';
import { useSession } from '../session.tsx';

export function SignInPage({ next }: { next: string | null }) {
  const session = useSession();
  const pendingSecondFactor = session.state?.stage === 'mfa';
  const done = async () => {
    const state = await session.refresh();
    session.setNotice(null);
    navigate(state.mustEnrolSecondFactor ? '/account' : (next ?? '/projects'), { replace: true });
  };
  return pendingSecondFactor ? <SecondFactorStep onDone={done} /> : <PasswordStep onDone={done} notice={session.notice} />;
}

function PasswordStep({ onDone, notice }: { onDone: () => Promise<void>; notice: string | null }) {
  const session = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const action = useAction(async () => {
    const state = await signIn(email.trim(), password);
    if (state.stage === 'mfa') await session.refresh();
    else await onDone();
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <>
      <PageHeading title="Sign in" />
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        <TextField label="E-mail address" type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <TextField label="Password" type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={action.pending}>
            {action.pending ? 'Signing in…' : 'Sign in'}
          </button>
          <Link to="/forgot-password">Forgot your password?</Link>
        </div>
      </form>
    </>
  );
}

function SecondFactorStep({ onDone }: { onDone: () => Promise<void> }) {
  const session = useSession();
  const [useRecovery, setUseRecovery] = useState(false);
  const [code, setCode] = useState('');
  const action = useAction(async () => {
    const value = code.trim();
    await completeSecondFactor(useRecovery ? { recoveryCode: value } : { code: value.replace(/\s+/g, '') });
    await onDone();
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  const startOver = async () => {
    await session.signOut().catch(() => undefined);
  };
  return (
    <>
      <PageHeading title="Second factor" />
      <p>{useRecovery ? 'Enter one of your recovery codes. Each works once.' : 'Enter the 6-digit code your authenticator app shows for TaskFlow.'}</p>
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        {useRecovery ? (
          <TextField label="Recovery code" name="recoveryCode" autoComplete="off" required value={code} onChange={(e) => setCode(e.target.value)} />
        ) : (
          <TextField label="Code" name="code" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9 ]{6,8}" required value={code} onChange={(e) => setCode(e.target.value)} />
        )}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={action.pending}>
            {action.pending ? 'Checking…' : 'Continue'}
          </button>
          <button
            type="button"
            className="button button-link"
            onClick={() => {
              setUseRecovery(!useRecovery);
              setCode('');
              action.clearError();
            }}
          >
            {useRecovery ? 'Use a code from the app' : 'Use a recovery code'}
          </button>
          <button type="button" className="button button-link" onClick={() => void startOver()}>
            Start again
          </button>
        </div>
      </form>
    </>
  );
}
