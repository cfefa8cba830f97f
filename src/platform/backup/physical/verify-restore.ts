/**
 * `backup verify --restore`: proof that a snapshot restores. The snapshot and the archived WAL up
 * to the position of its row counts are restored into a scratch cluster on a free port;
 * `pg_verifybackup` checks the extracted files and WAL against the backup_manifest; the cluster is
 * started and promoted; amcheck's bt_index_check (with heapallindexed) runs on every B-tree index
 * of every database (the extension is created in the scratch only); every table's row count is
 * compared with the count recorded at backup time. The dated evidence is stored with the snapshot
 * (recordProof) when all of it passed; otherwise `backup.verify-failed` is raised with it.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import type { Platform } from '../../platform.ts';
import { clientConfig, type ConnectionTarget } from '../../postgres/connection.ts';
import { getObject, listObjects, recordProof, type CatalogEntry } from '../catalog.ts';
import { errorText, resolveAlerts } from '../outcomes.ts';
import { openBackupTarget } from '../service.ts';
import type { RestoreIdentity } from './identity.ts';
import { isRefusal, planRestoreToLsn, planSnapshotOnly, type RestorePlan } from './restore-plan.ts';
import { countTables, type RowCounts } from './row-counts.ts';
import { archiveUntilNow, removeScratchRestore, restoreIntoScratch, sweepInterruptedRestores, type ScratchRestore } from './scratch-restore.ts';

export const PROOF_FORMAT = 'taskflow-restore-proof/v1';
const VERIFY_FAILED_KEY = 'backup.verify-failed';

export interface AmcheckFailure {
  database: string;
  index: string;
  error: string;
}

export interface RowCountMismatch {
  database: string;
  table: string;
  recorded: number;
  restored: number | null;
}

export interface VerifyRestoreReport {
  format: typeof PROOF_FORMAT;
  ok: boolean;
  /** What failed, in a line, when not ok. */
  problem: string | null;
  host: string;
  startedAt: string;
  finishedAt: string;
  snapshot: { id: string; name: string; systemIdentifier: string; stopLsn: string | null; stopTime: string | null; repository: string };
  /** Where the restore stopped: the row counts' WAL position, or the snapshot's own end when it has none. */
  restoredTo: { target: string; redoDoneAt: string | null; lastTransactionAt: string | null; timeline: number | null } | null;
  pgVerifybackup: { ok: boolean; output: string } | null;
  amcheck: { ok: boolean; databases: number; indexes: number; failures: AmcheckFailure[] } | null;
  rowCounts: { compared: boolean; tables: number; mismatches: RowCountMismatch[]; note: string | null } | null;
  timings: Record<string, number>;
}

