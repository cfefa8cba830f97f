/**
 * The password (and, with a second factor, a code) that sensitive changes ask for again: the
 * forms using these fields re-authenticate first (POST /api/auth/reauthenticate), then change.
 */
import { reauthenticate } from '../api/auth.ts';
import type { CurrentUser } from '../api/types.ts';
import { TextField } from '../components/Fields.tsx';

export interface ReauthValues {
  password: string;
  code: string;
}

export const EMPTY_REAUTH: ReauthValues = { password: '', code: '' };

export function ReauthFields({ user, values, onChange, passwordLabel = 'Your current password' }: { user: CurrentUser; values: ReauthValues; onChange: (values: ReauthValues) => void; passwordLabel?: string }) {
  return (
    <>
      <TextField label={passwordLabel} type="password" name="currentPassword" autoComplete="current-password" required value={values.password} onChange={(e) => onChange({ ...values, password: e.target.value })} />
      {user.secondFactor ? (
        <TextField
          label="Code from your authenticator app"
          name="reauthCode"
          inputMode="numeric"
          autoComplete="one-time-code"
          required
          value={values.code}
          onChange={(e) => onChange({ ...values, code: e.target.value })}
        />
      ) : null}
    </>
  );
}

/** Re-authenticates with what the fields hold. */
export async function reauthenticateWith(user: CurrentUser, values: ReauthValues): Promise<void> {
  await reauthenticate(values.password, user.secondFactor ? values.code.replace(/\s+/g, '') : undefined);
}
