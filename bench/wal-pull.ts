/**
 * What draining a remote primary's WAL spool costs: `pullWalSpools` (every file copied here over
 * ssh from a loopback sshd logging in as the PostgreSQL OS user, then the archive pipeline and
 * catalog) beside the baseline, the same files put through the same pipeline and catalog from local
 * copies (`storeWalFile`, no ssh), under another cluster name in the same repository. The primary
 * is node c, added with `standby add --remote` and made primary by a switchover; its segments are
 * closed with `pg_switch_wal()` after a few thousand rows each, so each spooled file is a full
 * 16 MiB segment. `BENCH_WAL_PULL_SEGMENTS` (24) segments a round, `BENCH_WAL_PULL_ROUNDS` (3)
 * rounds alternating pull and baseline. Needs root (the sshd logs in as `postgres`).
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { generateIdentity } from '../src/platform/backup/age-keys.ts';
import { openRepository } from '../src/platform/backup/config.ts';
import { storeWalFile } from '../src/platform/backup/physical/wal-archiver.ts';
import { pullWalSpools } from '../src/platform/backup/physical/wal-pull.ts';
import { clusterIdentifier } from '../src/platform/backup/service.ts';
import { createLogger } from '../src/platform/log.ts';
import { openPlatform } from '../src/platform/platform.ts';
import { addRemoteStandby, eventually, killPostmasterIn, startPostgresSshd, startReplicatedCluster, switchoverTo } from '../test/helpers/replication.ts';

const SEGMENTS = Number(process.env.BENCH_WAL_PULL_SEGMENTS ?? 24);
const ROUNDS = Number(process.env.BENCH_WAL_PULL_ROUNDS ?? 3);

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const round3 = (n: number): number => Math.round(n * 1000) / 1000;

export async function runWalPullBenchmark(progress: (message: string) => void): Promise<unknown> {
  if (process.getuid?.() !== 0) return { skipped: 'needs root: the sshd logs in as the postgres OS user' };
  const rc = await startReplicatedCluster();
  const sshd = await startPostgresSshd();
  const remoteDir = join(sshd.workDir, 'c');
  const spool = `${remoteDir}.walspool`;
  try {
    const repositoryDir = join(rc.dataDir, '..', 'repo');
    mkdirSync(repositoryDir, { mode: 0o711 });
    const keys = generateIdentity();
    const repository = { name: 'local', kind: 'filesystem' as const, region: 'fra1', jurisdiction: 'DE', path: repositoryDir };
    writeFileSync(
      join(rc.dataDir, 'config.json'),
      JSON.stringify({ backup: { allowedJurisdictions: ['DE'], recipients: [keys.recipient], repositories: [repository], remoteWalPullSeconds: 10 } }),
    );
    const must = (r: { code: number | null; stderr: string }, what: string) => {
      if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
    };
    must(await rc.cli('wal', 'status', '--install'), 'wal status --install');
    await rc.sql('main', 'CREATE TABLE pull_rows (n int, filler text)');
    await addRemoteStandby(rc, sshd, remoteDir);
    await switchoverTo(rc, 'c');
    const platform = await openPlatform(loadConfig({ env: {}, overrides: { dataDir: rc.dataDir } }), { log: createLogger({ level: 'silent' }) });
    try {
      const sysid = await clusterIdentifier(platform);
      await pullWalSpools(platform); // what the switchover left (history file, partial segment)
      const local = join(rc.dataDir, '..', 'baseline');
      const pullSeconds: number[] = [];
      const baselineSeconds: number[] = [];
      let bytes = 0;
      // Per round: what the pull archived (files already archived it only removes), what the baseline stored.
      const pullBytes: number[] = [];
      const baselineBytes: number[] = [];
      const alreadyArchived: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        let last = '';
        for (let i = 0; i < SEGMENTS; i++) {
          await rc.sql('c', "INSERT INTO pull_rows SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g");
          last = (await rc.sql<{ file: string }>('c', 'SELECT pg_walfile_name(pg_switch_wal()) AS file'))[0]?.file ?? '';
        }
        await eventually(`${last} spooled`, async () => (((await rc.sql<{ last: string | null }>('c', 'SELECT last_archived_wal AS last FROM pg_stat_archiver'))[0]?.last ?? '') >= last ? true : undefined), 60_000);
        rmSync(local, { recursive: true, force: true });
        mkdirSync(local);
        const files = readdirSync(spool).filter((f) => !f.startsWith('.'));
        for (const f of files) copyFileSync(join(spool, f), join(local, f));
        bytes = files.reduce((sum, f) => sum + statSync(join(local, f)).size, 0);

        let started = performance.now();
        const reports = await pullWalSpools(platform);
        pullSeconds.push((performance.now() - started) / 1000);
        const report = reports?.[0];
        // Every spooled file is dealt with: archived, or found in the archive already (a segment of the
        // old timeline the promoted node spools late, which the old primary had archived) and removed.
        if (!report || report.error || report.archived + report.alreadyArchived !== files.length || report.left.length > 0) {
          throw new Error(`the pull did not deal with the ${files.length} spooled files (${files.sort().join(', ')}): ${JSON.stringify(report)}`);
        }
        pullBytes.push(report.bytes);
        baselineBytes.push(bytes);
        alreadyArchived.push(report.alreadyArchived);

        // Under another cluster's name: the same work, its own objects and catalog rows.
        const store = openRepository(repository);
        started = performance.now();
        for (const f of files.sort()) {
          await storeWalFile({
            target: platform.target, control: platform.control, alerts: platform.alerts, log: platform.log,
            repository: store, recipients: [keys.recipient], compressionLevel: platform.config.backup.compressionLevel,
            systemIdentifier: String(BigInt(sysid) + 1n), file: f, source: join(local, f), walEndAt: statSync(join(local, f)).mtime,
          });
        }
        baselineSeconds.push((performance.now() - started) / 1000);
        await store.close();
        progress(`wal-pull: round ${round + 1}/${ROUNDS}: ${files.length} files, pull ${round3(pullSeconds.at(-1)!)} s, baseline ${round3(baselineSeconds.at(-1)!)} s`);
      }
      const mibPerSecond = (bytesOf: number[], seconds: number[]): number => round3(median(seconds.map((s, i) => (bytesOf[i] ?? 0) / 1024 / 1024 / s)));
      const pullRate = mibPerSecond(pullBytes, pullSeconds);
      const baselineRate = mibPerSecond(baselineBytes, baselineSeconds);
      return {
        rounds: ROUNDS,
        filesPerRound: SEGMENTS,
        mibPerRound: round3(bytes / 1024 / 1024),
        alreadyArchivedPerRound: alreadyArchived,
        pull: { seconds: round3(median(pullSeconds)), samples: pullSeconds.map(round3), mibPerSecond: pullRate },
        baseline: { seconds: round3(median(baselineSeconds)), samples: baselineSeconds.map(round3), mibPerSecond: baselineRate },
        // Time per byte archived, so a round in which the pull found a file archived already stays comparable.
        ratioPullToBaseline: round3(baselineRate / pullRate),
        loadAverage1m: loadavg()[0],
        note: 'pull: pullWalSpools of the remote primary c (listing, ssh copies, the archive pipeline, catalog, removal from the spool); baseline: storeWalFile of local copies of the same files (the pipeline and catalog without ssh). MiB/s: the median round of bytes archived ÷ seconds (the pull only removes a file it finds archived already); the ratio is time per MiB, pull ÷ baseline. Loopback sshd: a real network adds its latency to every connection.',
      };
    } finally {
      await platform.close({ stopCluster: false });
    }
  } finally {
    killPostmasterIn(remoteDir);
    await rc.cleanup();
    await sshd.cleanup();
  }
}
