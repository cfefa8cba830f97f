/**
 * `pg_dump -Fc` of one database as a stream (through physical/tool-stream.ts: the password in a
 * 0600 passfile that exists only while pg_dump runs, and a stream that fails when pg_dump does, so
 * a dump that stopped early can never pass as complete).
 */
import type { Readable } from 'node:stream';
import type { ConnectionTarget } from '../postgres/connection.ts';
import { runTool, type PgTools } from '../postgres/tools.ts';
import { startToolStream } from './physical/tool-stream.ts';

/** pg_dump's version line: `pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)`. */
export async function pgDumpVersion(tools: PgTools): Promise<string> {
  const { stdout } = await runTool(tools.path('pg_dump'), ['--version'], { runAs: null, timeoutMs: 10_000 });
  return stdout.trim();
}

export interface PgDumpProps {
  tools: PgTools;
  target: ConnectionTarget;
  database: string;
  /** Where the temporary passfile goes (0700). */
  secretsDir: string;
  /** An exported snapshot (pg_export_snapshot) to dump, so the dump matches what the caller counted. */
  snapshot?: string;
  signal?: AbortSignal;
}

/**
 * Starts pg_dump in custom format without its own compression (the pipeline's zstd does that
 * better and faster) and returns its output. Destroying the stream stops pg_dump.
 */
export function startPgDump(props: PgDumpProps): Readable {
  const { target } = props;
  return startToolStream({
    file: props.tools.path('pg_dump'),
    args: [
      '--format=custom',
      '--compress=0',
      '--no-password',
      '--host', target.host,
      '--port', String(target.port),
      '--username', target.user,
      '--dbname', props.database,
      ...(props.snapshot ? [`--snapshot=${props.snapshot}`] : []),
    ],
    target,
    secretsDir: props.secretsDir,
    appName: 'taskflow-export',
    ...(props.signal ? { signal: props.signal } : {}),
  });
}
