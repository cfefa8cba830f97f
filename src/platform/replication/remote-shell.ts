/**
 * Commands on a remote node's machine, through the system OpenSSH client with the same
 * non-interactive, key-only options as the SFTP backup repository (BatchMode, StrictHostKeyChecking
 * against the given known_hosts, one identity file, no agent, no ~/.ssh/config). Each call runs one
 * shell script sent on the channel's stdin: secrets never reach a command line.
 *
 * A call is its own connection, unless it asks to share one (`shared`): the WAL spool's periodic
 * listing and pulls do, so a remote primary sees one login while this process keeps pulling instead
 * of one every few seconds (OpenSSH's ControlMaster, its socket in a 0700 directory this process
 * made, keyed by everything that authenticates the node). Failover and maintenance never share: a
 * master whose host died only notices after ServerAlive's minute, where a fresh connection gives up
 * after ConnectTimeout's 10 s.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../../errors.ts';
import { classifySshFailure, sshArguments } from '../backup/sftp/session.ts';

/** Where a remote node runs and how TaskFlow reaches it; recorded in replication.json. */
export interface RemoteNode {
  /** The OS user that logs in and runs PostgreSQL there (`postgres`). */
  user: string;
  /** The machine's address: ssh goes there, and PostgreSQL listens there. */
  host: string;
  sshPort: number;
  identityFile: string;
  knownHostsFile: string;
  /** PGDATA on the remote machine. */
  dataDir: string;
  /** The PostgreSQL server tools there. */
  pgBin: string;
}

export interface RemoteResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

const CONNECT_TIMEOUT_SECONDS = 10;
/** ssh's own exit status for a connection or authentication failure (the remote command's is passed through). */
const SSH_FAILED = 255;

/** A value quoted for the remote POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** `user@host[:port]` → its parts; a malformed one is a usage error (exit 2). */
export function parseRemote(spec: string): { user: string; host: string; sshPort: number } {
  const at = spec.indexOf('@');
  const user = spec.slice(0, at);
  const rest = spec.slice(at + 1);
  // An IPv6 address is bracketed ([::1]:22); otherwise a port follows the only colon.
  const close = rest.startsWith('[') ? rest.indexOf(']') : -1;
  const host = close > 0 ? rest.slice(1, close) : rest.split(':')[0] ?? '';
  const portText = close > 0 ? rest.slice(close + 1).replace(/^:/, '') : rest.split(':')[1] ?? '';
  const port = portText === '' ? 22 : Number(portText);
  const hostOk = close > 0 ? /^[0-9a-fA-F:]+$/.test(host) : /^[A-Za-z0-9.-]+$/.test(host) && rest.split(':').length <= 2;
  if (at <= 0 || !/^[a-z_][a-z0-9_-]{0,31}$/.test(user) || !hostOk || !/^\d{0,5}$/.test(portText) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UserError(`--remote must be USER@HOST or USER@HOST:PORT (for example postgres@db2.example.net:22), not '${spec}'`, 2);
  }
  return { user, host, sshPort: port };
}

/** How a node is named in messages: `postgres@10.0.0.2:22`. */
export function describeRemote(node: Pick<RemoteNode, 'user' | 'host' | 'sshPort'>): string {
  return `${node.user}@${node.host}:${node.sshPort}`;
}

const SSH_ENV = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };

/** How long a shared connection stays open after its last use. */
const CONTROL_PERSIST_SECONDS = 30;
/** Unix socket paths are limited to 108 bytes; longer control paths go without sharing. */
const MAX_CONTROL_PATH = 100;

/** This process's control socket directory: undefined until first needed, null if it cannot be made. */
let controlDir: string | null | undefined;

function controlDirectory(): string | null {
  if (controlDir !== undefined) return controlDir;
  try {
    // mkdtemp makes it 0700 and new: no other user can place or reach a socket in it.
    controlDir = mkdtempSync(join(tmpdir(), 'taskflow-ssh-'));
    process.once('exit', closeSharedConnections);
  } catch {
    controlDir = null;
  }
  return controlDir;
}

