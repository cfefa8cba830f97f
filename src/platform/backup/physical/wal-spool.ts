/**
 * WAL archiving on a node on another machine, which has PostgreSQL and an SSH login but no
 * TaskFlow: its archive_command is a small shell command that copies each WAL file into a spool
 * directory beside its PGDATA (`<pgdata>.walspool`, 0700, the PostgreSQL OS user's), and the
 * TaskFlow host drains that spool over SSH through the same pipeline and catalog as `taskflow wal
 * archive` (wal-pull.ts). The command is written whenever a remote node is built or rebuilt and
 * whenever archiving is installed, so it is already right when the node is promoted.
 *
 * The promise of `backup.walArchiveTimeoutSeconds` (T) holds across the two steps: a commit is in
 * a segment closed at most archive_timeout (A) later, spooled at once, and pulled at most
 * `backup.remoteWalPullSeconds` (P) after that. So a remote node gets A = T − P (at least 1 s):
 * with the defaults 60 and 10, archive_timeout is 50 s, and at most 60 s of committed data (plus
 * the pull's own transfer time) are ever only on that machine.
 */
import type { Config } from '../../../config.ts';
import type { Platform } from '../../platform.ts';
import { readState } from '../../data-dir.ts';
import { hasTopology, readTopology } from '../../replication/topology.ts';
import { autoConfScript, mustRunRemote, shellQuote, type RemoteNode } from '../../replication/remote-shell.ts';
import { backupsConfigured, type BackupConfig } from '../config.ts';

/** Ends every spool archive_command, so TaskFlow (and a reader of postgresql.auto.conf) knows it. */
export const SPOOL_COMMAND_MARK = '# taskflow wal spool';

/** The spool of a remote node: beside its PGDATA, so a rebuild (which moves PGDATA aside) keeps it. */
export function walSpoolDir(node: Pick<RemoteNode, 'dataDir'>): string {
  return `${node.dataDir}.walspool`;
}

/** One word for PostgreSQL's archive_command: single-quoted for sh, `%` doubled (PostgreSQL expands %p, %f, %%). */
function commandWord(word: string): string {
  return shellQuote(word).replaceAll('%', '%%');
}

/**
 * The archive_command of a remote node: %p copied to `<spool>/.%f.<pid>` (mtime kept, for the
 * catalog's data_at), fsynced, renamed to `<spool>/%f`, the directory fsynced; success when an
 * identical file is already there (a retry), failure (PostgreSQL keeps the WAL and retries) when a
 * different one is. POSIX sh, cp, cmp, mv, mkdir and sync only (`sync FILE` where it takes files,
 * a full sync where it does not).
 */
export function spoolArchiveCommand(spoolDir: string): string {
  return [
    `d=${commandWord(spoolDir)}; f="$d/%f"; t="$d/.%f.$$"`,
    'mkdir -p -m 700 "$d" || exit 1',
    'if [ -f "$f" ]; then cmp -s "%p" "$f" && exit 0; echo "taskflow wal spool: $f exists with other contents" >&2; exit 1; fi',
    'cp -p "%p" "$t" && { sync "$t" 2>/dev/null || sync; } && mv -f "$t" "$f" && { sync "$d" 2>/dev/null || sync; } || { rm -f "$t"; exit 1; }',
  ].join('; ') + ` ${SPOOL_COMMAND_MARK}`;
}

/** Whether an archive_command is a spool command (of any node). */
export function isSpoolArchiveCommand(command: string): boolean {
  return command.endsWith(SPOOL_COMMAND_MARK);
}

/** How often the TaskFlow host drains a remote primary's spool (backup.remoteWalPullSeconds). */
export function remoteWalPullSeconds(backup: Pick<BackupConfig, 'remoteWalPullSeconds'>): number {
  return backup.remoteWalPullSeconds;
}

/** archive_timeout on a remote node: walArchiveTimeoutSeconds minus the pull interval, at least 1 s (module comment). */
export function remoteArchiveTimeoutSeconds(backup: Pick<BackupConfig, 'walArchiveTimeoutSeconds' | 'remoteWalPullSeconds'>): number {
  return Math.max(1, backup.walArchiveTimeoutSeconds - remoteWalPullSeconds(backup));
}

