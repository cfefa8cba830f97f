/**
 * Turning a snapshot back into a running cluster: extract it (decrypting on the way, as the
 * PostgreSQL OS user, with GNU tar), check it with `pg_verifybackup` against its own
 * backup_manifest before anything in it changes, configure archive recovery (restore_command =
 * `taskflow wal fetch`, a recovery target, promote at the end), start it and read from its log
 * where it stopped. Used by the scratch clusters of verify and tenant restores, and by the full
 * disaster recovery into a directory of the operator's choosing.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AgeIdentity } from '../age-keys.ts';
import type { RepositoryConfig } from '../config.ts';
import { readBackupObject } from '../pipeline.ts';
import type { Repository } from '../repository.ts';
import { LocalCluster } from '../../postgres/local-cluster.ts';
import { runTool, type OsIdentity, type PgTools } from '../../postgres/tools.ts';
import { parseRecoveryLog, type RecoveryReport } from './recovery-log.ts';
import { FETCH_SETTINGS_FORMAT, makeOwnedDir, repositoryForOsUser, restoreShellCommand, writeOwnedFile, type FetchSettings } from './wal-settings.ts';
import { WalPrefetcher, type PrefetchProps } from './wal-prefetch.ts';

export interface RestoreTools {
  tools: PgTools;
  /** The PostgreSQL OS user (as root), else null. */
  runAs: OsIdentity | null;
}

/**
 * Streams a snapshot out of the repository into `pgData` (which must exist, empty, 0700, owned by
 * the OS user). --ignore-zeros: a snapshot is the base backup's archive followed by a second one
 * holding its backup_manifest (basebackup-protocol.ts).
 */