/** The control socket for `node`, or null (no sharing). Different keys or known_hosts never share a connection. */
function controlPath(node: RemoteNode): string | null {
  const dir = controlDirectory();
  if (dir === null) return null;
  const key = createHash('sha256').update(JSON.stringify([node.user, node.host, node.sshPort, node.identityFile, node.knownHostsFile])).digest('hex').slice(0, 32);
  const path = join(dir, key);
  return path.length <= MAX_CONTROL_PATH ? path : null;
}

/** The control sockets of this process's open shared connections. */
export function sharedConnectionSockets(): string[] {
  if (!controlDir) return [];
  try {
    return readdirSync(controlDir).map((name) => join(controlDir as string, name));
  } catch {
    return [];
  }
}

/** Ends this process's shared connections (at exit, and for tests); the next shared call logs in again. */
export function closeSharedConnections(): void {
  const dir = controlDir;
  if (!dir) return;
  let sockets: string[] = [];
  try {
    sockets = readdirSync(dir);
  } catch {
    /* gone already */
  }
  for (const socket of sockets) {
    spawnSync('ssh', ['-F', '/dev/null', '-o', `ControlPath=${join(dir, socket)}`, '-O', 'exit', 'taskflow-shared'], { env: SSH_ENV, stdio: 'ignore', timeout: 5_000 });
  }
  rmSync(dir, { recursive: true, force: true });
  controlDir = undefined;
}

