/**
 * Fixtures of the export, schedule, retention and CLI suites: a real cluster and platform with a
 * backup configuration (filesystem and SFTP repositories, a fresh age key pair), tenants filled
 * with real rows, and what the repositories hold as seen from outside the drivers.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { createProject } from '../src/app/work/projects/commands.ts';
import { createTask } from '../src/app/work/tasks/commands.ts';
import type { Config } from '../src/config.ts';
import { generateIdentity, parseIdentity, type AgeIdentity } from '../src/platform/backup/age-keys.ts';
import type { RepositoryConfig } from '../src/platform/backup/config.ts';
import type { Platform } from '../src/platform/platform.ts';
import { clientConfig, escapeIdentifier } from '../src/platform/postgres/connection.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import type { TestSshd } from './backup-fixtures.ts';
import { startTestPlatform, type TestPlatform } from './helpers/platform.ts';

export interface BackupTestPlatform extends TestPlatform {
  identities: AgeIdentity[];
  /** The backup section the platform was started with. */
  backup: Record<string, unknown>;
  /** Writes `<dataDir>/config.json` with this backup section, so the real CLI uses it too. */
  writeConfigFile(backup?: Record<string, unknown>): void;
}

export function fsRepository(name: string, path: string): RepositoryConfig {
  return { name, kind: 'filesystem', region: 'fra1', jurisdiction: 'DE', path };
}

export function sftpRepository(name: string, sshd: Pick<TestSshd, 'user' | 'identityFile' | 'knownHostsFile'>, path: string, port: number): RepositoryConfig {
  return { name, kind: 'sftp', region: 'nbg1', jurisdiction: 'DE', host: '127.0.0.1', port, user: sshd.user, identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile, path, connectTimeoutSeconds: 5 };
}

export async function startBackupPlatform(repositories: RepositoryConfig[], extra: Record<string, unknown> = {}): Promise<BackupTestPlatform> {
  const keys = generateIdentity();
  const backup = { allowedJurisdictions: ['DE'], recipients: [keys.recipient], repositories, ...extra };
  const tp = await startTestPlatform({ overrides: { backup } });
  return {
    ...tp,
    identities: [parseIdentity(keys.identity)],
    backup,
    writeConfigFile(section = backup) {
      writeFileSync(join(tp.dataDir, 'config.json'), JSON.stringify({ backup: section }));
    },
  };
}

/** The same platform with another backup configuration (schedules, retention, repositories). */
export function withBackupConfig(platform: Platform, backup: Partial<Config['backup']>): Platform {
  return { ...platform, config: { ...platform.config, backup: { ...platform.config.backup, ...backup } } };
}

async function withTenantDb<T>(platform: Platform, tenant: Tenant, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(clientConfig(platform.target, tenant.databaseName));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Gives a tenant a project with `tasks` tasks whose descriptions hold `descriptionChars` of random
 * hex (which compresses to about half), made by the product's own commands.
 */
export async function fillTenant(platform: Platform, tenant: Tenant, props: { tasks: number; descriptionChars: number }): Promise<void> {
  await withTenantDb(platform, tenant, async (db) => {
    const actor = { kind: 'system' } as const;
    const project = await createProject({ db, actor, input: { key: 'BIG', name: 'Big project' } });
    for (let i = 1; i <= props.tasks; i++) {
      let description = '';
      while (description.length < props.descriptionChars) description += randomBytes(4096).toString('hex');
      await createTask({ db, actor, projectId: project.id, input: { title: `Task ${i}`, description: description.slice(0, props.descriptionChars) } });
    }
  });
}

/** Exact row counts of every table of a tenant database, as `schema.table`. */
export async function tableCounts(platform: Platform, tenant: Tenant): Promise<Record<string, number>> {
  return withTenantDb(platform, tenant, async (client) => {
    const tables = await client.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2`,
    );
    const counts: Record<string, number> = {};
    for (const t of tables.rows) {
      const res = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${escapeIdentifier(t.schema)}.${escapeIdentifier(t.name)}`);
      counts[`${t.schema}.${t.name}`] = Number(res.rows[0]?.n);
    }
    return counts;
  });
}

/** Every file under `dir` (dot-files too), relative, sorted. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}
