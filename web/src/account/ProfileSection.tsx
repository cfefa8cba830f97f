/** The name others see. */
import { useState, type SubmitEvent } from 'react';
import { changeDisplayName } from '../api/account.ts';
import type { CurrentUser } from '../api/types.ts';
import { ErrorAlert, Notice } from '../components/Alerts.tsx';
import { TextField } from '../components/Fields.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { useSession } from '../session.tsx';

export function ProfileSection({ user }: { user: CurrentUser }) {
  const session = useSession();
  const [name, setName] = useState(user.displayName);
  const [done, setDone] = useState(false);
  const action = useAction(async () => {
    setDone(false);
    await changeDisplayName(name.trim());
    await session.refresh();
    setDone(true);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <section aria-labelledby="profile" className="section">
      <h2 id="profile">Profile</h2>
      <p>
        You sign in as <strong>{user.email}</strong>, with the role <strong>{user.role}</strong>.
      </p>
      {done ? <Notice>Your name is saved.</Notice> : null}
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        <TextField label="Your name" name="displayName" autoComplete="name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        <div className="form-actions">
          <button type="submit" className="button" disabled={action.pending}>
            Save the name
          </button>
        </div>
      </form>
    </section>
  );
}
