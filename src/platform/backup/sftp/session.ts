/**
 * One SFTP session over the system OpenSSH client (`ssh -s <host> sftp`, as `sftp` itself runs
 * it): OpenSSH does the transport, key-pair authentication and host-key checking against the
 * configured known_hosts; we speak SFTP v3 on its stdin and stdout. This streams in both
 * directions (the `sftp` command's `put` refuses pipes), works on accounts restricted to
 * internal-sftp, and gives the OpenSSH extensions a repository needs: fsync, atomic rename and
 * free space.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { BackupError } from '../errors.ts';
import { FX_STATUS, FXP, PacketReader, PacketSplitter, PacketWriter, type FileAttrs } from './codec.ts';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** Private key file (mode 0600), used alone: no agent, no other keys, no passwords. */
  identityFile: string;
  /** The known_hosts file that must already hold the server's host key. */
  knownHostsFile: string;
  connectTimeoutSeconds: number;
  /** The ssh client binary; `ssh` on PATH by default. */
  sshCommand?: string;
}

/** An SFTP status other than OK, with the path it concerned. */
export class SftpStatusError extends Error {
  override name = 'SftpStatusError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface StatVfs {
  blockSize: number;
  blocks: number;
  freeBlocks: number;
  availableBlocks: number;
}

interface Pending {
  resolve(packet: { type: number; reader: PacketReader }): void;
  reject(err: Error): void;
}

/** The ssh options that make the connection non-interactive and key-only. */
export function sshArguments(target: SshTarget): string[] {
  const options = {
    IdentitiesOnly: 'yes',
    IdentityAgent: 'none',
    BatchMode: 'yes',
    StrictHostKeyChecking: 'yes',
    UserKnownHostsFile: target.knownHostsFile,
    GlobalKnownHostsFile: '/dev/null',
    UpdateHostKeys: 'no',
    PasswordAuthentication: 'no',
    KbdInteractiveAuthentication: 'no',
    PubkeyAuthentication: 'yes',
    ConnectTimeout: String(target.connectTimeoutSeconds),
    ServerAliveInterval: '15',
    ServerAliveCountMax: '4',
    ForwardAgent: 'no',
    ForwardX11: 'no',
    ClearAllForwardings: 'yes',
    LogLevel: 'ERROR',
  };
  return [
    // The configuration is ours alone: no ~/.ssh/config or /etc/ssh/ssh_config can change it.
    '-F', '/dev/null',
    '-i', target.identityFile,
    ...Object.entries(options).flatMap(([key, value]) => ['-o', `${key}=${value}`]),
    '-p', String(target.port),
    '-l', target.user,
    '-s', '--', target.host, 'sftp',
  ];
}

/** Turns ssh's exit and stderr into a BackupError of the right kind. */
export function classifySshFailure(stderr: string, where: string): BackupError {
  const text = stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(-3).join('; ') || 'the ssh client exited';
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/i.test(stderr)) {
    return new BackupError('repository-denied', `${where}: the server's host key is not in the configured known_hosts (${text})`);
  }
  if (/Permission denied|UNPROTECTED PRIVATE KEY|Load key|no such identity|Too many authentication failures/i.test(stderr)) {
    return new BackupError('repository-denied', `${where}: authentication failed (${text})`);
  }
  if (/Connection refused|timed out|No route to host|Could not resolve|Network is unreachable|Connection closed|Connection reset|kex_exchange_identification|Broken pipe/i.test(stderr)) {
    return new BackupError('repository-unreachable', `${where}: cannot reach the server (${text})`);
  }
  return new BackupError('repository-failed', `${where}: ssh failed (${text})`);
}

export class SftpSession {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #where: string;
  readonly #pending = new Map<number, Pending>();
  readonly #splitter = new PacketSplitter();
  #nextId = 1;
  #stderr = '';
  #closed: BackupError | null = null;
  #established = false;
  #ending = false;
  readonly #exited: Promise<void>;
  extensions = new Map<string, string>();

