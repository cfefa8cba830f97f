/**
 * The one typed audit interface. Every authentication and account event goes through `Audit.record`,
 * never through SQL in a handler. The store behind it is swappable: today rows in the control
 * database; the tamper-evident chain arrives with the audit issue behind the same interface.
 */

/** Every action that is audited. A new one is added here first, so the list stays the catalogue. */
export const AUDIT_ACTIONS = [
  'auth.login',
  'auth.login.second-factor',
  'auth.logout',
  'auth.throttled',
  'auth.reauthenticate',
  'auth.password-reset.requested',
  'auth.password-reset.completed',
  'auth.session.ended',
  'account.password.changed',
  'account.email.changed',
  'account.second-factor.enabled',
  'account.second-factor.disabled',
  'account.recovery-codes.regenerated',
  'account.recovery-code.used',
  'user.invited',
  'user.invitation.revoked',
  'user.invitation.accepted',
  'user.role.changed',
  'user.deactivated',
  'user.reactivated',
  'user.sessions.ended',
  'tenant.setup-link.issued',
  'tenant.settings.changed',
  /** A tenant's data restored to a point in time (`taskflow restore tenant`), in place or as a new tenant. */
  'tenant.restored',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditActor {
  type: 'user' | 'operator' | 'anonymous' | 'system';
  /** User id, operator name; absent for anonymous actors. */
  id?: string;
  /** What a person reading the log recognises: an e-mail address, `cli:alice`. */
  label?: string;
}

export interface AuditEvent {
  action: AuditAction;
  outcome: 'success' | 'failure';
  tenantId: string | null;
  actor: AuditActor;
  subject?: { type: string; id: string };
  ip: string | null;
  userAgent: string | null;
  /** UTC; defaults to the time of recording. */
  at?: Date;
  /** Extra facts (a reason, old and new role). Sanitised: secret-looking keys are dropped. */
  details?: Record<string, unknown>;
}

export interface AuditStore {
  append(event: Required<Pick<AuditEvent, 'at'>> & AuditEvent): Promise<void>;
}

const SECRET_KEY = /pass|secret|token|code|cookie|authorization|hash|key/i;
const MAX_STRING = 500;

/** Drops secret-looking keys and truncates long strings, recursively. */
export function sanitiseDetails(details: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(details)) {
    if (SECRET_KEY.test(key)) continue;
    if (typeof value === 'string') out[key] = value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) out[key] = sanitiseDetails(value as Record<string, unknown>);
    else out[key] = value;
  }
  return out;
}

/** Records audit events into a store. */
export class Audit {
  readonly #store: AuditStore;
  constructor(store: AuditStore) {
    this.#store = store;
  }

  async record(event: AuditEvent): Promise<void> {
    const userAgent = event.userAgent === null ? null : event.userAgent.slice(0, MAX_STRING);
    await this.#store.append({ ...event, userAgent, at: event.at ?? new Date(), details: sanitiseDetails(event.details ?? {}) });
  }
}
