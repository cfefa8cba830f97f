/**
 * Runs the benchmarks (all, or those named as arguments: `node bench/run.ts tenants`), prints one
 * JSON document to stdout and keeps a copy in bench/results/. Progress goes to stderr, so stdout can
 * be piped. Benchmarks measure and report; they never assert timings.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { runBackupBenchmark } from './backup.ts';
import { runRestoreBenchmark } from './backup-restore.ts';
import { runExportBenchmark } from './backup-export.ts';
import { runFailoverBenchmark } from './failover.ts';
import { runFailoverGapBenchmark } from './failover-gap.ts';
import { runPatroniFailoverBenchmark } from './failover-patroni.ts';
import { runHttpBenchmark } from './http.ts';
import { runMetricsBenchmark } from './metrics.ts';
import { runRemoteRebuildBenchmark } from './remote-rebuild.ts';
import { runRemoteStandbyBenchmark } from './remote-standby.ts';
import { runTenantsBenchmark } from './tenants.ts';
import { runWalPullBenchmark } from './wal-pull.ts';

type Progress = (message: string) => void;

/** Every benchmark by the name it is asked for, in the order `run.ts` without arguments runs them. */
const BENCHMARKS: Record<string, (progress: Progress) => Promise<unknown>> = {
  tenants: runTenantsBenchmark,
  http: runHttpBenchmark,
  failover: runFailoverBenchmark,
  'failover-patroni': runPatroniFailoverBenchmark,
  'failover-gap': runFailoverGapBenchmark,
  backup: runBackupBenchmark,
  restore: runRestoreBenchmark,
  export: runExportBenchmark,
  'remote-standby': runRemoteStandbyBenchmark,
  'remote-rebuild': runRemoteRebuildBenchmark,
  metrics: runMetricsBenchmark,
  'wal-pull': runWalPullBenchmark,
};

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, 'results');

/** The commit measured, and whether the working tree differed from it; null outside a git checkout. */
function gitState(): { commit: string; dirty: boolean } | null {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: BENCH_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain'], { cwd: BENCH_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return null;
  }
}

function machine(): Record<string, unknown> {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
  };
}

/** Writes next to the target and renames, so a cut-off run never leaves half a result file. */
function saveResult(name: string, startedAt: Date, document: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  // Colons are not allowed in file names everywhere.
  const file = join(RESULTS_DIR, `${name}-${startedAt.toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(document, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}

async function main(): Promise<number> {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}\n`);
    return 2;
  }
  const names = asked.length > 0 ? Object.keys(BENCHMARKS).filter((name) => asked.includes(name)) : Object.keys(BENCHMARKS);

  const startedAt = new Date();
  const clock = performance.now();
  const progress: Progress = (message) => {
    process.stderr.write(`[${((performance.now() - clock) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
  };

  const results: Record<string, unknown> = {};
  let failed = false;
  for (const name of names) {
    const run = BENCHMARKS[name]!;
    try {
      results[name] = await run(progress);
    } catch (err) {
      // One broken benchmark must not hide the others' figures.
      failed = true;
      results[name] = { error: err instanceof Error ? err.message : String(err) };
      progress(`${name}: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }

  const document = {
    benchmarks: names,
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((performance.now() - clock) / 100) / 10,
    git: gitState(),
    machine: machine(),
    results,
  };
  const file = saveResult(asked.length > 0 ? names.join('-') : 'all', startedAt, document);
  process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  progress(`saved ${relative(process.cwd(), file)}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
