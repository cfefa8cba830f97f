/**
 * Tenant exports (exportTenant: pg_dump -Fc --compress=0 with per-table row counts in one
 * snapshot, through zstd -3, age and SHA-256 to a filesystem repository, catalogued) beside what an
 * operator would run by hand on the same database in the same run: `pg_dump -Fc` (its own gzip)
 * and `pg_dump -Fc --compress=0`, each to /dev/null. For the Quickstart's demo tenant and for a
 * tenant filled with BENCH_EXPORT_ROWS rows. Reports never assert.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { exportTenant } from '../src/platform/backup/export.ts';
import { toolEnvironment, writePassfile } from '../src/platform/backup/physical/tool-stream.ts';
import type { Platform } from '../src/platform/platform.ts';
import { clientConfig } from '../src/platform/postgres/connection.ts';
import { ensureDemoTenant } from '../src/platform/tenants/demo.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import type { Tenant } from '../src/platform/tenants/registry.ts';
import { fsRepository, startBackupPlatform } from '../test/backup-export-fixtures.ts';
import { tempDir } from '../test/helpers/platform.ts';

const ROWS = Number(process.env.BENCH_EXPORT_ROWS ?? 400_000);
const ROUNDS = Number(process.env.BENCH_EXPORT_ROUNDS ?? 3);
const MIB = 1024 * 1024;

type Progress = (message: string) => void;

interface Figures {
  databaseBytes: number;
  export: { seconds: number[]; medianSeconds: number; rawBytes: number; storedBytes: number; mibPerSecond: number };
  pgDumpGzipToDevNull: { seconds: number[]; medianSeconds: number };
  pgDumpUncompressedToDevNull: { seconds: number[]; medianSeconds: number };
  /** Export time over raw pg_dump -Fc time (above 1: the export is slower). */
  ratios: { exportToPgDumpGzip: number; exportToPgDumpUncompressed: number };
}

export interface ExportBenchResult {
  description: string;
  rounds: number;
  demo: Figures;
  filled: Figures & { rows: number };
  loadAverage: [number, number];
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

async function pgDumpToDevNull(platform: Platform, database: string, extra: string[]): Promise<void> {
  const passfile = writePassfile(platform.dir.secretsDir, [platform.target]);
  const devNull = openSync('/dev/null', 'w');
  try {
    const { target } = platform;
    const child = spawn(platform.tools.path('pg_dump'), ['--format=custom', ...extra, '--host', target.host, '--port', String(target.port), '--username', target.user, '--no-password', '--dbname', database], {
      env: toolEnvironment(passfile, 'taskflow-bench', target),
      stdio: ['ignore', devNull, 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`pg_dump exited ${code}`));
      });
    });
  } finally {
    closeSync(devNull);
    rmSync(passfile, { force: true });
  }
}

async function measure(platform: Platform, tenant: Tenant): Promise<Figures> {
  const exports: number[] = [];
  let sizes = { raw: 0, stored: 0 };
  const gzip: number[] = [];
  const plain: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    gzip.push(await timed(() => pgDumpToDevNull(platform, tenant.databaseName, [])));
    plain.push(await timed(() => pgDumpToDevNull(platform, tenant.databaseName, ['--compress=0'])));
    exports.push(
      await timed(async () => {
        const result = await exportTenant(platform, tenant);
        if (!result.ok || !result.entry) throw new Error(`export failed: ${result.error ?? ''}`);
        sizes = { raw: result.entry.rawBytes ?? 0, stored: result.entry.storedBytes ?? 0 };
      }),
    );
  }
  const size = await platform.control.query<{ bytes: string }>('SELECT pg_database_size($1)::text AS bytes', [tenant.databaseName]);
  const exportMedian = median(exports);
  return {
    databaseBytes: Number(size.rows[0]?.bytes),
    export: { seconds: exports.map((s) => round(s)), medianSeconds: round(exportMedian), rawBytes: sizes.raw, storedBytes: sizes.stored, mibPerSecond: round(sizes.raw / MIB / exportMedian, 1) },
    pgDumpGzipToDevNull: { seconds: gzip.map((s) => round(s)), medianSeconds: round(median(gzip)) },
    pgDumpUncompressedToDevNull: { seconds: plain.map((s) => round(s)), medianSeconds: round(median(plain)) },
    ratios: { exportToPgDumpGzip: round(exportMedian / median(gzip), 2), exportToPgDumpUncompressed: round(exportMedian / median(plain), 2) },
  };
}

export async function runExportBenchmark(progress: Progress): Promise<ExportBenchResult> {
  const root = tempDir('bench-export');
  mkdirSync(join(root, 'repo'));
  progress('backup/export: starting a cluster with a filesystem repository');
  const tp = await startBackupPlatform([fsRepository('local', join(root, 'repo'))]);
  try {
    const load0 = loadavg()[0] ?? 0;
    const { tenant: demo } = await ensureDemoTenant(tp.platform);
    progress('backup/export: the demo tenant');
    const demoFigures = await measure(tp.platform, demo);

    const { tenant: filled } = await createTenant({ platform: tp.platform, slug: 'bench', actor: 'bench' });
    progress(`backup/export: filling tenant bench with ${ROWS} rows`);
    const client = new pg.Client(clientConfig(tp.platform.target, filled.databaseName));
    await client.connect();
    try {
      // A table of its own keeps the fill independent of the product schema; pg_dump treats it like any other.
      await client.query(`CREATE TABLE app.bench_rows AS SELECT n AS id, 'Row ' || n AS title, repeat(md5(n::text), 12) AS body FROM generate_series(1, $1::int) n`, [ROWS]);
      await client.query('VACUUM ANALYZE app.bench_rows');
    } finally {
      await client.end();
    }
    progress('backup/export: tenant bench');
    const filledFigures = await measure(tp.platform, filled);
    return {
      description:
        'exportTenant (row counts in a repeatable-read snapshot, pg_dump -Fc --compress=0 of that snapshot through zstd -3, age and SHA-256 to a filesystem repository, catalog rows) ' +
        'beside pg_dump -Fc (gzip) and pg_dump -Fc --compress=0 of the same database to /dev/null, interleaved, ' +
        `${ROUNDS} rounds each; the demo tenant, and a tenant with a table of ${ROWS} rows (384-character text each). Seconds are medians.`,
      rounds: ROUNDS,
      demo: demoFigures,
      filled: { rows: ROWS, ...filledFigures },
      loadAverage: [round(load0, 1), round(loadavg()[0] ?? 0, 1)],
    };
  } finally {
    progress('backup/export: stopping the cluster');
    await tp.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
}
