/**
 * P8 placement at `taskflow start`, through the real command: backups kept in one repository only
 * warn on stderr and raise the warning `backup.placement` (the server still starts: an on-premises
 * server may have one repository); the next start with a secondary in another region says nothing
 * and resolves the alert.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { StoredAlert } from '../src/platform/alerts/alerts.ts';
import { generateIdentity } from '../src/platform/backup/age-keys.ts';
import { fsRepository } from './backup-export-fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/platform.ts';
import { exited, startTaskflow } from './helpers/taskflow-process.ts';

/** Runs `taskflow start` until it is up, calls `fn` with what it printed on stderr, then stops it (SIGTERM, exit 0). */
async function whileStarted(dataDir: string, fn: (stderr: string) => Promise<void>): Promise<void> {
  const spawned: { child?: ChildProcess } = {};
  try {
    const started = await startTaskflow({ args: ['--tls', 'off', '--port', '0', '--data-dir', dataDir], onSpawn: (c) => (spawned.child = c) });
    await fn(started.stderr());
  } finally {
    if (spawned.child) {
      const code = exited(spawned.child);
      spawned.child.kill('SIGTERM');
      assert.equal(await code, 0);
    }
  }
}

async function placementAlerts(dataDir: string): Promise<StoredAlert[]> {
  const res = await runCli(['alerts', 'list', '--all', '--code', 'backup.placement', '--json', '--data-dir', dataDir]);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as StoredAlert[];
}

test('taskflow start warns and raises backup.placement while every copy is in one repository, and resolves it once a secondary is in another region', async () => {
  const root = tempDir('placement-start');
  const dataDir = join(root, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  const repository = (name: string, region: string) => {
    const dir = join(root, name);
    mkdirSync(dir, { mode: 0o711 });
    chmodSync(dir, 0o711);
    return { ...fsRepository(name, dir), region };
  };
  const local = repository('local', 'fra1');
  const offsite = repository('offsite', 'nbg1');
  const backup = {
    allowedJurisdictions: ['DE'],
    recipients: [generateIdentity().recipient],
    schedule: { snapshot: 'off', export: 'off', prune: 'off', drill: 'off' },
    repositories: [local],
  };
  const writeConfig = (repositories: typeof local[]) => {
    writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ backup: { ...backup, repositories } }));
  };
  try {
    writeConfig([local]);
    await whileStarted(dataDir, async (stderr) => {
      const warnings = stderr.split('\n').filter((line) => line.startsWith('WARNING: backup.repositories'));
      assert.equal(warnings.length, 1, stderr);
      assert.match(warnings[0]!, /'local' \(region fra1\) is the only repository: backups have no copy offsite or in another region \(P8\)/);
      assert.match(stderr, /TaskFlow is running/, 'a warning, not a refusal');
      const [alert, ...more] = await placementAlerts(dataDir);
      assert.equal(more.length, 0);
      assert.equal(alert?.severity, 'warning');
      assert.equal(alert.resolvedAt, null);
      assert.match(alert.summary, /'local' \(region fra1\) is the only repository/);
    });

    writeConfig([local, { ...offsite, region: 'fra1' }]);
    await whileStarted(dataDir, async (stderr) => {
      assert.match(stderr, /WARNING: backup\.repositories: every repository \(local, offsite\) is in the primary's region fra1/);
      const alerts = await placementAlerts(dataDir);
      assert.equal(alerts.length, 1, 'the same problem stays one alert');
      assert.equal(alerts[0]?.resolvedAt, null);
      assert.match(alerts[0].summary, /every repository \(local, offsite\)/);
    });

    writeConfig([local, offsite]);
    await whileStarted(dataDir, async (stderr) => {
      assert.doesNotMatch(stderr, /WARNING: backup\.repositories/, stderr);
      const alerts = await placementAlerts(dataDir);
      assert.equal(alerts.length, 1);
      assert.ok(alerts[0]?.resolvedAt, 'resolved by the start with a secondary in another region');
      assert.match(alerts[0].resolution ?? '', /secondary in another region/);
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
