/**
 * What a failover reads of the old primary's data directory: its pg_wal (segment files and
 * pg_waldump over them) and its configuration files. Here for a local node; over SSH on the node's
 * machine for a remote one (one connection per step, the script on stdin as remote-shell.ts does:
 * nothing but paths and WAL positions on any command line). An unreachable machine is an error
 * the caller turns into "cannot tell".
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import type { LocalCluster } from '../postgres/local-cluster.ts';
import { runTool } from '../postgres/tools.ts';
import { extraTool, type ReplicationContext } from './context.ts';
import { RemoteCluster } from './remote-cluster.ts';
import { describeRemote, mustRunRemote, runRemote, shellQuote, type RemoteNode } from './remote-shell.ts';
import type { WalSource } from './wal-gap.ts';

/** A configuration file of the data directory as it is on disk; content null when it does not exist. */
export interface ConfigFile {
  name: string;
  content: string | null;
  /** Last modification (on that machine's clock, the one commit times come from). */
  modifiedAt: Date | null;
}

/** The files PostgreSQL reads its settings from, in the order it reads them (taskflow.conf is included at the end of postgresql.conf). */
export const CONFIG_FILES = ['postgresql.conf', 'taskflow.conf', 'postgresql.auto.conf'] as const;

/** The old primary's data directory, for a failover away from it. */
export interface OldPrimaryFiles {
  wal: WalSource;
  config(): Promise<ConfigFile[]>;
}

/** The files of `cluster`: read here, or over SSH for a node on another machine. */
export function oldPrimaryFiles(ctx: ReplicationContext, cluster: LocalCluster): OldPrimaryFiles {
  return cluster instanceof RemoteCluster ? remoteFiles(cluster.remote) : localFiles(ctx, cluster.pgData);
}

function localFiles(ctx: ReplicationContext, pgData: string): OldPrimaryFiles {
  const walDir = join(pgData, 'pg_wal');
  return {
    wal: {
      where: walDir,
      listing() {
        const names = readdirSync(walDir).filter((n) => /^[0-9A-F]{24}$/.test(n));
        return Promise.resolve({ names, segmentSize: names[0] ? statSync(join(walDir, names[0])).size : null });
      },
      async dump(timeline, start) {
        try {
          return await runTool(extraTool(ctx, 'pg_waldump'), ['--path', walDir, '--timeline', String(timeline), '--start', start], {
            runAs: ctx.runAs,
            env: { TZ: 'UTC' },
            timeoutMs: 300_000,
          });
        } catch (err) {
          const e = err as { stdout?: string; stderr?: string; code?: unknown; message: string };
          // Output cut off at the buffer's limit would undercount what is missing: that is not knowing.
          if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER' || e.stdout === undefined) throw new Error(e.message, { cause: err });
          return { stdout: e.stdout, stderr: e.stderr ?? e.message };
        }
      },
    },
    config() {
      return Promise.resolve(
        CONFIG_FILES.map((name) => {
          const path = join(pgData, name);
          try {
            return { name, content: readFileSync(path, 'utf8'), modifiedAt: statSync(path).mtime };
          } catch {
            return { name, content: null, modifiedAt: null };
          }
        }),
      );
    },
  };
}

/** Keeps the commit records and the last record of pg_waldump's output: all that measureGap needs, and little to send back. */
export const KEEP_COMMITS_AND_LAST = `/^rmgr: Transaction /{print; next} {last=$0} END{if (last != "") print last}`;

function remoteFiles(node: RemoteNode): OldPrimaryFiles {
  const walDir = join(node.dataDir, 'pg_wal');
  const where = `${describeRemote(node)}:${walDir}`;
  const waldump = shellQuote(join(node.pgBin, 'pg_waldump'));
  return {
    wal: {
      where,
      async listing() {
        const out = await mustRunRemote(
          node,
          `listing ${walDir}`,
          [`cd ${shellQuote(walDir)} || exit 1`, 'first=', 'for f in *; do', '  case $f in ????????????????????????) echo "$f"; [ -n "$first" ] || first=$f ;; esac', 'done', '[ -z "$first" ] || echo "size $(wc -c < "$first")"'].join('\n'),
        );
        const lines = out.split('\n').filter((l) => l !== '');
        const size = lines.find((l) => l.startsWith('size '));
        return { names: lines.filter((l) => !l.startsWith('size ')), segmentSize: size ? Number(size.slice(5).trim()) : null };
      },
      async dump(timeline, start) {
        const r = await runRemote(
          node,
          `TZ=UTC; export TZ\n${waldump} --path ${shellQuote(walDir)} --timeline ${String(timeline)} --start ${shellQuote(start)} | awk ${shellQuote(KEEP_COMMITS_AND_LAST)}`,
          { timeoutMs: 300_000 },
        );
        if (r.status !== 0) throw new UserError(`pg_waldump on ${describeRemote(node)} failed: ${r.stderr.trim().split('\n').pop() ?? `exit ${String(r.status)}`}`);
        return { stdout: r.stdout, stderr: r.stderr };
      },
    },
    async config() {
      return parseConfigListing(await mustRunRemote(node, `reading the configuration of ${node.dataDir}`, configListingScript(node.dataDir)));
    },
  };
}

const CONFIG_MARK = '@@taskflow-config-file';

/** Prints each configuration file after a line `@@taskflow-config-file NAME MTIME` (MTIME `-` when it does not exist). */
export function configListingScript(pgData: string): string {
  return CONFIG_FILES.map((name) => {
    const f = shellQuote(join(pgData, name));
    return `if [ -f ${f} ]; then echo "${CONFIG_MARK} ${name} $(date -r ${f} +%s)"; cat ${f}; echo; else echo "${CONFIG_MARK} ${name} -"; fi`;
  }).join('\n');
}

/** The files a configListingScript printed. */
export function parseConfigListing(out: string): ConfigFile[] {
  const files: ConfigFile[] = [];
  let current: ConfigFile | null = null;
  for (const line of out.split('\n')) {
    const mark = line.startsWith(`${CONFIG_MARK} `) ? line.slice(CONFIG_MARK.length + 1).split(' ') : null;
    if (mark?.[0] && mark[1]) {
      current = { name: mark[0], content: mark[1] === '-' ? null : '', modifiedAt: mark[1] === '-' ? null : new Date(Number(mark[1]) * 1000) };
      files.push(current);
    } else if (current?.content !== null && current) current.content += `${line}\n`;
  }
  return files;
}
