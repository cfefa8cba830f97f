/**
 * Snapshot throughput on one populated cluster, several ways in the same run: raw
 * `pg_basebackup -Ft -D - -X fetch` to /dev/null over the Unix socket (the baseline) and over TCP,
 * the server side alone, a snapshot the way takeSnapshot
 * takes one (BASE_BACKUP over a replication connection, the server compressing with zstd at the
 * snapshot level on every core → age → SHA-256 → filesystem repository, fsynced), and
 * pgBackRest's full backup of the cluster (zstd -3, AES-256 encryption, WAL archived). Rounds
 * alternate between them, each starting once the archiver has caught up; the figure is the
 * median round.
 */
import { spawn } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { generateIdentity, parseRecipient } from '../src/platform/backup/age-keys.ts';
import { FilesystemRepository } from '../src/platform/backup/fs-repository.ts';
import { manifestName } from '../src/platform/backup/manifest.ts';
import { DEFAULT_SNAPSHOT_ZSTD_LEVEL, DEFAULT_ZSTD_LEVEL, writeBackupObject } from '../src/platform/backup/pipeline.ts';
import { startBaseBackup } from '../src/platform/backup/physical/basebackup-protocol.ts';
import { snapshotWorkers } from '../src/platform/backup/physical/snapshot.ts';
import { runTool } from '../src/platform/postgres/tools.ts';
import { median, round1 } from './backup-encryption.ts';
import { ensurePgbackrest, STANZA, startBenchCluster, type BenchCluster } from './backup-cluster.ts';

const SCALE = Number(process.env.BENCH_BACKUP_PGBENCH_SCALE ?? 20);
const ROUNDS = Number(process.env.BENCH_BACKUP_ROUNDS ?? 5);
const MIB = 1024 * 1024;

type Progress = (message: string) => void;

export interface Timing {
  /** Median of the rounds. */
  seconds: number;
  /** The cluster's tar size (what pg_basebackup streams) ÷ seconds, so all are comparable. */
  mibPerSecond: number;
  samplesSeconds: number[];
}

export interface SnapshotResult {
  description: string;
  postgresVersion: string;
  pgbenchScale: number;
  rounds: number;
  databaseBytes: number;
  /** Bytes of pg_basebackup's tar stream (cluster and WAL). */
  tarBytes: number;
  /** Over the Unix socket: the baseline, and the faster of the two ways in. */
  pgBasebackupToDevNull: Timing;
  /**
   * The same over TCP to 127.0.0.1 with a password (SCRAM), which is how TaskFlow reaches the
   * cluster; the uncompressed tar stream crosses the loopback this way.
   */
  pgBasebackupOverTcpToDevNull: Timing;
  /**
   * The pipeline's first stage alone: the same BASE_BACKUP (server-side zstd at the snapshot level)
   * read by TaskFlow and thrown away, without age, SHA-256 or the repository. Pipeline minus this is
   * what TaskFlow's own stages add.
   */
  serverSideOnly: Timing;
  /** At the default snapshot level (backup.snapshotCompressionLevel). */
  pipeline: Timing & { level: number; sizes: { compressed: number; stored: number } };
  /** The same at level 3 (backup.compressionLevel's default), for the trade-off. */
  pipelineAtLevel3: Timing & { level: number; sizes: { compressed: number; stored: number } };
  pgbackrest: (Timing & { version: string; processMax: number; repositoryBytes: number }) | { unavailable: string };
  /** Throughput ÷ raw pg_basebackup's (issue 5's target for the pipeline: at least 0.8), and pipeline ÷ pgBackRest. */
  ratios: { pipelineToPgBasebackup: number; pipelineToPgBasebackupOverTcp: number; serverSideOnlyToPgBasebackup: number; pipelineAtLevel3ToPgBasebackup: number; pgbackrestToPgBasebackup: number | null; pipelineToPgbackrest: number | null };
  loadAverage: [number, number];
}

const RAW_ARGS = ['--pgdata', '-', '--format', 'tar', '--wal-method', 'fetch', '--checkpoint', 'fast'];

