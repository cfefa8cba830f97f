/**
 * A node on another machine, driven over SSH. It is a LocalCluster for everything the replication
 * commands do through SQL (probes, promotion, slots: they connect to its host and port) and
 * overrides what touches its files and processes: pg_ctl, pg_controldata and the configuration
 * files run there, as the OS user TaskFlow logs in as.
 */
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import type { ConnectionTarget } from '../postgres/connection.ts';
import { clusterSettings, LocalCluster, type LocalClusterOptions } from '../postgres/local-cluster.ts';
import { autoConfScript, describeRemote, mustRunRemote, mustRunRemoteSync, runRemote, runRemoteSync, shellQuote, writeFilesScript, type RemoteNode } from './remote-shell.ts';

export interface RemoteClusterOptions extends Omit<LocalClusterOptions, 'pgData' | 'listenAddress'> {
  /** The cluster's CA certificate file (replicationFiles(ctx).caCert): its TLS connections verify the node's certificate against it. */
  ca?: string;
}

export class RemoteCluster extends LocalCluster {
  readonly remote: RemoteNode;
  readonly ca: string | undefined;

  constructor(options: RemoteClusterOptions, remote: RemoteNode) {
    const { ca, ...rest } = options;
    super({ ...rest, pgData: remote.dataDir, listenAddress: remote.host });
    this.remote = remote;
    this.ca = ca;
  }

  /** Over TLS off loopback, verify-full against the cluster's CA: the node's certificate names its address. */
  override target(): ConnectionTarget {
    const target = super.target();
    return target.ssl && this.ca ? { ...target, ca: this.ca } : target;
  }

  /** Where this node is, for messages: `postgres@host:22:/var/lib/…`. */
  describe(): string {
    return `${describeRemote(this.remote)}:${this.pgData}`;
  }

