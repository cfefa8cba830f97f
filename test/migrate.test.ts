/** Schema rollout over many tenants: ledger, dry run, and failing closed on one broken tenant. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { tenantMigrations, TEMPLATE_DB } from '../src/platform/control-plane.ts';
import { withAdminClient } from '../src/platform/postgres/connection.ts';
import { currentVersion, latestVersion, type Migration } from '../src/platform/postgres/migrator.ts';
import { createTenant } from '../src/platform/tenants/provision.ts';
import { migrateTenants } from '../src/platform/tenants/rollout.ts';
import { startTestPlatform, type TestPlatform } from './helpers/platform.ts';

const LABELS_SQL = `
  CREATE TABLE app.labels (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL UNIQUE);
  ALTER TABLE app.tasks ADD COLUMN label_id uuid REFERENCES app.labels (id);`;

/** The shipped schema's version, and the test migration's on top of it. */
const BASE = latestVersion(tenantMigrations());
const NEXT = BASE + 1;

const withLabels: Migration[] = [
  ...tenantMigrations(),
  { version: NEXT, name: 'labels', sql: LABELS_SQL, checksum: createHash('sha256').update(LABELS_SQL).digest('hex') },
];

let tp: TestPlatform;
const slugs = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];

before(async () => {
  tp = await startTestPlatform();
  for (const slug of slugs) await createTenant({ platform: tp.platform, slug, actor: 'test' });
  // bravo already has a table the next migration wants to create: its migration must fail.
  await withAdminClient(tp.platform.target, 'tenant_bravo', (db) => db.query('CREATE TABLE app.labels (id int)'));
  // and some data in charlie, which must survive the migration.
  await withAdminClient(tp.platform.target, 'tenant_charlie', (db) => db.query("INSERT INTO app.projects (key, name) VALUES ('KEEP', 'kept')"));
});
after(async () => {
  await tp.cleanup();
});

async function versionOf(database: string): Promise<number> {
  return withAdminClient(tp.platform.target, database, (db) => currentVersion(db));
}

async function hasLabelColumn(database: string): Promise<boolean> {
  return withAdminClient(tp.platform.target, database, async (db) => {
    const res = await db.query("SELECT 1 FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'tasks' AND column_name = 'label_id'");
    return (res.rowCount ?? 0) > 0;
  });
}

test('a dry run reports what would run and changes nothing', async () => {
  const report = await migrateTenants({ platform: tp.platform, migrations: withLabels, dryRun: true });
  assert.equal(report.failed, 0);
  assert.deepEqual(
    report.results.map((r) => [r.slug, r.outcome, r.from, r.to]),
    slugs.map((s) => [s, 'would-migrate', BASE, NEXT]),
  );
  for (const slug of slugs) assert.equal(await versionOf(`tenant_${slug}`), BASE);
  assert.equal(await versionOf(TEMPLATE_DB), BASE);
  const ledger = await tp.platform.control.query("SELECT 1 FROM tenant_migrations WHERE status <> 'succeeded' OR attempt > 0");
  assert.equal(ledger.rowCount, 0, 'a dry run writes nothing to the ledger');
});

test('one broken tenant is reported and left as it was; the others migrate', async () => {
  const seen: string[] = [];
  const report = await migrateTenants({ platform: tp.platform, migrations: withLabels, concurrency: 2, onResult: (r) => seen.push(r.slug) });
  assert.equal(report.failed, 1);
  assert.equal(report.templateVersion, NEXT);
  assert.deepEqual([...seen].sort(), slugs);
  const bravo = report.results.find((r) => r.slug === 'bravo');
  assert.equal(bravo?.outcome, 'failed');
  assert.match(bravo.error ?? '', /already exists/);
  for (const r of report.results.filter((x) => x.slug !== 'bravo')) assert.equal(r.outcome, 'migrated', r.slug);

  // bravo: untouched, not half-migrated (its extra column was not added either).
  assert.equal(await versionOf('tenant_bravo'), BASE);
  assert.equal(await hasLabelColumn('tenant_bravo'), false);
  for (const slug of slugs.filter((s) => s !== 'bravo')) {
    assert.equal(await versionOf(`tenant_${slug}`), NEXT);
    assert.equal(await hasLabelColumn(`tenant_${slug}`), true);
  }
  const kept = await withAdminClient(tp.platform.target, 'tenant_charlie', (db) => db.query("SELECT 1 FROM app.projects WHERE key = 'KEEP'"));
  assert.equal(kept.rowCount, 1);

  const ledger = await tp.platform.control.query<{ slug: string; status: string; attempt: number; version: number; target_version: number; error: string | null }>(
    'SELECT t.slug, m.status, m.attempt, m.version, m.target_version, m.error FROM tenant_migrations m JOIN tenants t ON t.id = m.tenant_id ORDER BY t.slug',
  );
  assert.deepEqual(
    ledger.rows.map((r) => [r.slug, r.status, r.attempt, r.version, r.target_version, r.error === null]),
    [
      ['alpha', 'succeeded', 1, NEXT, NEXT, true],
      ['bravo', 'failed', 1, BASE, NEXT, false],
      ['charlie', 'succeeded', 1, NEXT, NEXT, true],
      ['delta', 'succeeded', 1, NEXT, NEXT, true],
      ['echo', 'succeeded', 1, NEXT, NEXT, true],
    ],
  );
});

test('new tenants come from the migrated template; a fixed tenant succeeds on its next attempt', async () => {
  const { tenant } = await createTenant({ platform: tp.platform, slug: 'foxtrot', actor: 'test' });
  assert.equal(tenant.schemaVersion, NEXT);
  assert.equal(await hasLabelColumn('tenant_foxtrot'), true);

  await withAdminClient(tp.platform.target, 'tenant_bravo', (db) => db.query('DROP TABLE app.labels'));
  const report = await migrateTenants({ platform: tp.platform, migrations: withLabels });
  assert.equal(report.failed, 0);
  const bravo = report.results.find((r) => r.slug === 'bravo');
  assert.deepEqual([bravo?.outcome, bravo?.attempt, bravo?.to], ['migrated', 2, NEXT]);
  assert.ok(report.results.filter((r) => r.slug !== 'bravo').every((r) => r.outcome === 'up-to-date'));
});

test('a migration edited after it was applied is refused', async () => {
  const tampered = withLabels.map((m) => (m.version === NEXT ? { ...m, checksum: 'edited' } : m));
  const report = await migrateTenants({ platform: tp.platform, migrations: tampered, only: ['alpha'] }).catch((err: unknown) => err as Error);
  // The template is checked first and refuses; no tenant is touched.
  assert.ok(report instanceof Error);
  assert.match(report.message, /changed after it was applied/);
});
