/**
 * A PostgreSQL client tool (pg_basebackup, pg_dump) run as a stream of its standard output. The
 * password reaches it through a libpq passfile (0600) that exists only while the tool runs, never
 * on a command line. The stream ends only after the tool exited 0; any other exit destroys it with
 * the tool's own message, so output cut short can never pass as complete. Destroying the stream
 * stops the tool.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { libpqTlsEnvironment, type ConnectionTarget } from '../../postgres/connection.ts';

const MAX_STDERR = 16_384;

/** A libpq password file line for every database of `target`'s host and port. */
export function passfileLine(target: ConnectionTarget): string {
  const esc = (s: string) => s.replaceAll('\\', '\\\\').replaceAll(':', '\\:');
  return `${esc(target.host)}:${target.port}:*:${esc(target.user)}:${esc(target.password)}\n`;
}

const PASSFILE_PREFIX = 'pgpass-tool-';
/** Older than this, a passfile was left by a process that died (a tool reads it only to connect). */
const STALE_PASSFILE_MS = 60 * 60 * 1000;

function sweepStalePassfiles(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(PASSFILE_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    try {
      if (Date.now() - statSync(join(dir, name)).mtimeMs > STALE_PASSFILE_MS) rmSync(join(dir, name), { force: true });
    } catch {
      /* gone meanwhile */
    }
  }
}

/** Writes a passfile for `targets` in `dir` (0700) and returns its path; the caller removes it. */
export function writePassfile(dir: string, targets: ConnectionTarget[]): string {
  sweepStalePassfiles(dir);
  const path = join(dir, `${PASSFILE_PREFIX}${randomBytes(8).toString('hex')}`);
  writeFileSync(path, targets.map(passfileLine).join(''), { mode: 0o600 });
  return path;
}

/** libpq's environment for a tool: the passfile, the application name, nothing inherited but PATH. */
export function toolEnvironment(passfile: string, appName: string, target: ConnectionTarget): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', PGPASSFILE: passfile, PGAPPNAME: appName, PGCONNECT_TIMEOUT: '20' };
  // A managed node's CA file: verify-full, as for node-postgres (clientConfig).
  Object.assign(env, libpqTlsEnvironment(target));
  return env;
}

export interface ToolStreamProps {
  /** The tool's path. */
  file: string;
  args: string[];
  target: ConnectionTarget;
  /** Where the temporary passfile goes (0700). */
  secretsDir: string;
  appName: string;
  /** Every line the tool writes to stderr (for progress or facts such as the end LSN). */
  onStderrLine?: (line: string) => void;
  signal?: AbortSignal;
}

/** Starts the tool; its stdout as a stream that fails when the tool does. */
export function startToolStream(props: ToolStreamProps): Readable {
  const name = props.file.split('/').pop() ?? props.file;
  const passfile = writePassfile(props.secretsDir, [props.target]);
  const child = spawn(props.file, props.args, { env: toolEnvironment(passfile, props.appName, props.target), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  let stderr = '';
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    if (stderr.length < MAX_STDERR) stderr += text;
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) props.onStderrLine?.(line);
  });
  child.stdout.pipe(out, { end: false });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  props.signal?.addEventListener('abort', () => {
    out.destroy(props.signal?.reason instanceof Error ? props.signal.reason : new Error(`${name} was cancelled`));
  });
  out.on('close', stop);
  child.on('error', (err) => {
    rmSync(passfile, { force: true });
    out.destroy(new Error(`${name} could not be started: ${err.message}`));
  });
  // 'close' comes after the exit and after stdout ended: only then is the output known complete.
  child.on('close', (code, signal) => {
    rmSync(passfile, { force: true });
    if (partial) props.onStderrLine?.(partial);
    if (out.destroyed) return;
    if (code === 0) out.end();
    else out.destroy(new Error(`${name} failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-5).join(' / ') || 'no message'}`));
  });
  return out;
}
