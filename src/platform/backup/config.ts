/**
 * The `backup` section of the configuration: the recipients backups are encrypted to, the
 * repositories they go to (each with a region and jurisdiction), and the jurisdictions they may
 * be kept in (P3). src/config.ts embeds the schema and reports backupConfigProblems at load.
 */
import Type from 'typebox';
import { parseRecipient } from './age-keys.ts';
import { DEFAULT_ZSTD_LEVEL } from './pipeline.ts';
import { FilesystemRepository } from './fs-repository.ts';
import type { Repository } from './repository.ts';
import { SftpRepository } from './sftp-repository.ts';

/** ISO 3166-1 alpha-2, optionally with an ISO 3166-2 subdivision: `DE`, `CH-ZH`. */
const Jurisdiction = Type.String({ pattern: '^[A-Z]{2}(-[A-Z0-9]{1,3})?$' });
/** A host name or an IP address, without scheme or port; never starting with `-`. */
const HOST_PATTERN = '^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$';

export const DEFAULT_SFTP_PORT = 22;
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 20;

const RepositorySchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9-]{0,39}$' }),
    kind: Type.Union([Type.Literal('filesystem'), Type.Literal('sftp')]),
    region: Type.String({ minLength: 1, maxLength: 64 }),
    jurisdiction: Jurisdiction,
    /** filesystem: the root directory; sftp: the root directory on the server. */
    path: Type.String({ minLength: 1, maxLength: 1024 }),
    /** sftp only. */
    host: Type.Optional(Type.String({ minLength: 1, maxLength: 253, pattern: HOST_PATTERN })),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    user: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$' })),
    /** The private key (0600) the connection authenticates with; there are no passwords. */
    identityFile: Type.Optional(Type.String({ minLength: 1 })),
    /** known_hosts holding the server's host key; unknown or changed keys are refused. */
    knownHostsFile: Type.Optional(Type.String({ minLength: 1 })),
    connectTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 300 })),
  },
  { additionalProperties: false },
);

export const BackupConfigSchema = Type.Object(
  {
    /** Where backups may be kept (P3); every repository's jurisdiction must be in this list. */
    allowedJurisdictions: Type.Array(Jurisdiction, { uniqueItems: true, default: [] }),
    /** age recipients (`age1…`) every object is encrypted to. Only public keys belong here. */
    recipients: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { default: [] }),
    repositories: Type.Array(RepositorySchema, { default: [] }),
    /** The repository backups are written to first; the others receive verified copies. Default: the first. */
    primary: Type.Optional(Type.String({ minLength: 1 })),
    /** zstd level: 1 (fast) to 19 (small). */
    compressionLevel: Type.Integer({ minimum: 1, maximum: 19, default: DEFAULT_ZSTD_LEVEL }),
  },
  { additionalProperties: false, default: {} },
);

export type BackupConfig = Type.Static<typeof BackupConfigSchema>;
export type RepositoryConfig = Type.Static<typeof RepositorySchema>;

const SFTP_ONLY = ['host', 'port', 'user', 'identityFile', 'knownHostsFile', 'connectTimeoutSeconds'] as const;
const SFTP_REQUIRED = ['host', 'user', 'identityFile', 'knownHostsFile'] as const;

/** Rules that tie the backup keys together, each as `key: message` with dotted keys under `backup.`. */
export function backupConfigProblems(backup: BackupConfig): string[] {
  const problems: string[] = [];
  const allowed = backup.allowedJurisdictions;
  if (backup.repositories.length > 0 && allowed.length === 0) {
    problems.push('backup.allowedJurisdictions: list the jurisdictions backups may be kept in (for example ["DE"]) before configuring repositories');
  }
  const names = new Set<string>();
  for (const [i, repo] of backup.repositories.entries()) {
    const key = `backup.repositories.${i}`;
    if (names.has(repo.name)) problems.push(`${key}.name: '${repo.name}' is used by another repository`);
    names.add(repo.name);
    if (allowed.length > 0 && !allowed.includes(repo.jurisdiction)) {
      problems.push(
        `${key}.jurisdiction: repository '${repo.name}' is in ${repo.jurisdiction}, outside backup.allowedJurisdictions (${allowed.join(', ')}); backups may not be placed there`,
      );
    }
    if (repo.kind === 'sftp') {
      for (const field of SFTP_REQUIRED) if (repo[field] === undefined) problems.push(`${key}.${field}: required for an sftp repository`);
    } else {
      for (const field of SFTP_ONLY) if (repo[field] !== undefined) problems.push(`${key}.${field}: only sftp repositories take it`);
    }
  }
  if (backup.primary !== undefined && !names.has(backup.primary)) {
    problems.push(`backup.primary: names no repository ('${backup.primary}'); the repositories are ${[...names].join(', ') || 'none'}`);
  }
  for (const [i, text] of backup.recipients.entries()) {
    try {
      parseRecipient(text);
    } catch (err) {
      problems.push(`backup.recipients.${i}: ${(err as Error).message}`);
    }
  }
  if (backup.repositories.length > 0 && backup.recipients.length === 0) {
    problems.push('backup.recipients: at least one age recipient (age1…) is needed to encrypt backups; make one with age-keygen and keep its identity offline');
  }
  return problems;
}

/** The repository driver for one configured repository. */
export function openRepository(config: RepositoryConfig): Repository {
  const placement = { name: config.name, region: config.region, jurisdiction: config.jurisdiction };
  if (config.kind === 'filesystem') return new FilesystemRepository({ ...placement, path: config.path });
  return new SftpRepository({
    ...placement,
    path: config.path,
    host: config.host ?? '',
    port: config.port ?? DEFAULT_SFTP_PORT,
    user: config.user ?? '',
    identityFile: config.identityFile ?? '',
    knownHostsFile: config.knownHostsFile ?? '',
    connectTimeoutSeconds: config.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS,
  });
}

/** All configured repositories, the primary first. */
export function openRepositories(backup: BackupConfig): { primary: Repository | null; secondaries: Repository[] } {
  const all = backup.repositories.map(openRepository);
  const primaryName = backup.primary ?? all[0]?.name;
  return { primary: all.find((r) => r.name === primaryName) ?? null, secondaries: all.filter((r) => r.name !== primaryName) };
}
