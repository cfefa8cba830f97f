/**
 * Fixtures of the snapshot, WAL archive and restore suites: a platform with a filesystem
 * repository and the WAL archive installed (archive_timeout short), its age identity in a 0600
 * file, and ways to wait for the archive and to read what PostgreSQL and the repository hold.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { generateIdentity, parseIdentity } from '../src/platform/backup/age-keys.ts';
import type { RepositoryConfig } from '../src/platform/backup/config.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { ensureWalArchiving } from '../src/platform/backup/physical/wal-archive.ts';
import type { Platform } from '../src/platform/platform.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { poll } from '../src/platform/replication/probe.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { fsRepository, type BackupTestPlatform } from './backup-export-fixtures.ts';
import { startTestPlatform, tempDir } from './helpers/platform.ts';

export interface PhysicalTestPlatform extends BackupTestPlatform {
  /** The primary repository's directory and configuration. */
  repositoryDir: string;
  repositoryConfig: RepositoryConfig;
  /** A 0600 file holding the age identity, for restores. */
  identityFile: string;
  /** The age identity text (for TASKFLOW_BACKUP_IDENTITY). */
  identity: string;
}

/**
 * A platform whose backups go to a filesystem repository `local` (plus `extra` repositories), with
 * archive_timeout of `archiveTimeoutSeconds` and the WAL archive installed.
 */
export async function startPhysicalPlatform(
  options: { archiveTimeoutSeconds?: number; extra?: (root: string) => RepositoryConfig[]; primary?: RepositoryConfig } = {},
): Promise<PhysicalTestPlatform> {
  const root = tempDir('physical');
  const repositoryDir = join(root, 'repo');
  mkdirSync(repositoryDir, { mode: 0o711 });
  chmodSync(repositoryDir, 0o711);
  const keys = generateIdentity();
  const identityFile = join(root, 'identity.txt');
  writeFileSync(identityFile, `# test key\n${keys.identity}\n`, { mode: 0o600 });
  const backup = {
    allowedJurisdictions: ['DE'],
    recipients: [keys.recipient],
    repositories: [options.primary ?? fsRepository('local', repositoryDir), ...(options.extra?.(root) ?? [])],
    walArchiveTimeoutSeconds: options.archiveTimeoutSeconds ?? 60,
  };
  const tp = await startTestPlatform({ overrides: { backup } });
  await ensureWalArchiving(tp.platform);
  return {
    ...tp,
    identities: [parseIdentity(keys.identity)],
    backup,
    repositoryDir,
    repositoryConfig: backup.repositories[0]!,
    identityFile,
    identity: keys.identity,
    writeConfigFile(section = backup) {
      writeFileSync(join(tp.dataDir, 'config.json'), JSON.stringify({ backup: section }));
    },
    async cleanup() {
      // Stopping waits for the archiver to push what is left; the tests do not need that.
      await tp.platform.control.query(`ALTER SYSTEM SET archive_command = '/bin/true'`).catch(() => undefined);
      await tp.platform.control.query('SELECT pg_reload_conf()').catch(() => undefined);
      await tp.cleanup();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` with an admin connection to one database of the platform's cluster. */
export async function withDb<T>(platform: Platform, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(clientConfig(platform.target, database));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Closes the current WAL segment and waits until PostgreSQL reports it archived (or `timeoutMs`
 * passes); returns the segment's file name.
 */
export async function switchAndWaitArchived(platform: Platform, timeoutMs = 30_000): Promise<string> {
  const res = await platform.control.query<{ file: string }>(`SELECT pg_walfile_name(pg_switch_wal()) AS file`);
  const file = res.rows[0]?.file ?? '';
  const done = await poll(async () => {
    const r = await platform.control.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
    const last = r.rows[0]?.last ?? '';
    return last >= file ? true : undefined;
  }, timeoutMs, 100);
  if (!done) throw new Error(`WAL segment ${file} was not archived within ${timeoutMs} ms`);
  return file;
}

/** A tenant with a project and `tasks` tasks titled `<prefix> n`. */
export async function tenantWithTasks(platform: Platform, slug: string, tasks: number, prefix = 'Task'): Promise<Tenant> {
  const { tenant } = await createTenant({ platform, slug, actor: 'test' });
  await withDb(platform, tenant.databaseName, async (client) => {
    const project = await client.query<{ id: string }>(`INSERT INTO app.projects (key, name) VALUES ('OPS', 'Operations') RETURNING id`);
    await client.query(`INSERT INTO app.statuses (project_id, name, category, position) VALUES ($1, 'To do', 'todo', 0)`, [project.rows[0]?.id]);
    for (let n = 1; n <= tasks; n++) await addTask(client, `${prefix} ${n}`);
  });
  return tenant;
}

/** Adds a task to the tenant's OPS project (through its connection `client`). */
export async function addTask(client: pg.ClientBase, title: string): Promise<void> {
  // Board ranks arrived with a later schema version; set one when the column is there.
  const ranked = (await client.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'tasks' AND column_name = 'rank'`)).rowCount === 1;
  await client.query(
    `INSERT INTO app.tasks (project_id, number, title, status_id, reporter_kind${ranked ? ', rank' : ''})
     SELECT p.id, p.next_task_number, $1, s.id, 'system'${ranked ? ', p.next_task_number * 65536' : ''}
       FROM app.projects p JOIN app.statuses s ON s.project_id = p.id WHERE p.key = 'OPS'`,
    [title],
  );
  await client.query(`UPDATE app.projects SET next_task_number = next_task_number + 1 WHERE key = 'OPS'`);
}

/** The titles of a tenant's tasks, in number order. */
export async function taskTitles(platform: Platform, database: string): Promise<string[]> {
  return withDb(platform, database, async (client) => (await client.query<{ title: string }>('SELECT title FROM app.tasks ORDER BY number')).rows.map((r) => r.title));
}

/** The database server's clock now (commit timestamps come from it). */
export async function serverNow(platform: Platform): Promise<Date> {
  const res = await platform.control.query<{ now: Date }>('SELECT clock_timestamp() AS now');
  return res.rows[0]?.now ?? new Date();
}

/**
 * A platform for restores to interrupt: its config file written, tenant acme with a table that
 * takes a moment to load (40 000 long comments), and a snapshot of it.
 */
export async function startInterruptiblePlatform(): Promise<{ tp: PhysicalTestPlatform; acme: Tenant }> {
  const tp = await startPhysicalPlatform();
  tp.writeConfigFile();
  const acme = await tenantWithTasks(tp.platform, 'acme', 3, 'Acme');
  await withDb(tp.platform, acme.databaseName, (c) => c.query(`INSERT INTO app.comments (task_id, body, author_kind) SELECT t.id, repeat(md5(g::text), 20), 'system' FROM app.tasks t, generate_series(1, 40000) g WHERE t.number = 1`));
  await takeSnapshot(tp.platform);
  return { tp, acme };
}
