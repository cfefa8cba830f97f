/**
 * Restoring a snapshot plus archived WAL into a scratch cluster beside the live one (what verify
 * --restore and tenant restores share), making sure the archive holds what is needed first, and
 * cleaning up after restores whose process died.
 */
import { basename } from 'node:path';
import type { Platform } from '../../platform.ts';
import type { LocalCluster } from '../../postgres/local-cluster.ts';
import { resolveRunAs } from '../../postgres/tools.ts';
import { poll } from '../../replication/probe.ts';
import type { RepositoryConfig } from '../config.ts';
import type { Repository } from '../repository.ts';
import type { RestoreIdentity } from './identity.ts';
import type { RestorePlan } from './restore-plan.ts';
import { sweepRestoreWorkDirs } from './restore-workdir.ts';
import { configureRecovery, extractSnapshot, recover, restoredCluster, verifyExtracted, type RecoveryRun, type RecoveryTarget, type VerifyBackupResult } from './restored-cluster.ts';
import { createScratch, releaseScratchData, removeScratch, sweepScratch, type ScratchJob, type ScratchPurpose } from './scratch-cluster.ts';
import { dropIncoming } from './tenant-swap.ts';

export type ScratchPlatform = Pick<Platform, 'config' | 'dir' | 'target' | 'cluster' | 'tools' | 'control' | 'alerts' | 'log'>;

/** A restore that did not produce a usable cluster; `details` say where it stopped. */
export class RestoreFailure extends Error {
  override name = 'RestoreFailure';
  readonly details: Record<string, unknown>;
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.details = details;
  }
}

export interface ScratchRestore {
  job: ScratchJob;
  cluster: LocalCluster;
  verifyBackup: VerifyBackupResult;
  run: RecoveryRun;
  /** Milliseconds per phase. */
  timings: { extractMs: number; verifyBackupMs: number; recoveryMs: number };
}

function tools(platform: ScratchPlatform) {
  return { tools: platform.tools, runAs: platform.cluster?.runAs ?? null };
}

/**
 * Makes the archive hold the WAL written until now: commits a marker transaction (so a time
 * target has a commit after it to stop at), closes the segment and waits until PostgreSQL
 * archived it. For restores on the live host to times just past.
 */
