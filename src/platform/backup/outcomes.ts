/**
 * How backup work reports what went wrong, and clears it once it works again. One alert per
 * problem, keyed so that repeats fold into it and a later success resolves it:
 *
 *   backup.repository-unreachable:<repository>   the repository could not be reached or refused us
 *   backup.repository-full:<repository>          the repository ran out of space
 *   backup.copy-failed:<repository>              a copy to a secondary failed or did not verify
 *   backup.failed:<kind>[:<tenant id>]          anything else that failed a backup
 *   backup.interrupted:<kind>[:<tenant id>]     a backup whose process died before it finished
 */
import type { AlertCode, AlertSeverity } from '../alerts/alerts.ts';
import { isBackupError } from './errors.ts';
import type { BackupPlatform } from './service.ts';

export interface FailureContext {
  /** What was being done, for the summary: `export of tenant acme`. */
  what: string;
  /** `export`, `snapshot`, `prune`… */
  kind: string;
  tenantId?: string | null;
  /** The repository the failed operation was talking to. */
  repository: string;
  details?: Record<string, unknown>;
}

/** The key of the "backup failed" alert of one kind (and tenant). */
export function failedKey(kind: string, tenantId?: string | null): string {
  return tenantId ? `backup.failed:${kind}:${tenantId}` : `backup.failed:${kind}`;
}

export function interruptedKey(kind: string, tenantId?: string | null): string {
  return tenantId ? `backup.interrupted:${kind}:${tenantId}` : `backup.interrupted:${kind}`;
}

/** The alert a failure raises: a repository problem is the repository's, anything else the backup's. */
export function alertFor(err: unknown, context: FailureContext): { code: AlertCode; key: string; severity: AlertSeverity } {
  if (isBackupError(err, 'repository-unreachable') || isBackupError(err, 'repository-denied')) {
    return { code: 'backup.repository-unreachable', key: `backup.repository-unreachable:${context.repository}`, severity: 'critical' };
  }
  if (isBackupError(err, 'repository-full')) {
    return { code: 'backup.repository-full', key: `backup.repository-full:${context.repository}`, severity: 'critical' };
  }
  return { code: 'backup.failed', key: failedKey(context.kind, context.tenantId), severity: 'critical' };
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Raises the alert for a failed backup operation (never throws). */
export async function reportFailure(platform: Pick<BackupPlatform, 'alerts'>, err: unknown, context: FailureContext): Promise<void> {
  const alert = alertFor(err, context);
  await platform.alerts.raise({
    ...alert,
    summary: `${context.what} failed: ${errorText(err)}`.slice(0, 500),
    tenantId: context.tenantId ?? null,
    details: { repository: context.repository, ...(isBackupError(err) ? { error: err.code } : {}), ...context.details },
  });
}

/** Raises the alert for a copy to a secondary that failed (never throws). */
export async function reportCopyFailure(platform: Pick<BackupPlatform, 'alerts'>, err: unknown, props: { object: string; repository: string; tenantId?: string | null }): Promise<void> {
  await platform.alerts.raise({
    code: 'backup.copy-failed',
    key: `backup.copy-failed:${props.repository}`,
    severity: 'warning',
    summary: `copy of ${props.object} to repository ${props.repository} failed: ${errorText(err)}`.slice(0, 500),
    tenantId: props.tenantId ?? null,
    details: { object: props.object, repository: props.repository, ...(isBackupError(err) ? { error: err.code } : {}) },
  });
}

/** Resolves the alerts a success proves gone; failures to resolve are only logged. */
export async function resolveAlerts(platform: Pick<BackupPlatform, 'alerts' | 'log'>, keys: string[], resolution: string): Promise<void> {
  for (const key of keys) {
    try {
      await platform.alerts.resolve(key, resolution);
    } catch (err) {
      platform.log.warn({ key, err: errorText(err) }, 'could not resolve an alert');
    }
  }
}

/** The alerts a successful write of `kind` to `repository` clears. */
export function keysClearedByWrite(props: { kind: string; tenantId?: string | null; repository: string }): string[] {
  return [
    `backup.repository-unreachable:${props.repository}`,
    `backup.repository-full:${props.repository}`,
    failedKey(props.kind, props.tenantId),
    interruptedKey(props.kind, props.tenantId),
  ];
}
