/**
 * A process that takes one snapshot of the platform in `<data dir>` (configuration from its
 * config.json) and prints `progress <bytes>` lines, so a test can kill it half way.
 * Usage: node test/helpers/snapshot-child.ts <data dir> [max rate]
 */
import { loadConfig } from '../../src/config.ts';
import { takeSnapshot } from '../../src/platform/backup/physical/snapshot.ts';
import { createLogger } from '../../src/platform/log.ts';
import { openPlatform } from '../../src/platform/platform.ts';

const [dataDir, maxRate] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: snapshot-child.ts <data dir> [max rate]');
const platform = await openPlatform(loadConfig({ env: {}, overrides: { dataDir } }), { log: createLogger({ level: 'silent' }) });
try {
  const entry = await takeSnapshot(platform, { ...(maxRate ? { maxRate } : {}), onProgress: (bytes) => process.stdout.write(`progress ${bytes}\n`) });
  process.stdout.write(`done ${entry.id}\n`);
} finally {
  await platform.close();
}
