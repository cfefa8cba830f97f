/** Audit records of account commands: the caller's tenant, address and agent filled in. */
import type { AuditAction, AuditActor } from '../../platform/audit/audit.ts';
import type { AccountServices, Caller } from './services.ts';

export function recordAccountEvent(
  services: Pick<AccountServices, 'audit'>,
  caller: Caller,
  event: { action: AuditAction; outcome?: 'success' | 'failure'; actor: AuditActor; subject?: { type: string; id: string }; details?: Record<string, unknown> },
): Promise<void> {
  return services.audit.record({
    action: event.action,
    outcome: event.outcome ?? 'success',
    tenantId: caller.tenantId,
    actor: event.actor,
    ...(event.subject ? { subject: event.subject } : {}),
    ip: caller.ip,
    userAgent: caller.userAgent,
    ...(event.details ? { details: event.details } : {}),
  });
}

export function userActor(user: { id: string; email: string }): AuditActor {
  return { type: 'user', id: user.id, label: user.email };
}