  #path(name: string): string {
    return shellQuote(join(this.pgData, name));
  }

  #tool(name: string): string {
    return shellQuote(join(this.remote.pgBin, name));
  }

  /** False too when the machine cannot be reached (a fence then cannot be written there; the split-brain check covers it). */
  override isInitialised(): boolean {
    try {
      return runRemoteSync(this.remote, `test -f ${this.#path('PG_VERSION')}`).status === 0;
    } catch {
      return false;
    }
  }

  /** False too when the machine cannot be reached: nothing there can be seen running. */
  override async isRunning(): Promise<boolean> {
    const r = await runRemote(this.remote, `${this.#pgCtl('status')} >/dev/null 2>&1`).catch(() => null);
    return r?.status === 0;
  }

  #pgCtl(action: string): string {
    return `${this.#tool('pg_ctl')} ${action} --pgdata ${shellQuote(this.pgData)}`;
  }

  /** One connection: not initialised (exit 3), already running (exit 10), else pg_ctl start and, if it fails, the log's tail. */
  override async start(): Promise<'started' | 'already-running'> {
    const log = this.#path('log/startup.log');
    const r = await runRemote(
      this.remote,
      [
        `test -f ${this.#path('PG_VERSION')} || exit 3`,
        `${this.#pgCtl('status')} >/dev/null 2>&1 && exit 10`,
        `mkdir -p -m 700 ${this.#path('log')} || exit 1`,
        `${this.#pgCtl('start')} --wait --timeout 120 --silent --log ${log} </dev/null; s=$?`,
        `[ $s -eq 0 ] || tail -n 8 ${log} >&2`,
        'exit $s',
      ].join('\n'),
      { timeoutMs: 130_000 },
    );
    if (r.status === 3) throw new UserError(`no PostgreSQL cluster in ${this.describe()}`);
    if (r.status === 10) return 'already-running';
    if (r.status !== 0) throw new UserError(`PostgreSQL in ${this.describe()} did not start: ${r.stderr.trim()}`);
    return 'started';
  }

  override async stop(mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> {
    await mustRunRemote(this.remote, 'pg_ctl stop', `${this.#pgCtl('status')} >/dev/null 2>&1 || exit 0\n${this.#pgCtl('stop')} --mode ${mode} --wait --timeout 120 --silent </dev/null`, {
      timeoutMs: 130_000,
    });
  }

  override writeSettings(): void {
    mustRunRemoteSync(this.remote, 'writing taskflow.conf', this.#settingsScript());
  }

  /** taskflow.conf for this node's own port and address. */
  #settingsScript(): string {
    return writeFilesScript([[join(this.pgData, 'taskflow.conf'), clusterSettings(this.port, this.listenAddress, this.maxSlotWalKeepSizeMb)]]);
  }

  override writeHbaBlock(block: string, lines: string[]): void {
    const path = join(this.pgData, 'pg_hba.conf');
    const begin = `# TaskFlow ${block} (begin)`;
    const end = `# TaskFlow ${block} (end)`;
    const current = mustRunRemoteSync(this.remote, 'reading pg_hba.conf', `cat ${shellQuote(path)}`);
    const start = current.indexOf(begin);
    const stop = current.indexOf(end);
    const rest = start >= 0 && stop > start ? current.slice(0, start) + current.slice(stop + end.length + 1) : current;
    mustRunRemoteSync(this.remote, 'writing pg_hba.conf', writeFilesScript([[path, [begin, ...lines, end, ''].join('\n') + rest]]));
  }

  override writeStandbySettings(settings: { primaryConninfo: string; slotName: string; extra?: Record<string, string> }): void {
    mustRunRemoteSync(this.remote, `configuring the standby ${this.pgData}`, this.#standbyScript({ ...settings.extra, primary_conninfo: settings.primaryConninfo, primary_slot_name: settings.slotName }));
  }

  /**
   * What configureStandby does (its own taskflow.conf, standby settings) in one connection, plus
   * `extra` settings for postgresql.auto.conf: a fresh copy's certificate files.
   */
  configureCopy(settings: { primaryConninfo: string; slotName: string }, extra: Record<string, string>): void {
    const standby = this.#standbyScript({ primary_conninfo: settings.primaryConninfo, primary_slot_name: settings.slotName, ...extra });
    mustRunRemoteSync(this.remote, `configuring the standby ${this.pgData}`, `rm -f ${this.#path('TASKFLOW_FENCED')}\n${this.#settingsScript()}\n${standby}`);
  }

  /** postgresql.auto.conf settings, standby.signal, and no slots or logs that came with a copy. */
  #standbyScript(settings: Record<string, string>): string {
    const autoConf = autoConfScript(join(this.pgData, 'postgresql.auto.conf'), settings);
    return `${autoConf}\n: > ${this.#path('standby.signal')} || exit 1\nfind ${this.#path('pg_replslot')} ${this.#path('log')} -mindepth 1 -delete 2>/dev/null\nexit 0`;
  }

  override fence(reason: string): void {
    const autoConf = autoConfScript(join(this.pgData, 'postgresql.auto.conf'), { primary_conninfo: null, primary_slot_name: null });
    const files = writeFilesScript([[join(this.pgData, 'standby.signal'), ''], [join(this.pgData, 'TASKFLOW_FENCED'), `${reason}\n`]]);
    mustRunRemoteSync(this.remote, `fencing ${this.pgData}`, `${autoConf}\n${files}`);
  }

  override unfence(): void {
    mustRunRemoteSync(this.remote, `unfencing ${this.pgData}`, `rm -f ${this.#path('TASKFLOW_FENCED')} ${this.#path('standby.signal')}`);
  }

  override isFenced(): boolean {
    return runRemoteSync(this.remote, `test -f ${this.#path('TASKFLOW_FENCED')}`).status === 0;
  }

  override async controlData(): Promise<Record<string, string>> {
    const stdout = await mustRunRemote(this.remote, 'pg_controldata', `${this.#tool('pg_controldata')} ${shellQuote(this.pgData)}`);
    const fields: Record<string, string> = {};
    for (const line of stdout.split('\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) fields[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
    }
    return fields;
  }

  /** Deletes its data directory and its replication secrets there (the node is stopped). */
  async removeData(): Promise<void> {
    await mustRunRemote(this.remote, 'deleting the data directory', `rm -rf ${shellQuote(this.pgData)} ${shellQuote(`${this.pgData}.replication`)}`);
  }

  /** Its processes are on another machine: nothing here to watch or reap. */
  override postmasterPid(): number | null {
    return null;
  }
}