function argumentsFor(node: RemoteNode, shared: boolean): string[] {
  const sftp = sshArguments({ ...node, port: node.sshPort, connectTimeoutSeconds: CONNECT_TIMEOUT_SECONDS });
  // The same options as the SFTP sessions, without their `-s -- HOST sftp` tail: a shell reading
  // its script from stdin instead, so that neither the commands nor what they write (secrets in
  // here-documents) appear on any command line there.
  const options = sftp.slice(0, sftp.indexOf('-s'));
  const path = shared ? controlPath(node) : null;
  const sharing = path ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${path}`, '-o', `ControlPersist=${CONTROL_PERSIST_SECONDS}`] : ['-o', 'ControlMaster=no', '-o', 'ControlPath=none'];
  return [...options, ...sharing, '-o', 'RequestTTY=no', '--', node.host, 'sh -s'];
}

/**
 * The script as sent: in one brace group, so the shell has read all of it before running any of
 * it and a command that reads stdin finds nothing of the script left to eat.
 */
function scriptInput(script: string): string {
  return `{\nLANG=C.UTF-8; LC_ALL=C.UTF-8; export LANG LC_ALL\n${script}\n}\n`;
}

/** Turns an ssh failure into a clear refusal (exit 4): unreachable, unknown host key, denied. */
function sshError(node: RemoteNode, stderr: string): UserError {
  return new UserError(classifySshFailure(stderr, `ssh ${describeRemote(node)}`).message, 4);
}

export interface RemoteOptions {
  timeoutMs?: number;
  /** Share one connection with this process's other shared calls to the node (see above). */
  shared?: boolean;
}

/**
 * Runs the POSIX shell `script` on the node's machine. Rejects only when ssh itself fails; the
 * script's exit status is returned. A shared connection whose server will not carry one more session
 * (sshd's MaxSessions) is not an error: OpenSSH then opens a connection of its own for the call.
 */
export function runRemote(node: RemoteNode, script: string, options: RemoteOptions = {}): Promise<RemoteResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', argumentsFor(node, options.shared ?? false), { env: SSH_ENV, stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.stdin.on('error', () => undefined);
    child.stdin.end(scriptInput(script));
    child.on('error', (err) => {
      reject(new UserError(`cannot run ssh: ${err.message}`, 4));
    });
    child.on('close', (status) => {
      if (status === SSH_FAILED || status === null) reject(sshError(node, stderr || `ssh ended without an answer (${status ?? 'timed out'})`));
      else resolve({ status, stdout, stderr });
    });
  });
}

/** The same, waiting synchronously (for the few cluster operations that are synchronous locally). */
export function runRemoteSync(node: RemoteNode, script: string): RemoteResult {
  const out = spawnSync('ssh', argumentsFor(node, false), { env: SSH_ENV, input: scriptInput(script), encoding: 'utf8', timeout: 60_000 });
  if (out.error) throw new UserError(`cannot run ssh: ${out.error.message}`, 4);
  if (out.status === SSH_FAILED || out.status === null) throw sshError(node, out.stderr || 'ssh ended without an answer');
  return { status: out.status, stdout: out.stdout, stderr: out.stderr };
}

/** Runs `script` and insists on success; `what` names the step in the error. */
export async function mustRunRemote(node: RemoteNode, what: string, script: string, options: RemoteOptions = {}): Promise<string> {
  return checked(node, what, await runRemote(node, script, options));
}

export function mustRunRemoteSync(node: RemoteNode, what: string, script: string): string {
  return checked(node, what, runRemoteSync(node, script));
}

function checked(node: RemoteNode, what: string, r: RemoteResult): string {
  if (r.status !== 0) throw new UserError(`${what} on ${describeRemote(node)} failed: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('; ')}`);
  return r.stdout;
}

/**
 * Shell lines that write each file 0600, atomically (a temporary file renamed into place); the
 * contents travel in here-documents inside the script, never as arguments.
 */
export function writeFilesScript(files: [path: string, content: string][]): string {
  const lines = ['umask 077'];
  for (const [path, content] of files) {
    const end = `TASKFLOW_END_${randomBytes(12).toString('hex')}`;
    const body = content === '' || content.endsWith('\n') ? content : `${content}\n`;
    lines.push(`cat > ${shellQuote(`${path}.tmp`)} <<'${end}' || exit 1`, `${body}${end}`, `mv -f ${shellQuote(`${path}.tmp`)} ${shellQuote(path)} || exit 1`);
  }
  return lines.join('\n');
}

/**
 * Shell lines that set (a string) or remove (null) settings in a postgresql.auto.conf there, as
 * ALTER SYSTEM writes them.
 */
export function autoConfScript(path: string, settings: Record<string, string | null>): string {
  const names = Object.keys(settings).join('|');
  const set = Object.entries(settings)
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([name, value]) => `${name} = '${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'\n`)
    .join('');
  const end = `TASKFLOW_END_${randomBytes(12).toString('hex')}`;
  const f = shellQuote(path);
  return [
    'umask 077',
    `{ grep -v -E '^[[:space:]]*(${names})[[:space:]]*=' ${f} 2>/dev/null; cat <<'${end}'`,
    `${set}${end}`,
    `} > ${shellQuote(`${path}.tmp`)} && mv -f ${shellQuote(`${path}.tmp`)} ${f} || exit 1`,
  ].join('\n');
}

/**
 * Runs `script` there and writes its standard output, byte for byte, to the local file `path`
 * (created 0600); for binary files (a WAL file), which the text-decoding runRemote would mangle.
 * Rejects when ssh itself fails; the script's exit status is returned with its stderr.
 */
export async function runRemoteToFile(node: RemoteNode, script: string, path: string, options: RemoteOptions = {}): Promise<Omit<RemoteResult, 'stdout'>> {
  const child = spawn('ssh', argumentsFor(node, options.shared ?? false), { env: SSH_ENV, stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 300_000 });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  child.stdin.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => {
      reject(new UserError(`cannot run ssh: ${err.message}`, 4));
    });
    child.on('close', resolve);
  });
  child.stdin.end(scriptInput(script));
  try {
    await pipeline(child.stdout, createWriteStream(path, { mode: 0o600 }));
  } catch (err) {
    child.kill();
    await exited.catch(() => undefined);
    throw err;
  }
  const status = await exited;
  if (status === SSH_FAILED || status === null) throw sshError(node, stderr || `ssh ended without an answer (${status ?? 'timed out'})`);
  return { status, stderr };
}
