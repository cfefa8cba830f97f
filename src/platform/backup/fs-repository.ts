/**
 * A repository in a local directory (a disk, or a mounted NFS/SMB share). Writes go to a
 * temporary name beside the target, are flushed to disk as they go and fsynced at the end, renamed
 * into place and the directory fsynced,
 * so a crash leaves the old object or the new one, plus at most a dot-file that list ignores.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { BackupError } from './errors.ts';
import { checkListPrefix, checkObjectName } from './object-names.ts';
import type { ObjectInfo, Repository, RepositoryHealth, RepositoryPlacement } from './repository.ts';

export interface FilesystemRepositoryOptions extends RepositoryPlacement {
  /** The repository's root directory; it must exist (a missing root means an unmounted share). */
  path: string;
}

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/** Bytes written between the background data syncs of an object being written. */
const FLUSH_EVERY = 8 * 1024 * 1024;

export class FilesystemRepository implements Repository {
  readonly kind = 'filesystem';
  readonly name: string;
  readonly region: string;
  readonly jurisdiction: string;
  readonly location: string;
  readonly #root: string;

  constructor(options: FilesystemRepositoryOptions) {
    this.name = options.name;
    this.region = options.region;
    this.jurisdiction = options.jurisdiction;
    this.#root = resolve(options.path);
    this.location = this.#root;
  }

  /** The absolute path of an object, checked twice: by the name rules and by where it resolves. */
  #path(name: string): string {
    const segments = checkObjectName(name);
    const path = resolve(this.#root, ...segments);
    if (!path.startsWith(this.#root + sep)) throw new BackupError('object-name', `object name ${JSON.stringify(name)} resolves outside the repository`);
    return path;
  }

  #fail(err: unknown, action: string, name?: string): BackupError {
    if (err instanceof BackupError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const what = `${action}${name === undefined ? '' : ` ${name}`} in repository ${this.name} (${this.location})`;
    if (FULL_CODES.has(code)) return new BackupError('repository-full', `cannot ${what}: the repository is full (${code})`, { cause: err });
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return new BackupError('repository-denied', `cannot ${what}: access denied (${code})`, { cause: err });
    }
    return new BackupError('repository-failed', `cannot ${what}: ${(err as Error).message}`, { cause: err });
  }

  async #requireRoot(): Promise<void> {
    try {
      const st = await stat(this.#root);
      if (!st.isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new BackupError(
        'repository-unreachable',
        `repository ${this.name}: its directory ${this.#root} is missing or not a directory (is the share mounted?)`,
        { cause: err },
      );
    }
  }

  async put(name: string, data: Readable): Promise<{ size: number }> {
    const target = this.#path(name);
    await this.#requireRoot();
    const dir = dirname(target);
    const temp = join(dir, `.${target.slice(dir.length + 1)}.tmp-${randomBytes(6).toString('hex')}`);
    let size = 0;
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
      const file = await open(temp, 'wx', 0o640);
      // Write-behind: every FLUSH_EVERY bytes a data sync starts in the background (one at a time),
      // so the disk works while the stream still flows and the final fsync has only the tail left,
      // and a large object never piles up gigabytes of dirty pages. The first failure fails the put.
      let flushing: Promise<void> | null = null;
      const flush: { failed: boolean; error?: unknown } = { failed: false };
      let unflushed = 0;
      try {
        for await (const chunk of data) {
          const bytes = chunk as Buffer;
          // FileHandle.write may write less than asked; loop until the chunk is out.
          for (let offset = 0; offset < bytes.length; ) {
            const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset);
            offset += bytesWritten;
          }
          size += bytes.length;
          unflushed += bytes.length;
          if (flush.failed) throw flush.error;
          if (unflushed >= FLUSH_EVERY && !flushing) {
            unflushed = 0;
            flushing = file
              .datasync()
              .catch((error: unknown) => {
                if (!flush.failed) Object.assign(flush, { failed: true, error });
              })
              .finally(() => (flushing = null));
          }
        }
        await flushing;
        if (flush.failed) throw flush.error;
        await file.sync();
      } finally {
        // Never close the descriptor under a sync still running on it.
        await flushing;
        await file.close();
      }
      await rename(temp, target);
      await syncDirectory(dir);
      return { size };
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw this.#fail(err, 'write', name);
    }
  }

  async get(name: string): Promise<Readable> {
    const path = this.#path(name);
    await this.#requireRoot();
    // Opening first turns "missing" into a clear error before any consumer reads.
    const handle = await open(path, 'r').catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new BackupError('object-not-found', `object ${name} does not exist in repository ${this.name}`);
      }
      throw this.#fail(err, 'read', name);
    });
    return handle.createReadStream({ highWaterMark: 256 * 1024 });
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const path = this.#path(name);
    await this.#requireRoot();
    try {
      const st = await stat(path);
      return st.isFile() ? { name, size: st.size, modified: st.mtime } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw this.#fail(err, 'stat', name);
    }
  }

  async list(prefix = ''): Promise<ObjectInfo[]> {
    checkListPrefix(prefix);
    await this.#requireRoot();
    const out: ObjectInfo[] = [];
    const walk = async (dir: string, relative: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.#fail(err, 'list', relative || '/');
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
        // Skip whole subtrees that cannot hold a match.
        if (!name.startsWith(prefix) && !prefix.startsWith(`${name}/`)) continue;
        if (entry.isDirectory()) await walk(join(dir, entry.name), name);
        else if (entry.isFile() && name.startsWith(prefix)) {
          // Deleted between readdir and stat: it is simply not there any more.
          const st = await stat(join(dir, entry.name)).catch((err: unknown) => {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
            throw this.#fail(err, 'list', name);
          });
          if (st) out.push({ name, size: st.size, modified: st.mtime });
        }
      }
    };
    await walk(this.#root, '');
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async delete(name: string): Promise<boolean> {
    const path = this.#path(name);
    await this.#requireRoot();
    try {
      await rm(path);
      await syncDirectory(dirname(path));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw this.#fail(err, 'delete', name);
    }
  }

  /** Nothing to release: every operation opens and closes its own files. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  async probe(): Promise<RepositoryHealth> {
    try {
      await this.#requireRoot();
      const fs = await statfs(this.#root);
      return { ok: true, freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }
}

/** Makes a rename or unlink in `dir` durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