export async function extractSnapshot(props: RestoreTools & { repository: Repository; name: string; identities: AgeIdentity[]; pgData: string }): Promise<void> {
  const tar = spawn('tar', ['--extract', '--ignore-zeros', '--file', '-', '--directory', props.pgData, '--no-same-owner'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH, LC_ALL: 'C.UTF-8' },
    ...(props.runAs ? { uid: props.runAs.uid, gid: props.runAs.gid } : {}),
  });
  let stderr = '';
  tar.stderr.setEncoding('utf8');
  tar.stderr.on('data', (t: string) => {
    if (stderr.length < 8192) stderr += t;
  });
  const exited = new Promise<void>((resolve, reject) => {
    tar.on('error', reject);
    tar.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`tar could not extract ${props.name} (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
    });
  });
  // A failed read cuts tar's input off, so tar fails while the read is still checking the object:
  // that rejection must not go unhandled meanwhile (it would end the process).
  exited.catch(() => undefined);
  try {
    await readBackupObject({ repository: props.repository, name: props.name, identities: props.identities, destination: tar.stdin });
  } catch (err) {
    tar.kill('SIGKILL');
    await exited.catch(() => undefined);
    throw err;
  }
  await exited;
}

export interface VerifyBackupResult {
  ok: boolean;
  output: string;
}

/** `pg_verifybackup` of an extracted snapshot (files against backup_manifest, and its WAL). */
export async function verifyExtracted(props: RestoreTools & { pgData: string; ignore?: string[] }): Promise<VerifyBackupResult> {
  try {
    const ignore = (props.ignore ?? []).map((path) => `--ignore=${path}`);
    const { stdout, stderr } = await runTool(props.tools.path('pg_verifybackup'), [...ignore, props.pgData], { runAs: props.runAs, timeoutMs: 6 * 3_600_000 });
    return { ok: true, output: (stdout + stderr).trim() };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || e.message };
  }
}

export type RecoveryTarget = { time: Date } | { lsn: string } | 'immediate' | 'end-of-archive';

export interface RecoverySetup {
  pgData: string;
  port: number;
  /** A directory of the OS user outside pgData for the fetch settings, identity and startup log. */
  workDir: string;
  systemIdentifier: string;
  repository: RepositoryConfig;
  /** The age identity text, copied into a 0600 file of the OS user for the duration. */
  identityText: string;
  target: RecoveryTarget;
  /** scratch: archiving off, small memory, no fsync (thrown away after); keep: a cluster to live on. */
  purpose: 'scratch' | 'keep';
  superuserPassword: string;
}

const MANAGED_KEYS = [
  'restore_command', 'recovery_target', 'recovery_target_time', 'recovery_target_lsn', 'recovery_target_xid', 'recovery_target_name',
  'recovery_target_action', 'recovery_target_timeline', 'recovery_target_inclusive', 'archive_mode', 'archive_command', 'hot_standby',
  'synchronous_standby_names', 'primary_conninfo', 'primary_slot_name', 'lc_messages', 'log_filename', 'shared_buffers', 'max_connections', 'fsync',
];

function quoteSetting(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/** Rewrites postgresql.auto.conf without the keys TaskFlow manages for a restore, plus `settings`. */
function writeAutoConf(setup: RestoreTools & { pgData: string }, settings: Record<string, string>): void {
  const path = join(setup.pgData, 'postgresql.auto.conf');
  const kept = (existsSync(path) ? readFileSync(path, 'utf8') : '# Do not edit this file manually!\n')
    .split('\n')
    .filter((line) => line.trim() !== '' && !MANAGED_KEYS.includes(line.split('=')[0]?.trim() ?? ''));
  for (const [key, value] of Object.entries(settings)) kept.push(`${key} = ${quoteSetting(value)}`);
  writeOwnedFile(path, kept.join('\n') + '\n', setup.runAs);
}

function targetSettings(target: RecoveryTarget): Record<string, string> {
  if (target === 'immediate') return { recovery_target: 'immediate' };
  if (target === 'end-of-archive') return {};
  if ('time' in target) return { recovery_target_time: target.time.toISOString().replace('T', ' ').replace('Z', '+00') };
  return { recovery_target_lsn: target.lsn };
}

/** The cluster object for a restored data directory. */
export function restoredCluster(setup: RestoreTools & Pick<RecoverySetup, 'pgData' | 'port' | 'superuserPassword'>): LocalCluster {
  return new LocalCluster({ pgData: setup.pgData, port: setup.port, tools: setup.tools, runAs: setup.runAs, superuserPassword: setup.superuserPassword });
}

/** The postgresql.auto.conf overrides of a restore to `setup.target`. */
function recoverySettings(setup: RecoverySetup): Record<string, string> {
  return {
    restore_command: restoreShellCommand(join(setup.workDir, 'spool'), join(setup.workDir, 'fetch.json')),
    ...targetSettings(setup.target),
    recovery_target_action: 'promote',
    recovery_target_timeline: 'latest',
    hot_standby: 'off',
    synchronous_standby_names: '',
    primary_conninfo: '',
    primary_slot_name: '',
    lc_messages: 'C',
    log_filename: 'taskflow-restore.log',
    ...(setup.purpose === 'scratch' ? { archive_mode: 'off', shared_buffers: '32MB', max_connections: '40', fsync: 'off' } : { archive_command: '' }),
  };
}

/**
 * Configures an extracted snapshot for archive recovery to `target`: its own port, recovery.signal,
 * the fetch settings with a copy of the identity, and the overrides in postgresql.auto.conf (which
 * wins over taskflow.conf). A snapshot's own archive_command must never run here: scratch clusters
 * turn archiving off; a kept cluster gets an empty archive_command, which makes PostgreSQL keep its
 * WAL until TaskFlow installs the archive on it.
 */
export function configureRecovery(setup: RestoreTools & RecoverySetup): void {
  const cluster = restoredCluster(setup);
  cluster.writeSettings();
  makeOwnedDir(setup.workDir, setup.runAs);
  const identityFile = join(setup.workDir, 'identity');
  writeOwnedFile(identityFile, setup.identityText.endsWith('\n') ? setup.identityText : `${setup.identityText}\n`, setup.runAs);
  const repository = repositoryForOsUser(setup.repository, setup.workDir, setup.runAs);
  const fetch: FetchSettings = { format: FETCH_SETTINGS_FORMAT, systemIdentifier: setup.systemIdentifier, repository, identityFile };
  writeOwnedFile(join(setup.workDir, 'fetch.json'), JSON.stringify(fetch, null, 2) + '\n', setup.runAs);
  makeOwnedDir(join(setup.workDir, 'spool'), setup.runAs);
  for (const stale of ['postmaster.pid', 'standby.signal', 'TASKFLOW_FENCED', 'backup_label.old']) rmSync(join(setup.pgData, stale), { force: true });
  const logDir = join(setup.pgData, 'log');
  // The live server's logs came with the snapshot; the restore's own log starts clean.
  if (existsSync(logDir)) {
    if (setup.purpose === 'keep') renameSync(logDir, join(setup.pgData, 'log.from-snapshot'));
    else rmSync(logDir, { recursive: true, force: true });
  }
  makeOwnedDir(logDir, setup.runAs);
  writeOwnedFile(join(setup.pgData, 'recovery.signal'), '', setup.runAs);
  writeAutoConf(setup, recoverySettings(setup));
}

/** Points a configured recovery at another target (before it is started again). */
export function retarget(setup: RestoreTools & RecoverySetup, target: RecoveryTarget): void {
  writeAutoConf(setup, recoverySettings({ ...setup, target }));
}

/** Removes the restore's overrides from a kept cluster once it is recovered, and the identity copy. */
export function finishRecovery(setup: RestoreTools & Pick<RecoverySetup, 'pgData' | 'workDir'>): void {
  writeAutoConf(setup, { archive_command: '' });
  rmSync(setup.workDir, { recursive: true, force: true });
}

export interface RecoveryResult {
  started: boolean;
  report: RecoveryReport;
  /** The tail of the logs, for an operator reading why it failed. */
  logTail: string;
}

function readLogs(pgData: string, workDir: string): string {
  const logDir = join(pgData, 'log');
  const files = existsSync(logDir) ? readdirSync(logDir).sort().map((f) => join(logDir, f)) : [];
  const startup = join(workDir, 'startup.log');
  return [startup, ...files].filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
}

/** The postmaster's pid and status (line 8 of postmaster.pid: starting, standby, ready, stopping), or null when it is not running. */
function postmasterStatus(pgData: string): { pid: number; status: string } | null {
  let lines: string[];
  try {
    lines = readFileSync(join(pgData, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  try {
    // A zombie (exited, not yet reaped by a slow init in containers) is not running either.
    if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return null;
  } catch {
    return null;
  }
  return { pid, status: (lines[7] ?? '').trim() };
}

/**
 * Starts the configured cluster and waits until recovery ended and it was promoted, or until it
 * stopped with an error. pg_ctl counts a server in recovery without hot standby as started at
 * once, so the wait is on postmaster.pid turning `ready` (with hot_standby off, only after the
 * promotion) or the postmaster going away. Never throws for a failed recovery: the result says
 * what the log says.
 */
export async function startRecovery(setup: RestoreTools & Pick<RecoverySetup, 'pgData' | 'workDir'>, timeoutSeconds = 6 * 3600): Promise<RecoveryResult> {
  let started = true;
  try {
    await runTool(setup.tools.path('pg_ctl'), ['start', '--pgdata', setup.pgData, '--wait', '--timeout', '120', '--silent', '--log', join(setup.workDir, 'startup.log')], {
      runAs: setup.runAs,
      timeoutMs: 130_000,
    });
  } catch {
    started = false;
  }
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (started) {
    const pm = postmasterStatus(setup.pgData);
    if (pm === null) started = false;
    else if (pm.status === 'ready') break;
    else if (Date.now() > deadline) {
      await stopRestored(setup, 'immediate');
      started = false;
    } else await new Promise((r) => setTimeout(r, 200));
  }
  const log = readLogs(setup.pgData, setup.workDir);
  return { started, report: parseRecoveryLog(log), logTail: log.trim().split('\n').slice(-12).join('\n') };
}

/** Stops a restored cluster if it runs (immediate for scratch: it is thrown away). */
export async function stopRestored(setup: RestoreTools & { pgData: string }, mode: 'fast' | 'immediate'): Promise<void> {
  if (!existsSync(join(setup.pgData, 'postmaster.pid'))) return;
  await runTool(setup.tools.path('pg_ctl'), ['stop', '--pgdata', setup.pgData, '--mode', mode, '--wait', '--timeout', '120', '--silent'], { runAs: setup.runAs, timeoutMs: 130_000 }).catch(() => undefined);
}

export interface RecoveryRun extends RecoveryResult {
  /** The archive held no transaction after the target time; recovery went to its end instead (same data). */
  fellBackToEndOfArchive: boolean;
}

/**
 * Runs the configured recovery. PostgreSQL stops a time target at the first commit after it; when
 * the archive has none (nothing was committed between the target and the end of the archived WAL)
 * it refuses to promote. If the archive reaches the target (`reachesTarget`: a segment was written
 * until then or later), every transaction in it is at or before the target, so recovering to the
 * end of the archive gives exactly the state at the target; that is done then.
 */
export async function recover(setup: RestoreTools & RecoverySetup, reachesTarget: boolean, prefetch?: Omit<PrefetchProps, 'spoolDir' | 'runAs'>): Promise<RecoveryRun> {
  const prefetcher = prefetch ? new WalPrefetcher({ ...prefetch, spoolDir: join(setup.workDir, 'spool'), runAs: setup.runAs }) : null;
  prefetcher?.start();
  try {
    return await recoverOnce(setup, reachesTarget);
  } finally {
    await prefetcher?.stop();
  }
}

async function recoverOnce(setup: RestoreTools & RecoverySetup, reachesTarget: boolean): Promise<RecoveryRun> {
  const first = await startRecovery(setup);
  if (first.started || !first.report.endedBeforeTarget || !reachesTarget || typeof setup.target !== 'object' || !('time' in setup.target)) {
    return { ...first, fellBackToEndOfArchive: false };
  }
  retarget(setup, 'end-of-archive');
  // The second start's log must be read alone: keep the first one's beside the work files.
  const logDir = join(setup.pgData, 'log');
  for (const file of existsSync(logDir) ? readdirSync(logDir) : []) renameSync(join(logDir, file), join(setup.workDir, `first-attempt-${file}`));
  if (existsSync(join(setup.workDir, 'startup.log'))) renameSync(join(setup.workDir, 'startup.log'), join(setup.workDir, 'first-attempt-startup.log'));
  const second = await startRecovery(setup);
  return { ...second, fellBackToEndOfArchive: true };
}
