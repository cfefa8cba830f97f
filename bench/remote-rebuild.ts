/**
 * What `cluster rebuild` of a node on another machine costs: `rebuildNode` of a remote standby (a
 * real sshd on loopback letting a throwaway key in as the PostgreSQL OS user, so every step goes
 * through ssh as to another host) beside the same of a local standby as the baseline, on the same
 * small cluster, alternating: by pg_rewind (a standby that follows the primary: "no rewind
 * required") and with `fresh` (a new base backup). ratio = remote ÷ local. Needs root.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { createLogger } from '../src/platform/log.ts';
import { openReplication } from '../src/platform/replication/context.ts';
import { addRemoteStandby } from '../src/platform/replication/remote-standby.ts';
import { addStandby, rebuildNode } from '../src/platform/replication/standby.ts';
import { startPostgresSshd, startReplicatedCluster } from '../test/helpers/replication.ts';

const RUNS = Number(process.env.BENCH_REMOTE_REBUILD_RUNS ?? 5);

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const figures = (samples: number[]) => ({ median: median(samples), worst: Math.max(...samples), samples });
const ratio = (remote: number[], local: number[]) => Math.round((median(remote) / median(local)) * 100) / 100;

export async function runRemoteRebuildBenchmark(progress: (message: string) => void): Promise<unknown> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root: the sshd logs in as the postgres OS user' };
  const rc = await startReplicatedCluster();
  const sshd = await startPostgresSshd();
  try {
    const ctx = openReplication(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), createLogger({ level: 'silent' }));
    await addStandby(ctx, { name: 'b' });
    await addRemoteStandby(ctx, {
      name: 'c',
      remote: `postgres@127.0.0.1:${sshd.port}`,
      sshKey: sshd.identityFile,
      knownHosts: sshd.knownHostsFile,
      dataDir: join(sshd.workDir, 'c'),
      port: await freePort(),
      site: 'site-b',
    });
    const samples = { localRewind: [] as number[], remoteRewind: [] as number[], localFresh: [] as number[], remoteFresh: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      for (const fresh of [false, true]) {
        const local = await rebuildNode(ctx, { name: 'b', fresh });
        const remote = await rebuildNode(ctx, { name: 'c', fresh });
        (fresh ? samples.localFresh : samples.localRewind).push(local.tookMs);
        (fresh ? samples.remoteFresh : samples.remoteRewind).push(remote.tookMs);
        progress(`remote-rebuild: run ${run + 1}/${RUNS} ${fresh ? 'fresh' : 'rewind'}: local ${local.tookMs} ms (${local.method}), remote ${remote.tookMs} ms (${remote.method})`);
      }
    }
    return {
      runs: RUNS,
      unit: 'ms from the call to the rebuilt standby streaming',
      localRewindMs: figures(samples.localRewind),
      remoteRewindMs: figures(samples.remoteRewind),
      ratioRewindRemoteToLocal: ratio(samples.remoteRewind, samples.localRewind),
      localFreshMs: figures(samples.localFresh),
      remoteFreshMs: figures(samples.remoteFresh),
      ratioFreshRemoteToLocal: ratio(samples.remoteFresh, samples.localFresh),
      loadAverage1m: loadavg()[0],
      note: 'baseline: a local standby (pg_rewind or pg_basebackup and pg_ctl here); remote: the same run there through ssh to a loopback sshd (a login per step)',
    };
  } finally {
    await rc.cleanup();
    await sshd.cleanup();
  }
}
