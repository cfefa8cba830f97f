/**
 * The second factor: setting up an authenticator app (the otpauth:// URI and its key shown as text
 * to enter in the app, then a code from it), recovery codes, and removing it. Every step but the
 * confirmation asks for the password again.
 */
import { useState, type SubmitEvent } from 'react';
import { beginSecondFactor, confirmSecondFactor, newRecoveryCodes, removeSecondFactor } from '../api/account.ts';
import type { CurrentUser } from '../api/types.ts';
import { ErrorAlert, Notice } from '../components/Alerts.tsx';
import { TextField } from '../components/Fields.tsx';
import { useAction } from '../hooks/useAsync.ts';
import { useSession } from '../session.tsx';
import { EMPTY_REAUTH, ReauthFields, reauthenticateWith } from './ReauthFields.tsx';

type Step = { step: 'idle' } | { step: 'confirm'; uri: string; secret: string } | { step: 'codes'; codes: string[]; fresh: boolean };

export function SecondFactorSection({ user }: { user: CurrentUser }) {
  const session = useSession();
  const [step, setStep] = useState<Step>({ step: 'idle' });
  const [notice, setNotice] = useState<string | null>(null);
  return (
    <section aria-labelledby="second-factor" className="section">
      <h2 id="second-factor">Second factor</h2>
      {notice ? <Notice>{notice}</Notice> : null}
      {step.step === 'confirm' ? (
        <ConfirmApp uri={step.uri} secret={step.secret} onConfirmed={(codes) => setStep({ step: 'codes', codes, fresh: true })} onCancel={() => setStep({ step: 'idle' })} />
      ) : step.step === 'codes' ? (
        <RecoveryCodes
          codes={step.codes}
          fresh={step.fresh}
          onDone={() => {
            setStep({ step: 'idle' });
            void session.refresh();
          }}
        />
      ) : user.secondFactor ? (
        <ManageSecondFactor
          user={user}
          onCodes={(codes) => setStep({ step: 'codes', codes, fresh: false })}
          onRemoved={() => {
            setNotice('The second factor is removed. You sign in with your password alone.');
            void session.refresh();
          }}
        />
      ) : (
        <StartSetup user={user} onStarted={(uri, secret) => setStep({ step: 'confirm', uri, secret })} />
      )}
    </section>
  );
}

function StartSetup({ user, onStarted }: { user: CurrentUser; onStarted: (uri: string, secret: string) => void }) {
  const [reauth, setReauth] = useState(EMPTY_REAUTH);
  const action = useAction(async () => {
    await reauthenticateWith(user, reauth);
    const { uri, secret } = await beginSecondFactor();
    onStarted(uri, secret);
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <>
      <p>Off. With an authenticator app (on your phone, for instance), signing in also asks for a code that only the app knows.</p>
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        <ReauthFields user={user} values={reauth} onChange={setReauth} />
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={action.pending}>
            Set up an authenticator app
          </button>
        </div>
      </form>
    </>
  );
}

/** The key in groups of four, as authenticator apps show it. */
function grouped(secret: string): string {
  return secret.replace(/(.{4})/g, '$1 ').trim();
}

function ConfirmApp({ uri, secret, onConfirmed, onCancel }: { uri: string; secret: string; onConfirmed: (codes: string[]) => void; onCancel: () => void }) {
  const [code, setCode] = useState('');
  const action = useAction(async () => {
    onConfirmed(await confirmSecondFactor(code.replace(/\s+/g, '')));
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    void action.run();
  };
  return (
    <>
      <ol className="steps">
        <li>
          <p>Add TaskFlow to your authenticator app. On this device, open the setup link; elsewhere, enter the key by hand (time-based, 6 digits, every 30 seconds).</p>
          <p>
            Setup link:{' '}
            <a href={uri} className="otpauth-uri" data-testid="otpauth-uri">
              {uri}
            </a>
          </p>
          <p>
            Key: <code className="secret">{grouped(secret)}</code>
          </p>
        </li>
        <li>
          <p>Enter the code the app now shows.</p>
        </li>
      </ol>
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        <TextField label="Code from the app" name="confirmCode" inputMode="numeric" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={action.pending}>
            Turn on the second factor
          </button>
          <button type="button" className="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </>
  );
}

function RecoveryCodes({ codes, fresh, onDone }: { codes: string[]; fresh: boolean; onDone: () => void }) {
  return (
    <>
      <Notice>
        <p>{fresh ? 'The second factor is on.' : 'Your new recovery codes are ready; the old ones no longer work.'}</p>
      </Notice>
      <p>
        Keep these recovery codes somewhere safe, apart from your phone: each lets you sign in once without the app. They are shown only now.
      </p>
      <ul className="recovery-codes" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <button type="button" className="button button-primary" onClick={onDone}>
        I have stored the codes
      </button>
    </>
  );
}

function ManageSecondFactor({ user, onCodes, onRemoved }: { user: CurrentUser; onCodes: (codes: string[]) => void; onRemoved: () => void }) {
  const [reauth, setReauth] = useState(EMPTY_REAUTH);
  const action = useAction(async (intent: string) => {
    await reauthenticateWith(user, reauth);
    setReauth(EMPTY_REAUTH);
    if (intent === 'remove') {
      await removeSecondFactor();
      onRemoved();
    } else {
      onCodes(await newRecoveryCodes());
    }
  });
  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    const submitter = event.nativeEvent.submitter;
    void action.run(submitter instanceof HTMLButtonElement ? submitter.value : 'codes');
  };
  return (
    <>
      <p>On: signing in asks for a code from your authenticator app.</p>
      <ErrorAlert error={action.error} />
      <form onSubmit={submit} className="form">
        <ReauthFields user={user} values={reauth} onChange={setReauth} />
        <div className="form-actions">
          <button type="submit" name="intent" value="codes" className="button" disabled={action.pending}>
            New recovery codes
          </button>
          <button type="submit" name="intent" value="remove" className="button button-danger" disabled={action.pending}>
            Remove the second factor
          </button>
        </div>
      </form>
    </>
  );
}
