/** Starts a real PostgreSQL cluster and TaskFlow platform in a temporary directory on a free port. */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/platform/log.ts';
import { openPlatform, type Platform } from '../../src/platform/platform.ts';
import type { Migration } from '../../src/platform/postgres/migrator.ts';
import { ensureControlPlane } from '../../src/platform/control-plane.ts';

export interface TestPlatform {
  platform: Platform;
  config: Config;
  dataDir: string;
  /** Stops the cluster and removes the directory. */
  cleanup(): Promise<void>;
}

/** A fresh temporary directory PostgreSQL's OS user can reach. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `taskflow-${prefix}-`));
  chmodSync(dir, 0o711);
  return dir;
}

export async function startTestPlatform(
  options: { overrides?: Record<string, unknown>; tenantMigrations?: Migration[]; logLevel?: string } = {},
): Promise<TestPlatform> {
  const root = tempDir('test');
  const dataDir = join(root, 'data');
  const config = loadConfig({ env: {}, overrides: { dataDir, ...options.overrides } });
  const log = createLogger({ level: options.logLevel ?? process.env.TASKFLOW_TEST_LOG_LEVEL ?? 'silent' });
  const platform = await openPlatform(config, { log, initialise: true });
  if (options.tenantMigrations) await ensureControlPlane({ target: platform.target, log, tenantMigrationSet: options.tenantMigrations, lockMaintenanceDatabases: true });
  return {
    platform,
    config,
    dataDir,
    async cleanup() {
      await platform.close({ stopCluster: true });
      rmSync(root, { recursive: true, force: true });
    },
  };
}
