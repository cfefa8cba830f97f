/**
 * What building a standby over SSH costs: `addRemoteStandby` (a real sshd on loopback letting a
 * throwaway key in as the PostgreSQL OS user, so every step goes through ssh as to another host)
 * beside `addStandby` of a local standby as the baseline, on the same small cluster, alternating,
 * each removed again after it streams. ratio = remote ÷ local. Needs root (the sshd logs in as
 * `postgres`).
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { createLogger } from '../src/platform/log.ts';
import { openReplication } from '../src/platform/replication/context.ts';
import { addRemoteStandby } from '../src/platform/replication/remote-standby.ts';
import { addStandby, removeNode } from '../src/platform/replication/standby.ts';
import { startPostgresSshd, startReplicatedCluster } from '../test/helpers/replication.ts';

const RUNS = Number(process.env.BENCH_REMOTE_STANDBY_RUNS ?? 5);

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

export async function runRemoteStandbyBenchmark(progress: (message: string) => void): Promise<unknown> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root: the sshd logs in as the postgres OS user' };
  const rc = await startReplicatedCluster();
  const sshd = await startPostgresSshd();
  try {
    const ctx = openReplication(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), createLogger({ level: 'silent' }));
    const local: number[] = [];
    const remote: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      local.push((await addStandby(ctx, { name: 'b' })).tookMs);
      await removeNode(ctx, 'b');
      const added = await addRemoteStandby(ctx, {
        name: 'c',
        remote: `postgres@127.0.0.1:${sshd.port}`,
        sshKey: sshd.identityFile,
        knownHosts: sshd.knownHostsFile,
        dataDir: join(sshd.workDir, `c${run}`),
        port: await freePort(),
        site: 'site-b',
      });
      remote.push(added.tookMs);
      await removeNode(ctx, 'c');
      progress(`remote-standby: run ${run + 1}/${RUNS}: local ${local.at(-1)} ms, remote ${added.tookMs} ms`);
    }
    return {
      runs: RUNS,
      unit: 'ms from the call to the new standby streaming (its removal not included)',
      localStandbyAddMs: { median: median(local), worst: Math.max(...local), samples: local },
      remoteStandbyAddMs: { median: median(remote), worst: Math.max(...remote), samples: remote },
      ratioRemoteToLocal: Math.round((median(remote) / median(local)) * 100) / 100,
      loadAverage1m: loadavg()[0],
      note: 'baseline: a local standby (pg_basebackup and pg_ctl here); remote: the same through ssh to a loopback sshd (about ten connections, each a login)',
    };
  } finally {
    await rc.cleanup();
    await sshd.cleanup();
  }
}
