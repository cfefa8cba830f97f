/**
 * Scratch clusters: a snapshot restored (plus archived WAL) into `<data dir>/backup-scratch/<job>/`
 * on a free loopback port, used by `backup verify --restore` and `restore tenant`, and removed
 * after. Each job directory holds `job.json` naming the process that owns it (pid and the kernel's
 * start time of that process, so a reused pid is not mistaken for it). A job whose process is gone
 * was interrupted: the next restore or verify stops its server, lets the caller undo what it made
 * on the live cluster, removes it and reports it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataDir } from '../../data-dir.ts';
import { freePort } from '../../postgres/local-cluster.ts';
import { makeOwnedDir } from './wal-settings.ts';
import { stopRestored, type RestoreTools } from './restored-cluster.ts';

export type ScratchPurpose = 'verify' | 'restore-tenant';

export interface ScratchRecord {
  id: string;
  purpose: ScratchPurpose;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a reused pid from the owner. */
  processStart: string | null;
  startedAt: string;
  /** Free-form facts of the job (tenant, snapshot, the database it is loading into on the live cluster). */
  facts: Record<string, string>;
}

export interface ScratchJob {
  record: ScratchRecord;
  dir: string;
  pgData: string;
  /** Fetch settings, identity copy, startup log: the OS user's, outside pgData. */
  workDir: string;
  port: number;
  /** Adds facts to job.json (for whoever cleans up after an interruption). */
  note(facts: Record<string, string>): void;
}

export function scratchRoot(dir: Pick<DataDir, 'root'>): string {
  return join(dir.root, 'backup-scratch');
}

/** Field 22 of /proc/<pid>/stat (the process's start time), or null when it is gone. */
export function processStart(pid: number): string | null {
  try {
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether the process a record names still runs (and is that process, not a reuse of its pid). */
export function processAlive(record: Pick<ScratchRecord, 'pid' | 'processStart'>): boolean {
  try {
    process.kill(record.pid, 0);
  } catch (err) {
    // EPERM: it runs, as another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = processStart(record.pid);
  return record.processStart === null || start === null || start === record.processStart;
}

function writeRecord(dir: string, record: ScratchRecord): void {
  writeFileSync(join(dir, 'job.json.tmp'), JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  // rename is atomic; a reader sees the old record or the new one.
  renameSync(join(dir, 'job.json.tmp'), join(dir, 'job.json'));
}

/** Makes a job directory for this process: `pgdata/` (0700, the OS user's) and `work/`. */
export async function createScratch(props: RestoreTools & { dir: Pick<DataDir, 'root'>; purpose: ScratchPurpose; facts?: Record<string, string> }): Promise<ScratchJob> {
  const root = scratchRoot(props.dir);
  mkdirSync(root, { recursive: true, mode: 0o711 });
  const id = `${props.purpose}-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
  const dir = join(root, id);
  // Made under a dot-name and renamed with its record inside, so a sweep never sees a job without one.
  const making = join(root, `.${id}`);
  mkdirSync(making, { mode: 0o711 });
  const record: ScratchRecord = { id, purpose: props.purpose, pid: process.pid, processStart: processStart(process.pid), startedAt: new Date().toISOString(), facts: props.facts ?? {} };
  writeRecord(making, record);
  renameSync(making, dir);
  const pgData = join(dir, 'pgdata');
  const workDir = join(dir, 'work');
  makeOwnedDir(pgData, props.runAs);
  makeOwnedDir(workDir, props.runAs);
  return {
    record,
    dir,
    pgData,
    workDir,
    port: await freePort(),
    note(facts) {
      record.facts = { ...record.facts, ...facts };
      writeRecord(dir, record);
    },
  };
}

/** Stops the job's server and removes its data, keeping the job's record (its work is not over). */
export async function releaseScratchData(job: Pick<ScratchJob, 'pgData'>, tools: RestoreTools): Promise<void> {
  await stopRestored({ ...tools, pgData: job.pgData }, 'immediate');
  rmSync(job.pgData, { recursive: true, force: true });
}

/** Stops the job's server and removes its directory. */
export async function removeScratch(job: Pick<ScratchJob, 'dir' | 'pgData'>, tools: RestoreTools): Promise<void> {
  await stopRestored({ ...tools, pgData: job.pgData }, 'immediate');
  rmSync(job.dir, { recursive: true, force: true });
}

/**
 * Finds jobs whose process is gone, calls `undo` with each record (to remove what the job made
 * elsewhere), stops their servers and removes them; returns their records. Jobs of live processes
 * are left alone.
 */
export async function sweepScratch(props: RestoreTools & { dir: Pick<DataDir, 'root'>; undo?: (record: ScratchRecord) => Promise<void> }): Promise<ScratchRecord[]> {
  const root = scratchRoot(props.dir);
  if (!existsSync(root)) return [];
  const swept: ScratchRecord[] = [];
  for (const id of readdirSync(root).filter((name) => !name.startsWith('.'))) {
    const dir = join(root, id);
    let record: ScratchRecord;
    try {
      record = JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')) as ScratchRecord;
    } catch {
      // No readable record: a job cut off while it was being created, before it did anything.
      record = { id, purpose: id.startsWith('verify') ? 'verify' : 'restore-tenant', pid: 0, processStart: null, startedAt: '', facts: {} };
    }
    if (record.pid !== 0 && processAlive(record)) continue;
    await props.undo?.(record);
    await removeScratch({ dir, pgData: join(dir, 'pgdata') }, props);
    swept.push(record);
  }
  return swept;
}