async function withClient<T>(target: ConnectionTarget, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...clientConfig(target, database), application_name: 'taskflow-verify' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** bt_index_check(heapallindexed) on every valid B-tree index of every database of the scratch cluster. */
async function amcheck(target: ConnectionTarget): Promise<NonNullable<VerifyRestoreReport['amcheck']>> {
  const databases = await withClient(target, 'postgres', async (c) => (await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname`)).rows.map((r) => r.datname));
  const failures: AmcheckFailure[] = [];
  let indexes = 0;
  for (const database of databases) {
    await withClient(target, database, async (c) => {
      await c.query('CREATE EXTENSION IF NOT EXISTS amcheck');
      const list = await c.query<{ oid: number; name: string }>(
        `SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE a.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't' ORDER BY 2`,
      );
      for (const index of list.rows) {
        indexes++;
        try {
          await c.query('SELECT bt_index_check($1::regclass, true)', [index.oid]);
        } catch (err) {
          failures.push({ database, index: index.name, error: errorText(err) });
        }
      }
    });
  }
  return { ok: failures.length === 0, databases: databases.length, indexes, failures };
}

/** Counts the recorded tables in the restored cluster and lists every difference. */
async function compareRowCounts(target: ConnectionTarget, recorded: RowCounts): Promise<NonNullable<VerifyRestoreReport['rowCounts']>> {
  const mismatches: RowCountMismatch[] = [];
  let tables = 0;
  for (const [database, counts] of Object.entries(recorded.databases)) {
    const list = Object.keys(counts).map((key) => ({ schema: key.slice(0, key.indexOf('.')), name: key.slice(key.indexOf('.') + 1) }));
    tables += list.length;
    await withClient(target, database, async (c) => {
      for (const table of list) {
        const key = `${table.schema}.${table.name}`;
        const exists = await c.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, [table.schema, table.name]);
        const restored = exists.rowCount === 0 ? null : ((await countTables(c, [table]))[key] ?? null);
        if (restored !== counts[key]) mismatches.push({ database, table: key, recorded: counts[key] ?? 0, restored });
      }
    }).catch(() => {
      // The database itself is missing or unreadable in the restore: every table of it differs.
      mismatches.push({ database, table: '*', recorded: Object.values(counts).reduce((a, b) => a + b, 0), restored: null });
    });
  }
  return { compared: true, tables, mismatches, note: null };
}

/** The snapshot to verify: the one named, else the newest complete one. */
async function chooseSnapshot(platform: Pick<Platform, 'control'>, id?: string): Promise<CatalogEntry> {
  const entry = id === undefined ? (await listObjects(platform.control, { kind: 'snapshot', state: 'complete', limit: 1 }))[0] : await getObject(platform.control, id);
  if (!entry) throw new Error(id === undefined ? 'there is no complete snapshot to verify' : `no backup object ${id}`);
  if (entry.kind !== 'snapshot' || entry.state !== 'complete') throw new Error(`${entry.name} is a ${entry.state} ${entry.kind}; verify --restore restores complete snapshots`);
  return entry;
}

export interface VerifyRestoreOptions {
  /** Catalog id or name of the snapshot (default: the newest complete one). */
  snapshot?: string;
  identity: RestoreIdentity;
  onPhase?: (phase: string) => void;
}

/** Restores a snapshot into a scratch cluster and proves it (see the module comment); never throws for a failed proof. */
export async function verifyRestore(platform: Platform, options: VerifyRestoreOptions): Promise<VerifyRestoreReport> {
  const startedAt = new Date();
  const entry = await chooseSnapshot(platform, options.snapshot);
  const details = entry.details as { rowCounts?: RowCounts | null; stopLsn?: string; stopTime?: string; repository?: string };
  const target = openBackupTarget(platform.config);
  const repository = target.all.find((r) => r.name === details.repository) ?? target.primary;
  const repositoryConfig = platform.config.backup.repositories.find((r) => r.name === repository.name);
  const report: VerifyRestoreReport = {
    format: PROOF_FORMAT, ok: false, problem: null, host: hostname(), startedAt: startedAt.toISOString(), finishedAt: '',
    snapshot: { id: entry.id, name: entry.name, systemIdentifier: entry.cluster, stopLsn: details.stopLsn ?? null, stopTime: details.stopTime ?? null, repository: repository.name },
    restoredTo: null, pgVerifybackup: null, amcheck: null, rowCounts: null, timings: {},
  };
  let scratch: ScratchRestore | null = null;
  try {
    if (!repositoryConfig) throw new Error(`repository ${repository.name} is not configured`);
    await sweepInterruptedRestores(platform);
    const counts = details.rowCounts ?? null;
    options.onPhase?.(`planning the restore of ${entry.name}`);
    let plan: RestorePlan;
    if (counts) {
      try {
        plan = await planRestoreToLsn(repository, entry.name, counts.lsn);
      } catch (err) {
        // The counts' position is seconds past the snapshot: its segment may still be on its way.
        if (!isRefusal(err, 'wal-missing')) throw err;
        await archiveUntilNow(platform);
        plan = await planRestoreToLsn(repository, entry.name, counts.lsn);
      }
    } else plan = await planSnapshotOnly(repository, entry.name);
    scratch = await restoreIntoScratch({
      platform, repository, repositoryConfig, plan, identity: options.identity, purpose: 'verify',
      target: counts ? { lsn: counts.lsn } : 'immediate', facts: { snapshot: entry.name }, ...(options.onPhase ? { onPhase: options.onPhase } : {}),
    });
    report.pgVerifybackup = scratch.verifyBackup;
    report.timings = { ...scratch.timings };
    const r = scratch.run.report;
    report.restoredTo = { target: counts ? `WAL position ${counts.lsn}` : 'the end of the snapshot', redoDoneAt: r.redoDoneAt, lastTransactionAt: r.lastTransactionAt, timeline: r.newTimeline };
    const scratchTarget = scratch.cluster.target();
    options.onPhase?.('checking every index with amcheck');
    let started = Date.now();
    report.amcheck = await amcheck(scratchTarget);
    report.timings.amcheckMs = Date.now() - started;
    options.onPhase?.('comparing row counts');
    started = Date.now();
    report.rowCounts = counts
      ? await compareRowCounts(scratchTarget, counts)
      : { compared: false, tables: 0, mismatches: [], note: `no row counts were recorded with this snapshot${typeof entry.details.rowCountsError === 'string' ? ` (${entry.details.rowCountsError})` : ''}` };
    report.timings.rowCountsMs = Date.now() - started;
    const problems = [
      ...(report.amcheck.ok ? [] : [`amcheck failed on ${report.amcheck.failures.length} index(es)`]),
      ...(report.rowCounts.mismatches.length === 0 ? [] : [`${report.rowCounts.mismatches.length} table(s) restored with other row counts than recorded`]),
    ];
    report.ok = problems.length === 0;
    report.problem = problems.join('; ') || null;
  } catch (err) {
    report.ok = false;
    report.problem = errorText(err);
  } finally {
    if (scratch) await removeScratchRestore(platform, scratch).catch(() => undefined);
    await target.close();
  }
  report.finishedAt = new Date().toISOString();
  report.timings.totalMs = Date.now() - startedAt.getTime();
  if (report.ok) {
    await recordProof(platform.control, entry.id, { kind: 'verify-restore', ...report }, new Date(report.finishedAt));
    await resolveAlerts(platform, [VERIFY_FAILED_KEY], `snapshot ${entry.name} restored and verified`);
  } else {
    await platform.alerts.raise({
      code: 'backup.verify-failed',
      key: VERIFY_FAILED_KEY,
      severity: 'critical',
      summary: `restoring snapshot ${entry.name} did not verify: ${report.problem ?? 'unknown'}`.slice(0, 500),
      details: { snapshot: entry.name, report: JSON.stringify(report).slice(0, 4000) },
    });
  }
  return report;
}

/** The report for people: what was restored, each check and its outcome. */
export function renderVerifyReport(report: VerifyRestoreReport): string {
  const cell = (t: string) => t.replaceAll('|', '\\|').replaceAll('\n', ' ');
  const lines = [
    `# Restore verification of ${report.snapshot.name}: ${report.ok ? 'PASSED' : 'FAILED'}`,
    '',
    `${report.startedAt} to ${report.finishedAt} on ${report.host}; snapshot ${report.snapshot.id} of cluster ${report.snapshot.systemIdentifier}, from repository ${report.snapshot.repository}.`,
    ...(report.problem ? ['', `**Problem:** ${report.problem}`] : []),
    '',
    '| check | outcome |',
    '|---|---|',
    `| restored to | ${report.restoredTo ? cell(`${report.restoredTo.target}; redo done at ${report.restoredTo.redoDoneAt ?? '?'}; last transaction ${report.restoredTo.lastTransactionAt ?? 'none'}; timeline ${report.restoredTo.timeline ?? '?'}`) : 'not restored'} |`,
    `| pg_verifybackup | ${report.pgVerifybackup ? cell(`${report.pgVerifybackup.ok ? 'passed' : 'FAILED'}: ${report.pgVerifybackup.output}`) : 'not run'} |`,
    `| amcheck | ${report.amcheck ? `${report.amcheck.ok ? 'passed' : 'FAILED'}: ${report.amcheck.indexes} indexes in ${report.amcheck.databases} databases, ${report.amcheck.failures.length} failed` : 'not run'} |`,
    `| row counts | ${report.rowCounts ? (report.rowCounts.compared ? `${report.rowCounts.mismatches.length === 0 ? 'passed' : 'FAILED'}: ${report.rowCounts.tables} tables compared, ${report.rowCounts.mismatches.length} differ` : cell(report.rowCounts.note ?? 'not compared')) : 'not run'} |`,
    `| time | ${Object.entries(report.timings).map(([k, v]) => `${k.replace(/Ms$/, '')} ${(v / 1000).toFixed(1)} s`).join(', ')} |`,
  ];
  for (const f of report.amcheck?.failures ?? []) lines.push('', `- amcheck ${f.database} ${f.index}: ${f.error}`);
  for (const m of report.rowCounts?.mismatches ?? []) lines.push(`- rows of ${m.database} ${m.table}: recorded ${m.recorded}, restored ${m.restored ?? 'missing'}`);
  return lines.join('\n') + '\n';
}
