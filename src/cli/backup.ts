/** `taskflow backup list|show|run|prune|verify`: the backup catalog, backups on demand, retention and proof. */
import { Command } from 'commander';
import { UserError } from '../errors.ts';
import { getObject, listObjects, type BackupKind, type BackupState, type CatalogEntry } from '../platform/backup/catalog.ts';
import { backupsConfigured } from '../platform/backup/config.ts';
import { exportableTenants, exportTenants, type ExportResult } from '../platform/backup/export.ts';
import { takeSnapshot } from '../platform/backup/physical/snapshot.ts';
import { pruneBackups, type PruneReport } from '../platform/backup/prune.ts';
import { NOT_CONFIGURED, requireBackups } from '../platform/backup/service.ts';
import type { Platform } from '../platform/platform.ts';
import { formatBytes } from '../platform/replication/lsn.ts';
import { requireTenant } from '../platform/tenants/lifecycle.ts';
import { findTenantBySlug } from '../platform/tenants/registry.ts';
import { withGlobalOptions, withPlatform, type GlobalOptions } from './context.ts';
import { note, printFields, printJson, printTable } from './output.ts';
import { backupVerifyCommand } from './backup-verify.ts';
import { progressBar } from './progress.ts';

const KINDS: readonly BackupKind[] = ['snapshot', 'wal', 'export'];
const STATES: readonly BackupState[] = ['running', 'complete', 'failed'];

type Opts = GlobalOptions & { json?: boolean };
type ListOpts = Opts & { kind?: string; tenant?: string; state?: string; limit: string };
type RunOpts = Opts & { tenant?: string; all?: boolean };

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], option: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UserError(`${option} must be one of ${allowed.join(', ')} (not '${value}')`, 2);
  return value as T;
}

function size(bytes: number | null): string | null {
  return bytes === null ? null : formatBytes(bytes);
}

/** A row's state as people read it: a complete object a prune has begun deleting is no longer good. */
function stateOf(e: CatalogEntry): string {
  return e.details.pruning !== undefined ? `${e.state} (pruning)` : e.state;
}

/** The tenant ids `--tenant SLUG` means: the tenant (also by a recent old slug), else those of a deleted tenant's backups. */
async function tenantIds(platform: Platform, slug: string): Promise<string[]> {
  const tenant = await findTenantBySlug(platform.control, slug);
  if (tenant) return [tenant.id];
  const res = await platform.control.query<{ id: string }>(`SELECT DISTINCT tenant_id::text AS id FROM backup_objects WHERE tenant_slug = $1 AND tenant_id IS NOT NULL`, [slug]);
  if (res.rows.length === 0) throw new UserError(`no tenant '${slug}', and no backups of one by that name`, 3);
  return res.rows.map((r) => r.id);
}

function printEntry(e: CatalogEntry): void {
  printFields([
    ['id', e.id],
    ['kind', e.kind],
    ['name', e.name],
    ['state', stateOf(e)],
    ['cluster', e.cluster],
    ['timeline', e.timeline],
    ['tenant', e.tenantSlug === null ? null : `${e.tenantSlug} (${e.tenantId ?? '?'})`],
    ['started', e.startedAt],
    ['finished', e.finishedAt],
    ['data at', e.dataAt],
    ['size', e.rawBytes === null ? null : `${formatBytes(e.rawBytes)} raw, ${formatBytes(e.storedBytes ?? 0)} stored`],
    ['sha256', e.sha256],
    ['error', e.error],
    ['proven', e.provenAt],
  ]);
  process.stdout.write('locations:\n');
  if (e.locations.length === 0) process.stdout.write('  (none)\n');
  for (const l of e.locations) process.stdout.write(`  ${l.repository}  stored ${l.storedAt}  ${l.verifiedAt ? `verified ${l.verifiedAt}` : 'not read back'}\n`);
  const { rowCounts, ...details } = e.details;
  if (rowCounts && typeof rowCounts === 'object') {
    process.stdout.write('row counts:\n');
    for (const [table, n] of Object.entries(rowCounts as Record<string, number>)) process.stdout.write(`  ${table}  ${n}\n`);
  }
  process.stdout.write(`details: ${JSON.stringify(details)}\n`);
  process.stdout.write(`proof: ${e.proof ? JSON.stringify(e.proof) : '-'}\n`);
}

