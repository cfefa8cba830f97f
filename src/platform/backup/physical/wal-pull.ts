/**
 * Draining the WAL spools of nodes on other machines (wal-spool.ts): `taskflow wal pull`, and every
 * `backup.remoteWalPullSeconds` from `taskflow start` (one app host at a time, under an advisory
 * lock). Each spooled file is copied here over SSH, checked against its listed size, pushed
 * through the same pipeline and catalog records as `taskflow wal archive` (storeWalFile), and only
 * then removed from the spool. A run cut off anywhere repeats harmlessly: a file found archived
 * with the same contents is recorded and removed, one with other contents is refused and stays.
 */
import { chownSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { Platform } from '../../platform.ts';
import { mustRunRemote, runRemoteToFile, shellQuote, describeRemote, type RemoteNode } from '../../replication/remote-shell.ts';
import { clusterIdentifier } from '../service.ts';
import { openRepository, type RepositoryConfig } from '../config.ts';
import { manifestName } from '../manifest.ts';
import { resolveRunAs, type OsIdentity } from '../../postgres/tools.ts';
import { errorText, failedKey, resolveAlerts } from '../outcomes.ts';
import { parseWalFileName } from './wal-names.ts';
import { storeWalFile } from './wal-archiver.ts';
import { listSpool, remoteArchiveNodes, walSpoolDir, type RemoteArchiveNode, type SpoolEntry } from './wal-spool.ts';

export type PullPlatform = Pick<Platform, 'config' | 'dir' | 'target' | 'control' | 'alerts' | 'log'>;

export const WAL_PULL_KEY = failedKey('wal-pull');
/** Advisory lock (two-key form, beside wal-health's install lock) held by the host that pulls. */
const PULL_LOCK = [7_317_301, 2];

export interface NodePullReport {
  node: string;
  primary: boolean;
  archived: number;
  alreadyArchived: number;
  /** Raw bytes of the files archived by this run. */
  bytes: number;
  /** Files left in the spool (not WAL files, or after a failure). */
  left: string[];
  error?: string;
}

/**
 * Removes `files` from the node's spool (one connection), and temporary copies older than an hour
 * (an archive_command cut off between its copy and its rename leaves one).
 */
async function removeFromSpool(node: RemoteNode, files: string[]): Promise<void> {
  if (files.length === 0) return;
  await mustRunRemote(
    node,
    'removing pulled WAL files from the spool',
    `cd ${shellQuote(walSpoolDir(node))} || exit 1\nrm -f -- ${files.map(shellQuote).join(' ')} || exit 1\nfind . -maxdepth 1 -type f -name '.*' -mmin +60 -exec rm -f {} + 2>/dev/null\nexit 0`,
  );
}

/** Copies one spooled file here; refuses a copy whose size is not the listed one. */
async function fetchSpooled(node: RemoteNode, entry: SpoolEntry, path: string): Promise<void> {
  const r = await runRemoteToFile(node, `exec cat -- ${shellQuote(`${walSpoolDir(node)}/${entry.file}`)}`, path);
  if (r.status !== 0) throw new Error(`reading ${entry.file} from the spool of ${describeRemote(node)} failed: ${r.stderr.trim() || `exit ${r.status}`}`);
  const size = statSync(path).size;
  if (size !== entry.bytes) throw new Error(`${entry.file} from the spool of ${describeRemote(node)} arrived with ${size} bytes, not ${entry.bytes}`);
}

/**
 * In a filesystem repository, WAL objects belong to the PostgreSQL OS user, as the archiver there
 * writes them: a restore's restore_command runs as that user and must read what this host pulled.
 */
function ownLikeTheArchiver(repository: RepositoryConfig, name: string, runAs: OsIdentity | null): void {
  if (repository.kind !== 'filesystem' || !runAs) return;
  let dir = repository.path;
  for (const part of name.split('/').slice(0, -1)) {
    dir = join(dir, part);
    chownSync(dir, runAs.uid, runAs.gid);
  }
  for (const object of [name, manifestName(name)]) chownSync(join(repository.path, object), runAs.uid, runAs.gid);
}

/** Drains one node's spool; throws nothing (the report carries the error). */
async function pullNode(platform: PullPlatform, node: RemoteArchiveNode, work: string, systemIdentifier: string): Promise<NodePullReport> {
  const backup = platform.config.backup;
  const report: NodePullReport = { node: node.name, primary: node.primary, archived: 0, alreadyArchived: 0, bytes: 0, left: [] };
  const done: string[] = [];
  const primaryName = backup.primary ?? backup.repositories[0]?.name;
  const primary = backup.repositories.find((r) => r.name === primaryName);
  if (!primary) return { ...report, error: 'backup.primary names no repository' };
  const repository = openRepository(primary);
  const runAs = resolveRunAs(platform.config.postgres.osUser);
  try {
    const entries = await listSpool(node.remote);
    for (const [i, entry] of entries.entries()) {
      if (!parseWalFileName(entry.file)) {
        report.left.push(entry.file);
        continue;
      }
      const path = join(work, entry.file);
      try {
        await fetchSpooled(node.remote, entry, path);
        const result = await storeWalFile({
          target: platform.target,
          control: platform.control,
          alerts: platform.alerts,
          log: platform.log,
          repository,
          recipients: backup.recipients,
          compressionLevel: backup.compressionLevel,
          systemIdentifier,
          file: entry.file,
          source: path,
          walEndAt: entry.modifiedAt,
        });
        try {
          ownLikeTheArchiver(primary, result.object, runAs);
        } catch (err) {
          platform.log.warn({ object: result.object, err: errorText(err) }, 'a pulled WAL object could not be given to the PostgreSQL OS user; a restore may not read it');
        }
        done.push(entry.file);
        if (result.outcome === 'archived') {
          report.archived++;
          report.bytes += result.bytes;
        } else report.alreadyArchived++;
      } catch (err) {
        report.error = `${entry.file}: ${errorText(err)}`;
        report.left.push(...entries.slice(i).map((e) => e.file));
        break;
      } finally {
        rmSync(path, { force: true });
      }
      // Removed in batches: a run cut off between storing and removing only repeats the store.
      if (done.length >= 16) await removeFromSpool(node.remote, done.splice(0));
    }
  } catch (err) {
    report.error ??= errorText(err);
  } finally {
    await removeFromSpool(node.remote, done).catch((err: unknown) => {
      report.error ??= `removing pulled files: ${errorText(err)}`;
      report.left.push(...done);
    });
    await repository.close().catch(() => undefined);
  }
  return report;
}

/**
 * Drains the spools of the remote nodes (`all`), or of the primary alone when it is remote (the
 * default); returns null when another host holds the pull lock and `waitMs` passed (0: do not wait).
 * Alerts `backup.failed:wal-pull` while the primary's spool cannot be drained, resolved once it is.
 */
export async function pullWalSpools(platform: PullPlatform, options: { all?: boolean; waitMs?: number } = {}): Promise<NodePullReport[] | null> {
  const nodes = remoteArchiveNodes(platform).filter((n) => options.all === true || n.primary);
  if (nodes.length === 0) return [];
  const lock = await platform.control.connect();
  let locked = false;
  try {
    locked = await takeLock(lock, options.waitMs ?? 0);
    if (!locked) return null;
    const work = join(platform.dir.root, 'wal-pull');
    mkdirSync(work, { recursive: true, mode: 0o700 });
    const systemIdentifier = await clusterIdentifier(platform);
    const reports: NodePullReport[] = [];
    for (const node of nodes) reports.push(await pullNode(platform, node, work, systemIdentifier));
    await alertPrimaryPull(platform, reports);
    return reports;
  } finally {
    const broken = locked ? await lock.query('SELECT pg_advisory_unlock($1, $2)', PULL_LOCK).then(() => false, () => true) : false;
    lock.release(broken);
  }
}

async function takeLock(client: pg.PoolClient, waitMs: number): Promise<boolean> {
  if (waitMs <= 0) return (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', PULL_LOCK)).rows[0]?.ok === true;
  await client.query(`SET lock_timeout = ${Math.ceil(waitMs)}`);
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', PULL_LOCK);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') return false;
    throw err;
  } finally {
    await client.query('RESET lock_timeout');
  }
}

