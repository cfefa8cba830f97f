/** /api/users, /api/invitations and /api/settings/accounts: what admins and owners manage. */
import { get, request } from './http.ts';
import type { AccountSettings, Invitation, Role, User } from './types.ts';

export async function listUsers(): Promise<User[]> {
  return (await get<{ items: User[] }>('/api/users')).items;
}

export async function changeRole(id: string, role: Role): Promise<User> {
  return (await request<User>('PATCH', `/api/users/${encodeURIComponent(id)}`, { body: { role } })).data;
}

export async function deactivateUser(id: string): Promise<User> {
  return (await request<User>('POST', `/api/users/${encodeURIComponent(id)}/deactivate`)).data;
}

export async function reactivateUser(id: string): Promise<User> {
  return (await request<User>('POST', `/api/users/${encodeURIComponent(id)}/reactivate`)).data;
}

/** Signs the user out everywhere; answers how many sessions ended. */
export async function endSessionsOf(id: string): Promise<number> {
  return (await request<{ ended: number }>('POST', `/api/users/${encodeURIComponent(id)}/sessions/end`)).data.ended;
}

export async function listInvitations(): Promise<Invitation[]> {
  return (await get<{ items: Invitation[] }>('/api/invitations')).items;
}

export async function invite(email: string, role: Role): Promise<Invitation> {
  return (await request<Invitation>('POST', '/api/invitations', { body: { email, role } })).data;
}

export async function revokeInvitation(id: string): Promise<void> {
  await request('DELETE', `/api/invitations/${encodeURIComponent(id)}`);
}

export function getAccountSettings(): Promise<AccountSettings> {
  return get<AccountSettings>('/api/settings/accounts');
}

export async function putAccountSettings(settings: AccountSettings): Promise<AccountSettings> {
  return (await request<AccountSettings>('PUT', '/api/settings/accounts', { body: settings })).data;
}
