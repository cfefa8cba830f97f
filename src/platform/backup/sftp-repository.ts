/**
 * A repository on an SFTP server, reached with the system OpenSSH client and a key pair (see
 * sftp/session.ts). Writes stream to a temporary dot-file with pipelined SFTP writes, are fsynced
 * on the server (fsync@openssh.com) and renamed into place (posix-rename@openssh.com).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { BackupError } from './errors.ts';
import { checkListPrefix, checkObjectName } from './object-names.ts';
import type { ObjectInfo, Repository, RepositoryHealth, RepositoryPlacement } from './repository.ts';
import { FX_STATUS, OPEN_FLAGS, isDirectory, isRegularFile, type FileAttrs } from './sftp/codec.ts';
import { SftpSessionPool } from './sftp/session-pool.ts';
import { SftpSession, SftpStatusError, type SshTarget } from './sftp/session.ts';

export interface SftpRepositoryOptions extends RepositoryPlacement, SshTarget {
  /** The repository's root directory on the server (absolute, or relative to the login directory). */
  path: string;
}

/** Bytes per SFTP WRITE/READ request, and how many are in flight at once (1 MiB). */
const IO_BYTES = 32 * 1024;
const IN_FLIGHT = 32;

export class SftpRepository implements Repository {
  readonly kind = 'sftp';
  readonly name: string;
  readonly region: string;
  readonly jurisdiction: string;
  readonly location: string;
  readonly #target: SshTarget;
  readonly #root: string;
  readonly #pool: SftpSessionPool;

  constructor(options: SftpRepositoryOptions) {
    this.name = options.name;
    this.region = options.region;
    this.jurisdiction = options.jurisdiction;
    this.#target = {
      host: options.host,
      port: options.port,
      user: options.user,
      identityFile: options.identityFile,
      knownHostsFile: options.knownHostsFile,
      connectTimeoutSeconds: options.connectTimeoutSeconds,
      ...(options.sshCommand ? { sshCommand: options.sshCommand } : {}),
    };
    this.#root = options.path.replace(/\/+$/, '') || '/';
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.location = `sftp://${options.user}@${host}:${options.port}${this.#root.startsWith('/') ? '' : '/~/'}${this.#root}`;
    this.#pool = new SftpSessionPool(() => SftpSession.open(this.#target, this.#where()));
  }

  #remote(name: string): string {
    return `${this.#root}/${checkObjectName(name).join('/')}`;
  }

  #where(): string {
    return `repository ${this.name} (${this.location})`;
  }

  #withSession<T>(fn: (session: SftpSession) => Promise<T>): Promise<T> {
    return this.#pool.withSession(fn);
  }

  /** Closes the shared connection now (otherwise it closes a moment after its last use). */
  close(): Promise<void> {
    return this.#pool.close();
  }

  /** Maps an SFTP status to a BackupError; a failed write on a full file system becomes repository-full. */
  async #fail(err: unknown, action: string, name: string, session?: SftpSession): Promise<BackupError> {
    if (err instanceof BackupError) return err;
    const what = `cannot ${action} ${name} in ${this.#where()}`;
    if (err instanceof SftpStatusError) {
      if (err.status === FX_STATUS.NO_SUCH_FILE) return new BackupError('object-not-found', `${what}: it does not exist`, { cause: err });
      if (err.status === FX_STATUS.PERMISSION_DENIED) return new BackupError('repository-denied', `${what}: permission denied`, { cause: err });
      // SFTP v3 has no "disk full" status (OpenSSH sends FAILURE for ENOSPC), so ask the server.
      if (err.status === FX_STATUS.FAILURE && session) {
        const space = await session.statvfs(this.#root).catch(() => null);
        if (space && space.availableBlocks * space.blockSize < IO_BYTES * IN_FLIGHT) {
          return new BackupError('repository-full', `${what}: the repository is full (${space.availableBlocks * space.blockSize} bytes left)`, { cause: err });
        }
      }
      return new BackupError('repository-failed', `${what}: ${err.message}`, { cause: err });
    }
    return new BackupError('repository-failed', `${what}: ${(err as Error).message}`, { cause: err });
  }

  async #requireRoot(session: SftpSession): Promise<void> {
    const attrs = await session.stat(this.#root);
    if (!attrs || !isDirectory(attrs)) {
      throw new BackupError('repository-unreachable', `${this.#where()}: its directory ${this.#root} does not exist on the server`);
    }
  }

  /** Creates the directories above an object, tolerating ones that appear meanwhile. */
  async #ensureDirectories(session: SftpSession, segments: string[]): Promise<void> {
    let dir = this.#root;
    for (const segment of segments.slice(0, -1)) {
      dir = `${dir}/${segment}`;
      const attrs = await session.stat(dir);
      if (attrs && isDirectory(attrs)) continue;
      try {
        await session.mkdir(dir);
      } catch (err) {
        const now = await session.stat(dir);
        if (!now || !isDirectory(now)) throw err;
      }
    }
  }

  async put(name: string, data: Readable): Promise<{ size: number }> {
    const segments = checkObjectName(name);
    const target = this.#remote(name);
    const temp = `${target.slice(0, target.lastIndexOf('/') + 1)}.${segments.at(-1) ?? ''}.tmp-${randomBytes(6).toString('hex')}`;
    return this.#withSession(async (session) => {
      let created = false;
      try {
        await this.#requireRoot(session);
        await this.#ensureDirectories(session, segments);
        const handle = await session.open(temp, OPEN_FLAGS.WRITE | OPEN_FLAGS.CREAT | OPEN_FLAGS.EXCL);
        created = true;
        let size: number;
        try {
          size = await upload(session, handle, data, temp);
          await session.fsync(handle, temp);
        } finally {
          await session.close(handle, temp).catch(() => undefined);
        }
        await session.rename(temp, target);
        return { size };
      } catch (err) {
        const failure = await this.#fail(err, 'write', name, session);
        if (created) await session.remove(temp).catch(() => undefined);
        throw failure;
      }
    });
  }

  async get(name: string): Promise<Readable> {
    const path = this.#remote(name);
    const { session, release } = await this.#pool.lease();
    let handle: Buffer;
    try {
      await this.#requireRoot(session);
      handle = await session.open(path, OPEN_FLAGS.READ);
    } catch (err) {
      const failure = await this.#fail(err, 'read', name, session);
      release();
      throw failure;
    }
    const fail = (err: unknown): Promise<BackupError> => this.#fail(err, 'read', name);
    // The stream holds the lease until it ends or is destroyed.
    return Readable.from(download(session, handle, path, fail, release), { objectMode: false });
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const path = this.#remote(name);
    return this.#withSession(async (session) => {
      try {
        await this.#requireRoot(session);
        const attrs = await session.stat(path);
        return attrs && isRegularFile(attrs) && !isDirectory(attrs) ? info(name, attrs) : null;
      } catch (err) {
        throw await this.#fail(err, 'stat', name, session);
      }
    });
  }

  async list(prefix = ''): Promise<ObjectInfo[]> {
    checkListPrefix(prefix);
    return this.#withSession(async (session) => {
      await this.#requireRoot(session);
      const out: ObjectInfo[] = [];
      const walk = async (dir: string, relative: string): Promise<void> => {
        let entries;
        try {
          entries = await session.readdir(dir);
        } catch (err) {
          throw await this.#fail(err, 'list', relative || '/', session);
        }
        for (const entry of entries) {
          if (entry.name.startsWith('.')) continue;
          const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
          if (!name.startsWith(prefix) && !prefix.startsWith(`${name}/`)) continue;
          if (isDirectory(entry.attrs)) await walk(`${dir}/${entry.name}`, name);
          else if (isRegularFile(entry.attrs) && name.startsWith(prefix)) out.push(info(name, entry.attrs));
        }
      };
      await walk(this.#root, '');
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }

  async delete(name: string): Promise<boolean> {
    const path = this.#remote(name);
    return this.#withSession(async (session) => {
      try {
        await this.#requireRoot(session);
        await session.remove(path);
        return true;
      } catch (err) {
        if (err instanceof SftpStatusError && err.status === FX_STATUS.NO_SUCH_FILE) return false;
        throw await this.#fail(err, 'delete', name, session);
      }
    });
  }

  async probe(): Promise<RepositoryHealth> {
    try {
      return await this.#withSession(async (session) => {
        await this.#requireRoot(session);
        const space = await session.statvfs(this.#root);
        if (!space) return { ok: true };
        return { ok: true, freeBytes: space.availableBlocks * space.blockSize, totalBytes: space.blocks * space.blockSize };
      });
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }
}

