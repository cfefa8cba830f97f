/** What a drill does to nodes: kill them as a crash would, and take their directories away as a lost site would. */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { postmasterState } from '../replication/processes.ts';
import { poll } from '../replication/probe.ts';
import { preciseNow } from './writers.ts';

export interface Killed {
  /** The postmaster's pid, or null when the node was not running. */
  pid: number | null;
  /** Epoch ms the signal was sent. */
  at: number;
}

/**
 * SIGKILL of a node's postmaster and its children (pg_ctl starts it as the leader of its own
 * process group), as a power cut would; resolves once the postmaster is dead (a zombie that init
 * has not reaped yet counts as dead).
 */
export async function killNode(cluster: LocalCluster): Promise<Killed> {
  const pid = postmasterState(cluster) === 'alive' ? cluster.postmasterPid() : null;
  if (pid === null) return { pid, at: preciseNow() };
  return killPostmaster(pid, () => postmasterState(cluster) === 'alive', cluster.pgData);
}

/** Whether a pid runs (a zombie counts as dead), from /proc on Linux. */
export function processRuns(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** SIGKILL of a postmaster's process group (else of the postmaster alone); resolves once `alive` says it is dead. */
export async function killPostmaster(pid: number, alive: () => boolean, pgData: string): Promise<Killed> {
  const at = preciseNow();
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  const dead = await poll(() => Promise.resolve(alive() ? undefined : true), 10_000, 10);
  if (!dead) throw new Error(`the postmaster of ${pgData} (pid ${pid}) survived SIGKILL`);
  return { pid, at };
}

/** Renames `path` to `<path>.<label>-<time>` (as if the disk were gone) and returns the new name; null when there was nothing. */
export function moveAside(path: string, label: string): string | null {
  if (!existsSync(path)) return null;
  const aside = `${path}.${label}-${new Date().toISOString().replaceAll(':', '-')}`;
  renameSync(path, aside);
  return aside;
}
