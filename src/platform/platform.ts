/** Opens the platform: data directory, secrets, the PostgreSQL cluster (managed or external), control database. */
import { existsSync, rmSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { UserError } from '../errors.ts';
import { dataDirLayout, ensureSecret, prepareDataDir, readState, writeState, STATE_VERSION, type DataDir } from './data-dir.ts';
import { databaseUnreachable, parseDatabaseUrl, type ConnectionTarget } from './postgres/connection.ts';
import { LocalCluster, ensureSlotWalKeepSize, freePort } from './postgres/local-cluster.ts';
import { primaryPool, PrimaryMovedError } from './postgres/primary-pool.ts';
import { findPgTools, resolveRunAs, type PgTools } from './postgres/tools.ts';
import { ensureControlPlane } from './control-plane.ts';
import { ControlDbAlerts, type Alerts } from './alerts/alerts.ts';
import { ManagedPrimaryLookup } from './replication/managed-primary.ts';
import { replicationFiles } from './replication/access.ts';
import { openReplication } from './replication/context.ts';
import { managedCredentials, recordedPrimary, startManagedStandbys, startRecordedPrimary, type ManagedStandbys } from './replication/managed-nodes.ts';
import { RemoteCluster } from './replication/remote-cluster.ts';
import { ReplicationWatch } from './replication/status-alerts.ts';
import { applyClusterNetwork } from './replication/network-access.ts';
import { PatroniLookup } from './replication/patroni.ts';
import { fixedPrimary, PrimaryLocator, type PrimaryLookup } from './replication/primary-locator.ts';

export const CONTROL_DATABASE = 'taskflow_control';

export interface Platform {
  config: Config;
  dir: DataDir;
  /**
   * Admin connection to the cluster that holds the control database and (for now) all tenants. Its
   * host and port are read at each use: those of the current primary (`primary`).
   */
  target: ConnectionTarget;
  /** Which node is the primary now; follows failovers, switchovers and Patroni without a restart. */
  primary: PrimaryLocator;
  /** The managed cluster's node that was the primary when the platform opened, when TaskFlow runs its own PostgreSQL. */
  cluster: LocalCluster | null;
  tools: PgTools;
  /** Key from which tenant database passwords are derived; never logged. */
  masterKey: string;
  /** Admin pool on taskflow_control, on whichever node is the primary at the moment. */
  control: pg.Pool;
  /** Where operations report what an operator must act on (src/platform/alerts/alerts.ts). */
  alerts: Alerts;
  log: Logger;
  /** Closes pools; stops the managed cluster if this process started it and `stopCluster` is set. */
  close(options?: { stopCluster?: boolean }): Promise<void>;
}

export interface OpenOptions {
  log: Logger;
  /** May initialise a new data directory and cluster (only `taskflow start` and tests do). */
  initialise?: boolean;
}

/** The master key: TASKFLOW_MASTER_KEY, else `secrets/master.key` (made on first use). */
export function masterKeyFrom(dir: DataDir): string {
  const fromEnv = process.env.TASKFLOW_MASTER_KEY;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < 32) throw new UserError('TASKFLOW_MASTER_KEY must be at least 32 characters (use 32 random bytes, base64)');
    return fromEnv;
  }
  return ensureSecret(dir, 'master.key');
}

/** Brings the managed cluster's directory to an initialised state, or explains what is wrong with it. */
async function prepareManagedCluster(config: Config, dir: DataDir, tools: PgTools, log: Logger, initialise: boolean): Promise<LocalCluster> {
  const runAs = resolveRunAs(config.postgres.osUser);
  let state = readState(dir);
  if (state?.initialised) {
    if (!state.managed) {
      throw new UserError(`${dir.root} was set up for an external database; pass --database-url (or TASKFLOW_DATABASE_URL)`);
    }
    // After a failover or switchover the primary is another node (docs/high-availability.md).
    const primary = recordedPrimary(dir, state.managed.port);
    if (!primary.remote && !existsSync(join(primary.pgData, 'PG_VERSION'))) {
      throw new UserError(
        `${dir.root} is damaged: its PostgreSQL cluster ${primary.pgData} is missing. Restore it from a backup, or move the data directory away to start afresh.`,
      );
    }
    if (state.managed.pgMajor !== tools.major) {
      throw new UserError(`the cluster in ${dir.pgData} is PostgreSQL ${state.managed.pgMajor}, but the tools found are ${tools.major} (${tools.binDir}); set TASKFLOW_PG_BINDIR`);
    }
    const password = ensureSecret(dir, 'pg-superuser.password');
    const options = { port: primary.port, tools, runAs, superuserPassword: password, maxSlotWalKeepSizeMb: config.replication.maxSlotWalKeepSizeMb };
    // A primary on another machine (a failover to a remote node) is reached at its address.
    return primary.remote ? new RemoteCluster({ ...options, ca: replicationFiles({ dir }).caCert }, primary.remote) : new LocalCluster({ ...options, pgData: primary.pgData });
  }
  if (!initialise) throw new UserError(`${dir.root} is not initialised; run 'taskflow start' first`);
  if (state && !state.initialised) {
    // A first start that was interrupted: nothing of the user's can be in there yet, so redo it.
    log.warn({ dataDir: dir.root }, 'previous initialisation did not finish; starting it again');
    const pgParent = dirname(dir.pgData);
    if (existsSync(pgParent)) {
      for (const entry of readdirSync(pgParent)) rmSync(join(pgParent, entry), { recursive: true, force: true });
    }
  }
  const port = config.postgres.port || (await freePort());
  state = { version: STATE_VERSION, initialised: false, createdAt: new Date().toISOString(), managed: { port, pgMajor: tools.major } };
  writeState(dir, state);
  const password = ensureSecret(dir, 'pg-superuser.password');
  const cluster = new LocalCluster({ pgData: dir.pgData, port, tools, runAs, superuserPassword: password, maxSlotWalKeepSizeMb: config.replication.maxSlotWalKeepSizeMb });
  log.info({ pgData: dir.pgData, port }, 'initialising PostgreSQL cluster');
  await cluster.init();
  writeState(dir, { ...state, initialised: true });
  return cluster;
}

