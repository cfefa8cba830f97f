/**
 * Physical backups end to end on one populated cluster: a snapshot through takeSnapshot (time and
 * sizes) beside raw `pg_basebackup -Ft -D - -X fetch` to /dev/null, and a point-in-time restore of
 * one tenant (restoreTenant: scratch cluster, pg_verifybackup, WAL replay, dump and load, swap)
 * beside raw `pg_restore` of a `pg_dump -Fc` file of the same database into an empty one, which is
 * the part of the work any one-tenant restore must do. Reports never assert.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadRestoreIdentity } from '../src/platform/backup/physical/identity.ts';
import { restoreTenant } from '../src/platform/backup/physical/restore-tenant.ts';
import { takeSnapshot } from '../src/platform/backup/physical/snapshot.ts';
import { toolEnvironment, writePassfile } from '../src/platform/backup/physical/tool-stream.ts';
import { serverNow, startPhysicalPlatform, switchAndWaitArchived, tenantWithTasks, withDb, type PhysicalTestPlatform } from '../test/backup-physical-fixtures.ts';
import { round1 } from './backup-encryption.ts';

const TASKS = Number(process.env.BENCH_RESTORE_TASKS ?? 200_000);
const MIB = 1024 * 1024;

type Progress = (message: string) => void;

export interface RestoreBenchResult {
  description: string;
  tenantTasks: number;
  tenantDatabaseBytes: number;
  clusterBytes: number;
  snapshot: { seconds: number; rawBytes: number; storedBytes: number; mibPerSecond: number };
  pgBasebackupToDevNull: { seconds: number; mibPerSecond: number };
  restoreTenant: { seconds: number; phasesSeconds: Record<string, number> };
  rawPgRestore: { seconds: number; dumpBytes: number };
  /** After the fill, how long the WAL archive took to catch up with it (one wal archive process per 16 MiB segment), and how much WAL that was. */
  archiveCatchUpSeconds: number;
  archiveCatchUpSegments: number;
  ratios: { snapshotToPgBasebackup: number; restoreTenantToRawPgRestore: number };
  loadAverage: [number, number];
}

async function timed<T>(run: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await run();
  return { seconds: Math.round(performance.now() - started) / 1000, value };
}

/** Runs a client tool against the platform's cluster, its output to `stdout` (a file descriptor). */
async function tool(tp: PhysicalTestPlatform, file: string, args: string[], stdout: number | 'ignore'): Promise<void> {
  const passfile = writePassfile(tp.platform.dir.secretsDir, [tp.platform.target]);
  try {
    const target = tp.platform.target;
    const child = spawn(file, ['--host', target.host, '--port', String(target.port), '--username', target.user, '--no-password', ...args], {
      env: toolEnvironment(passfile, 'taskflow-bench', target),
      stdio: ['ignore', stdout, 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`${file} exited ${code}: ${stderr.trim()}`));
      });
    });
  } finally {
    rmSync(passfile, { force: true });
  }
}