async function alertPrimaryPull(platform: PullPlatform, reports: NodePullReport[]): Promise<void> {
  const primary = reports.find((r) => r.primary);
  if (!primary) return;
  if (!primary.error) {
    await resolveAlerts(platform, [WAL_PULL_KEY], 'the remote primary\'s WAL spool is drained again');
    return;
  }
  await platform.alerts.raise({
    code: 'backup.failed',
    key: WAL_PULL_KEY,
    severity: 'critical',
    summary: `WAL of the remote primary ${primary.node} could not be pulled from its spool (${primary.left.length} file(s) wait there): ${primary.error}`.slice(0, 500),
    details: { node: primary.node, left: primary.left.slice(0, 20) },
  });
}

/**
 * The periodic pull of `taskflow start`: every `intervalMs`, the primary's spool when the primary
 * is remote, and the other remote nodes' spools every sixth run (an old primary's last files).
 */
export class WalSpoolPuller {
  readonly #platform: PullPlatform;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #runs = 0;
  #stopped = false;

  constructor(platform: PullPlatform, intervalMs: number) {
    this.#platform = platform;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#schedule();
  }

  /** One run (also what the timer does); a failure is logged, the primary's alerted. */
  async runOnce(): Promise<NodePullReport[] | null> {
    const all = this.#runs++ % 6 === 0;
    try {
      const reports = await pullWalSpools(this.#platform, { all });
      for (const r of reports ?? []) {
        if (r.archived > 0) this.#platform.log.info({ node: r.node, files: r.archived, bytes: r.bytes }, 'WAL pulled from a remote spool');
        if (r.error && r.primary) this.#platform.log.warn({ node: r.node, err: r.error }, 'pulling WAL from the remote primary failed');
      }
      return reports;
    } catch (err) {
      this.#platform.log.warn({ err: errorText(err) }, 'the WAL pull did not run');
      return null;
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.runOnce().then(() => {
        this.#running = null;
        this.#schedule();
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a run under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }
}