/**
 * pg_basebackup of the whole cluster as one tar stream to stdout, as the postgres OS user: over
 * the Unix socket, or with `tcp` (a password file) over TCP to 127.0.0.1 as TaskFlow connects.
 */
function basebackup(cluster: BenchCluster, stdout: 'pipe' | number, tcp?: { passfile: string }): { stdout: Readable | null; exited: Promise<void> } {
  const connect = tcp ? ['--host', cluster.target.host, '--port', String(cluster.target.port), '--username', cluster.target.user, '--no-password'] : cluster.connectArgs;
  const child = spawn(cluster.tools.path('pg_basebackup'), [...connect, ...RAW_ARGS], {
    stdio: ['ignore', stdout, 'pipe'],
    env: {
      PATH: process.env.PATH,
      LANG: 'C.UTF-8',
      ...(cluster.runAs ? { HOME: cluster.runAs.home, USER: cluster.runAs.name } : {}),
      ...(tcp ? { PGPASSFILE: tcp.passfile, PGSSLMODE: 'disable' } : {}),
    },
    cwd: '/',
    ...(cluster.runAs ? { uid: cluster.runAs.uid, gid: cluster.runAs.gid } : {}),
  });
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`pg_basebackup exited ${code}: ${stderr.trim()}`));
    });
  });
  return { stdout: child.stdout, exited };
}