export async function runRestoreBenchmark(progress: Progress): Promise<RestoreBenchResult> {
  progress('backup/restore: starting a cluster with WAL archiving');
  const tp = await startPhysicalPlatform();
  try {
    const tenant = await tenantWithTasks(tp.platform, 'bench', 1, 'Bench');
    progress(`backup/restore: filling tenant bench with ${TASKS} tasks`);
    await withDb(tp.platform, tenant.databaseName, async (c) => {
      // Board ranks arrived with a later schema version; set them when the column is there.
      const ranked = (await c.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'tasks' AND column_name = 'rank'`)).rowCount === 1;
      await c.query(
        `INSERT INTO app.tasks (project_id, number, title, description, status_id, reporter_kind${ranked ? ', rank' : ''})
         SELECT p.id, n + 1, 'Task ' || n, repeat(md5(n::text), 12), s.id, 'system'${ranked ? ', (n + 1)::bigint * 65536' : ''}
           FROM app.projects p JOIN app.statuses s ON s.project_id = p.id, generate_series(1, $1) n`,
        [TASKS],
      );
    });
    await tenantWithTasks(tp.platform, 'other', 10, 'Other');
    // The archive catching up with the WAL of the fill is not a restore's cost: measured apart.
    progress('backup/restore: waiting for the archive to catch up with the fill');
    const segmentsBefore = Number((await tp.platform.control.query<{ n: string }>('SELECT archived_count::text AS n FROM pg_stat_archiver')).rows[0]?.n ?? 0);
    const catchUp = await timed(() => switchAndWaitArchived(tp.platform, 600_000));
    const catchUpSegments = Number((await tp.platform.control.query<{ n: string }>('SELECT archived_count::text AS n FROM pg_stat_archiver')).rows[0]?.n ?? 0) - segmentsBefore;
    const sizes = await tp.platform.control.query<{ tenant: string; cluster: string }>(
      `SELECT pg_database_size($1)::text AS tenant, (SELECT sum(pg_database_size(oid)) FROM pg_database)::text AS cluster`,
      [tenant.databaseName],
    );
    const load0 = loadavg()[0] ?? 0;

    progress('backup/restore: raw pg_basebackup to /dev/null');
    const devNull = openSync('/dev/null', 'w');
    const raw = await timed(() => tool(tp, tp.platform.tools.path('pg_basebackup'), ['--pgdata', '-', '--format', 'tar', '--wal-method', 'fetch', '--checkpoint', 'fast'], devNull));
    closeSync(devNull);
    progress(`backup/restore: takeSnapshot (raw took ${raw.seconds} s)`);
    const snap = await timed(() => takeSnapshot(tp.platform));
    const rawBytes = snap.value.rawBytes ?? 0;

    await withDb(tp.platform, tenant.databaseName, (c) => c.query(`UPDATE app.tasks SET title = title || ' (edited)' WHERE number = 2`));
    const at = await serverNow(tp.platform);

    progress('backup/restore: baseline pg_dump -Fc of the tenant as it is at that time, then raw pg_restore into an empty database');
    const dumpFile = join(tp.dataDir, 'bench.dump');
    const fd = openSync(dumpFile, 'w', 0o600);
    await tool(tp, tp.platform.tools.path('pg_dump'), ['--format=custom', '--dbname', tenant.databaseName], fd);
    closeSync(fd);
    const dumpBytes = statSync(dumpFile).size;
    await tp.platform.control.query(`CREATE DATABASE bench_raw_restore TEMPLATE template0`);
    const rawRestore = await timed(() => tool(tp, tp.platform.tools.path('pg_restore'), ['--no-owner', '--no-privileges', '--exit-on-error', '--dbname', 'bench_raw_restore', dumpFile], 'ignore'));
    await tp.platform.control.query(`DROP DATABASE bench_raw_restore`);
    rmSync(dumpFile, { force: true });

    await withDb(tp.platform, tenant.databaseName, (c) => c.query(`DELETE FROM app.tasks WHERE number > 1000`));
    await switchAndWaitArchived(tp.platform, 600_000);

    progress(`backup/restore: restoreTenant to ${at.toISOString()} (raw pg_restore took ${rawRestore.seconds} s)`);
    const restored = await timed(() => restoreTenant({ platform: tp.platform, slug: 'bench', at, identity: loadRestoreIdentity({ file: tp.identityFile }), actor: 'bench' }));
    const check = await withDb(tp.platform, tenant.databaseName, async (c) => (await c.query<{ n: string }>('SELECT count(*)::text AS n FROM app.tasks')).rows[0]?.n);
    if (Number(check) !== TASKS + 1) throw new Error(`the restored tenant has ${check} tasks, not ${TASKS + 1}`);
    const load1 = loadavg()[0] ?? 0;
    const phasesSeconds = Object.fromEntries(Object.entries(restored.value.timings).map(([k, v]) => [k.replace(/Ms$/, ''), v / 1000]));
    return {
      description:
        `A managed cluster with tenant "bench" (${TASKS} tasks with 384-character descriptions) and a small second tenant. Snapshot: takeSnapshot (pg_basebackup -Ft -X fetch through zstd -3, age, SHA-256 ` +
        'to a filesystem repository, plus row counts) beside raw pg_basebackup to /dev/null. Restore: restoreTenant to a time after the snapshot (scratch cluster from the snapshot, pg_verifybackup, ' +
        'WAL replay, pg_dump | pg_restore into a new database, swap) beside raw pg_restore of a pg_dump -Fc file of the same database into an empty one. One round each; timings in seconds.',
      tenantTasks: TASKS,
      tenantDatabaseBytes: Number(sizes.rows[0]?.tenant),
      clusterBytes: Number(sizes.rows[0]?.cluster),
      snapshot: { seconds: snap.seconds, rawBytes, storedBytes: snap.value.storedBytes ?? 0, mibPerSecond: round1(rawBytes / MIB / snap.seconds) },
      pgBasebackupToDevNull: { seconds: raw.seconds, mibPerSecond: round1(rawBytes / MIB / raw.seconds) },
      restoreTenant: { seconds: restored.seconds, phasesSeconds },
      rawPgRestore: { seconds: rawRestore.seconds, dumpBytes },
      archiveCatchUpSeconds: catchUp.seconds,
      archiveCatchUpSegments: catchUpSegments,
      ratios: { snapshotToPgBasebackup: Math.round((raw.seconds / snap.seconds) * 100) / 100, restoreTenantToRawPgRestore: Math.round((restored.seconds / rawRestore.seconds) * 100) / 100 },
      loadAverage: [round1(load0), round1(load1)],
    };
  } finally {
    progress('backup/restore: stopping the cluster');
    await tp.cleanup();
  }
}
