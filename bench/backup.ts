/**
 * Issue 5's backup benchmarks: encryption throughput against the age CLI (backup-encryption.ts)
 * and snapshot throughput against raw pg_basebackup and pgBackRest (backup-snapshot.ts). Targets
 * are reported beside the figures (encryption at least as fast as the age CLI, the snapshot
 * pipeline at least 0.8× raw pg_basebackup); a benchmark never fails on them.
 */
import { runEncryptionBenchmark, type EncryptionResult } from './backup-encryption.ts';
import { runSnapshotBenchmark, type SnapshotResult } from './backup-snapshot.ts';

type Progress = (message: string) => void;

export interface BackupResult {
  targets: { encryptionToAgeCli: number; pipelineToPgBasebackup: number };
  /** Set only for the parts asked for with BENCH_BACKUP_PARTS (encryption,snapshot; both by default). */
  encryption?: EncryptionResult;
  snapshot?: SnapshotResult;
}

export async function runBackupBenchmark(progress: Progress): Promise<BackupResult> {
  const parts = (process.env.BENCH_BACKUP_PARTS ?? 'encryption,snapshot').split(',');
  const result: BackupResult = { targets: { encryptionToAgeCli: 1, pipelineToPgBasebackup: 0.8 } };
  if (parts.includes('encryption')) result.encryption = await runEncryptionBenchmark(progress);
  if (parts.includes('snapshot')) result.snapshot = await runSnapshotBenchmark(progress);
  return result;
}
