/**
 * Copies one database from a restored scratch cluster into a new database on the live cluster:
 * `pg_dump -Fc` from the scratch piped straight into `pg_restore` on the live side (nothing staged
 * on disk), then the fix-ups a restored tenant needs before it may serve.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { maintenanceDb } from '../../control-plane.ts';
import { escapeIdentifier, escapeLiteral, withAdminClient, type ConnectionTarget } from '../../postgres/connection.ts';
import { currentVersion } from '../../postgres/migrator.ts';
import type { PgTools } from '../../postgres/tools.ts';
import { grantTenantPrivileges } from '../../tenants/provision.ts';
import { incomingTag } from './tenant-swap.ts';
import { toolEnvironment, writePassfile } from './tool-stream.ts';

export interface LoadProps {
  tools: PgTools;
  /** The scratch cluster and the database in it. */
  from: ConnectionTarget;
  fromDatabase: string;
  /** The live cluster and the new database to create there. */
  to: ConnectionTarget;
  toDatabase: string;
  /** Owner of the new database and of everything in it. */
  ownerRole: string;
  /** Restoring as another tenant: owners and grants of the dump belong to the old one's roles and are replaced. */
  asNewTenant: boolean;
  jobId: string;
  secretsDir: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, stdio: ['ignore' | 'pipe', 'pipe' | 'ignore', 'pipe']) {
  const child = spawn(file, args, { env, stdio });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (t: string) => {
    if (stderr.length < 16_384) stderr += t;
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${file.split('/').pop() ?? file} failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-5).join(' / ') || 'no message'}`));
    });
  });
  return { child, done };
}

/** Creates `toDatabase` (marked as this job's) and loads the scratch database into it. */
export async function loadDatabase(props: LoadProps): Promise<void> {
  await withAdminClient(props.to, maintenanceDb(props.to), async (admin) => {
    await admin.query(`CREATE DATABASE ${escapeIdentifier(props.toDatabase)} TEMPLATE template0 OWNER ${escapeIdentifier(props.ownerRole)}`);
    await admin.query(`COMMENT ON DATABASE ${escapeIdentifier(props.toDatabase)} IS ${escapeLiteral(incomingTag(props.jobId))}`);
  });
  const passfile = writePassfile(props.secretsDir, [props.from, props.to]);
  try {
    const dump = run(
      props.tools.path('pg_dump'),
      ['--format=custom', '--compress=0', '--no-password', '--host', props.from.host, '--port', String(props.from.port), '--username', props.from.user, '--dbname', props.fromDatabase],
      toolEnvironment(passfile, 'taskflow-restore', props.from),
      ['ignore', 'pipe', 'pipe'],
    );
    const restore = run(
      props.tools.path('pg_restore'),
      [
        '--no-password', '--exit-on-error', '--host', props.to.host, '--port', String(props.to.port), '--username', props.to.user, '--dbname', props.toDatabase,
        ...(props.asNewTenant ? ['--no-owner', '--no-privileges', `--role=${props.ownerRole}`] : []),
      ],
      toolEnvironment(passfile, 'taskflow-restore', props.to),
      ['pipe', 'ignore', 'pipe'],
    );
    if (!dump.child.stdout || !restore.child.stdin) throw new Error('pipes missing');
    dump.child.stdout.pipe(restore.child.stdin);
    // pg_restore may fail first (and pg_dump then on a broken pipe): report the cause, not the echo.
    const [restored, dumped] = await Promise.allSettled([restore.done, dump.done]);
    // pg_dump failing starves pg_restore ("input file is too short"): its own message is the cause.
    if (dumped.status === 'rejected' && !/broken pipe|SIGPIPE|SIGTERM/i.test(String(dumped.reason))) throw dumped.reason;
    if (restored.status === 'rejected') throw restored.reason;
    if (dumped.status === 'rejected') throw dumped.reason;
  } finally {
    rmSync(passfile, { force: true });
  }
}

/**
 * What a loaded tenant database needs before it serves: every session ended (a session revoked
 * after the restore point must not come back; everyone signs in again), the grants of the tenant
 * it now belongs to (a new tenant), and CONNECT for its login role only. Returns its schema version.
 */
export async function prepareLoaded(target: ConnectionTarget, props: { database: string; ownerRole: string; loginRole: string; asNewTenant: boolean }): Promise<number> {
  const version = await withAdminClient(target, props.database, async (db) => {
    const sessions = await db.query<{ ok: boolean }>(`SELECT to_regclass('app.sessions') IS NOT NULL AS ok`);
    if (sessions.rows[0]?.ok) {
      await db.query(`UPDATE app.sessions SET ended_at = clock_timestamp(), end_reason = 'restored' WHERE ended_at IS NULL`);
    }
    if (props.asNewTenant) await grantTenantPrivileges(db, { ownerRole: props.ownerRole, loginRole: props.loginRole }, props.ownerRole);
    return currentVersion(db);
  });
  await withAdminClient(target, maintenanceDb(target), async (admin) => {
    await admin.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(props.database)} FROM PUBLIC`);
    await admin.query(`GRANT CONNECT ON DATABASE ${escapeIdentifier(props.database)} TO ${escapeIdentifier(props.loginRole)}`);
  });
  return version;
}
