/**
 * The work directory of `restore cluster` (fetch settings, the copy of the age identity, the
 * startup log): `taskflow-restore-*` in the system's temporary directory, because that command
 * must work on a machine without a data directory. Its `owner.json` names the process that owns
 * it (pid and the kernel's start time, as scratch-cluster.ts does) and the data directory being
 * restored. A restore killed mid-way leaves the identity there and, often, a PostgreSQL replaying
 * WAL in that data directory; sweepRestoreWorkDirs (run by the next `restore cluster` and by
 * `taskflow start`) stops that server and removes the work directory. The restored data
 * directory itself is not removed then: it is the operator's `--to`. While a restore fills it, it
 * holds INCOMPLETE_MARKER (removed once the cluster recovered), so a later `restore cluster` into
 * the same directory knows it for a partial restore whose process is gone, and starts it over.
 */
import { chownSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { postmasterPidIn } from '../../postgres/local-cluster.ts';
import type { OsIdentity } from '../../postgres/tools.ts';
import { stopRestored, type RestoreTools } from './restored-cluster.ts';
import { processAlive, processStart } from './scratch-cluster.ts';
import { makeOwnedDir } from './wal-settings.ts';

const PREFIX = 'taskflow-restore-';
const OWNER_FILE = 'owner.json';

export interface RestoreWorkDirOwner {
  pid: number;
  processStart: string | null;
  startedAt: string;
  /** The data directory being restored (`--to`), whose server this restore starts. */
  pgData: string;
}

/** Makes this process's work directory for a restore into `pgData` (0700, the OS user's). */
export function createRestoreWorkDir(pgData: string, runAs: OsIdentity | null): string {
  // Made under a dot-name and renamed with its owner inside, so a sweep never sees one without it.
  const making = mkdtempSync(join(tmpdir(), `.${PREFIX}`));
  const owner: RestoreWorkDirOwner = { pid: process.pid, processStart: processStart(process.pid), startedAt: new Date().toISOString(), pgData };
  writeFileSync(join(making, OWNER_FILE), JSON.stringify(owner, null, 2) + '\n', { mode: 0o600 });
  const dir = join(tmpdir(), basename(making).slice(1));
  renameSync(making, dir);
  makeOwnedDir(dir, runAs);
  return dir;
}

export interface InterruptedClusterRestore extends RestoreWorkDirOwner {
  workDir: string;
  /** A server the restore had started in pgData was running and was stopped. */
  stoppedServer: boolean;
}

/** Whether pgData still runs with this work directory's restore settings (the restore's own server). */
function startedBy(workDir: string, pgData: string): boolean {
  try {
    return existsSync(join(pgData, 'postmaster.pid')) && readFileSync(join(pgData, 'postgresql.auto.conf'), 'utf8').includes(join(workDir, 'fetch.json'));
  } catch {
    return false;
  }
}

/**
 * Finds `restore cluster` work directories whose process is gone, stops the server each had
 * started in its data directory and removes the work directory (with the identity copy); returns
 * what it removed. Directories of live processes, and those it cannot read, are left alone.
 */
export async function sweepRestoreWorkDirs(props: RestoreTools): Promise<InterruptedClusterRestore[]> {
  const swept: InterruptedClusterRestore[] = [];
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(PREFIX))) {
    const workDir = join(tmpdir(), name);
    // Only a real directory made by this user or the PostgreSQL OS user (as createRestoreWorkDir
    // leaves it): anyone can create names in the temporary directory.
    const stat = lstatSync(workDir, { throwIfNoEntry: false });
    const owners = new Set([process.getuid?.(), props.runAs?.uid]);
    if (!stat?.isDirectory() || !owners.has(stat.uid)) continue;
    let owner: RestoreWorkDirOwner;
    try {
      owner = JSON.parse(readFileSync(join(workDir, OWNER_FILE), 'utf8')) as RestoreWorkDirOwner;
    } catch {
      continue;
    }
    if (!Number.isInteger(owner.pid) || owner.pid <= 0 || processAlive(owner)) continue;
    const stoppedServer = startedBy(workDir, owner.pgData);
    // Its restore_command reads this directory: stop the server before the directory goes.
    if (stoppedServer) await stopRestored({ ...props, pgData: owner.pgData }, 'fast');
    rmSync(workDir, { recursive: true, force: true });
    swept.push({ ...owner, workDir, stoppedServer });
  }
  return swept;
}

/** In a data directory while `restore cluster` fills it; removed once the cluster has recovered. */
export const INCOMPLETE_MARKER = 'taskflow-restore-incomplete.json';

export interface IncompleteRestore {
  pid: number;
  processStart: string | null;
  startedAt: string;
  /** The snapshot being restored. */
  snapshot: string;
}

/** Marks pgData as a restore under way by this process (a 0600 file of the OS user). */
export function markIncomplete(pgData: string, snapshot: string, runAs: OsIdentity | null): void {
  const marker: IncompleteRestore = { pid: process.pid, processStart: processStart(process.pid), startedAt: new Date().toISOString(), snapshot };
  const path = join(pgData, INCOMPLETE_MARKER);
  writeFileSync(path, JSON.stringify(marker, null, 2) + '\n', { mode: 0o600 });
  if (runAs) chownSync(path, runAs.uid, runAs.gid);
}

/** The restore is complete: pgData is an ordinary data directory. */
export function clearIncomplete(pgData: string): void {
  rmSync(join(pgData, INCOMPLETE_MARKER), { force: true });
}

/**
 * What occupies a non-empty pgData that a restore wants: `partial` (an interrupted restore's: its
 * process is gone and no server runs there, so it may be started over), `busy` (a restore still
 * under way, or a server running in it, with why), or `foreign` (anything else).
 */
export function occupant(pgData: string): { kind: 'partial'; restore: IncompleteRestore } | { kind: 'busy'; why: string } | { kind: 'foreign' } {
  let restore: IncompleteRestore;
  try {
    restore = JSON.parse(readFileSync(join(pgData, INCOMPLETE_MARKER), 'utf8')) as IncompleteRestore;
  } catch {
    return { kind: 'foreign' };
  }
  // Not a marker this code wrote: the directory is left alone like any other.
  if (!Number.isInteger(restore.pid) || restore.pid <= 0 || typeof restore.startedAt !== 'string' || typeof restore.snapshot !== 'string') return { kind: 'foreign' };
  if (processAlive(restore)) return { kind: 'busy', why: `a restore into it is under way (pid ${restore.pid}, started ${restore.startedAt})` };
  const postmaster = postmasterPidIn(pgData);
  if (postmaster !== null && Number.isInteger(postmaster) && postmaster > 0 && processAlive({ pid: postmaster, processStart: null })) {
    return { kind: 'busy', why: `it holds a partial restore whose PostgreSQL still runs (pid ${postmaster}); stop it first` };
  }
  return { kind: 'partial', restore };
}