async function runExports(platform: Platform, opts: RunOpts): Promise<ExportResult[]> {
  if (opts.all === true && opts.tenant !== undefined) throw new UserError('give either --tenant SLUG or --all, not both', 2);
  if (opts.all !== true && opts.tenant === undefined) throw new UserError('say which tenant to export: --tenant SLUG, or --all', 2);
  const tenants = opts.tenant !== undefined ? [await requireTenant(platform, opts.tenant)] : await exportableTenants(platform);
  for (const t of tenants) {
    if (t.status !== 'active' && t.status !== 'suspended') throw new UserError(`tenant '${t.slug}' is ${t.status}; there is nothing to export yet`, 4);
  }
  if (tenants.length === 0) note('no tenants to export');
  const bar = progressBar({ json: opts.json, title: 'exporting', unit: 'bytes' });
  let position = '';
  try {
    return await exportTenants(platform, tenants, {
      onTenant: (_t, i, total) => {
        position = total > 1 ? ` (${i + 1}/${total})` : '';
      },
      onProgress: (p) => {
        const label = p.phase === 'copy' ? `: copying to ${p.repository ?? ''}` : p.phase === 'done' ? ': done' : '';
        bar.update(p.bytes, p.estimatedBytes, `${p.tenant}${position}${label}`);
      },
    });
  } finally {
    bar.stop();
  }
}

/** A snapshot of the cluster now, with a bar over the bytes read (the databases' size as the estimate). */
async function runSnapshot(platform: Platform, opts: RunOpts): Promise<CatalogEntry> {
  if (opts.tenant !== undefined || opts.all === true) throw new UserError('a snapshot is of the whole cluster; --tenant and --all go with export', 2);
  const size = await platform.control.query<{ bytes: string }>('SELECT sum(pg_database_size(oid))::text AS bytes FROM pg_database');
  const estimate = Number(size.rows[0]?.bytes ?? 0);
  const bar = progressBar({ json: opts.json, title: 'snapshot', unit: 'bytes' });
  try {
    return await takeSnapshot(platform, {
      onProgress: (bytes) => {
        bar.update(bytes, estimate, 'pg_basebackup');
      },
    });
  } finally {
    bar.stop();
  }
}

function printExports(results: ExportResult[]): void {
  for (const r of results) {
    if (!r.ok) {
      note(`export of ${r.tenant} failed: ${r.error ?? 'unknown error'}`);
      continue;
    }
    const e = r.entry;
    const copies = r.copies.map((c) => `${c.repository} ${c.ok ? 'verified' : `FAILED (${c.error ?? ''})`}`).join(', ');
    process.stdout.write(
      `exported ${r.tenant}: ${e?.name ?? '?'} (id ${e?.id ?? '?'}, ${size(e?.rawBytes ?? null) ?? '?'} dumped, ${size(e?.storedBytes ?? null) ?? '?'} stored)${copies ? `; copies: ${copies}` : ''}\n`,
    );
  }
}

function printPrune(report: PruneReport): void {
  const verb = report.dryRun ? 'would delete' : 'deleted';
  if (report.deleted.length === 0) note(`nothing to prune (${report.kept} objects kept; snapshots ${report.policy.snapshotDays} days, exports ${report.policy.exportDays} days)`);
  else {
    printTable(
      ['id', 'kind', 'name', 'tenant', 'data at', 'why', report.dryRun ? 'action' : 'result'],
      report.deleted.map((d) => [d.id, d.kind, d.name, d.tenant, d.dataAt, d.reason, report.dryRun ? 'would delete' : d.deleted ? 'deleted' : `kept: ${d.errors.map((e) => `${e.repository}: ${e.error}`).join('; ')}`]),
    );
    note(`${verb} ${report.deleted.length - report.failed} objects, kept ${report.kept}${report.failed > 0 ? `; ${report.failed} could not be deleted everywhere (the next prune retries)` : ''}`);
  }
  for (const a of report.aside) {
    const what = report.dryRun ? 'would drop' : a.dropped ? 'dropped' : `could not drop (${a.error ?? '?'})`;
    note(`${what} ${a.database}, set aside by a tenant restore at ${a.setAsideAt} (kept ${report.policy.asideDays} days)`);
  }
}

