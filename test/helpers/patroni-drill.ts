/**
 * A Patroni cluster (helpers/patroni.ts) ready for `taskflow drill failover --engine patroni`: its
 * dynamic configuration set for drills (primary_start_timeout 0, so a crashed leader is failed
 * over rather than restarted in place), and a TaskFlow data directory set up on it whose
 * config.json names the cluster (databaseUrl, 0600) and its Patroni endpoints. Shared by the suite
 * and the benchmark.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, type CliResult } from './cli.ts';
import { startPatroniCluster, type PatroniCluster } from './patroni.ts';
import { startTestPlatform, type TestPlatform } from './platform.ts';

export interface PatroniDrillSetup {
  patroni: PatroniCluster;
  tp: TestPlatform;
  /** The real CLI on the data directory set up on the cluster. */
  cli(...args: string[]): Promise<CliResult>;
  cleanup(): Promise<void>;
}

/** Sets Patroni's dynamic configuration (PATCH /config on a member) and waits until every member reports it. */
export async function tunePatroni(patroni: PatroniCluster, settings: Record<string, unknown>): Promise<void> {
  const [first] = patroni.endpoints;
  if (!first) throw new Error('no Patroni endpoint');
  const res = await fetch(new URL('/config', first), { method: 'PATCH', body: JSON.stringify(settings), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`PATCH /config answered ${res.status}: ${await res.text()}`);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const seen = await Promise.all(
      patroni.endpoints.map(async (e) => (await fetch(new URL('/config', e), { signal: AbortSignal.timeout(2000) }).then((r) => r.json() as Promise<Record<string, unknown>>).catch(() => ({}))) as Record<string, unknown>),
    );
    if (seen.every((c) => Object.entries(settings).every(([k, v]) => c[k] === v))) break;
    if (Date.now() > deadline) throw new Error(`Patroni did not take ${JSON.stringify(settings)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // Each member applies a change of its dynamic configuration on its next HA loop (loop_wait).
  await new Promise((r) => setTimeout(r, 1500));
}

/** Starts etcd, two Patroni nodes and a TaskFlow data directory on them; see the module comment. */
export async function startPatroniDrillSetup(settings: Record<string, unknown> = {}): Promise<PatroniDrillSetup> {
  const patroni = await startPatroniCluster();
  let tp: TestPlatform;
  try {
    await patroni.waitForSyncStandby(90_000);
    await tunePatroni(patroni, { primary_start_timeout: 0, ...settings });
    tp = await startTestPlatform({ overrides: { databaseUrl: patroni.databaseUrl, 'postgres.patroni.endpoints': patroni.endpoints } });
    await tp.platform.close({ stopCluster: false });
    writeFileSync(join(tp.dataDir, 'config.json'), JSON.stringify({ databaseUrl: patroni.databaseUrl, postgres: { patroni: { endpoints: patroni.endpoints } } }), { mode: 0o600 });
  } catch (err) {
    await patroni.cleanup();
    throw err;
  }
  const dataDir = tp.dataDir;
  const platform = tp;
  return {
    patroni,
    tp,
    cli: (...args) => runCli([...args, '--data-dir', dataDir], { timeoutMs: 180_000 }),
    async cleanup() {
      await platform.cleanup().catch(() => undefined);
      await patroni.cleanup();
    },
  };
}