/** Resolves once no WAL segment waits for archive_command (no `.ready` file in pg_wal/archive_status). */
async function archiverCaughtUp(cluster: BenchCluster): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const waiting = Number(await cluster.sql('postgres', "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"));
    if (waiting === 0) return;
    if (Date.now() > deadline) throw new Error(`the archiver has not caught up after 60 s (${waiting} segments wait)`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

function timing(samples: number[], tarBytes: number): Timing {
  const seconds = median(samples);
  return { seconds: Math.round(seconds * 1000) / 1000, mibPerSecond: round1(tarBytes / MIB / seconds), samplesSeconds: samples.map((s) => Math.round(s * 1000) / 1000) };
}

function ratio(a: number, b: number): number {
  return Math.round((a / b) * 100) / 100;
}

export async function runSnapshotBenchmark(progress: Progress): Promise<SnapshotResult> {
  const pgbackrest = ensurePgbackrest(progress);
  const command = 'command' in pgbackrest ? pgbackrest.command : null;
  progress(`backup/snapshot: starting a cluster${command ? ' (WAL archived by pgBackRest)' : ''}`);
  const cluster = await startBenchCluster(progress, { scale: SCALE, pgbackrest: command });
  try {
    const as = { runAs: cluster.runAs, timeoutMs: 30 * 60_000 };
    const postgresVersion = await cluster.sql('postgres', 'SHOW server_version');
    const databaseBytes = Number(await cluster.sql('postgres', 'SELECT sum(pg_database_size(oid)) FROM pg_database'));
    const repoRoot = join(cluster.dir, 'pipeline-repo');
    mkdirSync(repoRoot);
    const repository = new FilesystemRepository({ name: 'bench', region: 'local', jurisdiction: 'DE', path: repoRoot });
    const recipients = [parseRecipient(generateIdentity().recipient)];
    const devNull = openSync('/dev/null', 'w');
    const raw = (): Promise<void> => basebackup(cluster, devNull).exited;
    // The password reaches pg_basebackup in a file only the postgres OS user can read, never on its command line.
    const passfile = join(cluster.dir, 'bench.pgpass');
    writeFileSync(passfile, `${cluster.target.host}:${cluster.target.port}:*:${cluster.target.user}:${cluster.target.password}\n`, { mode: 0o600 });
    if (cluster.runAs) chownSync(passfile, cluster.runAs.uid, cluster.runAs.gid);
    const rawOverTcp = (): Promise<void> => basebackup(cluster, devNull, { passfile }).exited;
    const sizes = new Map<number, { compressed: number; stored: number }>();
    // As takeSnapshot runs it: BASE_BACKUP over a replication connection, the server compressing (zstd,
    // a worker per core), then age, SHA-256, the repository.
    const throughPipeline = async (round: number, level: number): Promise<void> => {
      const name = `snapshots/round-${round}.tar`;
      const source = startBaseBackup(cluster.target, { label: `bench ${round}`, compressionLevel: level, workers: snapshotWorkers() });
      const manifest = await writeBackupObject({ repository, name, kind: 'snapshot', source, recipients, compressionLevel: level, precompressed: true });
      sizes.set(level, { compressed: manifest.sizes.compressed, stored: manifest.sizes.stored });
      await repository.delete(manifestName(name));
      await repository.delete(name);
    };
    const serverSideOnly = (round: number): Promise<void> =>
      pipeline(
        startBaseBackup(cluster.target, { label: `bench server ${round}`, compressionLevel: DEFAULT_SNAPSHOT_ZSTD_LEVEL, workers: snapshotWorkers() }),
        new Writable({
          write(_chunk: Buffer, _encoding, callback) {
            callback();
          },
        }),
      );
    const withPgbackrest = async (): Promise<void> => {
      if (command && cluster.pgbackrestConfig) await runTool(command, [`--config=${cluster.pgbackrestConfig}`, `--stanza=${STANZA}`, '--type=full', 'backup'], as);
    };
    try {
      progress('backup/snapshot: warm-up (pg_basebackup, its tar stream counted, not timed)');
      const counted = basebackup(cluster, 'pipe');
      let tarBytes = 0;
      counted.stdout?.on('data', (chunk: Buffer) => (tarBytes += chunk.length));
      await counted.exited;
      const load0 = loadavg()[0]!;
      const samples = { raw: [] as number[], rawOverTcp: [] as number[], serverSideOnly: [] as number[], pipeline: [] as number[], pipelineLevel3: [] as number[], pgbackrest: [] as number[] };
      // Every backup ends with a WAL switch, and archive_command (pgBackRest's archive-push, which
      // compresses the segment) then runs beside whatever comes next. pgBackRest's own backup waits
      // for it; the others do not. Each timed run starts once the archiver has caught up, so none
      // pays for the one before it (without this the raw baseline, which follows pgBackRest, was the
      // only one ever to start on a quiet machine).
      const quiet = (): Promise<void> => (command ? archiverCaughtUp(cluster) : Promise.resolve());
      for (let round = 1; round <= ROUNDS; round++) {
        await quiet();
        samples.raw.push(await timed(raw));
        await quiet();
        samples.rawOverTcp.push(await timed(rawOverTcp));
        await quiet();
        samples.serverSideOnly.push(await timed(() => serverSideOnly(round)));
        await quiet();
        samples.pipeline.push(await timed(() => throughPipeline(round, DEFAULT_SNAPSHOT_ZSTD_LEVEL)));
        await quiet();
        samples.pipelineLevel3.push(await timed(() => throughPipeline(round, DEFAULT_ZSTD_LEVEL)));
        await quiet();
        if (command) samples.pgbackrest.push(await timed(withPgbackrest));
        progress(
          `backup/snapshot: round ${round}/${ROUNDS}: pg_basebackup ${samples.raw.at(-1)!.toFixed(2)} s (over TCP ${samples.rawOverTcp.at(-1)!.toFixed(2)} s), pipeline ${samples.pipeline.at(-1)!.toFixed(2)} s (level ${DEFAULT_ZSTD_LEVEL}: ${samples.pipelineLevel3.at(-1)!.toFixed(2)} s)` +
            (command ? `, pgbackrest ${samples.pgbackrest.at(-1)!.toFixed(2)} s` : ''),
        );
      }
      const load1 = loadavg()[0]!;
      const rawTiming = timing(samples.raw, tarBytes);
      const rawTcpTiming = timing(samples.rawOverTcp, tarBytes);
      const serverTiming = timing(samples.serverSideOnly, tarBytes);
      const pipelineTiming = { ...timing(samples.pipeline, tarBytes), level: DEFAULT_SNAPSHOT_ZSTD_LEVEL, sizes: sizes.get(DEFAULT_SNAPSHOT_ZSTD_LEVEL) ?? { compressed: 0, stored: 0 } };
      const level3Timing = { ...timing(samples.pipelineLevel3, tarBytes), level: DEFAULT_ZSTD_LEVEL, sizes: sizes.get(DEFAULT_ZSTD_LEVEL) ?? { compressed: 0, stored: 0 } };
      let pgbackrestResult: SnapshotResult['pgbackrest'] = { unavailable: 'unavailable' in pgbackrest ? pgbackrest.unavailable : 'not run' };
      if (command && cluster.pgbackrestConfig) {
        const info = JSON.parse((await runTool(command, [`--config=${cluster.pgbackrestConfig}`, `--stanza=${STANZA}`, '--output=json', 'info'], as)).stdout) as {
          backup: { info: { repository: { delta: number } } }[];
        }[];
        const version = (await runTool(command, ['version'], as)).stdout.trim();
        pgbackrestResult = { ...timing(samples.pgbackrest, tarBytes), version, processMax: 1, repositoryBytes: info[0]?.backup.at(-1)?.info.repository.delta ?? 0 };
      }
      return {
        description:
          `pgbench -i -s ${SCALE} cluster. pg_basebackup -Ft -D - -X fetch --checkpoint fast: to /dev/null over the Unix socket (the baseline of the ratios) and over TCP to 127.0.0.1 with a password (as TaskFlow connects), and through TaskFlow's snapshot pipeline (BASE_BACKUP over a replication connection with server-side zstd at the snapshot level ${DEFAULT_SNAPSHOT_ZSTD_LEVEL}, and at level ${DEFAULT_ZSTD_LEVEL} for comparison, workers=<cores>, then age to one recipient, SHA-256, ` +
          'filesystem repository with fsync, as takeSnapshot runs it). pgBackRest: backup --type=full, zstd level 3, aes-256-cbc, process-max 1, start-fast, WAL archived by its archive-push. ' +
          `serverSideOnly: the same BASE_BACKUP read and thrown away by TaskFlow, without age, SHA-256 or the repository. Rounds alternate (pg_basebackup, pg_basebackup over TCP, server side only, pipeline, pipeline at level 3, pgBackRest), each starting once the archiver has caught up; the figure is the median of ${ROUNDS}. MiB/s are the tar stream's bytes ÷ seconds for all of them.`,
        postgresVersion,
        pgbenchScale: SCALE,
        rounds: ROUNDS,
        databaseBytes,
        tarBytes,
        pgBasebackupToDevNull: rawTiming,
        pgBasebackupOverTcpToDevNull: rawTcpTiming,
        serverSideOnly: serverTiming,
        pipeline: pipelineTiming,
        pipelineAtLevel3: level3Timing,
        pgbackrest: pgbackrestResult,
        ratios: {
          pipelineToPgBasebackup: ratio(pipelineTiming.mibPerSecond, rawTiming.mibPerSecond),
          pipelineToPgBasebackupOverTcp: ratio(pipelineTiming.mibPerSecond, rawTcpTiming.mibPerSecond),
          serverSideOnlyToPgBasebackup: ratio(serverTiming.mibPerSecond, rawTiming.mibPerSecond),
          pipelineAtLevel3ToPgBasebackup: ratio(level3Timing.mibPerSecond, rawTiming.mibPerSecond),
          pgbackrestToPgBasebackup: 'mibPerSecond' in pgbackrestResult ? ratio(pgbackrestResult.mibPerSecond, rawTiming.mibPerSecond) : null,
          pipelineToPgbackrest: 'mibPerSecond' in pgbackrestResult ? ratio(pipelineTiming.mibPerSecond, pgbackrestResult.mibPerSecond) : null,
        },
        loadAverage: [round1(load0), round1(load1)],
      };
    } finally {
      closeSync(devNull);
    }
  } finally {
    progress('backup/snapshot: stopping the cluster');
    await cluster.cleanup();
  }
}
