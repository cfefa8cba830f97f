/** Whether a node's postmaster is alive, dead, or dead but not yet reaped. */
import { readFileSync } from 'node:fs';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { poll } from './probe.ts';

export type PostmasterState = 'none' | 'alive' | 'zombie';

/** What postmaster.pid names: no process, a live one, or a zombie (killed, not yet reaped by init). */
export function postmasterState(cluster: LocalCluster): PostmasterState {
  const pid = cluster.postmasterPid();
  if (!pid) return 'none';
  try {
    // Linux: the state letter follows the command name in /proc/<pid>/stat.
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) ? 'zombie' : 'alive';
  } catch {
    try {
      process.kill(pid, 0);
      return 'alive';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'none';
    }
  }
}

/**
 * Waits until a killed postmaster has been reaped. Until then pg_ctl and PostgreSQL itself take it
 * for a running server; in containers whose init reaps slowly that lasts seconds.
 */
export async function awaitReaped(cluster: LocalCluster, timeoutMs = 30_000): Promise<void> {
  await poll(() => Promise.resolve(postmasterState(cluster) === 'zombie' ? undefined : true), timeoutMs, 50);
}