export async function archiveUntilNow(platform: ScratchPlatform): Promise<string> {
  const client = await platform.control.connect();
  let file = '';
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_current_xact_id()');
    await client.query('COMMIT');
    file = (await client.query<{ file: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS file')).rows[0]?.file ?? '';
  } finally {
    client.release();
  }
  const timeoutMs = Math.max(60, 2 * platform.config.backup.walArchiveTimeoutSeconds) * 1000;
  const done = await poll(async () => {
    const r = await platform.control.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
    return (r.rows[0]?.last ?? '') >= file ? true : undefined;
  }, timeoutMs, 200);
  if (!done) throw new RestoreFailure(`WAL segment ${file} was not archived within ${timeoutMs / 1000} s; see 'taskflow wal status'`, { segment: file });
  return file;
}

/**
 * Removes what interrupted restores and verifications left: their scratch servers and
 * directories, and a database a tenant restore was loading into. Raises `restore.interrupted`
 * for each.
 */
export async function sweepInterruptedRestores(platform: ScratchPlatform): Promise<number> {
  const swept = await sweepScratch({
    ...tools(platform),
    dir: platform.dir,
    undo: async (record) => {
      const incoming = record.facts.incomingDatabase;
      if (incoming) await dropIncoming(platform.target, incoming, record.id).catch(() => false);
    },
  });
  for (const record of swept) {
    const what = record.purpose === 'verify' ? 'a backup verification' : `a restore of tenant ${record.facts.tenant ?? '?'}`;
    await platform.alerts.raise({
      code: 'restore.interrupted',
      key: `restore.interrupted:${record.id}`,
      severity: 'warning',
      summary: `${what} started ${record.startedAt || 'at an unknown time'} was interrupted (its process stopped); its scratch cluster was removed${record.facts.createdTenant ? `, and tenant ${record.facts.createdTenant} it had created for --as may need deleting` : ''}${record.facts.phase === 'swapped' ? '; it had already swapped the restored database in' : '; the live tenant was not changed'}`,
      details: { job: record.id, ...record.facts },
    });
  }
  return swept.length;
}

/**
 * What `taskflow start` and the every-minute WAL watch run, so that a killed restore's identity
 * copy and server do not wait for the next restore: interrupted scratch restores (as above), and
 * `restore cluster` work directories on this machine whose process died (restore-workdir.ts).
 * Restores whose process runs are never touched. Returns how many it cleaned up.
 */
export async function sweepAllInterruptedRestores(platform: ScratchPlatform): Promise<number> {
  let count = await sweepInterruptedRestores(platform);
  const runAs = platform.cluster?.runAs ?? resolveRunAs(platform.config.postgres.osUser);
  for (const left of await sweepRestoreWorkDirs({ tools: platform.tools, runAs })) {
    await platform.alerts.raise({
      code: 'restore.interrupted',
      key: `restore.interrupted:${basename(left.workDir)}`,
      severity: 'warning',
      summary: `a cluster restore into ${left.pgData} started ${left.startedAt} was interrupted (its process stopped); its copy of the backup identity was removed${left.stoppedServer ? ' and the server it had started there was stopped' : ''}; ${left.pgData} holds a partial restore: remove it before restoring there again`,
      details: { pgData: left.pgData, pid: left.pid, startedAt: left.startedAt, stoppedServer: left.stoppedServer },
    });
    count++;
  }
  return count;
}

export interface ScratchRestoreProps {
  platform: ScratchPlatform;
  repository: Repository;
  repositoryConfig: RepositoryConfig;
  plan: RestorePlan;
  target: RecoveryTarget;
  identity: RestoreIdentity;
  purpose: ScratchPurpose;
  facts: Record<string, string>;
  onPhase?: (phase: string) => void;
}

/** Restores the plan's snapshot and WAL into a new scratch cluster; the caller removes it (removeScratchRestore). */
export async function restoreIntoScratch(props: ScratchRestoreProps): Promise<ScratchRestore> {
  const { platform, plan } = props;
  const t = tools(platform);
  const job = await createScratch({ ...t, dir: platform.dir, purpose: props.purpose, facts: { ...props.facts, snapshot: plan.snapshot.name } });
  try {
    props.onPhase?.(`extracting snapshot ${plan.snapshot.name}`);
    let started = Date.now();
    await extractSnapshot({ ...t, repository: props.repository, name: plan.snapshot.name, identities: props.identity.identities, pgData: job.pgData });
    const extractMs = Date.now() - started;
    props.onPhase?.('checking it with pg_verifybackup');
    started = Date.now();
    const verifyBackup = await verifyExtracted({ ...t, pgData: job.pgData });
    const verifyBackupMs = Date.now() - started;
    if (!verifyBackup.ok) throw new RestoreFailure(`pg_verifybackup found snapshot ${plan.snapshot.name} damaged: ${verifyBackup.output}`, { pgVerifybackup: verifyBackup.output });
    const setup = {
      ...t,
      pgData: job.pgData,
      port: job.port,
      workDir: job.workDir,
      systemIdentifier: plan.systemIdentifier,
      repository: props.repositoryConfig,
      identityText: props.identity.text,
      target: props.target,
      purpose: 'scratch' as const,
      superuserPassword: platform.target.password,
    };
    configureRecovery(setup);
    props.onPhase?.('replaying the archived WAL');
    started = Date.now();
    const reaches = plan.through !== null && typeof props.target === 'object' && 'time' in props.target && plan.through.walEndAt >= props.target.time;
    const run = await recover(setup, reaches, { repository: props.repository, identities: props.identity.identities, files: plan.walFiles, log: platform.log });
    const recoveryMs = Date.now() - started;
    if (!run.started) {
      throw new RestoreFailure(`the scratch cluster did not recover: ${run.report.fatal ?? 'see its log'}`, { log: run.logTail, report: run.report });
    }
    return { job, cluster: restoredCluster(setup), verifyBackup, run, timings: { extractMs, verifyBackupMs, recoveryMs } };
  } catch (err) {
    await removeScratch(job, t).catch(() => undefined);
    throw err;
  }
}

/** Stops the scratch server and frees its disk; the job's record stays until removeScratchRestore. */
export async function releaseScratchRestore(platform: ScratchPlatform, restore: Pick<ScratchRestore, 'job'>): Promise<void> {
  await releaseScratchData(restore.job, tools(platform));
}

/** Stops and removes a scratch restore. */
export async function removeScratchRestore(platform: ScratchPlatform, restore: Pick<ScratchRestore, 'job'>): Promise<void> {
  await removeScratch(restore.job, tools(platform));
}
