/**
 * Which `running` catalog rows still have a live writer. A writer inserts its row and takes a
 * session advisory lock on the row's id in one transaction, on a connection of its own, and holds
 * the lock while it writes. When its process dies, PostgreSQL ends the session and frees the lock.
 * So a running row whose lock can be taken was abandoned, whichever host wrote it and however
 * long a live backup legitimately runs; no time guess is involved.
 */
import pg from 'pg';
import { CONTROL_DB } from '../control-plane.ts';
import { clientConfig } from '../postgres/connection.ts';
import { beginObject, failObject, getObject, type BackupKind, type BeginProps, type CatalogEntry } from './catalog.ts';
import { manifestName } from './manifest.ts';
import { errorText, interruptedKey } from './outcomes.ts';
import type { BackupPlatform, BackupTarget } from './service.ts';

/** Advisory lock class of backup writers (two-key form; the second key is the row id). */
const RUN_LOCK = 7_317_300;

export const ABANDONED_REASON = 'interrupted: the process writing it stopped before it finished';

/** The second lock key: the id folded into a positive int4. A collision only keeps a row "live" longer. */
function lockKey(id: string): number {
  return Number(BigInt(id) % 2_147_483_647n);
}

function controlClient(platform: Pick<BackupPlatform, 'target'>): pg.Client {
  const client = new pg.Client(clientConfig(platform.target, CONTROL_DB));
  client.on('error', () => {
    /* a lost connection frees the lock; the next query reports it */
  });
  return client;
}

export interface RunningObject {
  id: string;
  /** Releases the lock and its connection (after the row is complete or failed). */
  release(): Promise<void>;
}

/** beginObject, with the writer's liveness lock taken before the row becomes visible. */
export async function beginLockedObject(platform: Pick<BackupPlatform, 'target'>, props: BeginProps): Promise<RunningObject> {
  const client = controlClient(platform);
  await client.connect();
  try {
    await client.query('BEGIN');
    const id = await beginObject(client, props);
    await client.query('SELECT pg_advisory_lock($1, $2)', [RUN_LOCK, lockKey(id)]);
    await client.query('COMMIT');
    return {
      id,
      async release() {
        // Ending the session frees the lock even when the unlock itself fails.
        await client.query('SELECT pg_advisory_unlock($1, $2)', [RUN_LOCK, lockKey(id)]).catch(() => undefined);
        await client.end().catch(() => undefined);
      },
    };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

/**
 * Visits the `running` rows of `kinds`: `gone` for each whose writer is gone (its lock taken on
 * `client` while `gone` runs), `live` for each whose writer holds its lock.
 */
async function visitRunning(
  platform: Pick<BackupPlatform, 'target' | 'control'>,
  kinds: BackupKind[],
  visit: { gone?: (client: pg.Client, id: string) => Promise<void>; live?: (id: string) => void },
): Promise<void> {
  const running = await platform.control.query<{ id: string }>(`SELECT id::text FROM backup_objects WHERE state = 'running' AND kind = ANY($1) ORDER BY id`, [kinds]);
  if (running.rows.length === 0) return;
  const client = controlClient(platform);
  await client.connect();
  try {
    for (const { id } of running.rows) {
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [RUN_LOCK, lockKey(id)]);
      if (!got.rows[0]?.ok) {
        visit.live?.(id);
        continue;
      }
      try {
        await visit.gone?.(client, id);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [RUN_LOCK, lockKey(id)]);
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Ids of the `running` rows of `kind` whose writer is alive (holds its lock), leaving every row as
 * it is: the writer that runs next sweeps the others (sweepAbandonedObjects) with what they left.
 */
export async function liveRunningIds(platform: Pick<BackupPlatform, 'target' | 'control'>, kind: BackupKind): Promise<string[]> {
  const live: string[] = [];
  await visitRunning(platform, [kind], { live: (id) => live.push(id) });
  return live;
}

/**
 * Marks `running` rows of `kinds` whose writer is gone as failed and returns them. Rows of other
 * kinds are left alone: their writers may not take the lock.
 */
export async function failAbandoned(platform: Pick<BackupPlatform, 'target' | 'control'>, kinds: BackupKind[]): Promise<CatalogEntry[]> {
  const failed: CatalogEntry[] = [];
  await visitRunning(platform, kinds, {
    gone: async (client, id) => {
      await failObject(client, id, ABANDONED_REASON);
      const entry = await getObject(client, id);
      if (entry?.state === 'failed') failed.push(entry);
    },
  });
  return failed;
}

/**
 * Marks objects of `kind` whose process died as failed, removes what they left in the repository
 * they were written to (the manifest first, so nothing half-removed looks like a backup) and raises
 * `backup.interrupted`. Writers run it before they start.
 */
export async function sweepAbandonedObjects(platform: BackupPlatform, target: BackupTarget, kind: BackupKind): Promise<CatalogEntry[]> {
  const abandoned = await failAbandoned(platform, [kind]);
  for (const entry of abandoned) {
    const written = typeof entry.details.repository === 'string' ? entry.details.repository : target.primary.name;
    const repository = target.all.find((r) => r.name === written) ?? target.primary;
    try {
      await repository.delete(manifestName(entry.name));
      await repository.delete(entry.name);
    } catch (err) {
      platform.log.warn({ object: entry.name, err: errorText(err) }, `could not remove what an interrupted ${kind} left; prune retries`);
    }
    await platform.alerts.raise({
      code: 'backup.interrupted',
      key: interruptedKey(kind, entry.tenantId),
      severity: 'warning',
      summary: `${kind} ${entry.name} was interrupted (its process stopped) and is marked failed`,
      tenantId: entry.tenantId,
      details: { object: entry.name, started: entry.startedAt },
    });
  }
  return abandoned;
}
