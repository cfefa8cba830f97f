/**
 * Fixtures of the backup suites: a real OpenSSH server (Debian's sshd) on a free loopback port,
 * a throwaway host key and user key pair, and the known_hosts file a repository configuration
 * points at; plus a small tmpfs to fill up.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../src/platform/postgres/local-cluster.ts';
import { tempDir } from './helpers/platform.ts';

export const SSHD = '/usr/sbin/sshd';
export const isRoot = process.getuid?.() === 0;

/** Why the SFTP suites cannot run here, or null when they can. */
export function sshdUnavailable(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (apt-get install openssh-server; scripts/test.sh does this as root)`;
  if (spawnSync('ssh', ['-V']).status !== 0) return 'the ssh client is not installed (apt-get install openssh-client)';
  if (spawnSync('ssh-keygen', ['-?']).error) return 'ssh-keygen is not installed (apt-get install openssh-client)';
  return null;
}

/** Why the age interoperability tests cannot run here, or null when they can. */
export function ageUnavailable(): string | null {
  return spawnSync('age', ['--version']).status === 0 && spawnSync('age-keygen', ['--version']).status === 0
    ? null
    : 'the age CLI is not installed (apt-get install age; scripts/test.sh does this as root)';
}

export interface TestSshd {
  port: number;
  user: string;
  /** Where SFTP repositories may put their roots (owned by the login user). */
  dataDir: string;
  /** The user's private key and the known_hosts file holding the server's key. */
  identityFile: string;
  knownHostsFile: string;
  /** Stops the server (a repository then is unreachable); start() brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

function keygen(path: string, comment: string): void {
  const out = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`ssh-keygen failed: ${out.stderr}`);
}

async function waitForBanner(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${log()}`);
    const banner = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.setTimeout(1000);
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString('latin1'));
      });
      socket.once('error', () => {
        resolve('');
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve('');
      });
    });
    if (banner.startsWith('SSH-2.0-')) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on port ${port}: ${log()}`);
    await new Promise((r) => {
      setTimeout(r, 100);
    });
  }
}

/**
 * Starts sshd as a non-default instance: its own config, host key, authorized_keys and port, on
 * 127.0.0.1 only, key authentication only, and SFTP only (ForceCommand internal-sftp), so the
 * repository driver is proven against an account without a shell.
 */
export async function startSshd(): Promise<TestSshd> {
  const user = userInfo().username;
  // sshd's StrictModes refuses an AuthorizedKeysFile below a group- or world-writable directory
  // such as /tmp; as root its files go under /run (root's, 0755), which satisfies it.
  const keysBase = isRoot ? '/run' : undefined;
  const confDir = keysBase ? mkdtempSync(join(keysBase, 'taskflow-test-sshd-')) : tempDir('sshd-conf');
  chmodSync(confDir, 0o700);
  const dataDir = tempDir('sshd-data');
  chmodSync(dataDir, 0o700);
  keygen(join(confDir, 'host_ed25519'), 'taskflow-test-host');
  keygen(join(confDir, 'user_ed25519'), 'taskflow-test-user');
  writeFileSync(join(confDir, 'authorized_keys'), readFileSync(join(confDir, 'user_ed25519.pub')), { mode: 0o600 });
  const port = await freePort();
  const hostKey = readFileSync(join(confDir, 'host_ed25519.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const knownHostsFile = join(confDir, 'known_hosts');
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostKey}\n`, { mode: 0o600 });
  const config = join(confDir, 'sshd_config');
  writeFileSync(
    config,
    [
      'ListenAddress 127.0.0.1',
      `HostKey ${join(confDir, 'host_ed25519')}`,
      `PidFile ${join(confDir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(confDir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      `PermitRootLogin ${isRoot ? 'prohibit-password' : 'no'}`,
      `AllowUsers ${user}`,
      // Not root: the files sit under the world-writable temp directory, which StrictModes refuses.
      `StrictModes ${isRoot ? 'yes' : 'no'}`,
      'Subsystem sftp internal-sftp',
      'ForceCommand internal-sftp',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  // As root, sshd insists on its privilege-separation directory, which Debian makes at boot.
  if (isRoot && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });

  let child: ChildProcess | null = null;
  let stderr = '';
  const start = async (): Promise<void> => {
    stderr = '';
    const proc = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (t: string) => {
      stderr += t;
    });
    child = proc;
    await waitForBanner(port, proc, () => stderr);
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (!proc?.pid || proc.exitCode !== null) return;
    // The whole server goes down: the listener and the sessions it forked (they call setsid, so
    // a process group would miss them).
    const sessions = descendants(proc.pid);
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    for (const pid of sessions) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    await exited;
  };
  await start();
  return {
    port,
    user,
    dataDir,
    identityFile: join(confDir, 'user_ed25519'),
    knownHostsFile,
    start,
    stop,
    async cleanup() {
      await stop();
      rmSync(confDir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The processes below `root` (children, their children…), from /proc. */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name in field 2 may hold spaces; the fields after its closing parenthesis do not.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      /* exited meanwhile */
    }
  }
  const found: number[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const [child, parent] of parents) {
      if (parent === pid) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** A tmpfs of `size` mounted on a fresh directory (root only); unmount() removes it again. */
export function mountSmallTmpfs(size: string): { path: string; unmount(): Promise<void> } {
  const path = tempDir('tmpfs');
  const out = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', path], { encoding: 'utf8' });
  if (out.status !== 0) {
    rmSync(path, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs failed: ${out.stderr.trim()}`);
  }
  return {
    path,
    /**
     * Waits for whatever still writes there (an archive_command: umount says busy until it is done),
     * so the directory is never removed while the tmpfs is still mounted on it.
     */
    async unmount() {
      for (let tries = 0; spawnSync('umount', [path]).status !== 0; tries++) {
        if (tries === 300) throw new Error(`${path} stays busy; unmount it by hand`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      rmSync(path, { recursive: true, force: true });
    },
  };
}
