/** Who a request acts for: a signed-in user (through the session cookie) or a tenant API token. */
import type { Role } from '../policies.ts';

export interface SessionUser {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  secondFactor: boolean;
}

export interface SessionInfo {
  id: string;
  stage: 'mfa' | 'active';
  createdAt: Date;
  expiresAt: Date;
  reauthenticatedAt: Date;
}

export type Principal =
  | { kind: 'user'; user: SessionUser; session: SessionInfo; mustEnrolSecondFactor: boolean }
  | { kind: 'token' };

/** The audit actor of a principal. */
export function actorOf(principal: Principal | null): { type: 'user' | 'anonymous' | 'system'; id?: string; label?: string } {
  if (!principal) return { type: 'anonymous' };
  if (principal.kind === 'token') return { type: 'system', label: 'api-token' };
  return { type: 'user', id: principal.user.id, label: principal.user.email };
}