/** archive_command and archive_timeout for a remote node's postgresql.auto.conf; none while backups are not configured. */
export function remoteArchiveSettings(config: Pick<Config, 'backup'>, node: Pick<RemoteNode, 'dataDir'>): Record<string, string> {
  if (!backupsConfigured(config.backup)) return {};
  return { archive_command: spoolArchiveCommand(walSpoolDir(node)), archive_timeout: String(remoteArchiveTimeoutSeconds(config.backup)) };
}

/**
 * Writes the spool archive settings into a remote node's postgresql.auto.conf (over SSH), makes its
 * spool, and reloads it when it runs. For standbys: a primary gets them through ALTER SYSTEM.
 */
export async function configureRemoteArchiving(node: RemoteNode, settings: Record<string, string>): Promise<void> {
  if (Object.keys(settings).length === 0) return;
  const pgCtl = `${shellQuote(`${node.pgBin}/pg_ctl`)} --pgdata ${shellQuote(node.dataDir)}`;
  const spool = shellQuote(walSpoolDir(node));
  await mustRunRemote(
    node,
    'setting the WAL spool archive_command',
    [
      `test -f ${shellQuote(`${node.dataDir}/PG_VERSION`)} || { echo "no PostgreSQL cluster in ${node.dataDir.replaceAll('"', '')}" >&2; exit 1; }`,
      `mkdir -p -m 700 ${spool} || exit 1`,
      autoConfScript(`${node.dataDir}/postgresql.auto.conf`, settings),
      `if ${pgCtl} status >/dev/null 2>&1; then ${pgCtl} reload --silent || exit 1; fi`,
    ].join('\n'),
  );
}

/** One file waiting in a spool. */
export interface SpoolEntry {
  file: string;
  bytes: number;
  /** Its mtime: when PostgreSQL last wrote the WAL file (cp -p keeps it). */
  modifiedAt: Date;
}

/**
 * The files waiting in a remote node's spool, oldest name first (segments of a timeline, then its
 * successor's history file, then that timeline's segments). Temporary files (a copy under way or cut
 * off) start with a dot and are not listed. An absent spool is empty.
 */
export async function listSpool(node: RemoteNode): Promise<SpoolEntry[]> {
  const out = await mustRunRemote(
    node,
    'listing the WAL spool',
    `d=${shellQuote(walSpoolDir(node))}\n[ -d "$d" ] || exit 0\ncd "$d" || exit 1\nfor f in *; do [ -f "$f" ] || continue; stat -c '%Y %s %n' -- "$f" || exit 1; done`,
    { shared: true },
  );
  const entries: SpoolEntry[] = [];
  for (const line of out.split('\n')) {
    const m = /^(\d+) (\d+) (.+)$/.exec(line.trim());
    if (m?.[1] && m[2] && m[3]) entries.push({ file: m[3], bytes: Number(m[2]), modifiedAt: new Date(Number(m[1]) * 1000) });
  }
  return entries.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

export interface RemoteArchiveNode {
  name: string;
  remote: RemoteNode;
  /** Whether it is the primary recorded now. */
  primary: boolean;
}

/** The nodes on other machines, the primary first; none without a recorded topology. */
export function remoteArchiveNodes(platform: Pick<Platform, 'dir'>): RemoteArchiveNode[] {
  if (!hasTopology(platform.dir)) return [];
  const mainPort = readState(platform.dir)?.managed?.port;
  if (mainPort === undefined) return [];
  const topology = readTopology(platform.dir, mainPort);
  const nodes: RemoteArchiveNode[] = [];
  for (const [name, record] of Object.entries(topology.nodes)) {
    if (record.remote) nodes.push({ name, remote: record.remote, primary: name === topology.primary && !topology.pending });
  }
  return nodes.sort((a, b) => Number(b.primary) - Number(a.primary));
}

/** The primary recorded now when it is on another machine, else null. */
export function remotePrimary(platform: Pick<Platform, 'dir'>): RemoteArchiveNode | null {
  return remoteArchiveNodes(platform).find((n) => n.primary) ?? null;
}