export function backupCommand(): Command {
  const backup = new Command('backup').description('the backup catalog, backups on demand, and retention (docs/backups.md)');

  withGlobalOptions(backup.command('list').description('list backup objects, newest first'))
    .option('--kind <kind>', `only this kind (${KINDS.join(', ')})`)
    .option('--tenant <slug>', "only this tenant's exports")
    .option('--state <state>', `only objects in this state (${STATES.join(', ')})`)
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print JSON')
    .action(async (opts: ListOpts) => {
      const kind = oneOf(opts.kind, KINDS, '--kind');
      const state = oneOf(opts.state, STATES, '--state');
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UserError('--limit must be an integer from 1 to 100000', 2);
      await withPlatform(opts, async (platform) => {
        const filter = { ...(kind ? { kind } : {}), ...(state ? { state } : {}), limit };
        const ids = opts.tenant !== undefined ? await tenantIds(platform, opts.tenant) : [undefined];
        const rows = (await Promise.all(ids.map((tenantId) => listObjects(platform.control, { ...filter, ...(tenantId ? { tenantId } : {}) }))))
          .flat()
          .sort((a, b) => b.startedAt.localeCompare(a.startedAt) || Number(b.id) - Number(a.id))
          .slice(0, limit);
        if (opts.json) {
          printJson(rows);
          return;
        }
        printTable(
          ['id', 'kind', 'name', 'tenant', 'state', 'data at', 'stored', 'copies', 'proven'],
          rows.map((e) => [e.id, e.kind, e.name, e.tenantSlug, stateOf(e), e.dataAt ?? e.startedAt, size(e.storedBytes), e.locations.map((l) => l.repository).join(',') || null, e.provenAt]),
        );
        if (rows.length === 0) note(backupsConfigured(platform.config.backup) ? 'no backup objects match' : `no backup objects; ${NOT_CONFIGURED}`);
      });
    });

  withGlobalOptions(backup.command('show').description('everything the catalog knows about one object: locations, row counts, proof'))
    .argument('<id-or-name>', "the object's id or name ('taskflow backup list' shows both)")
    .option('--json', 'print JSON')
    .action(async (idOrName: string, opts: Opts) => {
      await withPlatform(opts, async (platform) => {
        const entry = await getObject(platform.control, idOrName);
        if (!entry) throw new UserError(`no backup object '${idOrName}'`, 3);
        if (opts.json) printJson(entry);
        else printEntry(entry);
      });
    });

  withGlobalOptions(backup.command('run').description('take a backup now: a cluster snapshot, or tenant exports (--tenant SLUG or --all)'))
    .argument('<kind>', 'snapshot or export')
    .option('--tenant <slug>', 'export this tenant')
    .option('--all', 'export every active and suspended tenant')
    .option('--json', 'print JSON')
    .action(async (kind: string, opts: RunOpts) => {
      const what = oneOf(kind, ['snapshot', 'export'] as const, 'the kind');
      await withPlatform(opts, async (platform) => {
        requireBackups(platform.config);
        if (what === 'snapshot') {
          const entry = await runSnapshot(platform, opts);
          if (opts.json) printJson(entry);
          else process.stdout.write(`snapshot ${entry.name} (id ${entry.id}, ${size(entry.rawBytes) ?? '?'} read, ${size(entry.storedBytes) ?? '?'} stored; in ${entry.locations.map((l) => l.repository).join(', ')})\n`);
          return;
        }
        const results = await runExports(platform, opts);
        if (opts.json) printJson(results);
        else printExports(results);
        if (results.some((r) => !r.ok)) process.exitCode = 1;
      });
    });

  withGlobalOptions(backup.command('prune').description('delete backups past their retention from every repository'))
    .option('--dry-run', 'only show what would be deleted')
    .option('--json', 'print JSON')
    .action(async (opts: Opts & { dryRun?: boolean }) => {
      await withPlatform(opts, async (platform) => {
        requireBackups(platform.config);
        const bar = progressBar({ json: opts.json, title: 'pruning', unit: 'objects' });
        let report: PruneReport;
        try {
          report = await pruneBackups(platform, { dryRun: opts.dryRun === true, onProgress: (done, total, name) => {
            bar.update(done, total, name);
          } });
        } finally {
          bar.stop();
        }
        if (opts.json) printJson(report);
        else printPrune(report);
        if (report.failed > 0 || report.aside.some((a) => a.error !== undefined)) process.exitCode = 1;
      });
    });

  backup.addCommand(backupVerifyCommand());
  return backup;
}
