/**
 * `taskflow restore cluster --at TIME --to DIR`: disaster recovery from the repository alone. Needs
 * only the repository's configuration and the age identity (no control database, no data
 * directory): it lists the repository's snapshots and WAL by name and manifest, takes the latest
 * snapshot that ended at or before TIME, checks the archived WAL from it to TIME is complete,
 * restores into DIR, replays to TIME, promotes, and reports the point reached from the server log.
 * DIR is then an ordinary PostgreSQL data directory with its archive_command emptied (PostgreSQL
 * keeps its WAL until TaskFlow installs the archive on it again). A snapshot that cannot be read
 * whole (damaged in the repository) leaves DIR as it was found: absent, or empty. Until the
 * cluster has recovered, DIR holds a marker; a later restore into a DIR whose marker names a
 * process that is gone (killed, or failed after extracting) replaces that partial restore.
 */
import { chmodSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../../../config.ts';
import { UserError } from '../../../errors.ts';
import { freePort } from '../../postgres/local-cluster.ts';
import { findPgTools, resolveRunAs, runTool } from '../../postgres/tools.ts';
import { openBackupTarget } from '../service.ts';
import type { RestoreIdentity } from './identity.ts';
import { planRestoreToTime } from './restore-plan.ts';
import { configureRecovery, extractSnapshot, finishRecovery, recover, stopRestored, verifyExtracted } from './restored-cluster.ts';
import { clearIncomplete, createRestoreWorkDir, INCOMPLETE_MARKER, markIncomplete, occupant, sweepRestoreWorkDirs, type IncompleteRestore } from './restore-workdir.ts';
import { makeOwnedDir } from './wal-settings.ts';

export interface RestoreClusterProps {
  config: Pick<Config, 'backup' | 'postgres'>;
  at: Date;
  /** The new data directory: must not exist or be empty. */
  to: string;
  identity: RestoreIdentity;
  /** Restore from this repository (default: the primary). */
  repository?: string;
  /** Which cluster, when the repository holds several. */
  systemIdentifier?: string;
  /** The restored cluster's port (default: a free one). */
  port?: number;
  /** Leave it running (default: stopped cleanly once recovered). */
  keepRunning?: boolean;
  onPhase?: (phase: string) => void;
}

export interface RestoreClusterResult {
  dataDirectory: string;
  port: number;
  running: boolean;
  systemIdentifier: string;
  snapshot: string;
  at: string;
  reached: { stoppedBeforeCommitAt: string | null; lastTransactionAt: string | null; endOfArchive: boolean; timeline: number | null };
  timings: Record<string, number>;
}

/** Removes everything in dir, keeping dir itself (its owner and mode are the operator's). */
function emptyDirectory(dir: string): void {
  for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
}

export async function restoreCluster(props: RestoreClusterProps): Promise<RestoreClusterResult> {
  const began = Date.now();
  const to = resolve(props.to);
  if (props.at.getTime() > Date.now()) throw new UserError(`${props.at.toISOString()} is in the future`, 2);
  const tools = findPgTools(props.config.postgres.binDir);
  const runAs = resolveRunAs(props.config.postgres.osUser);
  // An earlier restore on this machine killed mid-way: its identity copy and server go now.
  for (const left of await sweepRestoreWorkDirs({ tools, runAs })) {
    props.onPhase?.(`removed what an interrupted restore into ${left.pgData} (started ${left.startedAt}) left${left.stoppedServer ? ', and stopped its server' : ''}; that directory holds a partial restore`);
  }
  // Only a partial restore whose process is gone may be replaced; anything else in DIR is refused.
  let partial: IncompleteRestore | null = null;
  if (existsSync(to) && readdirSync(to).length > 0) {
    const found = occupant(to);
    if (found.kind === 'busy') throw new UserError(`${to} is not empty: ${found.why}`, 4);
    if (found.kind === 'foreign') throw new UserError(`${to} is not empty; a restore goes into a new or empty directory`, 4);
    partial = found.restore;
  }
  const target = openBackupTarget(props.config);
  let workDir: string | null = null;
  try {
    const repository = props.repository === undefined ? target.primary : target.all.find((r) => r.name === props.repository);
    const repositoryConfig = props.config.backup.repositories.find((r) => r.name === repository?.name);
    if (!repository || !repositoryConfig) throw new UserError(`no repository named '${props.repository ?? ''}'`, 2);
    props.onPhase?.(`reading repository ${repository.name}`);
    const plan = await planRestoreToTime(repository, props.at, props.systemIdentifier === undefined ? {} : { systemIdentifier: props.systemIdentifier });
    if (partial) {
      props.onPhase?.(`${to} holds a partial restore of ${partial.snapshot} that an interrupted run (started ${partial.startedAt}) left: removing it to restore again`);
      emptyDirectory(to);
    }
    const madeTo = !existsSync(to);
    makeOwnedDir(to, runAs);
    // An empty directory the operator made keeps its mode (often 0755); PostgreSQL starts only on 0700.
    chmodSync(to, 0o700);
    workDir = createRestoreWorkDir(to, runAs);
    // Until the cluster has recovered, DIR says it is a partial restore (the next run may start over).
    markIncomplete(to, plan.snapshot.name, runAs);
    props.onPhase?.(`extracting snapshot ${plan.snapshot.name}`);
    let started = Date.now();
    try {
      await extractSnapshot({ tools, runAs, repository, name: plan.snapshot.name, identities: props.identity.identities, pgData: to });
    } catch (err) {
      // Part of a snapshot is no data directory, but would look like one: remove what was extracted
      // (the directory too when this restore made it; one the operator gave stays, empty again).
      if (madeTo) rmSync(to, { recursive: true, force: true });
      else emptyDirectory(to);
      throw err;
    }
    const extractMs = Date.now() - started;
    props.onPhase?.('checking it with pg_verifybackup');
    const verified = await verifyExtracted({ tools, runAs, pgData: to, ignore: [INCOMPLETE_MARKER] });
    if (!verified.ok) throw new UserError(`pg_verifybackup found snapshot ${plan.snapshot.name} damaged: ${verified.output}; ${to} holds what was extracted`);
    const port = props.port ?? (await freePort());
    const setup = {
      tools, runAs, pgData: to, port, workDir, systemIdentifier: plan.systemIdentifier, repository: repositoryConfig, identityText: props.identity.text,
      target: { time: props.at }, purpose: 'keep' as const, superuserPassword: '',
    };
    configureRecovery(setup);
    props.onPhase?.(`replaying the archived WAL to ${props.at.toISOString()}`);
    started = Date.now();
    const run = await recover(setup, plan.through !== null && plan.through.walEndAt >= props.at, { repository, identities: props.identity.identities, files: plan.walFiles });
    const recoveryMs = Date.now() - started;
    if (!run.started) {
      finishRecovery(setup);
      throw new UserError(`the restored cluster in ${to} did not recover: ${run.report.fatal ?? 'see its log'}\n${run.logTail}`);
    }
    // Recovered and promoted: the restore's settings, the identity copy and the marker go, the cluster stays.
    finishRecovery(setup);
    clearIncomplete(to);
    let running = true;
    if (!props.keepRunning) {
      await stopRestored(setup, 'fast');
      running = false;
    } else {
      await runTool(tools.path('pg_ctl'), ['reload', '--pgdata', to, '--silent'], { runAs });
    }
    return {
      dataDirectory: to,
      port,
      running,
      systemIdentifier: plan.systemIdentifier,
      snapshot: plan.snapshot.name,
      at: props.at.toISOString(),
      reached: {
        stoppedBeforeCommitAt: run.report.stoppedAt?.at ?? null,
        lastTransactionAt: run.report.lastTransactionAt,
        endOfArchive: run.fellBackToEndOfArchive,
        timeline: run.report.newTimeline,
      },
      timings: { extractMs, recoveryMs, totalMs: Date.now() - began },
    };
  } finally {
    // The identity copy lives there: it never outlives the restore, whatever happened.
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    await target.close();
  }
}