  private constructor(target: SshTarget, where: string) {
    this.#where = where;
    this.#child = spawn(target.sshCommand ?? 'ssh', sshArguments(target), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
    });
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (text: string) => {
      if (this.#stderr.length < 16_384) this.#stderr += text;
    });
    this.#child.stdin.on('error', () => {
      /* EPIPE when ssh has gone; its exit reports why */
    });
    this.#child.stdout.on('data', (data: Buffer) => {
      this.#receive(data);
    });
    this.#exited = new Promise((resolve) => {
      this.#child.on('error', (err) => {
        this.#shutDown(new BackupError('repository-failed', `${where}: cannot run ssh: ${err.message}`));
        resolve();
      });
      this.#child.on('close', () => {
        let reason = classifySshFailure(this.#stderr, where);
        if (this.#established && reason.code === 'repository-failed') {
          reason = new BackupError('repository-unreachable', `${where}: the connection was lost (${reason.message.replace(`${where}: `, '')})`);
        }
        this.#shutDown(this.#ending ? new BackupError('repository-failed', `${where}: the SFTP session was closed`) : reason);
        resolve();
      });
    });
  }

  /** Connects and negotiates SFTP v3; rejects with a classified BackupError (unreachable, denied…). */
  static async open(target: SshTarget, where: string): Promise<SftpSession> {
    const session = new SftpSession(target, where);
    const timer = setTimeout(() => {
      session.#shutDown(new BackupError('repository-unreachable', `${where}: no SFTP answer within ${target.connectTimeoutSeconds + 15} s`));
      session.#child.kill('SIGKILL');
    }, (target.connectTimeoutSeconds + 15) * 1000);
    try {
      const version = await session.#send(FXP.INIT, new PacketWriter().uint32(3), true);
      if (version.type !== FXP.VERSION) throw new BackupError('repository-failed', `${where}: the server did not answer SFTP INIT`);
      version.reader.uint32();
      while (version.reader.remaining > 0) session.extensions.set(version.reader.text(), version.reader.text());
      session.#established = true;
      return session;
    } catch (err) {
      await session.end();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  #shutDown(reason: BackupError): void {
    if (this.#closed) return;
    this.#closed = reason;
    for (const pending of this.#pending.values()) pending.reject(reason);
    this.#pending.clear();
  }

  #receive(data: Buffer): void {
    let packets;
    try {
      packets = this.#splitter.push(data);
    } catch (err) {
      this.#shutDown(new BackupError('repository-failed', `${this.#where}: ${(err as Error).message}`));
      this.#child.kill('SIGKILL');
      return;
    }
    for (const { type, payload } of packets) {
      const reader = new PacketReader(payload);
      const id = type === FXP.VERSION ? 0 : reader.uint32();
      const pending = this.#pending.get(id);
      if (!pending) continue;
      this.#pending.delete(id);
      pending.resolve({ type, reader });
    }
  }

  /** Sends a request; the VERSION reply to INIT carries no id, so INIT waits under id 0. */
  #send(type: number, fields: PacketWriter, init = false): Promise<{ type: number; reader: PacketReader }> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = init ? 0 : this.#nextId;
    if (!init) this.#nextId = (this.#nextId % 0xffff_fffe) + 1;
    const packet = init ? fields.packet(type) : fields.packet(type, id);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.stdin.write(packet);
    });
  }

  async #request(type: number, fields: PacketWriter, path: string): Promise<{ type: number; reader: PacketReader }> {
    const reply = await this.#send(type, fields);
    if (reply.type === FXP.STATUS) {
      const status = reply.reader.uint32();
      const message = reply.reader.remaining >= 4 ? reply.reader.text() : '';
      if (status !== FX_STATUS.OK) throw new SftpStatusError(status, `${path}: ${message || `SFTP status ${status}`}`);
    }
    return reply;
  }

  async #expectStatus(type: number, fields: PacketWriter, path: string): Promise<void> {
    const reply = await this.#request(type, fields, path);
    if (reply.type !== FXP.STATUS) throw new BackupError('repository-failed', `${this.#where}: unexpected SFTP reply ${reply.type} for ${path}`);
  }

  async open(path: string, flags: number, permissions = 0o640): Promise<Buffer> {
    const reply = await this.#request(FXP.OPEN, new PacketWriter().string(path).uint32(flags).attrs({ permissions }), path);
    if (reply.type !== FXP.HANDLE) throw new BackupError('repository-failed', `${this.#where}: unexpected SFTP reply to OPEN ${path}`);
    return Buffer.from(reply.reader.string());
  }

  close(handle: Buffer, path: string): Promise<void> {
    return this.#expectStatus(FXP.CLOSE, new PacketWriter().string(handle), path);
  }

  write(handle: Buffer, offset: number, data: Buffer, path: string): Promise<void> {
    return this.#expectStatus(FXP.WRITE, new PacketWriter().string(handle).uint64(offset).string(data), path);
  }

  /** Up to `length` bytes at `offset`; null at the end of the file. */
  async read(handle: Buffer, offset: number, length: number, path: string): Promise<Buffer | null> {
    try {
      const reply = await this.#request(FXP.READ, new PacketWriter().string(handle).uint64(offset).uint32(length), path);
      if (reply.type !== FXP.DATA) throw new BackupError('repository-failed', `${this.#where}: unexpected SFTP reply to READ ${path}`);
      return Buffer.from(reply.reader.string());
    } catch (err) {
      if (err instanceof SftpStatusError && err.status === FX_STATUS.EOF) return null;
      throw err;
    }
  }

  /** Attributes of `path`, or null when it does not exist. */
  async stat(path: string): Promise<FileAttrs | null> {
    try {
      const reply = await this.#request(FXP.STAT, new PacketWriter().string(path), path);
      if (reply.type !== FXP.ATTRS) throw new BackupError('repository-failed', `${this.#where}: unexpected SFTP reply to STAT ${path}`);
      return reply.reader.attrs();
    } catch (err) {
      if (err instanceof SftpStatusError && err.status === FX_STATUS.NO_SUCH_FILE) return null;
      throw err;
    }
  }

  /** The entries of a directory (without . and ..). */
  async readdir(path: string): Promise<{ name: string; attrs: FileAttrs }[]> {
    const opened = await this.#request(FXP.OPENDIR, new PacketWriter().string(path), path);
    if (opened.type !== FXP.HANDLE) throw new BackupError('repository-failed', `${this.#where}: unexpected SFTP reply to OPENDIR ${path}`);
    const handle = Buffer.from(opened.reader.string());
    const entries: { name: string; attrs: FileAttrs }[] = [];
    try {
      for (;;) {
        let reply;
        try {
          reply = await this.#request(FXP.READDIR, new PacketWriter().string(handle), path);
        } catch (err) {
          if (err instanceof SftpStatusError && err.status === FX_STATUS.EOF) break;
          throw err;
        }
        if (reply.type !== FXP.NAME) throw new BackupError('repository-failed', `${this.#where}: unexpected SFTP reply to READDIR ${path}`);
        const count = reply.reader.uint32();
        for (let i = 0; i < count; i++) {
          const name = reply.reader.text();
          reply.reader.text(); // the ls -l style long name
          const attrs = reply.reader.attrs();
          if (name !== '.' && name !== '..') entries.push({ name, attrs });
        }
      }
    } finally {
      await this.close(handle, path).catch(() => undefined);
    }
    return entries;
  }

  remove(path: string): Promise<void> {
    return this.#expectStatus(FXP.REMOVE, new PacketWriter().string(path), path);
  }

  mkdir(path: string, permissions = 0o750): Promise<void> {
    return this.#expectStatus(FXP.MKDIR, new PacketWriter().string(path).attrs({ permissions }), path);
  }

  /** Renames, replacing an existing target atomically when the server has posix-rename (OpenSSH does). */
  rename(from: string, to: string): Promise<void> {
    if (this.extensions.has('posix-rename@openssh.com')) {
      return this.#expectStatus(FXP.EXTENDED, new PacketWriter().string('posix-rename@openssh.com').string(from).string(to), to);
    }
    return this.#expectStatus(FXP.RENAME, new PacketWriter().string(from).string(to), to);
  }

  /** Flushes a written file to stable storage on the server; false when the server cannot. */
  async fsync(handle: Buffer, path: string): Promise<boolean> {
    if (!this.extensions.has('fsync@openssh.com')) return false;
    await this.#expectStatus(FXP.EXTENDED, new PacketWriter().string('fsync@openssh.com').string(handle), path);
    return true;
  }

  /** Space on the file system holding `path`, or null when the server cannot tell. */
  async statvfs(path: string): Promise<StatVfs | null> {
    if (!this.extensions.has('statvfs@openssh.com')) return null;
    const reply = await this.#request(FXP.EXTENDED, new PacketWriter().string('statvfs@openssh.com').string(path), path);
    if (reply.type !== FXP.EXTENDED_REPLY) return null;
    const r = reply.reader;
    r.uint64(); // f_bsize
    const blockSize = r.uint64(); // f_frsize: the unit of the block counts
    const blocks = r.uint64();
    const freeBlocks = r.uint64();
    const availableBlocks = r.uint64();
    return { blockSize, blocks, freeBlocks, availableBlocks };
  }

  /** Whether the session has ended (closed by us, or the connection was lost). */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Closes the session and waits for ssh to exit. */
  async end(): Promise<void> {
    this.#ending = true;
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await this.#exited;
    clearTimeout(timer);
  }
}
