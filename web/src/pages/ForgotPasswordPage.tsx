/** Asks for a reset link; the answer is the same whether or not the address has an account. */
import { useState, type SubmitEvent } from 'react';
import { requestPasswordReset } from '../api/auth.ts';
import { ErrorAlert, Notice } from '../components/Alerts.tsx';
import { TextField } from '../components/Fields.tsx';
import { PageHeading } from '../components/PageHeading.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { Link } from '../router.tsx';

export function ForgotPasswordPage() {
  const [email, setEmail] = useState('');
  const [sent, setSent] = useState<string | null>(null);
  const action = useAction(async () => {
    setSent(await requestPasswordReset(email.trim()));
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <>
      <PageHeading title="Forgotten password" />
      {sent ? (
        <Notice>
          <p>{sent}</p>
          <p>The link in the mail works once, for 30 minutes.</p>
        </Notice>
      ) : (
        <>
          <p>Enter the address you sign in with, and we will mail you a link to choose a new password.</p>
          <ErrorAlert error={action.error} />
          <form onSubmit={submit} className="form">
            <TextField label="E-mail address" type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
            <div className="form-actions">
              <button type="submit" className="button button-primary" disabled={action.pending}>
                Send the link
              </button>
            </div>
          </form>
        </>
      )}
      <p>
        <Link to="/sign-in">Back to sign in</Link>
      </p>
    </>
  );
}
