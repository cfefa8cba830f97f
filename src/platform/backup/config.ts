/**
 * The `backup` section of the configuration: the recipients backups are encrypted to, the
 * repositories they go to (each with a region and jurisdiction), and the jurisdictions they may
 * be kept in (P3). src/config.ts embeds the schema and reports backupConfigProblems at load.
 */
import Type from 'typebox';
import { JURISDICTION_PATTERN, withinJurisdictions } from '../jurisdiction.ts';
import { parseRecipient } from './age-keys.ts';
import { checkObjectName } from './object-names.ts';
import { DEFAULT_SNAPSHOT_ZSTD_LEVEL, DEFAULT_ZSTD_LEVEL } from './pipeline.ts';
import { FilesystemRepository } from './fs-repository.ts';
import type { Repository } from './repository.ts';
import { S3Repository } from './s3-repository.ts';
import { SftpRepository } from './sftp-repository.ts';

/** ISO 3166-1 alpha-2, optionally with an ISO 3166-2 subdivision: `DE`, `CH-ZH`. */
const Jurisdiction = Type.String({ pattern: JURISDICTION_PATTERN });
/** A host name or an IP address, without scheme or port; never starting with `-`. */
const HOST_PATTERN = '^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$';

/** A five- or six-field cron expression (checked in full by pg-boss when the jobs start), or `off`. */
function cronSetting(fallback: string) {
  return Type.String({ pattern: '^(off|[0-9A-Za-z*/,?#LW-]+( [0-9A-Za-z*/,?#LW-]+){4,5})$', maxLength: 200, default: fallback });
}

export const DEFAULT_SFTP_PORT = 22;
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 20;
export const DEFAULT_S3_PART_SIZE_MIB = 16;

const RepositorySchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-z0-9-]{0,39}$' }),
    kind: Type.Union([Type.Literal('filesystem'), Type.Literal('sftp'), Type.Literal('s3')]),
    region: Type.String({ minLength: 1, maxLength: 64 }),
    jurisdiction: Jurisdiction,
    /** filesystem: the root directory; sftp: the root directory on the server; s3: the key prefix in the bucket (`/` for none). */
    path: Type.String({ minLength: 1, maxLength: 1024 }),
    /** sftp only. */
    host: Type.Optional(Type.String({ minLength: 1, maxLength: 253, pattern: HOST_PATTERN })),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    user: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$' })),
    /** The private key (0600) the connection authenticates with; there are no passwords. */
    identityFile: Type.Optional(Type.String({ minLength: 1 })),
    /** known_hosts holding the server's host key; unknown or changed keys are refused. */
    knownHostsFile: Type.Optional(Type.String({ minLength: 1 })),
    /** sftp and s3. */
    connectTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 300 })),
    /** s3 only: the bucket (S3's naming rules). */
    bucket: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' })),
    /** s3 only: the service's URL, scheme, host and port only (no credentials); AWS S3 when absent. */
    endpoint: Type.Optional(Type.String({ maxLength: 300, pattern: '^https?://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?/?$' })),
    /** s3 only: the bucket in the URL's path instead of its host name; default: true with an endpoint. */
    forcePathStyle: Type.Optional(Type.Boolean()),
    /** s3 only: a file (mode 0600) with aws_access_key_id and aws_secret_access_key; else the AWS_* environment. */
    credentialsFile: Type.Optional(Type.String({ minLength: 1 })),
    /** s3 only: PEM file of the CA that signed an https endpoint's certificate (a private CA), trusted besides the usual roots. */
    caFile: Type.Optional(Type.String({ minLength: 1 })),
    /** s3 only: the part size of multipart uploads; an object may have 10 000 parts. */
    partSizeMiB: Type.Optional(Type.Integer({ minimum: 5, maximum: 1024 })),
  },
  { additionalProperties: false },
);

