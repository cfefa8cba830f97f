/**
 * Draining the WAL spools of nodes on other machines (wal-spool.ts): `taskflow wal pull`, and every
 * `backup.remoteWalPullSeconds` from `taskflow start` (one app host at a time, under an advisory
 * lock). The spooled files are copied here over SSH in batches (one connection for up to 128 MiB,
 * the next batch fetched while one is stored), each checked against its listed size, pushed through
 * the same pipeline and catalog records as `taskflow wal archive` (storeWalFile), and only then
 * removed from the spool. A run cut off anywhere repeats harmlessly: a file found archived with the
 * same contents is recorded and removed, one with other contents is refused and stays.
 */
import { spawnSync } from 'node:child_process';
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
    { shared: true },
  );
}

/** Files fetched in one tar stream at most (the connection is shared: see remote-shell.ts)… */
const BATCH_FILES = 16;
/** …and at most these bytes (eight segments), staged here before they are stored: two batches at a time. */
const BATCH_BYTES = 128 * 1024 * 1024;

/** The spooled WAL files in batches for fetchBatch, in spool order. */
function batches(entries: SpoolEntry[]): SpoolEntry[][] {
  const out: SpoolEntry[][] = [];
  let current: SpoolEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length > 0 && (current.length >= BATCH_FILES || bytes + entry.bytes > BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entry.bytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * Copies a batch of spooled files into `dir` over one SSH connection (a tar stream of them, made
 * there by tar and read here by GNU tar); refuses a copy whose size is not the listed one.
 */
async function fetchBatch(node: RemoteNode, entries: SpoolEntry[], dir: string): Promise<void> {
  const archive = join(dir, '.batch.tar');
  try {
    const names = entries.map((e) => shellQuote(e.file)).join(' ');
    const r = await runRemoteToFile(node, `cd ${shellQuote(walSpoolDir(node))} || exit 1
exec tar -cf - -- ${names}`, archive, { shared: true });
    if (r.status !== 0) throw new Error(`reading ${entries.map((e) => e.file).join(', ')} from the spool of ${describeRemote(node)} failed: ${r.stderr.trim() || `exit ${r.status}`}`);
    const extracted = spawnSync('tar', ['--extract', '--file', archive, '--directory', dir, '--no-same-owner', '--no-same-permissions', '--', ...entries.map((e) => e.file)], { encoding: 'utf8' });
    if (extracted.status !== 0) throw new Error(`the files from the spool of ${describeRemote(node)} did not unpack: ${(extracted.stderr || extracted.error?.message || `tar exit ${extracted.status}`).trim()}`);
  } finally {
    rmSync(archive, { force: true });
  }
  for (const entry of entries) {
    const size = statSync(join(dir, entry.file)).size;
    if (size !== entry.bytes) throw new Error(`${entry.file} from the spool of ${describeRemote(node)} arrived with ${size} bytes, not ${entry.bytes}`);
  }
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
    report.left.push(...entries.filter((e) => !parseWalFileName(e.file)).map((e) => e.file));
    const wal = entries.filter((e) => parseWalFileName(e.file));
    const stored = new Set<string>();
    const list = batches(wal);
    const dirOf = (b: number) => join(work, `batch-${b}`);
    /** Fetches batch `b`; settles with its error or null (never rejects, so a prefetch left behind is no unhandled rejection). */
    const fetchInto = (b: number): Promise<Error | null> => {
      mkdirSync(dirOf(b), { recursive: true, mode: 0o700 });
      return fetchBatch(node.remote, list[b] as SpoolEntry[], dirOf(b)).then(
        () => null,
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      );
    };
    // The next batch is fetched while this one is stored: the SSH login and transfer overlap the pipeline's CPU.
    let next: Promise<Error | null> | null = list.length > 0 ? fetchInto(0) : null;
    let nextIndex = 0;
    try {
      for (const [b, batch] of list.entries()) {
        const fetched = next as Promise<Error | null>;
        next = b + 1 < list.length ? fetchInto(b + 1) : null;
        nextIndex = b + 1;
        try {
          const failed = await fetched;
          if (failed) throw failed;
          for (const entry of batch) {
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
              source: join(dirOf(b), entry.file),
              walEndAt: entry.modifiedAt,
            });
            try {
              ownLikeTheArchiver(primary, result.object, runAs);
            } catch (err) {
              platform.log.warn({ object: result.object, err: errorText(err) }, 'a pulled WAL object could not be given to the PostgreSQL OS user; a restore may not read it');
            }
            done.push(entry.file);
            stored.add(entry.file);
            if (result.outcome === 'archived') {
              report.archived++;
              report.bytes += result.bytes;
            } else report.alreadyArchived++;
          }
        } catch (err) {
          const left = wal.filter((e) => !stored.has(e.file)).map((e) => e.file);
          report.error = `${left[0] ?? 'spool'}: ${errorText(err)}`;
          report.left.push(...left);
          break;
        } finally {
          rmSync(dirOf(b), { recursive: true, force: true });
        }
        // Removed batch by batch: a run cut off between storing and removing only repeats the store.
        await removeFromSpool(node.remote, done);
        done.length = 0;
      }
    } finally {
      // A prefetch still under way after a failure: let it end, then drop what it fetched.
      if (next) {
        await next;
        rmSync(dirOf(nextIndex), { recursive: true, force: true });
      }
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

  /** How many runs have started. */
  get runs(): number {
    return this.#runs;
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