function info(name: string, attrs: FileAttrs): ObjectInfo {
  return { name, size: attrs.size ?? 0, modified: new Date((attrs.mtime ?? 0) * 1000) };
}

/** Streams `data` into an open handle with up to IN_FLIGHT pipelined writes; returns the byte count. */
async function upload(session: SftpSession, handle: Buffer, data: Readable, path: string): Promise<number> {
  // Each write settles to its error or null, so none can reject unobserved while we wait on another.
  const inFlight: Promise<Error | null>[] = [];
  let offset = 0;
  const settle = async (): Promise<void> => {
    const err = await inFlight.shift();
    if (err) throw err;
  };
  for await (const chunk of data) {
    const bytes = chunk as Buffer;
    for (let start = 0; start < bytes.length; start += IO_BYTES) {
      const piece = bytes.subarray(start, start + IO_BYTES);
      inFlight.push(session.write(handle, offset, piece, path).then(() => null, (err: unknown) => err as Error));
      offset += piece.length;
      if (inFlight.length >= IN_FLIGHT) await settle();
    }
  }
  while (inFlight.length > 0) await settle();
  return offset;
}

/** Reads an open handle to its end with pipelined reads, in order; closes handle and session after. */
async function* download(
  session: SftpSession,
  handle: Buffer,
  path: string,
  fail: (err: unknown) => Promise<BackupError>,
  release: () => void,
): AsyncGenerator<Buffer> {
  const queue: { offset: number; result: Promise<Buffer | null | Error> }[] = [];
  let next = 0;
  let eof = false;
  const fill = (): void => {
    while (!eof && queue.length < IN_FLIGHT) {
      const offset = next;
      queue.push({ offset, result: session.read(handle, offset, IO_BYTES, path).catch((err: unknown) => err as Error) });
      next += IO_BYTES;
    }
  };
  try {
    fill();
    for (let head = queue.shift(); head; head = queue.shift()) {
      const first = await head.result;
      if (first instanceof Error) {
        const failure = await fail(first);
        throw failure;
      }
      if (first === null) break;
      yield first;
      // A short read before the end leaves a gap; fetch the rest of this slot before moving on.
      for (let got = first.length; got < IO_BYTES; ) {
        const more = await session.read(handle, head.offset + got, IO_BYTES - got, path).catch(async (err: unknown) => {
          throw await fail(err);
        });
        if (more === null) {
          eof = true;
          break;
        }
        yield more;
        got += more.length;
      }
      if (eof) break;
      fill();
    }
    await Promise.all(queue.map((q) => q.result));
  } finally {
    await session.close(handle, path).catch(() => undefined);
    release();
  }
}