/** The standby alerts of a managed cluster (status-alerts.ts); none when the replication tools are missing. */
function replicationWatch(config: Config, log: Logger): ReplicationWatch | null {
  try {
    const watch = new ReplicationWatch(openReplication(config, log));
    watch.start(config.replication.statusCheckSeconds * 1000);
    return watch;
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'standby alerts are off');
    return null;
  }
}

/** Opens the platform; with a managed cluster, starts it if needed. */
export async function openPlatform(config: Config, options: OpenOptions): Promise<Platform> {
  const { log } = options;
  const dir = dataDirLayout(config.dataDir);
  prepareDataDir(dir);
  const masterKey = masterKeyFrom(dir);
  const tools = findPgTools(config.postgres.binDir);

  let cluster: LocalCluster | null = null;
  let credentials: ConnectionTarget;
  let lookup: PrimaryLookup;
  let managedLookup: ManagedPrimaryLookup | null = null;
  let startedHere = false;
  let standbys: ManagedStandbys | null = null;
  if (config.databaseUrl) {
    credentials = parseDatabaseUrl(config.databaseUrl);
    const patroni = config.postgres.patroni;
    lookup = patroni ? new PatroniLookup({ endpoints: patroni.endpoints, requestTimeoutMs: patroni.requestTimeoutMs }) : fixedPrimary(credentials);
    const state = readState(dir);
    if (!state) writeState(dir, { version: STATE_VERSION, initialised: true, createdAt: new Date().toISOString(), managed: null });
  } else {
    cluster = await prepareManagedCluster(config, dir, tools, log, options.initialise ?? false);
    const mainPort = readState(dir)?.managed?.port ?? cluster.port;
    const outcome = await startRecordedPrimary(cluster, recordedPrimary(dir, mainPort).name);
    startedHere = outcome === 'started';
    if (startedHere) log.info({ port: cluster.port }, 'PostgreSQL started');
    try {
      await applyClusterNetwork({ config, dir, runAs: cluster.runAs, masterKey, log, mainPort }, cluster);
      standbys = await startManagedStandbys({ dir, primary: cluster, mainPort, log });
    } catch (err) {
      if (startedHere) await cluster.stop().catch(() => undefined);
      throw err;
    }
    credentials = managedCredentials(dir, mainPort, cluster);
    // startManagedStandbys has just asked every node whether it accepts writes.
    const checkedPrimary = recordedPrimary(dir, mainPort).name;
    managedLookup = new ManagedPrimaryLookup({ dir, mainPort, cluster, splitBrainCheckMs: config.postgres.primary.splitBrainCheckMs, checkedPrimary });
    lookup = managedLookup;
  }

  const primary = new PrimaryLocator({
    lookup,
    credentials,
    log,
    checkIntervalMs: config.postgres.primary.checkIntervalMs,
    retryAfterSeconds: config.postgres.primary.retryAfterSeconds,
    connectTimeoutMs: config.postgres.connectTimeoutMs,
  });
  const target = primary.target;
  const stopStarted = async () => {
    primary.close();
    if (startedHere) await cluster?.stop().catch(() => undefined);
  };
  try {
    await primary.start();
    const waitMs = (config.postgres.patroni?.waitForLeaderSeconds ?? 0) * 1000;
    if (!primary.current() && waitMs > 0) {
      log.info({ endpoints: config.postgres.patroni?.endpoints }, 'waiting for a Patroni leader');
      await primary.waitForPrimary(waitMs);
    }
    if (!primary.current()) throw new UserError(`there is no primary to use: ${primary.state.reason ?? 'unknown'}`, 4);
    await ensureControlPlane({ target, log, lockMaintenanceDatabases: cluster !== null });
    if (cluster) await ensureSlotWalKeepSize(target, config.replication.maxSlotWalKeepSizeMb, log);
  } catch (err) {
    await stopStarted();
    throw err;
  }

  const control = primaryPool(primary, CONTROL_DATABASE, { max: 5, idleTimeoutMillis: 10_000 });
  control.on('error', (err) => {
    if (!(err instanceof PrimaryMovedError)) log.warn({ err: err.message }, 'control database connection lost');
  });
  try {
    await control.query('SELECT 1');
  } catch (err) {
    await control.end();
    await stopStarted();
    throw databaseUnreachable(target, err);
  }
  const alerts = new ControlDbAlerts(control, log);
  primary.attachAlerts(alerts);
  const watch = cluster ? replicationWatch(config, log) : null;

  let closed = false;
  return {
    config,
    dir,
    target,
    primary,
    cluster,
    tools,
    masterKey,
    control,
    alerts,
    log,
    async close(closeOptions = {}) {
      if (closed) return;
      closed = true;
      primary.close();
      await watch?.stop();
      await control.end().catch(() => undefined);
      // Asked to stop the cluster: the node that is the primary now goes too, if a failover moved it.
      const now = closeOptions.stopCluster === true ? managedLookup?.recordedPrimary() : null;
      if (now && now.pgData !== cluster?.pgData) await now.stop();
      // A primary on another machine was not started here and is not stopped here either.
      if (cluster && !(cluster instanceof RemoteCluster) && (closeOptions.stopCluster ?? startedHere)) {
        await cluster.stop();
        log.info('PostgreSQL stopped');
      }
      await standbys?.stop(closeOptions.stopCluster === true);
    },
  };
}
