/**
 * What measuring the old primary's WAL costs in a failover: `walGap` over the same stopped
 * cluster's pg_wal read here (pg_waldump run locally, the baseline) and over SSH as for a remote old
 * primary (a real sshd on loopback letting a throwaway key in as the PostgreSQL OS user; pg_waldump
 * run there, only commit records and the last record sent back), alternating, with the
 * configuration read the same two ways. The WAL holds COMMITS commits beyond the "received"
 * position. ratio = remote ÷ local. Needs root (the sshd logs in as `postgres`).
 */
import { loadavg } from 'node:os';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/platform/log.ts';
import { clusterAt, openReplication } from '../src/platform/replication/context.ts';
import { RemoteCluster } from '../src/platform/replication/remote-cluster.ts';
import { walGap } from '../src/platform/replication/wal-gap.ts';
import { oldPrimaryFiles, type OldPrimaryFiles } from '../src/platform/replication/wal-source.ts';
import { startPostgresSshd, startReplicatedCluster } from '../test/helpers/replication.ts';

const RUNS = Number(process.env.BENCH_FAILOVER_GAP_RUNS ?? 10);
const COMMITS = Number(process.env.BENCH_FAILOVER_GAP_COMMITS ?? 2000);

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

export async function runFailoverGapBenchmark(progress: (message: string) => void): Promise<unknown> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root: the sshd logs in as the postgres OS user' };
  const rc = await startReplicatedCluster();
  const sshd = await startPostgresSshd();
  try {
    const ctx = openReplication(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), createLogger({ level: 'silent' }));
    await rc.sql('main', 'CREATE TABLE gap_rows (id int PRIMARY KEY)');
    const [start] = await rc.sql<{ lsn: string }>('main', 'SELECT pg_current_wal_lsn()::text AS lsn');
    const from = start?.lsn ?? '0/0';
    for (let i = 0; i < COMMITS; i++) await rc.sql('main', 'INSERT INTO gap_rows VALUES ($1)', [i]);
    await rc.pgCtl('main', 'stop', '--mode', 'fast');
    const local = clusterAt(ctx, rc.pgData('main'), rc.port('main'));
    const remoteCluster = new RemoteCluster(
      { port: rc.port('main'), tools: ctx.tools, runAs: ctx.runAs, superuserPassword: ctx.superuserPassword, maxSlotWalKeepSizeMb: -1 },
      { user: 'postgres', host: '127.0.0.1', sshPort: sshd.port, identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile, dataDir: rc.pgData('main'), pgBin: ctx.tools.binDir },
    );
    const sources: Record<'local' | 'remote', OldPrimaryFiles> = { local: oldPrimaryFiles(ctx, local), remote: oldPrimaryFiles(ctx, remoteCluster) };
    const times = { local: { gap: [] as number[], config: [] as number[] }, remote: { gap: [] as number[], config: [] as number[] } };
    const commits = { local: -1, remote: -1 };
    for (let run = 0; run < RUNS; run++) {
      for (const kind of ['local', 'remote'] as const) {
        let t = performance.now();
        const gap = await walGap(sources[kind].wal, { replayed: from, received: from });
        times[kind].gap.push(Math.round(performance.now() - t));
        if (!gap.known) throw new Error(`${kind}: ${gap.reason}`);
        commits[kind] = gap.missingCommits;
        t = performance.now();
        await sources[kind].config();
        times[kind].config.push(Math.round(performance.now() - t));
      }
      progress(`failover-gap: run ${run + 1}/${RUNS}: local ${times.local.gap.at(-1)} ms, remote ${times.remote.gap.at(-1)} ms`);
    }
    const summary = (values: number[]) => ({ median: median(values), worst: Math.max(...values), samples: values });
    return {
      runs: RUNS,
      commitsInGap: COMMITS,
      commitsCounted: commits,
      unit: 'ms per call',
      localWalGapMs: summary(times.local.gap),
      remoteWalGapMs: summary(times.remote.gap),
      ratioRemoteToLocal: Math.round((median(times.remote.gap) / Math.max(1, median(times.local.gap))) * 100) / 100,
      localConfigMs: summary(times.local.config),
      remoteConfigMs: summary(times.remote.config),
      loadAverage1m: loadavg()[0],
      note: 'baseline: pg_waldump over pg_wal here; remote: the same pg_wal through ssh to a loopback sshd (two connections: the listing, then pg_waldump filtered there); the configuration: files read here, or one ssh connection',
    };
  } finally {
    await rc.cleanup();
    await sshd.cleanup();
  }
}