export const BackupConfigSchema = Type.Object(
  {
    /** Where backups may be kept (P3); every repository's jurisdiction must be in this list, or a subdivision of a country in it. */
    allowedJurisdictions: Type.Array(Jurisdiction, { uniqueItems: true, default: [] }),
    /** age recipients (`age1…`) every object is encrypted to. Only public keys belong here. */
    recipients: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { default: [] }),
    repositories: Type.Array(RepositorySchema, { default: [] }),
    /** The repository backups are written to first; the others receive verified copies. Default: the first. */
    primary: Type.Optional(Type.String({ minLength: 1 })),
    /** zstd level: 1 (fast) to 19 (small). */
    compressionLevel: Type.Integer({ minimum: 1, maximum: 19, default: DEFAULT_ZSTD_LEVEL }),
    /**
     * zstd level of snapshots, which the primary's PostgreSQL compresses itself: its CPU, taken from
     * the requests it serves. Level 1 costs about a third less of it than 3 for a few per cent more
     * storage (docs/backups.md).
     */
    snapshotCompressionLevel: Type.Integer({ minimum: 1, maximum: 19, default: DEFAULT_SNAPSHOT_ZSTD_LEVEL }),
    /**
     * Tenant databases whose row counts a snapshot records (besides the control database's), taken
     * in turn from snapshot to snapshot: counting holds two connections per database at once, which
     * for every tenant of a large cluster would crowd out the app's (row-counts.ts).
     */
    rowCountTenants: Type.Integer({ minimum: 0, maximum: 100, default: 25 }),
    /**
     * PostgreSQL's archive_timeout while backups are configured: a WAL segment is closed and archived
     * at least this often when anything was written, so at most this many seconds of committed data
     * are at risk (P7).
     */
    walArchiveTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
    /**
     * How often the TaskFlow host drains the WAL spool of a primary on another machine (physical/wal-spool.ts);
     * that node's archive_timeout is walArchiveTimeoutSeconds minus this, so the promise above holds.
     */
    remoteWalPullSeconds: Type.Integer({ minimum: 1, maximum: 600, default: 10 }),
    /** When the scheduled jobs run (pg-boss cron, in `timeZone`); `off` disables one. */
    schedule: Type.Object(
      {
        /** IANA time zone the cron expressions are read in (`Europe/Berlin`). */
        timeZone: Type.String({ minLength: 1, maxLength: 64, default: 'UTC' }),
        snapshot: cronSetting('0 2 * * *'),
        export: cronSetting('0 */6 * * *'),
        prune: cronSetting('30 4 * * *'),
        /**
         * The restore drill (`backup verify --restore` of the newest snapshot): off by default, as it
         * needs the identity on the host that runs it (TASKFLOW_BACKUP_IDENTITY[_FILE] for `taskflow start`).
         */
        drill: cronSetting('off'),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Minutes after a scheduled snapshot or export occurrence before its missing backup is alerted (`backup.overdue`, overdue.ts). */
    overdueGraceMinutes: Type.Integer({ minimum: 1, maximum: 10080, default: 120 }),
    /** Days the newest restore proof of a snapshot may age before `backup.unproven` is raised; 0 disables the alert. */
    proofMaxAgeDays: Type.Integer({ minimum: 0, maximum: 365, default: 8 }),
    /** How long backups are kept; the newest good snapshot and each tenant's newest export are always kept. */
    retention: Type.Object(
      {
        snapshotDays: Type.Integer({ minimum: 1, maximum: 3650, default: 7 }),
        exportDays: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
        /** Days a database a tenant restore replaced is kept aside before prune drops it; 0 keeps it until dropped by hand. */
        asideDays: Type.Integer({ minimum: 0, maximum: 3650, default: 7 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export type BackupConfig = Type.Static<typeof BackupConfigSchema>;
export type RepositoryConfig = Type.Static<typeof RepositorySchema>;

/** The keys only some kinds of repository take, and the kinds that require them. */
const KIND_KEYS = {
  host: ['sftp'],
  port: ['sftp'],
  user: ['sftp'],
  identityFile: ['sftp'],
  knownHostsFile: ['sftp'],
  connectTimeoutSeconds: ['sftp', 's3'],
  bucket: ['s3'],
  endpoint: ['s3'],
  forcePathStyle: ['s3'],
  credentialsFile: ['s3'],
  caFile: ['s3'],
  partSizeMiB: ['s3'],
} as const satisfies Partial<Record<keyof RepositoryConfig, readonly RepositoryConfig['kind'][]>>;
const REQUIRED_KEYS = { filesystem: [], sftp: ['host', 'user', 'identityFile', 'knownHostsFile'], s3: ['bucket'] } as const;

function repositoryKindProblems(repo: RepositoryConfig, key: string): string[] {
  const problems: string[] = [];
  for (const field of REQUIRED_KEYS[repo.kind]) if (repo[field] === undefined) problems.push(`${key}.${field}: required for an ${repo.kind} repository`);
  for (const [field, kinds] of Object.entries(KIND_KEYS) as [keyof typeof KIND_KEYS, readonly string[]][]) {
    if (repo[field] !== undefined && !kinds.includes(repo.kind)) problems.push(`${key}.${field}: only ${kinds.join(' and ')} repositories take it`);
  }
  if (repo.kind === 's3' && s3Prefix(repo.path) !== '') {
    try {
      checkObjectName(s3Prefix(repo.path));
    } catch (err) {
      problems.push(`${key}.path: the key prefix of an s3 repository ('/' for none) ${(err as Error).message.replace(/^object name .* is not allowed: /, 'is not allowed: ')}`);
    }
  }
  return problems;
}

/** An s3 repository's path as a key prefix: without leading or trailing slashes, '' for the bucket's top. */
function s3Prefix(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}

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
    if (allowed.length > 0 && !withinJurisdictions(repo.jurisdiction, allowed)) {
      problems.push(
        `${key}.jurisdiction: repository '${repo.name}' is in ${repo.jurisdiction}, outside backup.allowedJurisdictions (${allowed.join(', ')}); backups may not be placed there`,
      );
    }
    problems.push(...repositoryKindProblems(repo, key));
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
  if (!isTimeZone(backup.schedule.timeZone)) {
    problems.push(`backup.schedule.timeZone: '${backup.schedule.timeZone}' is not a time zone this system knows (use an IANA name such as Europe/Berlin, or UTC)`);
  }
  if (backup.repositories.length > 0 && backup.recipients.length === 0) {
    problems.push('backup.recipients: at least one age recipient (age1…) is needed to encrypt backups; make one with age-keygen and keep its identity offline');
  }
  return problems;
}

/**
 * What P8 asks of placement and a valid configuration may still lack: a copy besides the primary, and
 * one in another region than the primary's. Warnings, not refusals: a single on-premises server
 * legitimately keeps one repository. Empty when backups are not configured (start says so apart).
 */
export function backupPlacementWarnings(backup: BackupConfig): string[] {
  const primary = backup.repositories.find((r) => r.name === backup.primary) ?? backup.repositories[0];
  if (!primary) return [];
  const secondaries = backup.repositories.filter((r) => r !== primary);
  if (secondaries.length === 0) {
    return [
      `backup.repositories: '${primary.name}' (region ${primary.region}) is the only repository: backups have no copy offsite or in another region (P8); add a secondary repository in another region of an allowed jurisdiction (docs/backups.md#placement)`,
    ];
  }
  const region = (r: RepositoryConfig) => r.region.trim().toLowerCase();
  if (secondaries.every((r) => region(r) === region(primary))) {
    return [
      `backup.repositories: every repository (${backup.repositories.map((r) => r.name).join(', ')}) is in the primary's region ${primary.region}: losing that region loses every copy (P8); add a secondary repository in another region (docs/backups.md#placement)`,
    ];
  }
  return [];
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** Whether any repository is configured, i.e. whether backups run at all. */
export function backupsConfigured(backup: BackupConfig): boolean {
  return backup.repositories.length > 0;
}

/** The repository driver for one configured repository. */
export function openRepository(config: RepositoryConfig): Repository {
  const placement = { name: config.name, region: config.region, jurisdiction: config.jurisdiction };
  if (config.kind === 'filesystem') return new FilesystemRepository({ ...placement, path: config.path });
  if (config.kind === 's3') {
    return new S3Repository({
      ...placement,
      bucket: config.bucket ?? '',
      prefix: s3Prefix(config.path),
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.forcePathStyle ?? config.endpoint !== undefined,
      ...(config.credentialsFile ? { credentialsFile: config.credentialsFile } : {}),
      ...(config.caFile ? { caFile: config.caFile } : {}),
      partSizeMiB: config.partSizeMiB ?? DEFAULT_S3_PART_SIZE_MIB,
      connectTimeoutSeconds: config.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS,
    });
  }
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
