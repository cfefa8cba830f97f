/** One typed, validated configuration, read from defaults, a JSON file, the environment and CLI flags. */
import { readFileSync, existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import Type from 'typebox';
import Value from 'typebox/value';
import { TENANT_CONNECTION_LIMIT } from './platform/tenants/provision.ts';
import { isNodeName } from './platform/replication/topology.ts';
import { BackupConfigSchema, backupConfigProblems } from './platform/backup/config.ts';
import { JURISDICTION_PATTERN, withinJurisdictions } from './platform/jurisdiction.ts';
import { isExposed, networkProblems } from './platform/postgres/network.ts';
import { MetricsConfigSchema, metricsConfigProblems } from './platform/metrics/config.ts';

const Mode = Type.Union([Type.Literal('saas'), Type.Literal('onprem')]);
const LogLevel = Type.Union([
  Type.Literal('fatal'),
  Type.Literal('error'),
  Type.Literal('warn'),
  Type.Literal('info'),
  Type.Literal('debug'),
  Type.Literal('trace'),
  Type.Literal('silent'),
]);

/** `Name <local@domain>` or `local@domain`, on one line (the full check is in platform/mail/message.ts). */
const MAIL_FROM_PATTERN = '^([^<>\\r\\n]*<[^<>\\s@]+@[^<>\\s@]+>|[^<>\\s@]+@[^<>\\s@]+)$';

/** A site name: a data centre, region or room (`site-a`, `eu-west-1`). */
const SITE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';

/** A host name or an IP address, without scheme or port (`smtp.example.com`, `10.0.0.5`, `::1`). */
const SMTP_HOST_PATTERN = '^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$';

export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1, default: './.taskflow' }),
    /** Existing cluster to use instead of the managed one (a superuser or CREATEDB+CREATEROLE URL). */
    databaseUrl: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    mode: Type.Optional(Mode),
    logLevel: Type.Optional(LogLevel),
    server: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        baseDomain: Type.String({ pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$', maxLength: 200, default: 'localhost' }),
        bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024 }),
        requestTimeoutMs: Type.Integer({ minimum: 1000, maximum: 600_000, default: 30_000 }),
        /** Seconds a client is told to wait (Retry-After) when its tenant is suspended or busy. */
        retryAfterSeconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 300 }),
        trustProxy: Type.Boolean({ default: false }),
        tls: Type.Object(
          {
            /**
             * self-signed: HTTPS with a certificate for the base domain and *.localhost made on first start;
             * files: HTTPS with certFile and keyFile; proxy: plain HTTP behind a TLS-terminating proxy
             * (needs trustProxy; requests it did not mark https are redirected); off: plain HTTP only
             * (API tokens work, browsers cannot sign in).
             */
            mode: Type.Union([Type.Literal('self-signed'), Type.Literal('files'), Type.Literal('proxy'), Type.Literal('off')], { default: 'self-signed' }),
            certFile: Type.Optional(Type.String({ minLength: 1 })),
            keyFile: Type.Optional(Type.String({ minLength: 1 })),
            /** The HTTPS port (self-signed and files); server.port then only redirects to it. */
            port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443 }),
            /** Strict-Transport-Security max-age; 0 sends none. Never sent with a self-signed certificate. */
            hstsMaxAgeSeconds: Type.Integer({ minimum: 0, maximum: 63_072_000, default: 31_536_000 }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    postgres: Type.Object(
      {
        /** Port of the managed cluster; 0 picks a free one on first start and keeps it. */
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 0 }),
        binDir: Type.Optional(Type.String({ minLength: 1 })),
        /** OS user that runs the managed cluster when TaskFlow runs as root. */
        osUser: Type.String({ minLength: 1, default: 'postgres' }),
        /** How long opening a connection to the primary may take before the request is answered 503. */
        connectTimeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: 3_000 }),
        /**
         * Addresses of this machine the managed cluster listens on (listen_addresses); 127.0.0.1 is
         * always among them. Standbys on other machines and app hosts connect to one of these.
         */
        listenAddresses: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { uniqueItems: true, default: ['127.0.0.1'] }),
        /** DNS names other machines reach this one by; the cluster's server certificate names them (verify-full). */
        hostNames: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { uniqueItems: true, default: [] }),
        /** Who may connect from other machines (pg_hba, TLS and SCRAM only): IP networks or single addresses. */
        allowedNetworks: Type.Object(
          {
            /** Where standbys stream from (the replication role, with its client certificate). */
            replication: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { uniqueItems: true, default: [] }),
            /** Where TaskFlow's app hosts (and this machine, for its probes of remote standbys) log in to databases from. */
            clients: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { uniqueItems: true, default: [] }),
            /** Allows a /0 network (every address): only behind a firewall that does the limiting. */
            allowEverywhere: Type.Boolean({ default: false }),
          },
          { additionalProperties: false, default: {} },
        ),
        /** Following the primary through failovers and switchovers (docs/high-availability.md). */
        primary: Type.Object(
          {
            /** How often the primary is looked up again without a reason to (replication.json, Patroni). */
            checkIntervalMs: Type.Integer({ minimum: 50, maximum: 600_000, default: 1_000 }),
            /** How often the managed cluster's other nodes are asked whether they accept writes too. */
            splitBrainCheckMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 5_000 }),
            /** Retry-After of `primary-unavailable` and `commit-unconfirmed`: a failover takes seconds. */
            retryAfterSeconds: Type.Integer({ minimum: 1, maximum: 3_600, default: 2 }),
          },
          { additionalProperties: false, default: {} },
        ),
        /** A cluster that Patroni runs: TaskFlow follows the leader its REST API names (needs databaseUrl for the credentials). */
        patroni: Type.Optional(
          Type.Object(
            {
              /** Each member's REST API, as in its restapi.connect_address (`http://10.0.0.5:8008`). */
              endpoints: Type.Array(Type.String({ pattern: '^https?://[^/\\s]+/?$' }), { minItems: 1, uniqueItems: true }),
              requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 1_000 }),
              /** How long the platform waits at start for a leader. */
              waitForLeaderSeconds: Type.Integer({ minimum: 0, maximum: 3_600, default: 30 }),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    pools: Type.Object(
      {
        /** Cap on open connections to tenant databases across all tenants, in this process. */
        maxConnections: Type.Integer({ minimum: 1, maximum: 10_000, default: 40 }),
        perTenantMax: Type.Integer({ minimum: 1, maximum: 100, default: 5 }),
        idleMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 10_000 }),
        /** How long a request waits for a free connection before it is answered 503. */
        acquireTimeoutMs: Type.Integer({ minimum: 10, maximum: 120_000, default: 5_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    tenants: Type.Object(
      {
        /** How long an old slug keeps resolving after a rename. */
        renameGraceDays: Type.Integer({ minimum: 0, maximum: 3650, default: 30 }),
        cacheTtlMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 5_000 }),
        migrateConcurrency: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
      },
      { additionalProperties: false, default: {} },
    ),
    accounts: Type.Object(
      {
        /** A session ends after this long without a request. */
        sessionIdleMinutes: Type.Integer({ minimum: 1, maximum: 1440, default: 30 }),
        /** A session ends this long after sign-in, however active. */
        sessionAbsoluteHours: Type.Integer({ minimum: 1, maximum: 720, default: 12 }),
        /** Changing e-mail, password or second factor needs a password entered this recently. */
        reauthMinutes: Type.Integer({ minimum: 1, maximum: 60, default: 10 }),
        resetTokenMinutes: Type.Integer({ minimum: 5, maximum: 30, default: 30 }),
        invitationDays: Type.Integer({ minimum: 1, maximum: 30, default: 7 }),
        /** Failed sign-ins per account and hour before sign-in is refused (backoff starts after 5). */
        loginFailuresPerAccountPerHour: Type.Integer({ minimum: 5, maximum: 100, default: 100 }),
        loginFailuresPerIpPerHour: Type.Integer({ minimum: 10, maximum: 100_000, default: 500 }),
        resetRequestsPerAccountPerHour: Type.Integer({ minimum: 1, maximum: 100, default: 5 }),
        resetRequestsPerIpPerHour: Type.Integer({ minimum: 1, maximum: 10_000, default: 50 }),
        /** argon2id cost; never below the OWASP minimum (19 MiB, t=2, p=1). Hashes are upgraded at sign-in. */
        argon2: Type.Object(
          {
            memoryKiB: Type.Integer({ minimum: 19_456, maximum: 1_048_576, default: 19_456 }),
            iterations: Type.Integer({ minimum: 2, maximum: 20, default: 2 }),
            parallelism: Type.Integer({ minimum: 1, maximum: 8, default: 1 }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    rateLimits: Type.Object(
      {
        /** Requests per client address and minute, over all tenants. */
        perIpPerMinute: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1200 }),
        /** Requests per tenant and minute, so one flooded tenant cannot starve the others. */
        perTenantPerMinute: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 6000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    replication: Type.Object(
      {
        /** Where each node of the managed cluster runs, by node name (`main` is the one the first start made). */
        nodes: Type.Record(
          Type.String(),
          Type.Object({ site: Type.String({ pattern: SITE_PATTERN, maxLength: 64 }) }, { additionalProperties: false }),
          { default: {} },
        ),
        /** The site of nodes not named in `nodes`. */
        defaultSite: Type.String({ pattern: SITE_PATTERN, maxLength: 64, default: 'local' }),
        /**
         * Each site's region and jurisdiction (P3). Once any site is described here, every node's
         * site must be, and each site's jurisdiction must be in `allowedJurisdictions` (or a subdivision of a country in it).
         */
        sites: Type.Record(
          Type.String(),
          Type.Object(
            {
              region: Type.String({ minLength: 1, maxLength: 64 }),
              jurisdiction: Type.String({ pattern: JURISDICTION_PATTERN }),
            },
            { additionalProperties: false },
          ),
          { default: {} },
        ),
        /** Where the cluster's nodes (and so every database) may run: ISO 3166-1 alpha-2 codes (`DE`, `CH-ZH`). */
        allowedJurisdictions: Type.Array(Type.String({ pattern: JURISDICTION_PATTERN }), { uniqueItems: true, default: [] }),
        /** A switchover is refused while the standby is further behind the primary than this. */
        switchoverMaxLagBytes: Type.Integer({ minimum: 0, maximum: 1_099_511_627_776, default: 16_777_216 }),
        /** How long a switchover or failover waits for the standby to receive and replay the old primary's last WAL. */
        catchUpTimeoutSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
        /** WAL a replication slot may keep on the primary (max_slot_wal_keep_size, MB; -1: no limit): a dead standby cannot fill the disk. */
        maxSlotWalKeepSizeMb: Type.Integer({ minimum: -1, maximum: 1_048_576, default: 4_096 }),
        /** How often a running process checks the managed cluster's standbys and raises or resolves their alerts. */
        statusCheckSeconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 30 }),
      },
      { additionalProperties: false, default: {} },
    ),
    mail: Type.Object(
      {
        /** Sender of every message: `Name <address>` or a bare address. */
        from: Type.String({ pattern: MAIL_FROM_PATTERN, maxLength: 320, default: 'TaskFlow <no-reply@localhost>' }),
        /** Without it, mail lands in the local mailbox in the data directory (`taskflow mail`). */
        smtp: Type.Optional(
          Type.Object(
            {
              host: Type.String({ minLength: 1, maxLength: 253, pattern: SMTP_HOST_PATTERN }),
              port: Type.Integer({ minimum: 1, maximum: 65535, default: 587 }),
              /** Implicit TLS from the first byte (usually port 465); otherwise STARTTLS when offered. */
              secure: Type.Boolean({ default: false }),
              /** Refuse to send unless the server upgrades with STARTTLS. */
              requireTLS: Type.Boolean({ default: false }),
              user: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
              /** File holding the password (env TASKFLOW_SMTP_PASSWORD wins); never the password itself. */
              passwordFile: Type.Optional(Type.String({ minLength: 1 })),
              rejectUnauthorized: Type.Boolean({ default: true }),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Backups: age recipients, repositories with their jurisdictions, and where backups may be kept (docs/backups.md). */
    backup: BackupConfigSchema,
    /** The operator metrics listener, off by default (docs/operations.md, "Monitoring"). */
    metrics: MetricsConfigSchema,
  },
  { additionalProperties: false },
);

type ParsedConfig = Type.Static<typeof ConfigSchema>;
/** The configuration after defaults: every optional setting with a default is filled in. */
export type Config = Omit<ParsedConfig, 'mode' | 'logLevel'> & {
  mode: NonNullable<ParsedConfig['mode']>;
  logLevel: NonNullable<ParsedConfig['logLevel']>;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Environment variables that map onto configuration keys. */
const ENV_KEYS: Record<string, string> = {
  TASKFLOW_DATA_DIR: 'dataDir',
  TASKFLOW_DATABASE_URL: 'databaseUrl',
  TASKFLOW_MODE: 'mode',
  TASKFLOW_LOG_LEVEL: 'logLevel',
  TASKFLOW_HOST: 'server.host',
  TASKFLOW_PORT: 'server.port',
  TASKFLOW_BASE_DOMAIN: 'server.baseDomain',
  TASKFLOW_BODY_LIMIT_BYTES: 'server.bodyLimitBytes',
  TASKFLOW_REQUEST_TIMEOUT_MS: 'server.requestTimeoutMs',
  TASKFLOW_TRUST_PROXY: 'server.trustProxy',
  TASKFLOW_TLS_MODE: 'server.tls.mode',
  TASKFLOW_TLS_CERT_FILE: 'server.tls.certFile',
  TASKFLOW_TLS_KEY_FILE: 'server.tls.keyFile',
  TASKFLOW_HTTPS_PORT: 'server.tls.port',
  TASKFLOW_PG_PORT: 'postgres.port',
  TASKFLOW_PG_BINDIR: 'postgres.binDir',
  TASKFLOW_PG_OS_USER: 'postgres.osUser',
  TASKFLOW_MAX_CONNECTIONS: 'pools.maxConnections',
  TASKFLOW_POOL_PER_TENANT: 'pools.perTenantMax',
  TASKFLOW_RENAME_GRACE_DAYS: 'tenants.renameGraceDays',
  TASKFLOW_MIGRATE_CONCURRENCY: 'tenants.migrateConcurrency',
  TASKFLOW_MAIL_FROM: 'mail.from',
  TASKFLOW_SMTP_HOST: 'mail.smtp.host',
  TASKFLOW_SMTP_PORT: 'mail.smtp.port',
  TASKFLOW_SMTP_USER: 'mail.smtp.user',
  TASKFLOW_METRICS_ENABLED: 'metrics.enabled',
  TASKFLOW_METRICS_HOST: 'metrics.host',
  TASKFLOW_METRICS_PORT: 'metrics.port',
  TASKFLOW_METRICS_TOKEN_FILE: 'metrics.tokenFile',
};

export interface LoadConfigOptions {
  /** Values from CLI flags, as dotted keys (`server.port`). */
  overrides?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Explicit config file; otherwise TASKFLOW_CONFIG, then `<dataDir>/config.json` if present. */
  configFile?: string;
}

type Source = Map<string, string>;

function setPath(target: Record<string, unknown>, dotted: string, value: unknown, source: Source, origin: string): void {
  const parts = dotted.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
  source.set('/' + parts.join('/'), origin);
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${path} must hold a JSON object`);
    }
    return parsed as Record<string, unknown>;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function recordFileOrigins(obj: Record<string, unknown>, prefix: string, source: Source, file: string): void {
  for (const [key, value] of Object.entries(obj)) {
    const path = `${prefix}/${key}`;
    source.set(path, `config file ${file}`);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      recordFileOrigins(value as Record<string, unknown>, path, source, file);
    }
  }
}

/** Loads and validates configuration; throws ConfigError naming the bad key and where it came from. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const source: Source = new Map();
  const raw: Record<string, unknown> = {};

  const dataDirHint = (options.overrides?.dataDir as string | undefined) ?? env.TASKFLOW_DATA_DIR ?? './.taskflow';
  const file = options.configFile ?? env.TASKFLOW_CONFIG ?? join(dataDirHint, 'config.json');
  const explicitFile = options.configFile !== undefined || env.TASKFLOW_CONFIG !== undefined;
  if (explicitFile || existsSync(file)) {
    const fromFile = readConfigFile(file);
    Object.assign(raw, fromFile);
    recordFileOrigins(fromFile, '', source, file);
  }
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, key, value, source, `environment variable ${name}`);
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) setPath(raw, key, value, source, `option --${key.split('.').pop() ?? key}`);
  }

  refusePlainSecrets(raw, source);
  const converted = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, raw));
  const errors = [...Value.Errors(ConfigSchema, converted)].filter((e) => e.keyword !== 'boolean');
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      let path = e.instancePath;
      if (e.keyword === 'additionalProperties') {
        const extra = (e.params as { additionalProperties?: string[] }).additionalProperties ?? [];
        return extra.map((k) => `${describeKey(`${path}/${k}`, source)}: unknown key`).join('\n');
      }
      if (e.keyword === 'required') {
        const missing = (e.params as { requiredProperties?: string[] }).requiredProperties ?? [];
        path = `${path}/${missing.join(',')}`;
      }
      return `${describeKey(path, source)}: ${e.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${[...new Set(lines)].join('\n  ')}`);
  }
  const parsed = converted as ParsedConfig;
  const crossField = crossFieldProblems(parsed).map((line) => line.replace(/^([^\s:]+)/, (key) => describeKey(`/${key.replaceAll('.', '/')}`, source)));
  if (crossField.length > 0) throw new ConfigError(`invalid configuration:\n  ${crossField.join('\n  ')}`);
  return { ...parsed, dataDir: resolve(parsed.dataDir), mode: parsed.mode ?? 'saas', logLevel: parsed.logLevel ?? 'info' };
}

/** A password given as a plain configuration value is refused (without echoing it), saying where it belongs. */
function refusePlainSecrets(raw: Record<string, unknown>, source: Source): void {
  const mail = raw.mail;
  const smtp = typeof mail === 'object' && mail !== null ? (mail as Record<string, unknown>).smtp : undefined;
  if (typeof smtp === 'object' && smtp !== null && 'password' in smtp) {
    throw new ConfigError(
      `invalid configuration:\n  ${describeKey('/mail/smtp/password', source)}: passwords are not configuration values; set TASKFLOW_SMTP_PASSWORD or name a file in mail.smtp.passwordFile`,
    );
  }
}

/** Rules that tie keys together, each as `key: message`. */
function crossFieldProblems(config: ParsedConfig): string[] {
  const problems: string[] = [];
  const tls = config.server.tls;
  if (tls.mode === 'files') {
    if (!tls.certFile) problems.push('server.tls.certFile: required when server.tls.mode is files');
    if (!tls.keyFile) problems.push('server.tls.keyFile: required when server.tls.mode is files');
  } else if (tls.certFile || tls.keyFile) {
    problems.push(`server.tls.mode: is ${tls.mode}, so certFile and keyFile would be ignored; set it to files`);
  }
  if (tls.mode === 'proxy' && !config.server.trustProxy) {
    problems.push('server.trustProxy: must be true when server.tls.mode is proxy (the proxy says which requests came over HTTPS)');
  }
  for (const name of Object.keys(config.replication.nodes)) {
    if (!isNodeName(name)) problems.push(`replication.nodes.${name}: not a node name (a lower-case letter, then up to 29 lower-case letters, digits or _)`);
  }
  problems.push(...siteProblems(config.replication));
  if (config.pools.perTenantMax > TENANT_CONNECTION_LIMIT) {
    // PostgreSQL would refuse the connections above the role's limit (53300) while the pool counts on them.
    problems.push(
      `pools.perTenantMax: ${config.pools.perTenantMax} is more than the ${TENANT_CONNECTION_LIMIT} connections a tenant's login role may open (its CONNECTION LIMIT); use at most ${TENANT_CONNECTION_LIMIT}`,
    );
  }
  if (config.postgres.patroni && !config.databaseUrl) {
    problems.push("postgres.patroni: needs databaseUrl, the user, password and database to connect with (its host and port are replaced by the Patroni leader's)");
  }
  problems.push(...networkProblems(config.postgres));
  if (config.databaseUrl && isExposed(config.postgres)) {
    problems.push('postgres.listenAddresses: the network settings are for the cluster TaskFlow runs itself; with databaseUrl, configure that cluster instead');
  }
  problems.push(...backupConfigProblems(config.backup));
  problems.push(...metricsConfigProblems(config.metrics, config.server));
  return problems;
}

/** P3 for the cluster's nodes: every site they run at is described, and inside the allowed jurisdictions. */
function siteProblems(replication: ParsedConfig['replication']): string[] {
  const problems: string[] = [];
  const sites = replication.sites;
  const allowed = replication.allowedJurisdictions;
  for (const name of Object.keys(sites)) {
    if (!new RegExp(SITE_PATTERN).test(name)) problems.push(`replication.sites.${name}: not a site name (letters, digits, '.', '_' or '-')`);
  }
  if (Object.keys(sites).length === 0) return problems;
  if (allowed.length === 0) {
    problems.push('replication.allowedJurisdictions: list the jurisdictions the cluster may run in (for example ["DE"]) when describing sites');
  }
  for (const [name, site] of Object.entries(sites)) {
    if (allowed.length > 0 && !withinJurisdictions(site.jurisdiction, allowed)) {
      problems.push(
        `replication.sites.${name}.jurisdiction: site '${name}' is in ${site.jurisdiction}, outside replication.allowedJurisdictions (${allowed.join(', ')}); databases may not run there`,
      );
    }
  }
  const undescribed = (key: string, site: string): string => `${key}: site '${site}' is not described in replication.sites (described: ${Object.keys(sites).join(', ')})`;
  if (!(replication.defaultSite in sites)) problems.push(undescribed('replication.defaultSite', replication.defaultSite));
  for (const [node, { site }] of Object.entries(replication.nodes)) if (!(site in sites)) problems.push(undescribed(`replication.nodes.${node}.site`, site));
  return problems;
}

function describeKey(instancePath: string, source: Source): string {
  const key = instancePath.replace(/^\//, '').replaceAll('/', '.') || '(root)';
  const origin = source.get(instancePath);
  return origin ? `${key} (from ${origin})` : key;
}
