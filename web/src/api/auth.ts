/** /api/auth: the session state, signing in (with the second factor) and out, resets and invitations. */
import { get, request } from './http.ts';
import type { SessionState } from './types.ts';

export function getSession(): Promise<SessionState> {
  return get<SessionState>('/api/auth/session');
}

export async function signIn(email: string, password: string): Promise<SessionState> {
  return (await request<SessionState>('POST', '/api/auth/login', { body: { email, password } })).data;
}

/** Finishes a sign-in with an authenticator code or a recovery code. */
export async function completeSecondFactor(proof: { code: string } | { recoveryCode: string }): Promise<void> {
  await request('POST', '/api/auth/login/second-factor', { body: proof });
}

export async function signOut(): Promise<void> {
  await request('POST', '/api/auth/logout');
}

/** Enters the password again (and the code, with a second factor) before a sensitive change. */
export async function reauthenticate(password: string, code?: string): Promise<void> {
  await request('POST', '/api/auth/reauthenticate', { body: code ? { password, code } : { password } });
}

/** Always the same answer, whether or not the address has an account. */
export async function requestPasswordReset(email: string): Promise<string> {
  return (await request<{ message: string }>('POST', '/api/auth/password-reset', { body: { email } })).data.message;
}

export async function completePasswordReset(token: string, password: string): Promise<void> {
  await request('POST', '/api/auth/password-reset/complete', { body: { token, password } });
}

/** Accepts an invitation or a setup link; the browser is signed in afterwards. */
export async function acceptInvitation(token: string, displayName: string, password: string): Promise<void> {
  await request('POST', '/api/auth/invitations/accept', { body: { token, displayName, password } });
}
