/** /api/account: the signed-in user's profile, password, second factor and sessions. */
import { get, request } from './http.ts';
import type { AccountSession, CurrentUser } from './types.ts';

export function getAccount(): Promise<CurrentUser> {
  return get<CurrentUser>('/api/account');
}

export async function changeDisplayName(displayName: string): Promise<void> {
  await request('PATCH', '/api/account', { body: { displayName } });
}

/** Needs a re-authentication in the last minutes (auth.reauthenticate). */
export async function changePassword(newPassword: string): Promise<void> {
  await request('PUT', '/api/account/password', { body: { newPassword } });
}

/** Starts setting up an authenticator app: the otpauth:// URI and its secret. Needs a re-authentication. */
export async function beginSecondFactor(): Promise<{ uri: string; secret: string }> {
  return (await request<{ uri: string; secret: string }>('POST', '/api/account/second-factor/setup')).data;
}

/** Confirms the app with a code from it; answers the ten recovery codes, shown only this once. */
export async function confirmSecondFactor(code: string): Promise<string[]> {
  return (await request<{ recoveryCodes: string[] }>('POST', '/api/account/second-factor/confirm', { body: { code } })).data.recoveryCodes;
}

export async function removeSecondFactor(): Promise<void> {
  await request('DELETE', '/api/account/second-factor');
}

export async function newRecoveryCodes(): Promise<string[]> {
  return (await request<{ recoveryCodes: string[] }>('POST', '/api/account/recovery-codes')).data.recoveryCodes;
}

export async function listOwnSessions(): Promise<AccountSession[]> {
  return (await get<{ items: AccountSession[] }>('/api/account/sessions')).items;
}

export async function endOwnSession(id: string): Promise<void> {
  await request('DELETE', `/api/account/sessions/${encodeURIComponent(id)}`);
}

export async function endOtherSessions(): Promise<number> {
  return (await request<{ ended: number }>('POST', '/api/account/sessions/end-others')).data.ended;
}
