/** The organisation's sign-in settings: owners may require a second factor of everybody. */
import { useState, type SubmitEvent } from 'react';
import { getAccountSettings, putAccountSettings } from '../api/users.ts';
import type { AccountSettings, CurrentUser } from '../api/types.ts';
import { ErrorAlert, LoadFailed, Loading, Notice } from '../components/Alerts.tsx';
import { CheckboxField } from '../components/Fields.tsx';
import { useAction, useLoad } from '../hooks/useAsync.ts';
import { mayChangeSettings } from '../permissions.ts';

export function SettingsSection({ me }: { me: CurrentUser }) {
  const settings = useLoad(getAccountSettings, []);
  return (
    <section aria-labelledby="settings" className="section">
      <h2 id="settings">Sign-in settings</h2>
      {settings.status === 'loading' ? <Loading what="settings" /> : null}
      {settings.status === 'error' ? <LoadFailed error={settings.error} retry={settings.reload} /> : null}
      {settings.status === 'ready' ? (
        mayChangeSettings(me.role) ? (
          <SettingsForm settings={settings.data} onSaved={(next) => settings.set(() => next)} />
        ) : (
          <p>A second factor is {settings.data.requireSecondFactor ? 'required of everybody' : 'up to each user'}. Owners change this.</p>
        )
      ) : null}
    </section>
  );
}

function SettingsForm({ settings, onSaved }: { settings: AccountSettings; onSaved: (settings: AccountSettings) => void }) {
  const [required, setRequired] = useState(settings.requireSecondFactor);
  const [done, setDone] = useState(false);
  const action = useAction(async () => {
    setDone(false);
    onSaved(await putAccountSettings({ requireSecondFactor: required }));
    setDone(true);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <>
      {done ? <Notice>The settings are saved.</Notice> : null}
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        <CheckboxField
          label="Require a second factor of everybody"
          hint="Users without one are asked to set one up before they can do anything else. You need one yourself first."
          checked={required}
          onChange={(e) => setRequired(e.target.checked)}
        />
        <div className="form-actions">
          <button type="submit" className="button" disabled={action.pending}>
            Save the settings
          </button>
        </div>
      </form>
    </>
  );
}
